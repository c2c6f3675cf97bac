/**
 * Checkpoints off the event loop. SQLite's automatic checkpoint runs inside
 * the COMMIT that crosses 1,000 WAL pages, on the committing thread: it copies
 * the pages into the database file and fsyncs it, 10-30 ms during which no
 * socket is served. The store turns it off (`wal_autocheckpoint=0`) and this
 * runs checkpoints in a worker thread with its own connection
 * (checkpoint-worker.ts), at the lowest CPU priority.
 *
 * Keeping the WAL bounded: SQLite starts the WAL over from its beginning only
 * when a write transaction begins with every frame already copied back. Under a
 * steady stream of commits a concurrent checkpoint never quite catches up
 * (frames keep arriving while it copies and syncs), so the WAL would only grow.
 * The worker closes the gate (a word in shared memory) between two of the
 * committer's transactions, copies what is left, makes one tiny write that
 * starts the WAL over, and opens the gate. It does so when the committer has
 * been idle for a few milliseconds (then nothing waits for it), or, under load
 * that never pauses, once the WAL is `restartPages` long: then new
 * transactions wait while the last frames are copied and synced, 5-30 ms on
 * this kind of disk, which is why it is put off. The event loop keeps serving
 * meanwhile (group-commit.ts retries every millisecond); every fsync stays in
 * the worker, and `journal_size_limit` trims the file when it starts over.
 *
 * If the worker dies, the connection goes back to SQLite's automatic
 * checkpoints: slower, never unbounded.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import type { TransactionGate } from './group-commit.js';

export interface CheckpointWorkerData {
  path: string;
  synchronous: 'normal' | 'full';
  /** Checkpoint once this many WAL frames wait… */
  pages: number;
  /** …or once any frame has waited this long. */
  idleMs: number;
  /** Start the WAL over once it is this long, even if the committer never pauses. */
  restartPages: number;
  pollMs: number;
  /** Int32Array over a SharedArrayBuffer: the gate, see GATE. */
  gate: SharedArrayBuffer;
}

/** Values of the gate word. */
export const GATE = { open: 0, committing: 1, checkpointing: 2 } as const;

/** What the worker posts after each checkpoint. */
export interface CheckpointWorkerReport {
  /** Frames in the WAL when the checkpoint began. */
  log: number;
  ms: number;
  /** True when this one closed the gate and started the WAL over. */
  restarted: boolean;
}

export interface CheckpointStats {
  /** Checkpoints run by the worker. */
  checkpoints: number;
  /** Times the WAL was started over. */
  restarts: number;
  /** Longest checkpoint, ms. */
  longestMs: number;
  /** Longest time the gate was closed to the committer, ms. */
  longestGateMs: number;
  /** Times the worker fell so far behind that the committing connection checkpointed by itself for a while. */
  overloads: number;
}

export interface CheckpointerOptions {
  path: string;
  synchronous: 'normal' | 'full';
  /**
   * Checkpoint once this many frames wait. @default 4000 (16 MB of 4 KB pages):
   * four times SQLite's own threshold, because a page written again before the
   * checkpoint is copied once (a quarter fewer bytes written per message at
   * 10,000 messages/s, measured with bench/micro/store-append.ts).
   */
  pages?: number;
  /** @default 65536 (256 MB of 4 KB pages) */
  restartPages?: number;
}

/** How often the committing side looks at the WAL's length (one 100-byte read). */
const WATCH_MS = 250;

/**
 * The WAL's frames and those not yet copied back, from the wal-index header at
 * the start of the `-shm` file (https://www.sqlite.org/walformat.html:
 * `mxFrame` at byte 16, `nBackfill` at byte 96, native byte order). Zeros when
 * it cannot be read.
 */
export function walState(shm: number, header: Buffer): { frames: number; waiting: number } {
  if (readSync(shm, header, 0, 100, 0) < 100) return { frames: 0, waiting: 0 };
  const little = endianness() === 'LE';
  const mxFrame = little ? header.readUInt32LE(16) : header.readUInt32BE(16);
  const nBackfill = little ? header.readUInt32LE(96) : header.readUInt32BE(96);
  return { frames: mxFrame, waiting: mxFrame > nBackfill ? mxFrame - nBackfill : 0 };
}

