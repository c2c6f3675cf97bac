/**
 * A store's write path alone, without sockets: `node --import tsx
 * bench/micro/store-append.ts [--rate 10000] [--seconds 5] [--convs 500]
 * [--engine sqlite|postgres]`.
 *
 * Open loop like the direct workload: every millisecond the appends due by
 * then are submitted (to conversations round-robin) without waiting for
 * earlier ones. Reports CPU per append (the whole process, every thread),
 * append latency (submit → promise resolved, i.e. durable), the longest
 * event-loop stall, commits, and the bytes and write system calls per append
 * from /proc/self/io. Socket costs are not in it, so a store change shows here
 * with far less noise than in the end-to-end bench. Pin it to one core
 * (`taskset -c 0`) and run it under the bench lock.
 *
 * `--engine postgres` appends to PostgreSQL at PARLEY_DATABASE_URL (default
 * the local server) in a schema of its own, dropped afterwards, and also
 * reports the CPU of every PostgreSQL process (read from /proc, so it needs
 * to run as the server's user or root): what one append costs the database.
 *
 * `--sweep 1` (with `--stored N`): the stored messages are dated 30 days back,
 * and a retention sweep (core/retention.ts, 7-day default) deletes them while
 * the measured appends run, so the two latency lines, with and without it,
 * show what a sweep costs the write path; the sweep's own rate is printed.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import pg from 'pg';
import type { Store } from '../../src/core/ports/store.js';
import { openPostgresStore } from '../../src/engines/postgres/store.js';
import { openSqliteStore } from '../../src/engines/sqlite/store.js';
import { Histogram } from '../lib/histogram.js';
import { DAY_MS, RetentionService } from '../../src/core/retention.js';
import { MembershipCache } from '../../src/core/membership.js';
import { Fanout } from '../../src/core/fanout.js';
import { MemoryBus } from '../../src/engines/memory/bus.js';
import { threadCpuDelta, threadCpuMs } from '../lib/proc.js';

interface Args {
  rate: number;
  seconds: number;
  convs: number;
  warmupSeconds: number;
  stored: number;
  synchronous: 'normal' | 'full';
  engine: 'sqlite' | 'postgres';
  sweep: boolean;
  /** The sweep's pace, events per second; 0 = the service's default. */
  sweepRate: number;
}

function parse(argv: string[]): Args {
  const a: Args = { rate: 10_000, seconds: 5, convs: 500, warmupSeconds: 2, stored: 0, synchronous: 'normal', engine: 'sqlite', sweep: false, sweepRate: 0 };
  for (let i = 0; i < argv.length; i += 2) {
    const k = (argv[i] ?? '').replace(/^--/, '');
    const v = argv[i + 1] ?? '';
    if (k === 'synchronous') a.synchronous = v === 'full' ? 'full' : 'normal';
    else if (k === 'engine') a.engine = v === 'postgres' ? 'postgres' : 'sqlite';
    else if (k === 'rate' || k === 'seconds' || k === 'convs' || k === 'stored') a[k] = Number(v);
    else if (k === 'warmup') a.warmupSeconds = Number(v);
    else if (k === 'sweep') a.sweep = v === '1' || v === 'true';
    else if (k === 'sweep-rate') a.sweepRate = Number(v);
    else throw new Error(`unknown option --${k} (--rate, --seconds, --convs, --warmup, --stored, --synchronous, --engine, --sweep, --sweep-rate)`);
  }
  return a;
}

function procIo(): { wchar: number; syscw: number; syscr: number } {
  const t = readFileSync('/proc/self/io', 'utf8');
  const get = (k: string): number => Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(t)?.[1] ?? 0);
  return { wchar: get('wchar'), syscw: get('syscw'), syscr: get('syscr') };
}

async function seed(store: Store, convs: number): Promise<string[][]> {
  const T0 = Date.now();
  const pairs: string[][] = [];
  for (let i = 0; i < convs; i++) {
    const a = `u${2 * i}`;
    const b = `u${2 * i + 1}`;
    for (const id of [a, b]) await store.users.create({ id, username: id, displayName: id, createdAt: T0, passwordHash: 'x' });
    const { conversation } = await store.conversations.create({
      id: `c${i}`,
      kind: 'direct',
      members: [
        { userId: a, role: 'member' },
        { userId: b, role: 'member' },
      ],
      at: T0,
    });
    pairs.push([conversation.id, a, b]);
  }
  return pairs;
}

