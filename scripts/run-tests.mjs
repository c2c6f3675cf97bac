#!/usr/bin/env node
// Runs every *.test.ts under test/ and bench/test/ with node's own test runner (through tsx),
// one file per process so a leaked socket in one file cannot hang another.
// Node 20's --test does not expand globs itself, so we list the files here.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const filter = process.argv.slice(2);
// The bench's own tests (its generator, baselines and runner) are part of the suite too.
let files = [...collect('test'), ...collect('bench/test')].sort();
if (filter.length) files = files.filter((f) => filter.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const res = spawnSync(
  process.execPath,
  // A test that never settles fails by name after 120 s instead of stalling CI, and a file whose
  // tests are done is not kept alive by a stray handle (a client's retry timer, a socket).
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=120000', '--test-force-exit', '--test-reporter=spec', ...files],
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
process.exit(res.status ?? 1);
