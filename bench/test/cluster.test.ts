/**
 * The cluster bench's pure helpers (client placement, ratios and their
 * verdict, the docs update), its isolation on the real Redis and PostgreSQL
 * (a run's schema and keys are gone afterwards), and one tiny end-to-end run
 * that must print its tables and leave no process, schema or key behind.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { placement, partner, shortSent, type StepResult } from '../cluster/load.js';
import { computeRatios, ratio, updateDoc } from '../cluster/report.js';
import { cleanup, newIsolation } from '../cluster/services.js';
import { ROOT } from '../lib/paths.js';
import { postgresMissing, redisMissing } from '../../test/helpers/services.js';

test('with two endpoints every pair is split across them; with one, all share it', () => {
  const two = placement(10, 2, 2);
  assert.deepEqual(two.endpointOf, [0, 1]);
  const where = new Map<number, number>();
  two.blocks.forEach((b, w) => b.forEach((idx) => where.set(idx, two.endpointOf[w] as number)));
  assert.equal(where.size, 10, 'every client placed exactly once');
  for (let i = 0; i < 10; i++) assert.notEqual(where.get(i), where.get(partner(i)), `pair of ${i} split`);
  const one = placement(10, 1, 2);
  assert.deepEqual(one.endpointOf, [0, 0]);
  assert.equal(one.blocks.flat().length, 10);
  // Idle: several workers on one node, 8,000 clients each at most is the caller's job; blocks stay disjoint.
  const idle = placement(19_500, 1, 3);
  assert.equal(new Set(idle.blocks.flat()).size, 19_500);
  assert.equal(partner(0), 1);
  assert.equal(partner(7), 6);
});

test('the Socket.IO ratio gives a verdict only when both ladders reached their own limit', () => {
  assert.equal(ratio(3000, 0), null);
  assert.equal(ratio(undefined, 10), null);
  assert.equal(ratio(3000, 8000), 0.375);
  const at = (maxRate: number, limitReached: boolean) => ({ result: { maxRate, limitReached, stoppedBy: limitReached ? 'p99 ≥ 50 ms at 1/s' : 'generator fell behind' } });
  const miss = computeRatios({ parley1: at(4000, true), parley2: at(3000, true), sio2: at(8000, true) });
  assert.equal(miss.parley2OverSio2, 0.375);
  assert.equal(miss.parley2OverParley1, 0.75);
  assert.equal(miss.targetMet, false);
  assert.equal(computeRatios({ parley2: at(20_000, true), sio2: at(8000, true) }).targetMet, true);
  const open = computeRatios({ parley2: at(3000, true), sio2: at(500, false) });
  assert.equal(open.targetMet, null, 'a lower bound on Socket.IO decides nothing');
  assert.match(open.caveat, /Socket\.IO ×2 \+ Redis stopped by "generator fell behind"/);
});

test('a step whose generator sent under 90% of its due is short', () => {
  const s = { rate: 1000, sent: 2500 } as StepResult;
  assert.equal(shortSent(s, 3000), true);
  assert.equal(shortSent({ ...s, sent: 2950 }, 3000), false);
});

test('the docs update replaces only the generated section', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cluster-doc-'));
  try {
    const f = join(dir, 'doc.md');
    updateDoc(f, 'first', '# Title\n\nHand-written.\n');
    const once = readFileSync(f, 'utf8');
    assert.match(once, /^# Title\n\nHand-written\.\n\n<!-- cluster-bench:results:begin -->\nfirst\n<!-- cluster-bench:results:end -->\n$/);
    writeFileSync(f, `${once}\n## Analysis\n\nAlso by hand.\n`);
    updateDoc(f, 'second', 'unused');
    const twice = readFileSync(f, 'utf8');
    assert.match(twice, /Hand-written\./);
    assert.match(twice, /\nsecond\n/);
    assert.doesNotMatch(twice, /first/);
    assert.match(twice, /## Analysis\n\nAlso by hand\.\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function schemaExists(url: string, schema: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount === 1;
  } finally {
    await c.end();
  }
}

async function keysWith(url: string, prefix: string): Promise<number> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await r.connect();
  try {
    let n = 0;
    let cursor = '0';
    for (let i = 0; i < 100_000; i++) {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      n += keys.length;
      cursor = next;
      if (cursor === '0') break;
    }
    return n;
  } finally {
    r.disconnect();
  }
}

const missing = (await redisMissing()) ?? (await postgresMissing());

describe('isolation on the real servers', { skip: missing }, () => {
  test("cleanup drops the run's schema and deletes its keys, and nothing else", async () => {
    const iso = newIsolation('t');
    const other = newIsolation('t');
    const c = new pg.Client({ connectionString: iso.databaseUrl });
    await c.connect();
    const r = new Redis(iso.redisUrl);
    try {
      await c.query(`CREATE SCHEMA ${iso.schema}`);
      await c.query(`CREATE TABLE ${iso.schema}.t (x int)`);
      await r.set(`${iso.prefix}a`, '1');
      await r.set(`${iso.prefix}b`, '1');
      await r.set(`${other.prefix}a`, '1');
      assert.deepEqual(await cleanup(iso), { keys: 2 });
      assert.equal(await schemaExists(iso.databaseUrl, iso.schema), false);
      assert.equal(await keysWith(iso.redisUrl, iso.prefix), 0);
      assert.equal(await keysWith(iso.redisUrl, other.prefix), 1, "another run's keys are left alone");
    } finally {
      await r.del(`${other.prefix}a`);
      r.disconnect();
      await c.end();
    }
  });

  test('cleanup refuses a schema name that is not a bench one', async () => {
    await assert.rejects(cleanup({ ...newIsolation('t'), schema: 'public' }), /refusing to drop public/);
  });
});

function benchProcesses(): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      // Parley nodes are told their data dir (under the run's temp dir) through the environment.
      const env = readFileSync(`/proc/${d}/environ`, 'utf8');
      const ours = ['bench/servers/', 'bench/gen/worker.ts', 'bench/cluster/sdk-worker.ts', 'parley-cluster-bench-'].some((x) => cmd.includes(x));
      if (ours || env.includes('parley-cluster-bench-')) pids.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return pids;
}

describe('npm run bench:cluster, tiny', { skip: missing }, () => {
  test('measures every workload, prints the tables, and leaves no process, schema or key behind', async () => {
    assert.deepEqual(benchProcesses(), [], 'no cluster bench process before');
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'bench/cluster.ts', '--quick', '--clients', '20', '--rates', '100,200', '--step-ms', '500', '--idle', '100', '--recovery-clients', '20', '--recovery-nodes', '2', '--no-save'],
      { cwd: ROOT, encoding: 'utf8', timeout: 240_000 },
    );
    assert.equal(r.status, 0, r.stderr.slice(-3000));
    assert.match(r.stdout, /\| 1:1, highest msg\/s with zero loss and p99 < 50 ms: Parley, 2 nodes \(every pair split across the two\) \| [\d,]+ msg\/s/);
    assert.match(r.stdout, /\| \*\*2 Parley nodes ÷ 2 Socket\.IO processes \(issue 5 target: ≥ 2×\)\*\* \|/);
    assert.match(r.stdout, /\| idle: authenticated connections on one cluster node \| 100 of 100 \|/);
    assert.match(r.stdout, /\| recovery: kill -9 of 1 of 2 nodes, 20 SDK clients via nginx, SDK default backoff: kill → last cut-off client resynced \| \*\*[\d,]+ ms\*\* \((\d+)\/\1 resynced/);
    assert.match(r.stdout, /every client holds both messages sent right after the kill \| [\d,]+ ms, none missing/);
    const m = /PostgreSQL schema `(parley_bench_[a-z0-9_]+)`, Redis prefix `([^`]+)`; schema dropped and \d+ Redis keys deleted/.exec(r.stdout);
    assert.ok(m, 'the run reports its isolation and its cleanup');
    assert.equal(await schemaExists(newIsolation('x').databaseUrl, m[1] as string), false);
    assert.equal(await keysWith(newIsolation('x').redisUrl, m[2] as string), 0);
    assert.deepEqual(benchProcesses(), [], 'no cluster bench process after');
  });
});