const BODY = 'x'.repeat(64);

/** CPU seconds used so far by every process of the PostgreSQL server (its user's processes), or NaN when /proc does not tell. */
function postgresCpuSeconds(): number {
  const hz = 100;
  let uid: number;
  try {
    uid = statSync('/var/lib/postgresql').uid;
  } catch {
    return NaN;
  }
  let ticks = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (statSync(`/proc/${pid}`).uid !== uid) continue;
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      ticks += Number(rest[11]) + Number(rest[12]);
    } catch {
      // the process ended meanwhile
    }
  }
  return ticks / hz;
}

/** Counters an engine may have: the SQLite store's group commits, the PostgreSQL store's batches. */
function commitCount(store: Store): number {
  const s = (store as { stats?: () => { commits?: number; batches?: number } }).stats?.();
  return s?.commits ?? s?.batches ?? 0;
}

/** What the store's checkpointer counts (engines/sqlite/checkpointer.ts), when it has one. */
interface CheckpointCounters {
  checkpoints: number;
  restarts: number;
  longestMs: number;
  longestGateMs: number;
}

/** Runs one retention sweep with a 7-day default over the whole store, as a node's timer would. */
async function sweepNow(store: Store, eventsPerSec: number): Promise<{ events: number; conversations: number; ms: number }> {
  const bus = new MemoryBus();
  const retention = new RetentionService(store, new MembershipCache(store.conversations), new Fanout(bus), { defaultDays: 7, intervalMs: 0, ...(eventsPerSec > 0 ? { eventsPerSec } : {}) }, {
    onError: (err) => process.stderr.write(`sweep failed: ${String(err)}\n`),
  });
  const t0 = performance.now();
  const r = await retention.sweepOnce();
  const ms = performance.now() - t0;
  await retention.close();
  await bus.close();
  return { ...r, ms };
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'parley-micro-'));
  const path = join(dir, 'parley.db');
  const pgUrl = process.env.PARLEY_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const pgSchema = `parley_micro_${process.pid}`;
  const store: Store =
    args.engine === 'postgres'
      ? await openPostgresStore({ url: pgUrl, schema: pgSchema })
      : openSqliteStore({ path, synchronous: args.synchronous });
  let seq = 0;
  try {
    const pairs = await seed(store, args.convs);
    const append = (i: number, at = Date.now()): Promise<unknown> => {
      const [conv, a, b] = pairs[i % pairs.length] as [string, string, string];
      const n = ++seq;
      return store.events.append({
        kind: 'message.created',
        conversationId: conv,
        actorId: n % 2 ? a : b,
        at,
        message: { id: `m${n.toString().padStart(12, '0')}`, clientId: `k${n}`, body: BODY },
      });
    };
    if (args.stored > 0) {
      for (let done = 0; done < args.stored; ) {
        const n = Math.min(1000, args.stored - done);
        const at = args.sweep ? Date.now() - 30 * DAY_MS : Date.now();
        await Promise.all(Array.from({ length: n }, (_, i) => append(done + i, at)));
        done += n;
      }
      process.stdout.write(`stored ${args.stored} messages\n`);
      // Measure the steady state: the search index holds what was stored, as it would after a while in service.
      const t = performance.now();
      await store.search.indexed();
      process.stdout.write(`search index caught up in ${(performance.now() - t).toFixed(0)} ms\n`);
    }

    const run = async (seconds: number, measure: boolean): Promise<void> => {
      const hist = new Histogram();
      const loop = monitorEventLoopDelay({ resolution: 1 });
      const pending = new Set<Promise<unknown>>();
      const total = Math.round(args.rate * seconds);
      const io0 = procIo();
      const cpu0 = process.cpuUsage();
      const threads0 = threadCpuMs(process.pid);
      const commits0 = commitCount(store);
      const pg0 = args.engine === 'postgres' ? postgresCpuSeconds() : NaN;
      const t0 = performance.now();
      const sweep = measure && args.sweep ? sweepNow(store, args.sweepRate) : undefined;
      let sent = 0;
      let maxTick = 0;
      let lastTick = t0;
      loop.enable();
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          const now = performance.now();
          maxTick = Math.max(maxTick, now - lastTick);
          lastTick = now;
          const due = Math.min(total, Math.floor(((now - t0) / 1000) * args.rate));
          for (; sent < due; sent++) {
            const at = performance.now();
            const p = append(sent).then(() => hist.record((performance.now() - at) * 1000));
            pending.add(p);
            void p.finally(() => pending.delete(p));
          }
          if (sent >= total) {
            clearInterval(timer);
            resolve();
          }
        }, 1);
      });
      await Promise.all(pending);
      const swept = await sweep;
      loop.disable();
      const wall = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const threads = threadCpuDelta(threads0, threadCpuMs(process.pid));
      const io = procIo();
      const commits = commitCount(store) - commits0;
      const pgCpu = args.engine === 'postgres' ? postgresCpuSeconds() - pg0 : NaN;
      // Optional: the same script also measures an older store (a checkout of an earlier commit) that has no checkpointer.
      const ck = (store as { checkpoints?: () => CheckpointCounters | undefined }).checkpoints?.();
      if (!measure) return;
      const us = (cpu.user + cpu.system) / total;
      const wal = (() => {
        try {
          return statSync(`${path}-wal`).size;
        } catch {
          return 0;
        }
      })();
      process.stdout.write(
        [
          `rate ${args.rate}/s × ${seconds} s over ${args.convs} conversations (${args.engine}${args.engine === 'sqlite' ? `, ${args.synchronous}` : ''}):`,
          ...(Number.isNaN(pgCpu) ? [] : [`  PostgreSQL server cpu ${((pgCpu * 1e6) / total).toFixed(1)} µs/append, ${((100 * pgCpu * 1000) / wall).toFixed(0)}% of a core`]),
          `  this process cpu ${us.toFixed(1)} µs/append (user ${(cpu.user / total).toFixed(1)}, sys ${(cpu.system / total).toFixed(1)}), ${((100 * (cpu.user + cpu.system)) / 1000 / wall).toFixed(0)}% of a core`,
          `  by thread (ms): ${Object.entries(threads).map(([name, ms]) => `${name} ${ms} (${((ms * 1000) / total).toFixed(1)} µs/append)`).join(', ')}`,
          `  append latency p50 ${(hist.percentile(0.5) / 1000).toFixed(2)} p99 ${(hist.percentile(0.99) / 1000).toFixed(2)} max ${(hist.max / 1000).toFixed(2)} ms`,
          `  event loop: longest gap between 1 ms ticks ${maxTick.toFixed(1)} ms, delay p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms`,
          ...(swept ? [`  retention sweep during the run: ${swept.events} events of ${swept.conversations} conversations deleted in ${swept.ms.toFixed(0)} ms (${((swept.events * 1000) / swept.ms).toFixed(0)}/s)`] : []),
          `  commits ${commits} (${(total / Math.max(1, commits)).toFixed(1)} appends each)`,
          `  checkpoints so far: ${ck ? `${ck.checkpoints} in the worker (longest ${ck.longestMs.toFixed(1)} ms), WAL started over ${ck.restarts} times (gate closed at most ${ck.longestGateMs.toFixed(1)} ms)` : 'none (SQLite automatic)'}`,
          `  written ${((io.wchar - io0.wchar) / total).toFixed(0)} B/append in ${((io.syscw - io0.syscw) / total).toFixed(2)} write calls/append, ${((io.syscr - io0.syscr) / total).toFixed(2)} read calls/append; WAL file now ${(wal / 2 ** 20).toFixed(1)} MiB`,
        ].join('\n') + '\n',
      );
    };
    await run(args.warmupSeconds, false);
    await run(args.seconds, true);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    if (args.engine === 'postgres') {
      const c = new pg.Client({ connectionString: pgUrl });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${pgSchema} CASCADE`);
      await c.end();
    }
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
