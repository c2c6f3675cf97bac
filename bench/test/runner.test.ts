/**
 * The runner end to end, tiny sizes: on the bare ws baseline, and Parley's
 * sync workload; each measures, prints the table, and leaves no server or
 * generator process behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { ROOT } from '../lib/paths.js';

function benchProcesses(): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.includes('bench/servers/') || cmd.includes('bench/gen/worker.ts')) pids.push(Number(d));
      // A Parley server of the bench: its data lives under a parley-bench-* temporary folder.
      else if (cmd.includes('serve') && /PARLEY_DATA_DIR=[^\0]*parley-bench-/.test(readFileSync(`/proc/${d}/environ`, 'utf8'))) pids.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return pids;
}

test('npm run bench on bare ws (idle + direct + storm, tiny) prints results and stops every process', () => {
  assert.deepEqual(benchProcesses(), [], 'no bench process before');
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'bench/run.ts', '--quick', '--workloads', 'idle,direct,storm', '--systems', 'ws', '--idle', '300', '--clients', '20', '--rates', '200,400', '--step-ms', '500', '--storm', '200', '--no-save'],
    { cwd: ROOT, encoding: 'utf8', timeout: 120_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\| idle 300 \| server KB per connection \| -?\d/);
  assert.match(r.stdout, /\| direct 1:1 \| max msg\/s \(p99 < 50 ms, no loss\) \| \d/);
  assert.match(r.stdout, /\| reconnect storm 200 \| failed reconnects \| 0\.00 \|/);
  assert.match(r.stderr, /idle 300\/300 in/);
  assert.match(r.stderr, /200\/s sent/);
  assert.deepEqual(benchProcesses(), [], 'no bench process after');
});

test('the sync workload fills one server per store size, syncs on each, and stops them all', () => {
  assert.deepEqual(benchProcesses(), [], 'no bench process before');
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'bench/run.ts', '--workloads', 'sync', '--systems', 'parley', '--parley-from', 'src', '--sync-stored', '200,600', '--sync-trials', '2', '--no-save'],
    { cwd: ROOT, encoding: 'utf8', timeout: 180_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  for (const n of [200, 600]) {
    assert.match(r.stderr, new RegExp(`sync @${n} stored: median [\\d.]+ ms .*complete\\+ordered true`));
  }
  assert.match(r.stdout, /\| sync: 1,000 missed messages, reconnect → synced \(200 stored\) \| < 50 ms \| [\d.]+ ms median/);
  assert.match(r.stdout, /\| sync: same time with 600 stored \| within 20% of 200 stored \| [\d.]+ ms \([\d.]+×\)/);
  assert.deepEqual(benchProcesses(), [], 'no bench process after');
});

test('an unknown option is refused before anything starts', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--bogus'], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /unknown option --bogus/);
  assert.deepEqual(benchProcesses(), []);
});
