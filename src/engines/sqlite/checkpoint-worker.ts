/**
 * Worker thread of the checkpointer (checkpointer.ts): its own connection to
 * the database file copies WAL pages back into the file, so the copy and its
 * fsyncs never stall the event loop of the connection that commits.
 *
 * It watches the WAL through the wal-index header in the `-shm` file
 * (walState), a 100-byte read every few milliseconds, and runs
 * `wal_checkpoint(PASSIVE)` once `pages` frames wait, or once anything has
 * waited `idleMs`. PASSIVE never waits for, nor blocks, the writer; SQLite
 * keeps its own crash-safety rules for it (the WAL is synced before pages are
 * copied, the file is synced before the WAL may be reused). Starting the WAL
 * over (restart) is the one step that keeps the committer out, through the
 * gate: see checkpointer.ts for when.
 */
import { closeSync, fsyncSync, openSync, readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { GATE, walState, type CheckpointWorkerData, type CheckpointWorkerReport } from './checkpointer.js';

/** How long the worker waits for the committer to finish a transaction before trying again later. */
const GATE_WAIT_MS = 20;
/** The gate closes once at most this many frames are left to copy (about a millisecond of fsync)… */
const TAIL_FRAMES = 256;
/** …or after this many passes, when writes come faster than one pass copies them. */
const TAIL_PASSES = 4;
/** Polls in a row without a new WAL frame before the committer counts as idle. */
const QUIET_POLLS = 2;

const opts = workerData as CheckpointWorkerData;
lowerPriority();
const db = new Database(opts.path, { fileMustExist: true, timeout: 0 });
db.pragma(`synchronous = ${opts.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
const gate = new Int32Array(opts.gate);
const shm = openSync(`${opts.path}-shm`, 'r');
const walFile = openSync(`${opts.path}-wal`, 'r');
const header = Buffer.alloc(100);

const wal = (): { frames: number; waiting: number } => walState(shm, header);

function checkpoint(): number {
  const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
  return r?.log ?? 0;
}

/**
 * With the committer kept out, copies the tail and writes the database header
 * once (the same user_version): a write that begins with every frame copied
 * back starts the WAL over, and its fsync of the new WAL header happens here.
 * False when the committer did not leave the gate in time.
 */
function restart(): boolean {
  // The checkpoint behind the gate syncs the WAL first: most of what it would flush is flushed here,
  // while the committer still runs.
  fsyncSync(walFile);
  const until = performance.now() + GATE_WAIT_MS;
  for (;;) {
    const was = Atomics.compareExchange(gate, 0, GATE.open, GATE.checkpointing);
    if (was === GATE.open) break;
    if (performance.now() > until) return false;
    Atomics.wait(gate, 0, was, 1);
  }
  try {
    checkpoint();
    if (wal().waiting > 0) return false; // another connection is writing: later
    const version = Number(db.pragma('user_version', { simple: true }));
    db.pragma(`user_version = ${version}`);
    return true;
  } finally {
    Atomics.store(gate, 0, GATE.open);
    Atomics.notify(gate, 0);
  }
}

let waitingSince = 0;
/** mxFrame at the previous poll, and how many polls in a row saw no new frame (the committer is idle). */
let lastFrames = -1;
let quietPolls = 0;

function report(log: number, ms: number, restarted: boolean): void {
  parentPort?.postMessage({ log, ms, restarted } satisfies CheckpointWorkerReport);
}

function tick(): void {
  const { frames, waiting } = wal();
  quietPolls = frames === lastFrames ? quietPolls + 1 : 0;
  lastFrames = frames;
  const idle = quietPolls >= QUIET_POLLS;
  const now = Date.now();
  if (waiting === 0) waitingSince = 0;
  else {
    if (waitingSince === 0) waitingSince = now;
    if (waiting >= opts.pages || now - waitingSince >= opts.idleMs || (idle && frames >= opts.pages)) {
      waitingSince = 0;
      const t0 = performance.now();
      report(checkpoint(), performance.now() - t0, false);
    }
  }
  if (frames < opts.pages) return;
  // Starting the WAL over keeps the committer out for a moment: do it while the committer is idle,
  // when it waits for nothing, or once the WAL is too long to wait any more.
  if (idle && wal().waiting === 0) {
    const t1 = performance.now();
    if (restart()) report(0, performance.now() - t1, true);
  } else if (frames >= opts.restartPages) {
    // Each pass copies only what arrived during the one before, so passes get shorter; the gate closes
    // once the tail is short, because the committer waits for everything done behind it.
    for (let pass = 0; pass < TAIL_PASSES && wal().waiting > TAIL_FRAMES; pass++) checkpoint();
    const t1 = performance.now();
    if (restart()) report(0, performance.now() - t1, true);
  }
}

const timer = setInterval(() => {
  try {
    tick();
  } catch (err) {
    // SQLITE_BUSY: another connection is checkpointing or writing; try again next tick.
    if (!(err instanceof Database.SqliteError && err.code.startsWith('SQLITE_BUSY'))) throw err;
  }
}, opts.pollMs);

parentPort?.on('message', (m: unknown) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  closeSync(shm);
  closeSync(walFile);
  db.close();
  parentPort?.close();
});

/**
 * The copy is CPU work on the same core as the event loop: at the lowest
 * priority it runs in the loop's idle time instead of taking half the core
 * from it while a burst is being served. Linux gives each thread its own
 * nice value; the thread id comes from /proc/thread-self. Elsewhere it stays
 * at normal priority.
 */
function lowerPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isSafeInteger(tid) && tid > 0) setPriority(tid, 19);
  } catch {
    // not Linux, or not allowed: normal priority
  }
}
