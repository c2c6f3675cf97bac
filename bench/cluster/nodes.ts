/**
 * The systems of the cluster bench, each process started through the bench's
 * registry (so it is stopped by its PID whatever happens) and pinned like the
 * single-node bench pins its server: Parley nodes on Redis + PostgreSQL, nginx
 * in front of them, and Socket.IO processes with the Redis adapter.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnPinned, stopProc, type Proc } from '../lib/proc.js';
import { ROOT } from '../lib/paths.js';
import { freePort, parleyEnv, parleyLaunch, startSystem, type RunningServer } from '../lib/systems.js';
import { findNginx, nginxConfig } from '../../src/cluster/nginx.js';
import type { Isolation } from './services.js';

export interface Endpoint {
  /** What the generator connects to (a node, a Socket.IO process or nginx). */
  wsUrl: string;
  httpUrl: string;
}

export interface ParleyNode extends Endpoint {
  id: string;
  proc: Proc;
  pid: number;
  port: number;
}

/** One JWT secret per run: tokens issued by any node verify on every node of every session of the run. */
export const RUN_SECRET = randomBytes(32).toString('base64url');

async function waitReady(url: string, proc: Proc, timeoutMs: number): Promise<void> {
  let exited = false;
  void proc.exited.then(() => (exited = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !exited) {
    try {
      const r = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (r.ok) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(exited ? `${proc.name} exited during startup` : `${url}/readyz not ready within ${timeoutMs} ms`);
}

/**
 * Starts one cluster node. Started one after another by the caller: migrations
 * are safe in parallel, but two cores are not many.
 */
export async function startParleyNode(id: string, iso: Isolation, dataDir: string, core: number | null, inspectPort?: number): Promise<ParleyNode> {
  const launch = parleyLaunch();
  if (!launch) throw new Error('Parley is not built: neither dist/src/cli.js nor src/cli.ts exists');
  const port = await freePort();
  const dir = join(dataDir, id);
  mkdirSync(dir, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    ...parleyEnv(port, dir),
    PARLEY_NODE_ID: id,
    PARLEY_REDIS_URL: iso.redisUrl,
    PARLEY_DATABASE_URL: iso.databaseUrl,
    PARLEY_DATABASE_SCHEMA: iso.schema,
    PARLEY_REDIS_PREFIX: iso.prefix,
    PARLEY_JWT_SECRET: RUN_SECRET,
  };
  const flags = inspectPort ? [`--inspect=127.0.0.1:${inspectPort}`] : [];
  const proc = spawnPinned(id, process.execPath, [...flags, ...launch.args], { core, cwd: ROOT, env });
  await waitReady(`http://127.0.0.1:${port}`, proc, 60_000);
  return { id, proc, pid: proc.pid, port, wsUrl: `ws://127.0.0.1:${port}/v1/ws`, httpUrl: `http://127.0.0.1:${port}` };
}

export interface Balancer extends Endpoint {
  proc: Proc;
  pid: number;
}

/** nginx with the configuration `parley cluster` generates, in front of the given nodes. */
export async function startNginx(nodes: readonly { port: number }[], dataDir: string, core: number | null): Promise<Balancer> {
  const bin = findNginx();
  if (!bin) throw new Error('nginx not found (apt-get install nginx-light, or set PARLEY_NGINX)');
  const prefixDir = join(dataDir, `nginx-${Date.now().toString(36)}`);
  mkdirSync(join(prefixDir, 'tmp'), { recursive: true });
  const port = await freePort();
  const conf = join(prefixDir, 'nginx.conf');
  writeFileSync(conf, nginxConfig({ host: '127.0.0.1', port, upstreams: nodes.map((n) => `127.0.0.1:${n.port}`), prefixDir }));
  // `daemon off` in the config and `worker_processes 1`: nginx's master PID is the one registered, and
  // SIGTERM to it stops its single worker too.
  const proc = spawnPinned('nginx', bin, ['-p', prefixDir, '-c', conf, '-e', join(prefixDir, 'error.log')], { core });
  const httpUrl = `http://127.0.0.1:${port}`;
  await waitReady(httpUrl, proc, 10_000);
  return { proc, pid: proc.pid, wsUrl: `ws://127.0.0.1:${port}/v1/ws`, httpUrl };
}

/** Children of a process (nginx's worker does the proxying, so its CPU is counted too). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Socket.IO processes sharing the given Redis through @socket.io/redis-adapter. */
export async function startSocketIo(count: number, redisUrl: string, core: number | null): Promise<RunningServer[]> {
  const out: RunningServer[] = [];
  for (let i = 0; i < count; i++) out.push(await startSystem('sio', { core, redisUrl }));
  return out;
}

export async function stopAllOf(procs: readonly Proc[]): Promise<void> {
  await Promise.all(procs.map((p) => stopProc(p, 10_000)));
}
