/**
 * A load-generator process. The runner starts one or more of these pinned to
 * the generator core and drives them over IPC: each holds a share of the
 * clients (a process may hold at most 20,000 open files) and answers one
 * command at a time. Every loop here is bounded by a count and a deadline.
 */
import { BenchClient, Counters, type ClientSpec } from './client.js';
import { nowUs, sourceAddress, type System } from './wire.js';
import { Histogram } from '../lib/histogram.js';
import { directConversation, groupConversation, pool, registerAndLogin, type BenchUser } from './parley-http.js';
import type { WorkerCommand, WorkerReply } from './commands.js';

const counters = new Counters();
const clients = new Map<number, BenchClient>();
let system: System = 'ws';
let wsUrl = '';
let httpUrl = '';

const keepalive = setInterval(() => {
  for (const c of clients.values()) c.ping();
}, 20_000);
keepalive.unref();

function cpuNow(): { cpuUs: number; wallUs: number } {
  const u = process.cpuUsage();
  return { cpuUs: u.user + u.system, wallUs: nowUs() };
}

function cpuPct(a: { cpuUs: number; wallUs: number }): number {
  const b = cpuNow();
  return b.wallUs > a.wallUs ? Math.round(((b.cpuUs - a.cpuUs) / (b.wallUs - a.wallUs)) * 1000) / 10 : 0;
}

async function connectAll(specs: ClientSpec[], gen: number, concurrency: number, timeoutMs: number) {
  const t0 = nowUs();
  const cpu0 = cpuNow();
  const errors: Record<string, number> = {};
  let connected = 0;
  const deadline = Date.now() + timeoutMs;
  await pool(specs, concurrency, async (spec) => {
    let c = clients.get(spec.idx);
    if (!c) {
      c = new BenchClient({ system, wsUrl }, spec, counters);
      clients.set(spec.idx, c);
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      errors.deadline = (errors.deadline ?? 0) + 1;
      return;
    }
    try {
      await c.connect(sourceAddress(spec.idx, gen), Math.min(left, 30_000));
      connected++;
    } catch (e) {
      const k = (e as Error).message.slice(0, 60);
      errors[k] = (errors[k] ?? 0) + 1;
    }
  });
  return { connected, failed: specs.length - connected, ms: (nowUs() - t0) / 1000, genCpuPct: cpuPct(cpu0), errors };
}

/** Open loop: sends at `rate` msg/s spread over the senders, whatever the answers do. */
function load(step: number, rate: number, durationMs: number, senderIdxs: number[] | null) {
  const senders = (senderIdxs ? senderIdxs.map((i) => clients.get(i)) : [...clients.values()]).filter(
    (c): c is BenchClient => c !== undefined && c.target !== '',
  );
  // Counters are reset by the runner (a `reset` to every worker) before the step, so no worker misses early deliveries.
  const cpu0 = cpuNow();
  const t0 = nowUs();
  const total = Math.floor((rate * durationMs) / 1000);
  // At most 20 ms of schedule per tick: when the generator falls behind, the shortfall is reported, not burst out.
  const maxPerTick = Math.max(1, Math.ceil(rate / 50));
  let due = 0;
  let attempted = 0;
  let rr = 0;
  return new Promise<{ sent: number; target: number; behind: number; ms: number; genCpuPct: number }>((resolve) => {
    if (senders.length === 0 || total === 0) {
      resolve({ sent: 0, target: total, behind: total, ms: 0, genCpuPct: 0 });
      return;
    }
    const tick = setInterval(() => {
      const el = (nowUs() - t0) / 1000;
      const want = Math.min(total, Math.floor((rate * el) / 1000));
      let n = want - due;
      due = want;
      if (n > maxPerTick) n = maxPerTick;
      for (let i = 0; i < n; i++) {
        const c = senders[rr++ % senders.length] as BenchClient;
        c.sendBench(step);
        attempted++;
      }
      if (el >= durationMs || due >= total) {
        clearInterval(tick);
        const ms = (nowUs() - t0) / 1000;
        resolve({ sent: counters.sent, target: total, behind: total - attempted, ms, genCpuPct: cpuPct(cpu0) });
      }
    }, 1);
  });
}

function stats() {
  return {
    step: counters.step,
    sent: counters.sent,
    acked: counters.acked,
    delivered: counters.delivered,
    stale: counters.stale,
    echo: counters.echo,
    errors: counters.errors,
    errorCodes: counters.errorCodes,
    closes: counters.closes,
    hist: counters.hist.toJSON(),
    connected: [...clients.values()].filter((c) => c.ready).length,
  };
}

