/**
 * Harness for the end-to-end suite: a real Parley server listening on a free
 * loopback port over a fresh temp data dir, with fast argon2 settings, plus the
 * clients a test opens, all closed by `close()`.
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, type ParleyServer } from '../../src/server.js';
import type { Core } from '../../src/core/core.js';
import type { Config } from '../../src/config.js';
import { Api, type TestUser } from './http.js';
import { TestWs, newRef, type OpenOpts, type FrameOf } from './ws-client.js';

export const FAST: Partial<Config> = {
  host: '127.0.0.1',
  port: 0,
  logLevel: 'silent',
  argon2MemoryKiB: 1024,
  argon2TimeCost: 1,
  // Generous defaults so that only the limits tests meet the limiter.
  rateUserPerSec: 100000,
  rateUserBurst: 100000,
  rateConnPerSec: 100000,
  rateConnBurst: 100000,
  rateSearchPerSec: 100000,
  rateSearchBurst: 100000,
};

/** What the suite needs of a running server, in this process or a child. */
export interface ServerHandle {
  url: string;
  wsUrl: string;
  close(): Promise<void>;
}

export interface HarnessOpts {
  /** Run the server in a child process, so its memory can be measured alone. */
  child?: boolean;
}

/** Starts `child-server.ts` under tsx; resolves once it listens. Killed by PID if it will not stop. */
async function startChild(config: Partial<Config>): Promise<ServerHandle> {
  const entry = fileURLToPath(new URL('./child-server.ts', import.meta.url));
  const child: ChildProcess = fork(entry, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, PARLEY_TEST_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const addr = await new Promise<{ url: string; wsUrl: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('child server did not start in 20 s')), 20000);
    child.once('message', (m) => {
      clearTimeout(timer);
      resolve(m as { url: string; wsUrl: string });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child server exited with ${code} before listening`));
    });
  }).catch((e: unknown) => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    throw e;
  });
  return {
    ...addr,
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.send('close');
      const timer = setTimeout(() => {
        if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
      }, 15000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export class Harness {
  srv!: ServerHandle;
  api!: Api;
  private clients: TestWs[] = [];
  private stopped = true;

  private constructor(
    readonly dataDir: string,
    public config: Partial<Config>,
    private readonly opts: HarnessOpts,
  ) {}

  static async start(overrides: Partial<Config> = {}, opts: HarnessOpts = {}): Promise<Harness> {
    const dataDir = await mkdtemp(join(tmpdir(), 'parley-e2e-'));
    const h = new Harness(dataDir, { ...FAST, ...overrides, dataDir }, opts);
    try {
      await h.boot();
    } catch (e) {
      await rm(dataDir, { recursive: true, force: true });
      throw e;
    }
    return h;
  }

  private async boot(): Promise<void> {
    this.srv = this.opts.child ? await startChild(this.config) : await startServer(this.config);
    this.stopped = false;
    assert.match(this.srv.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'srv.url');
    assert.match(this.srv.wsUrl, /^ws:\/\/127\.0\.0\.1:\d+\/v1\/ws$/, 'srv.wsUrl');
    this.api = new Api(this.srv.url);
  }

  get url(): string {
    return this.srv.url;
  }

  /** The server's core, when it runs in this process. */
  get core(): Core {
    if (!('core' in this.srv)) throw new Error('the server runs in a child process');
    return (this.srv as ParleyServer).core;
  }

  /** Graceful stop of the server only; the data dir stays. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.srv.close();
  }

  /** Stops the server (if running) and starts a new one on the same data dir. */
  async restart(overrides: Partial<Config> = {}): Promise<void> {
    await this.closeClients();
    await this.stop();
    this.config = { ...this.config, ...overrides };
    await this.boot();
  }

  /** A raw, unauthenticated socket. */
  async raw(label = 'raw', opts: OpenOpts = {}): Promise<TestWs> {
    const c = await TestWs.open(this.srv.wsUrl, label, opts);
    this.clients.push(c);
    return c;
  }

  /** A socket authenticated as `u`, after its `ready`. */
  async connect(u: TestUser, label = u.username, opts: OpenOpts = {}): Promise<TestWs> {
    const c = await this.raw(label, opts);
    const ref = newRef();
    const p = c.next('ready', (f) => f.ref === ref, 5000);
    c.send({ type: 'auth', ref, token: u.token });
    const ready = await p;
    assert.equal(ready.user.id, u.id, 'ready.user.id');
    return c;
  }

  /** Connects and waits for ready, returning it too. */
  async connectWithReady(u: TestUser, label = u.username): Promise<{ ws: TestWs; ready: FrameOf<'ready'> }> {
    const ws = await this.raw(label);
    const ref = newRef();
    const p = ws.next('ready', (f) => f.ref === ref, 5000);
    ws.send({ type: 'auth', ref, token: u.token });
    return { ws, ready: await p };
  }

  async closeClients(): Promise<void> {
    const cs = this.clients;
    this.clients = [];
    await Promise.all(cs.map((c) => c.close()));
  }

  /** Closes every client, the server, and removes the data dir. Safe to call twice. */
  async close(): Promise<void> {
    try {
      await this.closeClients();
    } finally {
      try {
        await this.stop();
      } finally {
        await rm(this.dataDir, { recursive: true, force: true });
      }
    }
  }
}
