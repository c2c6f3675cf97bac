import type { Json, KeyValueStore } from './storage.js';

/** KeyValueStore over one IndexedDB object store (browsers). */
export class IndexedDbStore implements KeyValueStore {
  private dbPromise: Promise<IDBDatabase> | undefined;
  /** Values are structured clones: CryptoKeys are kept as they are. */
  readonly holdsCryptoKeys = true;

  constructor(
    private readonly dbName = 'parley',
    private readonly storeName = 'kv',
  ) {}

  static available(): boolean {
    return typeof indexedDB !== 'undefined';
  }

  private db(): Promise<IDBDatabase> {
    this.dbPromise ??= new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open(this.dbName, 1);
      req.onupgradeneeded = () => {
        if (!req.result.objectStoreNames.contains(this.storeName)) req.result.createObjectStore(this.storeName);
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error ?? new Error('indexedDB.open failed'));
    });
    return this.dbPromise;
  }

  private async run<T>(mode: IDBTransactionMode, fn: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    const db = await this.db();
    return new Promise<T>((resolve, reject) => {
      const tx = db.transaction(this.storeName, mode);
      const req = fn(tx.objectStore(this.storeName));
      // Resolve on transaction completion, not on request success: only then is a write durable.
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    });
  }

  async get(key: string): Promise<Json | undefined> {
    const v = await this.run<unknown>('readonly', (s) => s.get(key));
    return v === undefined ? undefined : (v as Json);
  }
  async set(key: string, value: Json): Promise<void> {
    await this.run('readwrite', (s) => s.put(value, key));
  }
  async delete(key: string): Promise<void> {
    await this.run('readwrite', (s) => s.delete(key));
  }
  async keys(prefix: string): Promise<string[]> {
    // '\uffff' sorts after every character a key of ours can contain.
    const range = IDBKeyRange.bound(prefix, prefix + '\uffff');
    const keys = await this.run<IDBValidKey[]>('readonly', (s) => s.getAllKeys(range));
    return keys.map(String);
  }
}
