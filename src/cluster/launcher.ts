/**
 * `parley cluster`: N Parley nodes on loopback ports behind one nginx, sharing
 * Redis and PostgreSQL, the way a user tries cluster mode on one machine and
 * the way the cluster tests run it. Every child is started, watched and
 * stopped by its PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findNginx, nginxConfig } from './nginx.js';

export interface ClusterOptions {
  nodes: number;
  host: string;
  /** The balancer's port; 0 picks free ports for it and every node. */
  port: number;
  redisUrl: string;
  databaseUrl: string;
  dataDir: string;
  /** Extra environment for every node (PARLEY_* settings). */
  env?: NodeJS.ProcessEnv;
  /** Time a node gets to answer /readyz after it starts. */
  readyTimeoutMs?: number;
}

export interface ClusterNode {
  readonly id: string;
  readonly port: number;
  readonly url: string;
  readonly wsUrl: string;
  /** PID of the running process, undefined while it is down. */
  pid(): number | undefined;
  /** Sends a signal; resolves with the exit code (null when killed by a signal) once the process is gone. */
  kill(signal: NodeJS.Signals): Promise<number | null>;
  /** Starts the node again on the same port and data dir; resolves when it is ready. */
  start(): Promise<void>;
}

export interface Cluster {
  /** The balancer: what clients connect to. */
  readonly url: string;
  readonly wsUrl: string;
  readonly nodes: readonly ClusterNode[];
  readonly nginxPid: number;
  /** SIGTERM (drain) to every node, SIGQUIT to nginx; SIGKILL what is still there after the grace. */
  stop(): Promise<void>;
}

const STOP_GRACE_MS = 15_000;

export function freePort(host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

async function waitReady(url: string, child: ChildProcess, timeoutMs: number, log: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${url} exited (${child.exitCode ?? child.signalCode}) before it was ready; see ${log}`);
    }
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} was not ready within ${timeoutMs} ms; see ${log}`);
}

function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((r) => child.once('exit', (code) => r(code)));
}

/** Kills by PID, escalating to SIGKILL after `graceMs`. */
async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = exitOf(child);
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** The CLI next to this module: cli.ts under tsx (tests), cli.js once built. */
function cliEntry(): string {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  return fileURLToPath(new URL(`../cli.${ext}`, import.meta.url));
}

/** One secret for every node: a token issued by one node must verify on all. */
function sharedSecret(dataDir: string, env: NodeJS.ProcessEnv): string {
  if (env.PARLEY_JWT_SECRET) return env.PARLEY_JWT_SECRET;
  const file = join(dataDir, 'jwt-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, secret + '\n', { mode: 0o600 });
  return secret;
}

export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  const nginxBin = findNginx();
  if (!nginxBin) throw new Error("nginx not found: install Debian's nginx-light (apt-get install nginx-light) or set PARLEY_NGINX");
  const dataDir = resolve(o.dataDir);
  const prefixDir = join(dataDir, 'nginx');
  for (const d of ['logs', 'nginx/tmp']) mkdirSync(join(dataDir, d), { recursive: true });
  const env = { ...process.env, ...o.env };
  const secret = sharedSecret(dataDir, env);
  const readyMs = o.readyTimeoutMs ?? 30_000;
  const lbPort = o.port === 0 ? await freePort(o.host) : o.port;
  const ports: number[] = [];
  for (let i = 1; i <= o.nodes; i++) ports.push(o.port === 0 ? await freePort(o.host) : o.port + i);

  const children: (ChildProcess | undefined)[] = [];
  const nodes: ClusterNode[] = ports.map((port, i) => {
    const id = `node-${i + 1}`;
    const url = `http://${o.host}:${port}`;
    const log = join(dataDir, 'logs', `${id}.log`);
    const launch = async (): Promise<void> => {
      const out = createWriteStream(log, { flags: 'a' });
      const child = spawn(process.execPath, [...process.execArgv, cliEntry(), 'serve'], {
        env: {
          ...env,
          PARLEY_HOST: o.host,
          PARLEY_PORT: String(port),
          PARLEY_NODE_ID: id,
          PARLEY_DATA_DIR: join(dataDir, id),
          PARLEY_REDIS_URL: o.redisUrl,
          PARLEY_DATABASE_URL: o.databaseUrl,
          PARLEY_JWT_SECRET: secret,
          // nginx on this machine forwards every request: the client's address is in X-Forwarded-For.
          PARLEY_TRUST_PROXY: env.PARLEY_TRUST_PROXY || 'loopback',
          // Nodes on one machine share one attachments folder unless an S3 store (or a folder) is set.
          ...(env.PARLEY_S3_ENDPOINT || env.PARLEY_MEDIA_DIR ? {} : { PARLEY_MEDIA_DIR: join(dataDir, 'media') }),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout?.pipe(out);
      child.stderr?.pipe(out);
      children[i] = child;
      await waitReady(url, child, readyMs, log);
    };
    return {
      id,
      port,
      url,
      wsUrl: `ws://${o.host}:${port}/v1/ws`,
      pid: () => {
        const c = children[i];
        return c && c.exitCode === null && c.signalCode === null ? c.pid : undefined;
      },
      kill: async (signal) => {
        const c = children[i];
        if (!c) return null;
        const exited = exitOf(c);
        if (c.exitCode === null && c.signalCode === null) c.kill(signal);
        return exited;
      },
      start: launch,
    };
  });

  let nginx: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((c) => stopChild(c, 'SIGTERM', STOP_GRACE_MS)));
    await stopChild(nginx, 'SIGQUIT', 5000);
  };

  try {
    // Nodes start one after another: migrations are safe in parallel, but two cores are not many.
    for (const n of nodes) await n.start();
    const conf = join(prefixDir, 'nginx.conf');
    writeFileSync(conf, nginxConfig({ host: o.host, port: lbPort, upstreams: ports.map((p) => `${o.host}:${p}`), prefixDir }));
    const nginxLog = join(dataDir, 'logs', 'nginx.log');
    nginx = spawn(nginxBin, ['-p', prefixDir, '-c', conf, '-e', join(prefixDir, 'error.log')], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = createWriteStream(nginxLog, { flags: 'a' });
    nginx.stdout?.pipe(out);
    nginx.stderr?.pipe(out);
    await waitReady(`http://${o.host}:${lbPort}`, nginx, 10_000, `${nginxLog} and ${join(prefixDir, 'error.log')}`);
  } catch (err) {
    await stop();
    throw err;
  }

  const lbUrl = `http://${o.host}:${lbPort}`;
  return { url: lbUrl, wsUrl: `ws://${o.host}:${lbPort}/v1/ws`, nodes, nginxPid: nginx.pid ?? 0, stop };
}