async function storm(gen: number, doSync: boolean, timeoutMs: number) {
  const list = [...clients.values()].filter((c) => c.ready);
  const hist = new Histogram();
  const errors: Record<string, number> = {};
  const cpu0 = cpuNow();
  const t0 = nowUs();
  for (const c of list) c.drop();
  let ok = 0;
  let events = 0;
  const deadline = Date.now() + timeoutMs;
  await Promise.all(
    list.map(async (c) => {
      try {
        await c.connect(sourceAddress(c.idx, gen), Math.max(1, deadline - Date.now()));
        if (doSync) {
          const r = await c.sync(Math.max(1, deadline - Date.now()));
          events += r.events;
        }
        hist.record(nowUs() - t0);
        ok++;
      } catch (e) {
        const k = (e as Error).message.slice(0, 60);
        errors[k] = (errors[k] ?? 0) + 1;
      }
    }),
  );
  return { clients: list.length, ok, failed: list.length - ok, ms: (nowUs() - t0) / 1000, events, hist: hist.toJSON(), genCpuPct: cpuPct(cpu0), errors };
}

async function handle(m: WorkerCommand): Promise<unknown> {
  switch (m.cmd) {
    case 'init':
      system = m.system;
      wsUrl = m.wsUrl;
      httpUrl = m.httpUrl;
      return { pid: process.pid };
    case 'users': {
      const t0 = nowUs();
      const names = Array.from({ length: m.count }, (_, i) => `${m.prefix}${m.from + i}`);
      const users: BenchUser[] = await pool(names, m.concurrency, (n) => registerAndLogin(httpUrl, n));
      return { users, ms: (nowUs() - t0) / 1000 };
    }
    case 'directConvs':
      return { ids: await pool(m.pairs, 16, (p) => directConversation(httpUrl, p.token, p.peerId)) };
    case 'groupConv':
      return { id: await groupConversation(httpUrl, m.token, m.title, m.memberIds) };
    case 'connect':
      return connectAll(m.specs, m.gen, m.concurrency, m.timeoutMs);
    case 'route':
      for (const r of m.routes) {
        const c = clients.get(r.idx);
        if (c) {
          c.target = r.target;
          c.toRoom = r.room;
        }
      }
      return { routed: m.routes.length };
    case 'join': {
      const list = m.idxs.map((i) => clients.get(i)).filter((c): c is BenchClient => c !== undefined);
      await pool(list, 200, (c) => c.join(m.room, 10_000));
      return { joined: list.length };
    }
    case 'load':
      return load(m.step, m.rate, m.durationMs, m.senders);
    case 'reset':
      counters.reset(m.step);
      return {};
    case 'stats':
      return stats();
    case 'track':
      for (const i of m.idxs) {
        const c = clients.get(i);
        if (c) c.positions = m.on ? (c.positions ?? new Map()) : null;
      }
      return {};
    case 'sync': {
      const c = clients.get(m.idx);
      if (!c) throw new Error(`no client ${m.idx}`);
      return c.sync(m.timeoutMs);
    }
    case 'syncAll': {
      // Every connected client tracks positions from here on and learns them from a first sync.
      const t0 = nowUs();
      const list = [...clients.values()].filter((c) => c.ready);
      let synced = 0;
      await pool(list, 200, async (c) => {
        c.positions ??= new Map();
        try {
          await c.sync(m.timeoutMs);
          synced++;
        } catch {
          /* counted as failed */
        }
      });
      return { synced, failed: list.length - synced, ms: (nowUs() - t0) / 1000 };
    }
    case 'reconnectSync': {
      // The measured path of the sync workload: connect, auth → ready, sync → synced.
      const c = clients.get(m.idx);
      if (!c) throw new Error(`no client ${m.idx}`);
      const t0 = nowUs();
      await c.connect(sourceAddress(m.idx, m.gen), m.timeoutMs);
      const readyMs = (nowUs() - t0) / 1000;
      const r = await c.sync(m.timeoutMs);
      return { ...r, readyMs, totalMs: (nowUs() - t0) / 1000 };
    }
    case 'burst': {
      const t0 = nowUs();
      const list = m.idxs.map((i) => clients.get(i)).filter((c): c is BenchClient => c !== undefined);
      counters.reset(0);
      const ok = await Promise.all(list.map((c) => c.burst(m.count, m.window, m.timeoutMs)));
      return { ok: ok.every(Boolean), acked: counters.acked, errors: counters.errors, errorCodes: counters.errorCodes, ms: (nowUs() - t0) / 1000 };
    }
    case 'close': {
      const list = (m.idxs ?? [...clients.keys()]).map((i) => clients.get(i)).filter((c): c is BenchClient => c !== undefined);
      await pool(list, 500, (c) => c.close());
      if (!m.idxs) clients.clear();
      return { closed: list.length };
    }
    case 'storm':
      return storm(m.gen, m.sync, m.timeoutMs);
    case 'exit':
      setTimeout(() => process.exit(0), 10);
      return {};
  }
}

process.on('message', (raw) => {
  const m = raw as WorkerCommand & { id: number };
  handle(m).then(
    (result) => process.send?.({ id: m.id, ok: true, result } satisfies WorkerReply),
    (e: unknown) => process.send?.({ id: m.id, ok: false, error: e instanceof Error ? e.message : String(e) } satisfies WorkerReply),
  );
});
// The runner is gone: nobody will stop us, so stop.
process.on('disconnect', () => process.exit(0));
