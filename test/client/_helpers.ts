/**
 * Shared by the SDK tests: a real server on a loopback port over a temp data
 * dir, signed-in SDK clients, a TCP relay that can freeze or cut connections,
 * and a bounded wait.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../src/config.js';
import { startServer, type ParleyServer } from '../../src/server.js';
import { createNodeClient, type NodeClientOptions } from '../../src/client/node.js';
import type { ParleyClient, SocketFactory, SocketLike } from '../../src/client/index.js';
import type { ClientFrame, ServerFrame } from '../../src/protocol/frames.js';
import WebSocket from 'ws';

/** Fast test settings, shared with the end-to-end suite. */
export { FAST } from '../helpers/server.js';
import { FAST } from '../helpers/server.js';

export class TestServer {
  srv!: ParleyServer;
  private constructor(
    readonly dataDir: string,
    private readonly config: Partial<Config>,
  ) {}

  static async start(config: Partial<Config> = {}): Promise<TestServer> {
    const dir = await mkdtemp(join(tmpdir(), 'parley-sdk-'));
    const t = new TestServer(dir, config);
    t.srv = await startServer({ ...FAST, ...config, dataDir: dir });
    return t;
  }

  get url(): string {
    return this.srv.url;
  }
  get port(): number {
    return this.srv.port;
  }

  /** Stops the server and starts it again on the same port and data dir. */
  async restart(between?: () => Promise<void>): Promise<void> {
    const port = this.srv.port;
    await this.srv.close();
    if (between) await between();
    this.srv = await startServer({ ...FAST, ...this.config, dataDir: this.dataDir, port });
  }

  async stop(): Promise<void> {
    await this.srv.close().catch(() => undefined);
  }

  async cleanup(): Promise<void> {
    await this.stop();
    await rm(this.dataDir, { recursive: true, force: true });
  }
}

/** Every user the SDK tests register has this password. */
export const PASSWORD = 'correct horse battery';

let counter = 0;
export function uniqueName(prefix: string): string {
  counter++;
  return `${prefix}${process.pid % 10000}_${counter}_${Math.random().toString(36).slice(2, 6)}`;
}

/** Registers a new user and signs a client in (started: connecting). */
export async function signedIn(
  url: string,
  name = uniqueName('u'),
  opts: Partial<NodeClientOptions> = {},
): Promise<{ client: ParleyClient; username: string; password: string }> {
  const password = PASSWORD;
  const client = createNodeClient({ url, backoffMinMs: 50, backoffMaxMs: 500, gapWaitMs: 50, ...opts });
  await client.register(name, password, name.toUpperCase());
  await client.login(name, password);
  return { client, username: name, password };
}

/** Polls `cond` every 10 ms until it holds; throws after `ms`. */
export async function until(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Polls until `cond` holds, reading the conversation's newest page meanwhile
 * (for what comes without a live frame: a device's first read, history).
 * One read in flight at a time: a read per 10 ms poll piled up requests, and
 * their decryption, on a loaded machine until the wait ran out.
 */
export async function untilRead(c: ParleyClient, conversationId: string, cond: () => boolean, ms: number, what: string | (() => string)): Promise<void> {
  let reading: Promise<unknown> | null = null;
  const end = Date.now() + ms;
  for (;;) {
    reading ??= c.loadLatest(conversationId).catch(() => undefined).finally(() => (reading = null));
    if (cond()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A suite's users and extra devices on one server; close() closes them all. */
export class SuiteClients {
  private readonly all: ParleyClient[] = [];
  constructor(private readonly url: () => string) {}

  async user(prefix: string): Promise<{ client: ParleyClient; username: string }> {
    const u = await signedIn(this.url(), uniqueName(prefix));
    this.all.push(u.client);
    return u;
  }

  /** Another device of an existing user, signed in (optionally with its keys in a file store). */
  async device(username: string, storagePath?: string): Promise<ParleyClient> {
    const c = createNodeClient({ url: this.url(), backoffMinMs: 50, backoffMaxMs: 500, gapWaitMs: 50, ...(storagePath ? { storagePath } : {}) });
    await c.login(username, PASSWORD);
    this.all.push(c);
    return c;
  }

  /** A client made another way, closed with the rest. */
  track(c: ParleyClient): ParleyClient {
    this.all.push(c);
    return c;
  }

  async close(): Promise<void> {
    for (const c of this.all) await c.close();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * A TCP relay in front of the server. `freeze()` holds every byte from the
 * server (the client sends, the server commits, the answer never arrives);
 * `cut()` destroys every relayed connection at once, as a network drop would.
 */
export class Relay {
  private readonly server: net.Server;
  private readonly pairs = new Set<{ a: net.Socket; b: net.Socket }>();
  private frozen = false;
  /** Bytes from the server, held while frozen. */
  port = 0;

  private constructor(private readonly targetPort: number) {
    this.server = net.createServer((a) => {
      const b = net.connect(this.targetPort, '127.0.0.1');
      const pair = { a, b };
      this.pairs.add(pair);
      a.on('data', (d) => b.write(d));
      b.on('data', (d) => {
        // Frozen: the bytes are dropped, as if lost on a dead link.
        if (!this.frozen) a.write(d);
      });
      const end = (): void => {
        a.destroy();
        b.destroy();
        this.pairs.delete(pair);
      };
      a.on('close', end);
      b.on('close', end);
      a.on('error', end);
      b.on('error', end);
    });
  }

  static async start(targetPort: number): Promise<Relay> {
    const r = new Relay(targetPort);
    await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve));
    r.port = (r.server.address() as net.AddressInfo).port;
    return r;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get connections(): number {
    return this.pairs.size;
  }

  freeze(): void {
    this.frozen = true;
  }
  unfreeze(): void {
    this.frozen = false;
  }

  cut(): void {
    for (const p of this.pairs) {
      p.a.destroy();
      p.b.destroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A real `ws` socket behind a filter on what arrives: frames for which `drop`
 * returns true are lost, as on a lossy link. `sent` records every frame sent.
 */
export function lossySocketFactory(
  drop: (frame: ServerFrame) => boolean,
  sent: ClientFrame[] = [],
): SocketFactory {
  return (url) => {
    const real = new WebSocket(url);
    const wrapper: SocketLike = {
      get readyState() {
        return real.readyState;
      },
      send(data: string) {
        sent.push(JSON.parse(data) as ClientFrame);
        real.send(data);
      },
      close(code?: number) {
        real.close(code);
      },
      onopen: null,
      onmessage: null,
      onclose: null,
      onerror: null,
    };
    (wrapper as unknown as { terminate: () => void }).terminate = () => real.terminate();
    real.onopen = (ev) => wrapper.onopen?.(ev);
    real.onclose = (ev) => wrapper.onclose?.({ code: ev.code, reason: ev.reason });
    real.onerror = (ev) => wrapper.onerror?.(ev);
    real.onmessage = (ev) => {
      const frame = JSON.parse(String(ev.data)) as ServerFrame;
      if (drop(frame)) return;
      wrapper.onmessage?.({ data: ev.data });
    };
    return wrapper;
  };
}

/** Waits until the server lists `n` devices with keys for the signed-in user of `c` (each client publishes once it is online). */
export async function keysPublished(c: ParleyClient, n: number): Promise<void> {
  const userId = c.user?.id as string;
  let count = 0;
  for (const end = Date.now() + 5000; Date.now() < end; await sleep(20)) {
    count = (await c.api.userKeys(userId)).devices.length;
    if (count >= n) return;
  }
  throw new Error(`${n} devices of ${userId} never published keys (${count})`);
}
