/**
 * Group commit: every write submitted during one event-loop turn is applied in
 * one SQLite transaction, so N concurrent appends cost one commit (one WAL
 * sync with synchronous=FULL) instead of N.
 *
 * Each write runs in its own SAVEPOINT (a nested better-sqlite3 transaction),
 * so one that throws is undone alone and the rest of the batch still commits
 * (a write that cannot leave anything half-done may go without, `savepoint`).
 * Promises settle only after the COMMIT returned: a resolved write is durable.
 * If the batch itself fails (COMMIT error, disk full), every write of it is
 * rejected with that error: none of them was kept.
 *
 * While the event loop has time to spare the flush runs on setImmediate,
 * right after the current turn's microtasks and I/O callbacks: no added
 * latency. Once it is busy (`busy`, by default half of the last ~20 ms spent
 * working) a transaction starts at most every `windowMs` (or as soon as
 * `fillBatch` writes wait): at 10,000 sends/s over hundreds of sockets a turn
 * carries one or two sends, and a commit per turn would write the shared
 * pages (the conversation rows, the right edge of the id index) and the WAL's
 * commit frame for each of them. Waiting up to a millisecond lets a batch
 * fill. Below that load the CPU a commit per turn costs is there to spend, and
 * the wait would only be latency (a millisecond on every send).
 */
import type Database from 'better-sqlite3';
import { performance } from 'node:perf_hooks';

interface Pending<I, O> {
  input: I;
  resolve: (value: O) => void;
  reject: (err: unknown) => void;
}

type Outcome<O> = { ok: true; value: O } | { ok: false; error: unknown };

export interface GroupCommitStats {
  /** Transactions committed by the group committer. */
  commits: number;
  /** Writes submitted, whatever their outcome. */
  writes: number;
}

/**
 * Lets another thread keep the committer out for a moment (the checkpointer's
 * catch-up, checkpointer.ts). Nothing in it blocks the event loop, except a
 * flush asked for explicitly (close).
 */
export interface TransactionGate {
  /** True when a transaction may start now; `wait` blocks until it may (close only). */
  enter(wait: boolean): boolean;
  leave(): void;
}

/** The event-loop utilisation from which batches wait for the window. */
const BUSY_UTILISATION = 0.5;
/** How long one utilisation sample spans. */
const LOAD_SAMPLE_MS = 20;

/**
 * True while the event loop spent at least `threshold` of its last sample
 * (about `sampleMs` long) working. Sampled lazily on a call, so it costs
 * nothing while no write comes; the first sample after a quiet spell spans
 * the spell and reads idle, which is right: a burst that starts then commits
 * at once, and all of one turn's writes share that commit anyway.
 */
export function eventLoopBusy(threshold: number, sampleMs: number): () => boolean {
  let mark = performance.eventLoopUtilization();
  let markAt = performance.now();
  let busy = false;
  return () => {
    const now = performance.now();
    if (now - markAt >= sampleMs) {
      const current = performance.eventLoopUtilization();
      busy = performance.eventLoopUtilization(current, mark).utilization >= threshold;
      mark = current;
      markAt = now;
    }
    return busy;
  };
}

const OPEN_GATE: TransactionGate = { enter: () => true, leave: () => undefined };
/** How long a batch waits before asking a closed gate again. */
const GATE_RETRY_MS = 1;

export interface GroupCommitOptions<I> {
  /** The most writes in one transaction; the rest wait for the next, so a burst never blocks the event loop in one long stretch. @default 1000 */
  maxBatch?: number;
  /** Least time between the starts of two transactions while writes keep coming. @default 1 */
  windowMs?: number;
  /** A batch this large starts at once, window or not. @default 64 */
  fillBatch?: number;
  gate?: TransactionGate;
  /** Whether the event loop is busy enough for a batch to wait for the window. @default half of the last ~20 ms spent working */
  busy?: () => boolean;
  /**
   * False for writes that need no savepoint of their own: those that write
   * nothing before the last statement that can fail (a statement that fails is
   * undone by SQLite alone). Two statements less per write. @default always true
   */
  savepoint?: (input: I) => boolean;
}

