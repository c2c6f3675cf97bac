/**
 * `internal` (500) against `unavailable` (503), end to end over HTTP and the
 * WebSocket, provoked on real engines: a store whose schema no longer matches
 * the code (a table renamed behind the server's back: a defect, retrying will
 * not help) answers `internal`; a PostgreSQL that cannot be reached (a TCP
 * proxy of the test's own, cut) answers `unavailable`.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Harness } from '../helpers/server.js';
import { expectError, expectStatus } from '../helpers/http.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { POSTGRES_URL, postgresMissing } from '../helpers/services.js';
import type { TestUser } from '../helpers/http.js';

/** History over HTTP and a send over the WebSocket both fail with `code`. */
async function expectBoth(h: Harness, u: TestUser, conversationId: string, code: 'internal' | 'unavailable'): Promise<void> {
  const status = code === 'internal' ? 500 : 503;
  expectError(await h.api.req('GET', `/v1/conversations/${conversationId}/messages`, { token: u.token }), status, code, 'history over HTTP');
  expectError(
    await h.api.req('POST', `/v1/conversations/${conversationId}/messages`, { token: u.token, json: { clientId: `http-${code}`, body: 'x' } }),
    status,
    code,
    'send over HTTP',
  );
  const ws = await h.connect(u, `${u.username}-${code}`);
  await ws.error({ type: 'send', conversationId, clientId: `ws-${code}`, body: 'x' }, code, 5000);
  // The connection stays open after a failed frame.
  await ws.request({ type: 'ping' });
}

describe('internal and unavailable', () => {
  test('SQLite: a table gone from the schema is internal on HTTP and WS', async () => {
    const h = await Harness.start();
    try {
      const [a, b] = await h.api.users(2, 'int');
      assert.ok(a && b);
      const d = await h.api.direct(a, b);
      await h.api.send(a, d.id, 'before');
      const db = new Database(join(h.dataDir, 'parley.db'), { timeout: 5000 });
      try {
        db.exec('ALTER TABLE messages RENAME TO messages_gone');
      } finally {
        db.close();
      }
      await expectBoth(h, a, d.id, 'internal');
    } finally {
      await h.close();
    }
  });

  describe('PostgreSQL', () => {
    let skip: string | undefined;
    let proxy: TcpProxy | undefined;
    let h: Harness | undefined;
    const schema = `parley_test_errors_${randomBytes(5).toString('hex')}`;
    const admin = async (sql: string): Promise<void> => {
      const c = new pg.Client({ connectionString: POSTGRES_URL });
      await c.connect();
      try {
        await c.query(sql);
      } finally {
        await c.end();
      }
    };

    before(async () => {
      skip = await postgresMissing();
      if (skip) return;
      const url = new URL(POSTGRES_URL);
      proxy = await TcpProxy.start({ host: url.hostname, port: Number(url.port || 5432) });
      url.port = String(proxy.port);
      h = await Harness.start({ databaseUrl: url.toString(), databaseSchema: schema });
    });
    after(async () => {
      await h?.close();
      await proxy?.close();
      if (!skip) await admin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    });

    test('an unreachable database is unavailable; a table gone from the schema is internal', async (t) => {
      if (skip || !h || !proxy) return t.skip(skip);
      const [a, b] = await h.api.users(2, 'pgerr');
      assert.ok(a && b);
      const d = await h.api.direct(a, b);
      await h.api.send(a, d.id, 'before');
      // Authenticate the sockets while the database answers; the failures come after.
      const wsA = await h.connect(a, 'a-outage');
      await proxy.cut();
      expectError(await h.api.req('GET', `/v1/conversations/${d.id}/messages`, { token: a.token }), 503, 'unavailable', 'history, database cut');
      expectError(
        await h.api.req('POST', `/v1/conversations/${d.id}/messages`, { token: a.token, json: { clientId: 'cut-http', body: 'x' } }),
        503,
        'unavailable',
        'send, database cut',
      );
      await wsA.error({ type: 'send', conversationId: d.id, clientId: 'cut-ws', body: 'x' }, 'unavailable', 8000);
      await proxy.restore();
      // Back to normal once the database answers again (the pool heals by itself).
      const deadline = Date.now() + 15_000;
      for (;;) {
        const r = await h.api.req('GET', `/v1/conversations/${d.id}/messages`, { token: a.token });
        if (r.status === 200) break;
        assert.ok(Date.now() < deadline, `history still failing after the database came back: ${r.status} ${r.text}`);
        await new Promise((res) => setTimeout(res, 200));
      }
      expectStatus(await h.api.req('POST', `/v1/conversations/${d.id}/messages`, { token: a.token, json: { clientId: 'cut-http', body: 'x' } }), 201);

      await admin(`ALTER TABLE ${schema}.messages RENAME TO messages_gone`);
      await expectBoth(h, a, d.id, 'internal');
    });
  });
});
