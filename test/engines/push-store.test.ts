/**
 * The push part of the Store port against both SQL engines: SQLite (a temp
 * file and :memory:) and the machine's PostgreSQL in a throwaway schema, plus
 * migration 7 landing on a database already past it (features number their
 * migrations out of order).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Store } from '../../src/core/ports/store.js';
import { openSqliteStore } from '../../src/engines/sqlite/store.js';
import { MIGRATIONS as SQLITE_MIGRATIONS, migrate } from '../../src/engines/sqlite/migrations.js';
import { openPostgresStore } from '../../src/engines/postgres/store.js';
import { MIGRATIONS as PG_MIGRATIONS, applyMigrations } from '../../src/engines/postgres/migrations.js';
import { pushStoreSuite } from '../ports/push-store.suite.js';
import { POSTGRES_URL, postgresMissing } from '../helpers/services.js';
import { testSchemas } from '../helpers/postgres-schemas.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-push-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshPath = (): string => join(dir, `push-${++n}.db`);

pushStoreSuite('sqlite (temp file)', async () => openSqliteStore({ path: freshPath() }), (s) => s.close());
pushStoreSuite('sqlite (:memory:)', async () => openSqliteStore({ path: ':memory:' }), (s) => s.close());

const skip = await postgresMissing();
const { fresh, inspect } = testSchemas(skip);
if (!skip) {
  const schema = fresh('push');
  pushStoreSuite('postgres', (): Promise<Store> => openPostgresStore({ url: POSTGRES_URL, schema, poolSize: 3 }), (s) => s.close());
}

describe('migration 7 (push subscriptions)', () => {
  it('SQLite: is applied to a file that already has a higher version, once', () => {
    const db = new Database(freshPath());
    try {
      const later = { version: 99, name: 'a feature numbered after push', sql: 'CREATE TABLE later_feature (x INTEGER)' };
      const others = SQLITE_MIGRATIONS.filter((m) => m.version !== 7);
      assert.deepEqual(migrate(db, [...others, later]), [...others.map((m) => m.version), 99]);
      assert.deepEqual(migrate(db, [...SQLITE_MIGRATIONS, later]), [7], 'the missing 7 is applied, 8 is not again');
      assert.deepEqual(migrate(db, [...SQLITE_MIGRATIONS, later]), []);
      assert.equal(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'push_subscriptions'").pluck().get(), 1);
    } finally {
      db.close();
    }
  });

  it('PostgreSQL: is applied to a schema that already has a higher version, once', { skip }, async () => {
    const schema = fresh('push_mig');
    const later = { version: 99, name: 'a feature numbered after push', sql: 'CREATE TABLE later_feature (x integer)' };
    const others = PG_MIGRATIONS.filter((m) => m.version !== 7);
    const applied = await inspect(schema, async (c) => {
      const first = await applyMigrations(c, schema, [...others, later]);
      const second = await applyMigrations(c, schema, [...PG_MIGRATIONS, later]);
      const third = await applyMigrations(c, schema, [...PG_MIGRATIONS, later]);
      const tables = await c.query<{ n: string }>("SELECT count(*) AS n FROM pg_tables WHERE schemaname = $1 AND tablename = 'push_subscriptions'", [schema]);
      return { first, second, third, tables: Number(tables.rows[0]?.n) };
    });
    assert.deepEqual(applied, { first: [...others.map((m) => m.version), 99], second: [7], third: [], tables: 1 });
  });
});