export class GroupCommit<I, O> {
  private queue: Pending<I, O>[] = [];
  private scheduled = false;
  /** Set while the flush waits for the window to end (a timer), so a full batch can start early. */
  private windowTimer: NodeJS.Timeout | undefined;
  private lastStart = -Infinity;
  private readonly maxBatch: number;
  private readonly windowMs: number;
  private readonly fillBatch: number;
  private readonly gate: TransactionGate;
  private readonly busy: () => boolean;
  private closed = false;
  private readonly runBatch: (batch: readonly Pending<I, O>[]) => Outcome<O>[];
  readonly stats: GroupCommitStats = { commits: 0, writes: 0 };

  constructor(db: Database.Database, apply: (input: I) => O, opts: GroupCommitOptions<I> = {}) {
    this.maxBatch = opts.maxBatch ?? 1000;
    this.windowMs = opts.windowMs ?? 1;
    this.fillBatch = opts.fillBatch ?? 64;
    this.gate = opts.gate ?? OPEN_GATE;
    this.busy = opts.busy ?? eventLoopBusy(BUSY_UTILISATION, LOAD_SAMPLE_MS);
    // Called inside the batch transaction, better-sqlite3 makes this a SAVEPOINT.
    const inSavepoint = db.transaction(apply);
    const savepoint = opts.savepoint ?? ((): boolean => true);
    const batchTx = db.transaction((batch: readonly Pending<I, O>[]): Outcome<O>[] => {
      const out: Outcome<O>[] = [];
      for (const p of batch) {
        try {
          out.push({ ok: true, value: savepoint(p.input) ? inSavepoint(p.input) : apply(p.input) });
        } catch (error) {
          // Some SQLite errors (SQLITE_FULL, SQLITE_IOERR…) roll back the whole
          // transaction; going on would run the rest in autocommit mode.
          if (!db.inTransaction) throw error;
          out.push({ ok: false, error });
        }
      }
      return out;
    });
    this.runBatch = (batch) => batchTx.immediate(batch);
  }

  submit(input: I): Promise<O> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    this.stats.writes++;
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (this.windowTimer !== undefined && this.queue.length >= this.fillBatch) {
        clearTimeout(this.windowTimer);
        this.windowTimer = undefined;
        this.scheduled = false;
      }
      this.schedule();
    });
  }

  /** Applies everything queued, now. */
  flush(): void {
    while (this.queue.length > 0) this.flushOne(true);
  }

  /** Flushes, then refuses new writes. */
  close(): void {
    this.flush();
    this.closed = true;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const wait = this.lastStart + this.windowMs - performance.now();
    if (wait <= 0 || this.queue.length >= this.fillBatch || !this.busy()) setImmediate(this.run);
    else this.windowTimer = setTimeout(this.run, wait);
  }

  private readonly run = (): void => {
    this.scheduled = false;
    this.windowTimer = undefined;
    if (!this.flushOne(false)) {
      this.scheduled = true;
      setTimeout(() => {
        this.scheduled = false;
        this.schedule();
      }, GATE_RETRY_MS);
      return;
    }
    if (this.queue.length > 0) this.schedule();
  };

  /** False when the gate was closed and nothing was done. */
  private flushOne(wait: boolean): boolean {
    if (this.queue.length === 0) return true;
    if (!this.gate.enter(wait)) return false;
    this.lastStart = performance.now();
    const batch = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
    this.queue = batch === this.queue ? [] : this.queue.slice(this.maxBatch);
    let outcomes: Outcome<O>[];
    try {
      outcomes = this.runBatch(batch);
    } catch (err) {
      for (const p of batch) p.reject(err);
      return true;
    } finally {
      this.gate.leave();
    }
    this.stats.commits++;
    outcomes.forEach((o, i) => {
      const p = batch[i] as Pending<I, O>;
      if (o.ok) p.resolve(o.value);
      else p.reject(o.error);
    });
    return true;
  }
}