/** SQLite's default, restored if the worker is gone. */
const AUTO_CHECKPOINT_PAGES = 1000;
/** The WAL file is trimmed to this when it starts over. */
const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

function startWorker(workerData: CheckpointWorkerData): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./checkpoint-worker.js', here), { workerData });
  // Run from the TypeScript sources: a worker thread does not inherit tsx's loader, so it registers it first.
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const entry = JSON.stringify(new URL('./checkpoint-worker.ts', here).href);
  return new Worker(`import(${tsx}).then((m) => { m.register(); return import(${entry}); });`, { eval: true, workerData });
}

export class Checkpointer {
  readonly stats: CheckpointStats = { checkpoints: 0, restarts: 0, longestMs: 0, longestGateMs: 0, overloads: 0 };
  readonly gate: TransactionGate;
  private readonly word: Int32Array;
  private readonly worker: Worker;
  private readonly watcher: NodeJS.Timeout;
  private readonly shm: number;
  private stopped = false;
  /** True while the committing connection checkpoints by itself because the worker fell behind. */
  private overloaded = false;

  constructor(
    private readonly db: Database.Database,
    opts: CheckpointerOptions,
  ) {
    const pages = opts.pages ?? 4000;
    const shared = new SharedArrayBuffer(4);
    const word = (this.word = new Int32Array(shared));
    this.gate = {
      enter(wait) {
        for (;;) {
          const was = Atomics.compareExchange(word, 0, GATE.open, GATE.committing);
          if (was === GATE.open) return true;
          if (!wait) return false;
          Atomics.wait(word, 0, was, 10);
        }
      },
      leave() {
        Atomics.store(word, 0, GATE.open);
        Atomics.notify(word, 0);
      },
    };
    db.pragma('wal_autocheckpoint = 0');
    db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    const workerData: CheckpointWorkerData = {
      path: opts.path,
      synchronous: opts.synchronous,
      pages,
      idleMs: 1000,
      restartPages: opts.restartPages ?? 65_536,
      pollMs: 5,
      gate: shared,
    };
    this.worker = startWorker(workerData);
    this.worker.unref();
    this.worker.on('message', (r: CheckpointWorkerReport) => {
      this.stats.checkpoints++;
      if (r.restarted) {
        this.stats.restarts++;
        this.stats.longestGateMs = Math.max(this.stats.longestGateMs, r.ms);
      } else this.stats.longestMs = Math.max(this.stats.longestMs, r.ms);
    });
    this.worker.on('error', () => this.fallBack());
    this.worker.on('exit', () => this.fallBack());
    // The worker runs at the lowest priority: an event loop kept busy for long enough starves it. Then
    // the WAL would grow without end, so once `restartPages` frames wait uncopied the committing
    // connection goes back to SQLite's automatic checkpoints (stalls, but bounded) until the WAL is short again.
    const hardPages = workerData.restartPages;
    this.shm = openSync(`${opts.path}-shm`, 'r');
    const header = Buffer.alloc(100);
    this.watcher = setInterval(() => {
      if (this.stopped) return;
      const { waiting } = walState(this.shm, header);
      if (!this.overloaded && waiting > hardPages) {
        this.overloaded = true;
        this.stats.overloads++;
        db.pragma(`wal_autocheckpoint = ${pages}`);
      } else if (this.overloaded && waiting < pages) {
        this.overloaded = false;
        db.pragma('wal_autocheckpoint = 0');
      }
    }, WATCH_MS).unref();
  }

  /** Stops the worker; its connection closes before the store's own, which then checkpoints the rest. */
  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.watcher);
    closeSync(this.shm);
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    // Referenced again while it stops, or an otherwise idle process would exit mid-close.
    this.worker.ref();
    this.worker.postMessage('stop');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    await this.worker.terminate();
    this.openGate();
  }

  private fallBack(): void {
    // A worker that died holding the gate must not keep the committer out.
    this.openGate();
    if (this.stopped || !this.db.open) return;
    this.stopped = true;
    clearInterval(this.watcher);
    closeSync(this.shm);
    this.db.pragma(`wal_autocheckpoint = ${AUTO_CHECKPOINT_PAGES}`);
  }

  private openGate(): void {
    Atomics.compareExchange(this.word, 0, GATE.checkpointing, GATE.open);
    Atomics.notify(this.word, 0);
  }
}
