/**
 * The IPC contract between the runner and generator workers, and the runner's
 * handle on a worker process (pinned to the generator core).
 */
import { fileURLToPath } from 'node:url';
import type { ClientSpec, SyncResult } from './client.js';
import type { HistogramData } from '../lib/histogram.js';
import type { BenchUser } from './parley-http.js';
import type { System } from './wire.js';
import { spawnPinned, stopProc, type Proc } from '../lib/proc.js';
import { ROOT } from '../lib/paths.js';

export type WorkerCommand =
  | { cmd: 'init'; system: System; wsUrl: string; httpUrl: string }
  | { cmd: 'users'; prefix: string; from: number; count: number; concurrency: number }
  | { cmd: 'directConvs'; pairs: { token: string; peerId: string }[] }
  | { cmd: 'groupConv'; token: string; title: string; memberIds: string[] }
  | { cmd: 'connect'; specs: ClientSpec[]; gen: number; concurrency: number; timeoutMs: number }
  | { cmd: 'route'; routes: { idx: number; target: string; room: boolean }[] }
  | { cmd: 'join'; room: string; idxs: number[] }
  | { cmd: 'load'; step: number; rate: number; durationMs: number; senders: number[] | null }
  | { cmd: 'reset'; step: number }
  | { cmd: 'stats' }
  | { cmd: 'track'; idxs: number[]; on: boolean }
  | { cmd: 'sync'; idx: number; timeoutMs: number }
  | { cmd: 'syncAll'; timeoutMs: number }
  | { cmd: 'reconnectSync'; idx: number; gen: number; timeoutMs: number }
  | { cmd: 'burst'; idxs: number[]; count: number; window: number; timeoutMs: number }
  | { cmd: 'close'; idxs?: number[] }
  | { cmd: 'storm'; gen: number; sync: boolean; timeoutMs: number }
  | { cmd: 'exit' };

export interface ConnectResult {
  connected: number;
  failed: number;
  ms: number;
  genCpuPct: number;
  errors: Record<string, number>;
}
export interface LoadResult {
  sent: number;
  target: number;
  behind: number;
  ms: number;
  genCpuPct: number;
}
export interface StatsResult {
  step: number;
  sent: number;
  acked: number;
  delivered: number;
  stale: number;
  echo: number;
  errors: number;
  errorCodes: Record<string, number>;
  closes: Record<string, number>;
  hist: HistogramData;
  connected: number;
}
export interface StormResult {
  clients: number;
  ok: number;
  failed: number;
  ms: number;
  events: number;
  hist: HistogramData;
  genCpuPct: number;
  errors: Record<string, number>;
}
export interface BurstResult {
  ok: boolean;
  acked: number;
  errors: number;
  errorCodes: Record<string, number>;
  ms: number;
}

export interface ResultOf {
  init: { pid: number };
  users: { users: BenchUser[]; ms: number };
  directConvs: { ids: string[] };
  groupConv: { id: string };
  connect: ConnectResult;
  route: { routed: number };
  join: { joined: number };
  load: LoadResult;
  reset: object;
  stats: StatsResult;
  track: object;
  sync: SyncResult;
  syncAll: { synced: number; failed: number; ms: number };
  reconnectSync: SyncResult & { readyMs: number; totalMs: number };
  burst: BurstResult;
  close: { closed: number };
  storm: StormResult;
  exit: object;
}

export type WorkerReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));

export class Worker {
  private nextId = 0;
  private waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  readonly proc: Proc;

  constructor(
    readonly index: number,
    core: number | null,
  ) {
    this.proc = spawnPinned(`gen${index}`, process.execPath, ['--import', 'tsx', WORKER], { core, ipc: true, cwd: ROOT });
    this.proc.child.on('message', (raw) => {
      const m = raw as WorkerReply;
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      clearTimeout(w.timer);
      if (m.ok) w.resolve(m.result);
      else w.reject(new Error(`gen${index}: ${m.error}`));
    });
    void this.proc.exited.then((code) => {
      for (const w of this.waiting.values()) {
        clearTimeout(w.timer);
        w.reject(new Error(`gen${index} exited (${code})`));
      }
      this.waiting.clear();
    });
  }

  call<C extends WorkerCommand>(c: C, timeoutMs: number): Promise<ResultOf[C['cmd']]> {
    const id = ++this.nextId;
    return new Promise<ResultOf[C['cmd']]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`gen${this.index}: ${c.cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.proc.child.send({ ...c, id });
    });
  }

  async stop(): Promise<void> {
    await stopProc(this.proc, 2000);
  }
}

/**
 * Registers and logs in users [users.length, n) through Parley's HTTP API,
 * 1,000 per worker call, the workers in parallel; appends them to `users`.
 */
export async function registerUsers(
  workers: readonly Worker[],
  users: BenchUser[],
  n: number,
  prefix: string,
  timeoutMs: number,
  onProgress: (done: number, startedAt: number) => void,
): Promise<void> {
  const CHUNK = 1000;
  const t0 = performance.now();
  for (let from = users.length; from < n; from += CHUNK * workers.length) {
    const parts = await Promise.all(
      workers.map((w, i) => {
        const start = from + i * CHUNK;
        const count = Math.max(0, Math.min(CHUNK, n - start));
        return count === 0 ? Promise.resolve({ users: [] as BenchUser[], ms: 0 }) : w.call({ cmd: 'users', prefix, from: start, count, concurrency: 16 }, timeoutMs);
      }),
    );
    for (const p of parts) users.push(...p.users);
    onProgress(users.length, t0);
  }
}
