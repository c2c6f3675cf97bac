/**
 * Versioned schema of the PostgreSQL store. Migrations run in one transaction
 * that first takes an advisory lock for the schema: nodes that start at the
 * same moment migrate one after another, the first applies what is missing
 * and the others find nothing left to do. A migration and its row in
 * `schema_migrations` commit together, so a crash leaves the previous version.
 * Never edit a released migration: add one.
 */
import pg from 'pg';
import { checkSchemaName, TYPES } from './db.js';
import { SCHEMA_V1 } from './schema-v1.js';
import { SCHEMA_V2 } from './schema-v2.js';
import { SCHEMA_V3 } from './schema-v3.js';
import { SCHEMA_V4 } from './schema-v4.js';
import { SCHEMA_V5 } from './schema-v5.js';
import { SCHEMA_V6 } from './schema-v6.js';
import { SCHEMA_V8 } from './schema-v8.js';
import { SCHEMA_V7 } from './schema-v7.js';
import { SCHEMA_V9 } from './schema-v9.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'initial schema', sql: SCHEMA_V1 },
  { version: 2, name: 'a message is written once', sql: SCHEMA_V2 },
  { version: 3, name: 'blocks', sql: SCHEMA_V3 },
  { version: 4, name: 'retention', sql: SCHEMA_V4 },
  { version: 5, name: 'message search', sql: SCHEMA_V5 },
  { version: 6, name: 'attachments', sql: SCHEMA_V6 },
  { version: 7, name: 'push subscriptions', sql: SCHEMA_V7 },
  { version: 8, name: 'end-to-end encryption', sql: SCHEMA_V8 },
  { version: 9, name: 'encrypted attachments', sql: SCHEMA_V9 },
];

/** First key of the advisory lock ('Parl'); the second is a hash of the schema name. */
const LOCK_CLASS = 0x5061726c;

/**
 * Applies, on an open client, every migration the schema has not recorded, in
 * version order, and returns the versions applied. Creates the schema when it is missing.
 */
export async function applyMigrations(
  client: pg.ClientBase,
  schema: string,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<number[]> {
  checkSchemaName(schema);
  await client.query('BEGIN');
  try {
    // Held until COMMIT; the schema name is hashed so each schema migrates on its own.
    await client.query('SELECT pg_advisory_xact_lock($1::int4, hashtext($2))', [LOCK_CLASS, schema]);
    const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${schema}`);
    await client.query(`SET LOCAL search_path TO ${schema}`);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at bigint NOT NULL
    )`);
    // Every migration not recorded, not only those above the highest: features take numbers ahead (a gap is
    // fine), so a schema may hold 8 before it meets 6.
    const current = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
    const done = new Set(current.rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
    return applied;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * Brings the schema (default `public`) of the database at `url` up to date on
 * a connection of its own, for `parley migrate`. Returns the versions applied.
 */
export async function migratePostgres(url: string, schema = 'public', connectTimeoutMs = 5000): Promise<number[]> {
  // No statement timeout: another node may hold the lock while it migrates.
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: connectTimeoutMs,
    keepAlive: true,
    application_name: 'parley-migrate',
    types: TYPES,
  });
  client.on('error', () => undefined); // a failed query reports it; this only keeps a late socket error from crashing us
  await client.connect();
  try {
    return await applyMigrations(client, schema);
  } finally {
    await client.end().catch(() => undefined);
  }
}
