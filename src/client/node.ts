/**
 * Node entry of the SDK: the `ws` package for the socket and a JSON file for
 * the store. Browsers import index.ts instead, which never loads this file.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import WebSocket from 'ws';
import { ParleyClient, type ClientOptions } from './client.js';
import type { SocketLike } from './socket.js';
import type { Json, KeyValueStore } from './storage.js';

export * from './index.js';

/** Temp names are unique per write, so two stores on one path in one process never share one. */
let tmpSeq = 0;

/**
 * All keys in one JSON file, rewritten atomically (temp file + rename) on
 * every change. Writes run one at a time, in call order, and are queued the
 * moment a change is called: settled() can then wait for all of them.
 */
export class FileStore implements KeyValueStore {
  private loaded: Promise<Record<string, Json>> | undefined;
  private writes: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  /** One read of the file, shared by every caller, so two first calls never each start from empty. */
  private load(): Promise<Record<string, Json>> {
    this.loaded ??= readFile(this.path, 'utf8').then(
      (text) => JSON.parse(text) as Record<string, Json>,
      (err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
        return {};
      },
    );
    return this.loaded;
  }

  /**
   * Applies a change in memory in call order (reads after it see it at once),
   * then queues the rewrite of the file with the state as of that change.
   */
  private change(apply: (data: Record<string, Json>) => boolean): Promise<void> {
    const text = this.load().then((data) => (apply(data) ? JSON.stringify(data) : undefined));
    const run = Promise.all([text, this.writes]).then(async ([t]) => {
      if (t === undefined) return;
      await mkdir(dirname(this.path), { recursive: true });
      const tmp = `${this.path}.${process.pid}.${++tmpSeq}.tmp`;
      await writeFile(tmp, t);
      await rename(tmp, this.path);
    });
    // A failed write is reported to its caller; the queue goes on.
    this.writes = run.catch(() => undefined);
    return run;
  }

  async get(key: string): Promise<Json | undefined> {
    const v = (await this.load())[key];
    return v === undefined ? undefined : (JSON.parse(JSON.stringify(v)) as Json);
  }
  set(key: string, value: Json): Promise<void> {
    const copy = JSON.parse(JSON.stringify(value)) as Json;
    return this.change((data) => {
      data[key] = copy;
      return true;
    });
  }
  delete(key: string): Promise<void> {
    return this.change((data) => {
      if (!(key in data)) return false;
      delete data[key];
      return true;
    });
  }
  async keys(prefix: string): Promise<string[]> {
    return Object.keys(await this.load()).filter((k) => k.startsWith(prefix));
  }
  settled(): Promise<void> {
    return this.writes;
  }
}

export interface NodeClientOptions extends Omit<ClientOptions, 'storage'> {
  /** A JSON file for session, outbox and cache; memory when absent. */
  storagePath?: string;
  storage?: KeyValueStore;
}

/** A client with `ws` as its socket, and a file store when `storagePath` is given. */
export function createNodeClient(options: NodeClientOptions): ParleyClient {
  const { storagePath, storage, ...rest } = options;
  return new ParleyClient({
    ...rest,
    socketFactory: rest.socketFactory ?? ((url) => new WebSocket(url) as unknown as SocketLike),
    ...(storage ? { storage } : storagePath ? { storage: new FileStore(storagePath) } : {}),
  });
}
