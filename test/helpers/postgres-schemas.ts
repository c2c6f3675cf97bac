/**
 * Throwaway PostgreSQL schemas for engine tests: each test file gets fresh,
 * randomly named schemas on the shared test database, dropped after the file.
 */
import { after } from 'node:test';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { POSTGRES_URL } from './services.js';

export interface TestSchemas {
  /** A new schema name (created by whoever opens a store on it), dropped after the file's tests. */
  fresh(tag: string): string;
  /** A plain client on the test database with `schema` first in its path, for looking at what the store wrote. */
  inspect<T>(schema: string, fn: (c: pg.Client) => Promise<T>): Promise<T>;
  /** Every row of every table of `schema`, as text: to show a value is stored nowhere. */
  allRowsText(schema: string): Promise<string>;
}

/** Call once per test file, at its top level; `skip` (PostgreSQL missing) makes the cleanup do nothing. */
export function testSchemas(skip: unknown): TestSchemas {
  const names: string[] = [];
  after(async () => {
    if (skip || names.length === 0) return;
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      for (const s of names) await client.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    } finally {
      await client.end();
    }
  });
  return {
    fresh(tag) {
      const name = `parley_test_${tag}_${randomBytes(5).toString('hex')}`;
      names.push(name);
      return name;
    },
    async inspect(schema, fn) {
      const client = new pg.Client({ connectionString: POSTGRES_URL, options: `-c search_path=${schema}` });
      await client.connect();
      try {
        return await fn(client);
      } finally {
        await client.end();
      }
    },
    allRowsText(schema) {
      return this.inspect(schema, async (c) => {
        const tables = await c.query<{ name: string }>('SELECT tablename AS name FROM pg_tables WHERE schemaname = $1', [schema]);
        let all = '';
        for (const t of tables.rows) for (const r of (await c.query<{ row: string }>(`SELECT t::text AS row FROM ${t.name} t`)).rows) all += `${r.row}\n`;
        return all;
      });
    },
  };
}
