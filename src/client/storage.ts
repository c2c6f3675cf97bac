/**
 * Where the SDK keeps what must survive a restart: the session, the outbox and
 * the cache of conversations and recent messages. Values are JSON-compatible.
 * Implementations: MemoryStore (here), IndexedDbStore (browser, idb.ts),
 * FileStore (Node, node.ts).
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json | undefined };

export interface KeyValueStore {
  get(key: string): Promise<Json | undefined>;
  /** Resolves once the value is durable as far as this store can make it. */
  set(key: string, value: Json): Promise<void>;
  delete(key: string): Promise<void>;
  /** Keys starting with `prefix`, in no particular order. */
  keys(prefix: string): Promise<string[]>;
  /** Resolves once every write started so far has finished; for stores that write behind. */
  settled?(): Promise<void>;
  /**
   * True when values are kept by structured clone (IndexedDB), so a CryptoKey
   * can be stored as it is, its private part never extractable; otherwise the
   * SDK stores private keys as JWK (end-to-end encryption, client/e2e/).
   */
  readonly holdsCryptoKeys?: boolean;
}

export class MemoryStore implements KeyValueStore {
  private readonly map = new Map<string, string>();

  async get(key: string): Promise<Json | undefined> {
    const raw = this.map.get(key);
    // Stored as text so a caller mutating a value it got cannot change the stored copy.
    return raw === undefined ? undefined : (JSON.parse(raw) as Json);
  }
  async set(key: string, value: Json): Promise<void> {
    this.map.set(key, JSON.stringify(value));
  }
  async delete(key: string): Promise<void> {
    this.map.delete(key);
  }
  async keys(prefix: string): Promise<string[]> {
    return [...this.map.keys()].filter((k) => k.startsWith(prefix));
  }
}

/** Prefixes every key, so two users of one browser never see each other's data. */
export class ScopedStore implements KeyValueStore {
  constructor(
    private readonly inner: KeyValueStore,
    private readonly prefix: string,
  ) {}
  get holdsCryptoKeys(): boolean {
    return this.inner.holdsCryptoKeys === true;
  }
  get(key: string): Promise<Json | undefined> {
    return this.inner.get(this.prefix + key);
  }
  set(key: string, value: Json): Promise<void> {
    return this.inner.set(this.prefix + key, value);
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(this.prefix + key);
  }
  async keys(prefix: string): Promise<string[]> {
    const all = await this.inner.keys(this.prefix + prefix);
    return all.map((k) => k.slice(this.prefix.length));
  }
}
