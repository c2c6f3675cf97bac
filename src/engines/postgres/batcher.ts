/**
 * Batches concurrent appends into as few round trips and commits as the
 * load allows, without ever delaying an append when the store is idle.
 *
 * - An append waits for at most the end of the current event-loop turn, then
 *   goes out with everything else queued by then (setImmediate adds no timer
 *   latency), up to `maxBatch` items per batch.
 * - At most one batch per key (conversation) is in flight from this process:
 *   appends of a conversation commit in the order they were submitted here,
 *   and a node never queues on its own row lock. What arrives meanwhile forms
 *   the next batch, so a hot conversation gets bigger batches, not more
 *   lock waiters.
 * - At most `maxInFlight` batches at once (fewer than the pool's connections), so appends never
 *   wait for a pooled connection and time out there. The store's default is
 *   one: what arrives while a batch is in flight forms the next, so batches
 *   grow with the load and PostgreSQL commits less often. A commit costs the
 *   database about as much CPU as seven appends; on two cores one batch in
 *   flight instead of nine halved PostgreSQL's CPU per append at 6,000/s and
 *   raised closed-loop throughput (100 appenders) by 29%
 *   (`bench/micro/store-append.ts --engine postgres`, docs/cluster-benchmarks.md).
 *   With more allowed, what is ready is spread over the free connections (at
 *   least MIN_SPREAD items a batch), for a database with cores to spare.
 * - Items of a batch go out sorted by key (stable, so each key keeps its
 *   order): every node locks the conversations of its batches in the same
 *   order, and two batches cannot deadlock.
 */

/** The outcome of one item of a batch. */
export type Settled<O> = { ok: true; value: O } | { ok: false; error: unknown };

export interface BatcherOptions<I, O> {
  key: (input: I) => string;
  /** Runs one batch; resolves with one outcome per item, in the order given. Rejecting fails every item. */
  run: (batch: readonly I[]) => Promise<Settled<O>[]>;
  maxBatch: number;
  maxInFlight: number;
}

export interface BatcherStats {
  /** Batches sent. */
  batches: number;
  /** Items submitted, whatever their outcome. */
  items: number;
}

interface Pending<I, O> {
  input: I;
  key: string;
  resolve: (value: O) => void;
  reject: (err: unknown) => void;
}

/** Fewest items worth a batch of their own when spreading. */
const MIN_SPREAD = 8;

export class Batcher<I, O> {
  private queue: Pending<I, O>[] = [];
  private readonly busyKeys = new Set<string>();
  private inFlight = 0;
  private scheduled = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  readonly stats: BatcherStats = { batches: 0, items: 0 };

  constructor(private readonly opts: BatcherOptions<I, O>) {}

  submit(input: I): Promise<O> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    this.stats.items++;
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ input, key: this.opts.key(input), resolve, reject });
      this.schedule();
    });
  }

  /** Refuses new items and resolves once every accepted one has settled. */
  close(): Promise<void> {
    this.closed = true;
    return this.idle();
  }

  private idle(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.inFlight < this.opts.maxInFlight && this.queue.length > 0) {
      const size = this.batchSize();
      const batch: Pending<I, O>[] = [];
      const rest: Pending<I, O>[] = [];
      const taken = new Set<string>();
      for (const p of this.queue) {
        // A key already in this batch keeps all its queued items together (order).
        if (!this.busyKeys.has(p.key) && (taken.has(p.key) ? batch.length < this.opts.maxBatch : batch.length < size)) {
          batch.push(p);
          taken.add(p.key);
        } else rest.push(p);
      }
      if (batch.length === 0) break; // everything queued waits for a key in flight
      this.queue = rest;
      for (const p of batch) this.busyKeys.add(p.key);
      batch.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      this.inFlight++;
      this.stats.batches++;
      void this.send(batch);
    }
    if (this.queue.length === 0 && this.inFlight === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Spreads what is ready over the free connections, so the server works on several batches at once. */
  private batchSize(): number {
    let ready = 0;
    for (const p of this.queue) if (!this.busyKeys.has(p.key)) ready++;
    const free = this.opts.maxInFlight - this.inFlight;
    return Math.min(this.opts.maxBatch, Math.max(MIN_SPREAD, Math.ceil(ready / free)));
  }

  private async send(batch: Pending<I, O>[]): Promise<void> {
    let outcomes: Settled<O>[] | undefined;
    let failure: unknown;
    try {
      outcomes = await this.opts.run(batch.map((p) => p.input));
    } catch (err) {
      failure = err;
    }
    this.inFlight--;
    for (const p of batch) this.busyKeys.delete(p.key);
    batch.forEach((p, i) => {
      const o = outcomes?.[i];
      if (o === undefined) p.reject(failure ?? new Error('the append batch returned too few outcomes'));
      else if (o.ok) p.resolve(o.value);
      else p.reject(o.error);
    });
    // What queued up behind this batch goes now, not a turn later.
    this.dispatch();
  }
}
