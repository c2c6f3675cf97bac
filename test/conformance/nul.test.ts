/**
 * U+0000 in an id, a search prefix or a cursor is bad_request with a readable
 * message, over HTTP and WebSocket, on both stores. PostgreSQL cannot compare
 * a text holding U+0000 at all: these requests answered `internal` (500) there.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Harness } from '../helpers/server.js';
import { expectError, expectStatus } from '../helpers/http.js';
import { POSTGRES_URL, postgresMissing } from '../helpers/services.js';

const NUL = '\u0000';

async function checkEveryField(h: Harness): Promise<void> {
  const [a, b] = await h.api.users(2, 'nul');
  assert.ok(a && b);
  const d = await h.api.direct(a, b);
  const bad = 'ab%00cd';
  const http: [string, string, unknown?][] = [
    ['GET', `/v1/conversations/${bad}`],
    ['GET', `/v1/conversations/${bad}/messages`],
    ['GET', `/v1/conversations/${bad}/events`],
    ['GET', `/v1/users/${bad}`],
    ['GET', `/v1/users?q=a%00b`],
    ['GET', `/v1/users?after=a%00b`],
    ['GET', `/v1/presence?userIds=${b.id},x%00y`],
    ['POST', '/v1/conversations', { kind: 'direct', members: [`x${NUL}y`] }],
    ['POST', '/v1/conversations', { kind: 'group', title: 't', members: [b.id, `x${NUL}y`] }],
    ['POST', `/v1/conversations/${d.id}/messages`, { clientId: 'nul-reply', body: 'x', replyTo: `r${NUL}` }],
    ['DELETE', `/v1/conversations/${d.id}/members/${bad}`],
  ];
  for (const [method, path, json] of http) {
    const r = await h.api.req(method, path, { token: a.token, ...(json === undefined ? {} : { json }) });
    expectError(r, 400, 'bad_request', `${method} ${path}`);
    assert.match(r.text, /U\+0000/, `${method} ${path}: the message names the character: ${r.text}`);
  }
  const ws = await h.connect(a, 'nul-ws');
  for (const frame of [
    { type: 'send', conversationId: `c${NUL}`, clientId: 'nul-ws-1', body: 'x' },
    { type: 'send', conversationId: d.id, clientId: 'nul-ws-2', body: 'x', replyTo: `r${NUL}` },
    { type: 'edit', messageId: `m${NUL}`, body: 'x' },
    { type: 'typing', conversationId: `c${NUL}`, active: true },
    { type: 'sync', positions: { [`c${NUL}`]: 0 } },
  ]) {
    const e = await ws.error(frame, 'bad_request');
    assert.match(e.message, /U\+0000/, `${frame.type}: ${e.message}`);
  }
  // Nothing broke: the same user still sends, and the socket is still open.
  expectStatus(await h.api.req('POST', `/v1/conversations/${d.id}/messages`, { token: a.token, json: { clientId: 'nul-after', body: 'fine' } }), 201);
  await ws.request({ type: 'ping' });
  await ws.close();
}

describe('U+0000 in ids, prefixes and cursors', () => {
  test('SQLite', async () => {
    const h = await Harness.start();
    try {
      await checkEveryField(h);
    } finally {
      await h.close();
    }
  });

  describe('PostgreSQL', () => {
    let skip: string | undefined;
    const schema = `parley_test_nul_${randomBytes(5).toString('hex')}`;
    before(async () => {
      skip = await postgresMissing();
    });
    after(async () => {
      if (skip) return;
      const c = new pg.Client({ connectionString: POSTGRES_URL });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await c.end();
      }
    });

    test('the same requests are bad_request, not internal', async (t) => {
      if (skip) return t.skip(skip);
      const h = await Harness.start({ databaseUrl: POSTGRES_URL, databaseSchema: schema });
      try {
        await checkEveryField(h);
      } finally {
        await h.close();
      }
    });
  });
});
