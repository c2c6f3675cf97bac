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

/** All keys in one JSON file, rewritten atomically (temp file + rename) on every change. */
export class FileStore implements KeyValueStore {
  private data: Record<string, Json> | undefined;
  private writes: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  private async load(): Promise<Record<string, Json>> {
    if (this.data) return this.data;
    try {
      this.data = JSON.parse(await readFile(this.path, 'utf8')) as Record<string, Json>;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.data = {};
    }
    return this.data;
  }

  private persist(): Promise<void> {
    const text = JSON.stringify(this.data ?? {});
    this.writes = this.writes.then(async () => {
      await mkdir(dirname(this.path), { recursive: true });
      const tmp = `${this.path}.${process.pid}.tmp`;
      await writeFile(tmp, text);
      await rename(tmp, this.path);
    });
    return this.writes;
  }

  async get(key: string): Promise<Json | undefined> {
    const v = (await this.load())[key];
    return v === undefined ? undefined : (JSON.parse(JSON.stringify(v)) as Json);
  }
  async set(key: string, value: Json): Promise<void> {
    (await this.load())[key] = JSON.parse(JSON.stringify(value)) as Json;
    await this.persist();
  }
  async delete(key: string): Promise<void> {
    const d = await this.load();
    if (!(key in d)) return;
    delete d[key];
    await this.persist();
  }
  async keys(prefix: string): Promise<string[]> {
    return Object.keys(await this.load()).filter((k) => k.startsWith(prefix));
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
