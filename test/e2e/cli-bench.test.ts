/**
 * `parley bench` is the bench instrument behind the product's CLI (issue 5,
 * R28): the same runner as `npm run bench`, its options and exit status passed
 * through. Only --help and a refused option here, so no load runs beside
 * other tests (bench/test/runner.test.ts runs the instrument itself).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';

const parley = (entry: string[], args: string[]) => spawnSync(process.execPath, [...entry, ...args], { encoding: 'utf8', timeout: 60_000 });
const FROM_SRC = ['--import', 'tsx', 'src/cli.ts'];

test('parley bench --help lists the workloads and systems, and exits 0', () => {
  const r = parley(FROM_SRC, ['bench', '--help']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /--workloads a,b\s+any of idle, direct, storm, sync, group/);
  assert.match(r.stdout + r.stderr, /--systems a,b\s+any of ws, sio, parley/);
});

test('parley bench cluster --help is the cluster bench', () => {
  const r = parley(FROM_SRC, ['bench', 'cluster', '--help']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /bench:cluster/);
  assert.match(r.stdout + r.stderr, /any of direct, idle, recovery/);
});

test('parley bench passes a refused option back as a failure, before anything starts', () => {
  const r = parley(FROM_SRC, ['bench', '--bogus']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /unknown option --bogus/);
});

test('the installed command (dist/) finds the bench from its own folder, whatever the working folder', { skip: existsSync('dist/src/cli.js') ? false : 'dist/ not built' }, () => {
  const r = spawnSync(process.execPath, [resolve('dist/src/cli.js'), 'bench', '--help'], { encoding: 'utf8', timeout: 60_000, cwd: tmpdir() });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /--workloads a,b/);
});
