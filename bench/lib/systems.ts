/**
 * Starting and stopping the systems under test, each as its own process
 * pinned to the server core.
 */
import { createServer } from 'node:net';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { spawnPinned, stopProc, type Proc } from './proc.js';
import { ROOT } from './paths.js';
import type { System } from '../gen/wire.js';
import { SETTINGS } from '../../src/config.js';

export const SYSTEM_NAMES: Record<System, string> = { ws: 'bare ws', sio: 'Socket.IO 4', parley: 'Parley' };

export interface RunningServer {
  system: System;
  proc: Proc;
  pid: number;
  port: number;
  wsUrl: string;
  httpUrl: string;
  stop(): Promise<void>;
}

export interface ServerOptions {
  core: number | null;
  /** Parley only. */
  dataDir?: string;
  /** Open the V8 inspector on this loopback port (for RemoteProfiler). */
  inspectPort?: number;
  /** Socket.IO cluster variant. */
  redisUrl?: string;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function newestMtime(dir: string): number {
  let max = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    max = Math.max(max, st.isDirectory() ? newestMtime(p) : st.mtimeMs);
  }
  return max;
}

export type LaunchChoice = 'auto' | 'src' | 'dist';

/**
 * How Parley is started: the compiled CLI when dist/ is at least as new as src/
 * (what users run), else the TypeScript sources through tsx. `src` or `dist`
 * forces one, so the two sides of a before/after comparison run the same way
 * even while someone else's edit makes src/ newer than dist/.
 */
export function parleyLaunch(choice: LaunchChoice = launchChoice): { mode: 'dist' | 'src'; args: string[] } | null {
  const dist = join(ROOT, 'dist', 'src', 'cli.js');
  const src = join(ROOT, 'src', 'cli.ts');
  const fromDist = { mode: 'dist' as const, args: [dist, 'serve'] };
  const fromSrc = { mode: 'src' as const, args: ['--import', 'tsx', src, 'serve'] };
  if (choice === 'dist') return existsSync(dist) ? fromDist : null;
  if (choice === 'src') return existsSync(src) ? fromSrc : null;
  if (existsSync(dist) && statSync(dist).mtimeMs >= newestMtime(join(ROOT, 'src'))) return fromDist;
  if (existsSync(src)) return fromSrc;
  return null;
}

let launchChoice: LaunchChoice = 'auto';

/** Set once by the runner from `--parley-from`. */
export function chooseLaunch(choice: LaunchChoice): void {
  launchChoice = choice;
}

/** Bench settings for Parley: cheap password hashing for thousands of logins, and limits that do not cap the load. */
export function parleyEnv(port: number, dataDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PARLEY_HOST: '127.0.0.1',
    PARLEY_PORT: String(port),
    PARLEY_DATA_DIR: dataDir,
    PARLEY_LOG_LEVEL: 'error',
    PARLEY_ARGON2_MEMORY_KIB: '1024',
    PARLEY_ARGON2_TIME_COST: '1',
    PARLEY_ACCESS_TOKEN_TTL: String(7 * 24 * 3600),
  };
  // Every rate limit the server knows of, so new limiters are lifted too.
  for (const s of SETTINGS) if (s.key.startsWith('rate')) env[s.env] = '1000000';
  return env;
}

function waitForLine(stream: Readable | null, re: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    if (!stream) return reject(new Error('no stdout'));
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no "${re.source}" within ${timeoutMs} ms`)), timeoutMs);
    const onData = (d: Buffer): void => {
      buf += d.toString();
      const m = re.exec(buf);
      if (m) {
        clearTimeout(timer);
        stream.off('data', onData);
        stream.resume();
        resolve(m);
      }
    };
    stream.on('data', onData);
  });
}

async function waitHttp(url: string, timeoutMs: number, proc: Proc): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void proc.exited.then(() => (exited = true));
  while (Date.now() < deadline && !exited) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (r.ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(exited ? `${proc.name} exited during startup` : `${url} not ready within ${timeoutMs} ms`);
}

export async function startSystem(system: System, opts: ServerOptions): Promise<RunningServer> {
  const port = await freePort();
  const nodeFlags: string[] = [];
  if (opts.inspectPort) nodeFlags.push(`--inspect=127.0.0.1:${opts.inspectPort}`);
  let proc: Proc;
  if (system === 'parley') {
    const launch = parleyLaunch();
    if (!launch) throw new Error('Parley is not built yet: neither dist/src/cli.js nor src/cli.ts exists');
    if (!opts.dataDir) throw new Error('Parley needs a data dir');
    proc = spawnPinned('parley', process.execPath, [...nodeFlags, ...launch.args], {
      core: opts.core,
      cwd: ROOT,
      env: parleyEnv(port, opts.dataDir),
    });
    await waitHttp(`http://127.0.0.1:${port}/readyz`, 60_000, proc);
  } else {
    const file = join(ROOT, 'bench', 'servers', system === 'ws' ? 'ws-router.ts' : 'socketio-server.ts');
    const env: NodeJS.ProcessEnv = { ...process.env };
    if (opts.redisUrl) env.REDIS_URL = opts.redisUrl;
    proc = spawnPinned(system, process.execPath, [...nodeFlags, '--import', 'tsx', file, String(port)], {
      core: opts.core,
      cwd: ROOT,
      env,
      pipeStdout: true,
    });
    await waitForLine(proc.child.stdout, /listening (\d+)/, 30_000);
  }
  const wsUrl =
    system === 'ws'
      ? `ws://127.0.0.1:${port}/`
      : system === 'sio'
        ? `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`
        : `ws://127.0.0.1:${port}/v1/ws`;
  return {
    system,
    proc,
    pid: proc.pid,
    port,
    wsUrl,
    httpUrl: `http://127.0.0.1:${port}`,
    stop: () => stopProc(proc, 10_000),
  };
}
