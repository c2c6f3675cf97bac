/**
 * `parley bench [options]` and `parley bench cluster [options]`: the load
 * generator and its baselines (bench/run.ts, bench/cluster.ts), the same as
 * `npm run bench` and `npm run bench:cluster`.
 *
 * The bench is TypeScript run through tsx and drives Socket.IO for its
 * baseline, which a source checkout has (`npm install`) and an install
 * without dev dependencies does not; this finds the checkout from this file's
 * place and says plainly what is missing instead of failing on an import.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: the nearest folder above this file (src/ or dist/src/) holding package.json. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the Parley package folder');
    dir = up;
  }
  return dir;
}

/** What `parley bench` would run, or why it cannot. */
export function benchCommand(argv: string[]): { args: string[]; cwd: string } | { missing: string } {
  const root = packageRoot();
  const cluster = argv[0] === 'cluster';
  const script = join(root, 'bench', cluster ? 'cluster.ts' : 'run.ts');
  if (!existsSync(script)) return { missing: `${script} is not here: parley bench runs from a source checkout of Parley` };
  const require = createRequire(join(root, 'package.json'));
  for (const dep of ['tsx', 'socket.io']) {
    try {
      require.resolve(dep);
    } catch {
      return { missing: `the bench needs the dev dependency ${dep}: run npm install in ${root} (without --omit=dev)` };
    }
  }
  return { args: ['--import', 'tsx', script, ...(cluster ? argv.slice(1) : argv)], cwd: root };
}

/** Runs the bench in a child process and exits with its status; Ctrl-C reaches it, and it stops what it started. */
export function runBench(argv: string[]): void {
  const cmd = benchCommand(argv);
  if ('missing' in cmd) {
    console.error(`parley bench: ${cmd.missing}`);
    process.exit(1);
  }
  const child = spawn(process.execPath, cmd.args, { cwd: cmd.cwd, stdio: 'inherit' });
  // The child gets the terminal's SIGINT itself; these are for a SIGTERM sent to this process alone.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
