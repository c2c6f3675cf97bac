/** `parley migrate` as an operator runs it before starting cluster nodes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { postgresMissing, POSTGRES_URL } from '../helpers/services.js';
import { dropSchema } from '../helpers/cluster.js';

const migrate = (schema: string): { status: number | null; stderr: string } => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'migrate', '--database-url', POSTGRES_URL, '--database-schema', schema], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stderr: r.stderr };
};

test('parley migrate creates the schema once, then reports it up to date', { skip: await postgresMissing() }, async () => {
  const schema = `parley_migrate_${randomBytes(4).toString('hex')}`;
  try {
    const first = migrate(schema);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stderr, new RegExp(`applied migrations 1.* to schema ${schema}`));
    const c = new pg.Client({ connectionString: POSTGRES_URL });
    await c.connect();
    const { rows } = await c.query<{ table_name: string }>('SELECT table_name FROM information_schema.tables WHERE table_schema = $1', [schema]);
    await c.end();
    const tables = rows.map((r) => r.table_name);
    for (const t of ['users', 'devices', 'conversations', 'members', 'events', 'messages']) assert.ok(tables.includes(t), `table ${t} exists (${tables.join(', ')})`);
    const second = migrate(schema);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stderr, /up to date/);
  } finally {
    await dropSchema(POSTGRES_URL, schema);
  }
});

test('parley migrate without a database URL says what it needs', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'migrate'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, PARLEY_DATABASE_URL: '' } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /needs PARLEY_DATABASE_URL/);
});
