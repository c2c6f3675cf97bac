/**
 * A bounded cache of values loaded on demand, for the copies every node drops
 * when the bus announces a change (membership, blocks). One load per key runs
 * at a time. A load that `invalidate` overtook still answers its callers but is
 * never cached, even when a newer load for the key has started meanwhile: only
 * the load registered for the key may fill it, so a copy older than the change
 * cannot stay behind.
 */
export class LoadingCache<K, V> {
  private readonly entries = new Map<K, V>();
  private readonly loading = new Map<K, Promise<V>>();

  constructor(
    private readonly loader: (key: K) => Promise<V>,
    private readonly maxEntries: number,
  ) {}

  /** From memory when cached, so a hot path awaits nothing it does not have to. Undefined values are not cached. */
  get(key: K): V | Promise<V> {
    const hit = this.entries.get(key);
    if (hit !== undefined) return hit;
    const pending = this.loading.get(key);
    if (pending) return pending;
    const started: Promise<V> = this.loader(key).then(
      (value) => {
        if (this.loading.get(key) !== started) return value;
        this.loading.delete(key);
        if (value !== undefined) this.remember(key, value);
        return value;
      },
      (err: unknown) => {
        if (this.loading.get(key) === started) this.loading.delete(key);
        throw err;
      },
    );
    this.loading.set(key, started);
    return started;
  }

  invalidate(key: K): void {
    this.entries.delete(key);
    this.loading.delete(key);
  }

  private remember(key: K, value: V): void {
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, value);
  }
}
