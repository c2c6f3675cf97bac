/**
 * toParleyError on errors the engines really raise (no stand-ins): a defect of
 * the server is `internal` (500), an engine that is down or timing out is
 * `unavailable` (503). PostgreSQL and Redis cases are skipped when those
 * servers are not running here (and fail under CI=true, see services.ts).
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Redis } from 'ioredis';
import { ParleyError, toParleyError } from '../../src/core/errors.js';
import { StoreError } from '../../src/core/ports/store.js';
import { ERROR_STATUS } from '../../src/protocol/errors.js';
import { POSTGRES_URL, REDIS_URL, postgresMissing, redisMissing } from '../helpers/services.js';

/** What `fn` throws (or rejects with). */
async function thrown(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  assert.fail('expected a throw');
}

function codeOf(err: unknown): string {
  const e = toParleyError(err);
  assert.ok(e instanceof ParleyError);
  assert.ok(!/\bat .*:\d+/.test(e.message), `no stack trace in the message: ${e.message}`);
  return e.code;
}

const dir = mkdtempSync(join(tmpdir(), 'parley-errors-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('toParleyError', () => {
  test('protocol and store errors keep their code', () => {
    assert.equal(codeOf(new ParleyError('forbidden', 'No.')), 'forbidden');
    assert.equal(codeOf(new StoreError('conflict', 'Taken.')), 'conflict');
    assert.equal(ERROR_STATUS.internal, 500);
    assert.equal(ERROR_STATUS.unavailable, 503);
  });

  test('bugs in our code are internal', async () => {
    const nothing = JSON.parse('null') as { x: { y: number } } | null;
    assert.equal(codeOf(await thrown(() => (nothing as { x: { y: number } }).x.y)), 'internal', 'TypeError');
    assert.equal(codeOf(await thrown(() => new Array(-1))), 'internal', 'RangeError');
    assert.equal(codeOf(await thrown(() => JSON.parse('{'))), 'internal', 'SyntaxError');
    assert.equal(codeOf(await thrown(() => assert.equal(1, 2))), 'internal', 'AssertionError');
  });

  test('engine timeouts and lost links the engines report as plain errors are unavailable', async () => {
    // The PostgreSQL store's own timeout and the Redis turn batcher's refusal are plain Errors.
    assert.equal(codeOf(new Error('no answer within 1000 ms')), 'unavailable');
    assert.equal(codeOf(new Error('Redis is not connected')), 'unavailable');
    assert.equal(codeOf('a string'), 'unavailable');
    // A refused TCP connection, as a socket reports it.
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'nobody', database: 'none', connectionTimeoutMillis: 1000 });
    assert.equal(codeOf(await thrown(() => client.connect())), 'unavailable', 'ECONNREFUSED');
  });

  test('SQLite: a wrong statement is internal; a locked or closed database is unavailable', async () => {
    const file = join(dir, 'x.db');
    const a = new Database(file);
    a.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)');
    assert.equal(codeOf(await thrown(() => a.prepare('SELECT nope FROM t').all())), 'internal', 'no such column');
    a.exec('INSERT INTO t VALUES (1)');
    assert.equal(codeOf(await thrown(() => a.exec('INSERT INTO t VALUES (1)'))), 'internal', 'an untranslated constraint');
    const b = new Database(file, { timeout: 0 });
    a.exec('BEGIN EXCLUSIVE');
    assert.equal(codeOf(await thrown(() => b.exec('INSERT INTO t VALUES (2)'))), 'unavailable', 'SQLITE_BUSY');
    a.exec('ROLLBACK');
    b.close();
    const stmt = a.prepare('SELECT 1');
    a.close();
    assert.equal(codeOf(await thrown(() => stmt.get())), 'unavailable', 'a store closed under us (shutdown)');
  });

  test('PostgreSQL: a wrong statement is internal; a statement timeout is unavailable', async (t) => {
    const skip = await postgresMissing();
    if (skip) return t.skip(skip);
    const c = new pg.Client({ connectionString: POSTGRES_URL });
    await c.connect();
    try {
      assert.equal(codeOf(await thrown(() => c.query('SELECT * FROM parley_no_such_table'))), 'internal', '42P01');
      assert.equal(codeOf(await thrown(() => c.query('SELECT 1/0'))), 'internal', '22012');
      await c.query('SET statement_timeout = 50');
      assert.equal(codeOf(await thrown(() => c.query('SELECT pg_sleep(1)'))), 'unavailable', '57014');
    } finally {
      await c.end();
    }
  });

  test('Redis: a wrong command is internal; a closed connection is unavailable', async (t) => {
    const skip = await redisMissing();
    if (skip) return t.skip(skip);
    const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false });
    await r.connect();
    const key = `parley-test-errors-${process.pid}-${Date.now()}`;
    try {
      await r.set(key, 'x', 'EX', 10);
      assert.equal(codeOf(await thrown(() => r.lpush(key, 'y'))), 'internal', 'WRONGTYPE');
      await r.del(key);
    } finally {
      r.disconnect();
    }
    assert.equal(codeOf(await thrown(() => r.get(key))), 'unavailable', 'connection closed');
  });
});
