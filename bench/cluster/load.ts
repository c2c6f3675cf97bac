/**
 * Open-loop 1:1 load across several servers: generator workers bound to one
 * endpoint each, clients placed so that the two clients of every pair sit on
 * different servers (all cross-server traffic) or, with one server, on the
 * same one. Steps and the ladder follow bench/workloads.ts's direct workload
 * (same counters, same pass rule) with CPU accounted per process group.
 */
import { Worker, type StatsResult } from '../gen/commands.js';
import type { ClientSpec } from '../gen/client.js';
import type { System } from '../gen/wire.js';
import { Histogram, summarize, type LatencySummary } from '../lib/histogram.js';
import { coreBusyPct, coreTimes, cpuMs } from '../lib/proc.js';
import type { Progress } from '../lib/progress.js';
import type { Endpoint } from './nodes.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/**
 * Which worker holds each client, and which endpoint each worker talks to.
 * Client 2k and 2k+1 form a pair; worker w holds the clients with idx % workers
 * === w, so with two workers on two endpoints every pair spans both endpoints.
 */
export function placement(clients: number, endpoints: number, workers: number): { blocks: number[][]; endpointOf: number[] } {
  if (workers < 1 || endpoints < 1) throw new Error('need at least one worker and one endpoint');
  const blocks: number[][] = Array.from({ length: workers }, () => []);
  for (let i = 0; i < clients; i++) (blocks[i % workers] as number[]).push(i);
  return { blocks, endpointOf: Array.from({ length: workers }, (_, w) => w % endpoints) };
}

/** The partner of client i in the pair layout above. */
export function partner(i: number): number {
  return i % 2 === 0 ? i + 1 : i - 1;
}

/** Groups of processes whose CPU a step reports separately. */
export type PidGroups = Record<string, () => number[]>;

export interface Rig {
  system: System;
  workers: Worker[];
  blocks: number[][];
  /** Endpoint index of each worker. */
  endpointOf: number[];
  /** CPU accounting: 'servers' is the system under test; others (nginx, redis, postgres) are reported beside it. */
  pids: PidGroups;
}

export async function startRig(system: System, endpoints: readonly Endpoint[], clients: number, nWorkers: number, genCore: number | null, pids: PidGroups): Promise<Rig> {
  const { blocks, endpointOf } = placement(clients, endpoints.length, nWorkers);
  const workers: Worker[] = [];
  for (let i = 0; i < nWorkers; i++) workers.push(new Worker(i, genCore));
  await Promise.all(
    workers.map((w, i) => {
      const ep = endpoints[endpointOf[i] as number] as Endpoint;
      return w.call({ cmd: 'init', system, wsUrl: ep.wsUrl, httpUrl: ep.httpUrl }, 30_000);
    }),
  );
  return { system, workers, blocks, endpointOf, pids };
}

export async function stopRig(rig: Rig): Promise<void> {
  await Promise.all(rig.workers.map((w) => w.stop()));
}

export interface ConnectSummary {
  connected: number;
  failed: number;
  /** Wall time until the slowest worker finished. */
  ms: number;
  genCpuPct: number;
  errors: Record<string, number>;
}

/** Connects the rig's clients (those `only` accepts), every worker in parallel. */
export async function connectRig(
  rig: Rig,
  spec: (idx: number) => ClientSpec,
  gen: number,
  only: (idx: number) => boolean = () => true,
  concurrency = 200,
  timeoutMs = 120_000,
): Promise<ConnectSummary> {
  const parts = await Promise.all(
    rig.workers.map((w, i) => w.call({ cmd: 'connect', specs: (rig.blocks[i] ?? []).filter(only).map(spec), gen, concurrency, timeoutMs }, timeoutMs + 30_000)),
  );
  const errors: Record<string, number> = {};
  for (const p of parts) for (const [k, v] of Object.entries(p.errors)) errors[k] = (errors[k] ?? 0) + v;
  return {
    connected: parts.reduce((a, p) => a + p.connected, 0),
    failed: parts.reduce((a, p) => a + p.failed, 0),
    ms: Math.max(...parts.map((p) => p.ms)),
    genCpuPct: Math.max(...parts.map((p) => p.genCpuPct)),
    errors,
  };
}

export async function routeRig(rig: Rig, target: (idx: number) => string): Promise<void> {
  await Promise.all(rig.workers.map((w, i) => w.call({ cmd: 'route', routes: (rig.blocks[i] ?? []).map((idx) => ({ idx, target: target(idx), room: false })) }, 30_000)));
}

export async function closeRig(rig: Rig): Promise<void> {
  await Promise.all(rig.workers.map((w) => w.call({ cmd: 'close' }, 60_000)));
}

export interface StepResult {
  rate: number;
  durationMs: number;
  sent: number;
  acked: number;
  delivered: number;
  expected: number;
  lost: number;
  errors: number;
  errorCodes: Record<string, number>;
  stale: number;
  sentPerSec: number;
  deliveredPerSec: number;
  latency: LatencySummary;
  /** CPU of each process group over the load window, % of one core. */
  cpuPct: Record<string, number>;
  /** Server CPU (all servers together) per delivered message, over load + drain. */
  serverCpuUsPerMsg: number;
  genCpuPct: number;
  coreBusyPct: number[];
  /** Core time not explained by the groups above or the generator: other tenants. */
  othersPct: number;
  behind: number;
  pass: boolean;
  attempts?: number;
}

function groupCpu(pids: PidGroups): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, f] of Object.entries(pids)) out[k] = f().reduce((a, p) => a + cpuMs(p), 0);
  return out;
}

async function gather(rig: Rig): Promise<{ total: Omit<StatsResult, 'hist' | 'step' | 'connected'>; hist: Histogram }> {
  const parts = await Promise.all(rig.workers.map((w) => w.call({ cmd: 'stats' }, 10_000)));
  const hist = new Histogram();
  const total = { sent: 0, acked: 0, delivered: 0, stale: 0, echo: 0, errors: 0, errorCodes: {} as Record<string, number>, closes: {} as Record<string, number> };
  for (const p of parts) {
    hist.merge(p.hist);
    total.sent += p.sent;
    total.acked += p.acked;
    total.delivered += p.delivered;
    total.stale += p.stale;
    total.echo += p.echo;
    total.errors += p.errors;
    for (const [k, v] of Object.entries(p.errorCodes)) total.errorCodes[k] = (total.errorCodes[k] ?? 0) + v;
    for (const [k, v] of Object.entries(p.closes)) total.closes[k] = (total.closes[k] ?? 0) + v;
  }
  return { total, hist };
}

/** One open-loop step at `rate` msg/s over every client; a step passes with zero loss, no errors, every ack, p99 < limit. */
export async function step(rig: Rig, stepNo: number, rate: number, durationMs: number, drainMs: number, p99LimitMs = 50): Promise<StepResult> {
  await Promise.all(rig.workers.map((w) => w.call({ cmd: 'reset', step: stepNo }, 10_000)));
  const all = rig.blocks.reduce((a, b) => a + b.length, 0);
  // PIDs are read once per step: PostgreSQL backends of the nodes' pools live as long as the nodes.
  const frozen: PidGroups = {};
  for (const [k, f] of Object.entries(rig.pids)) {
    const list = f();
    frozen[k] = () => list;
  }
  const genPids = rig.workers.map((w) => w.proc.pid);
  const cpu0 = groupCpu(frozen);
  const gen0 = genPids.reduce((a, p) => a + cpuMs(p), 0);
  const cores0 = coreTimes();
  const t0 = performance.now();
  const loads = await Promise.all(
    rig.workers.map((w, i) => w.call({ cmd: 'load', step: stepNo, rate: (rate * (rig.blocks[i]?.length ?? 0)) / all, durationMs, senders: null }, durationMs + 30_000)),
  );
  const loadMs = performance.now() - t0;
  const cpuLoad = groupCpu(frozen);
  const genMs = genPids.reduce((a, p) => a + cpuMs(p), 0) - gen0;
  const busy = coreBusyPct(cores0, coreTimes());
  const sent = loads.reduce((a, l) => a + l.sent, 0);
  const deadline = Date.now() + drainMs;
  let g = await gather(rig);
  while (Date.now() < deadline && (g.total.delivered < sent || g.total.acked + g.total.errors < sent)) {
    await sleep(100);
    g = await gather(rig);
  }
  const cpu1 = groupCpu(frozen);
  const cpuPct: Record<string, number> = {};
  let explained = genMs;
  for (const k of Object.keys(cpu0)) {
    const d = (cpuLoad[k] as number) - (cpu0[k] as number);
    cpuPct[k] = round((d / loadMs) * 100, 1);
    explained += d;
  }
  const lat = summarize(g.hist);
  const lost = Math.max(0, sent - g.total.delivered);
  const loadSec = Math.max(loadMs, durationMs) / 1000;
  const serverMs = (cpu1.servers ?? 0) - (cpu0.servers ?? 0);
  return {
    rate,
    durationMs: Math.round(loadMs),
    sent,
    acked: g.total.acked,
    delivered: g.total.delivered,
    expected: sent,
    lost,
    errors: g.total.errors,
    errorCodes: g.total.errorCodes,
    stale: g.total.stale,
    sentPerSec: Math.round(sent / loadSec),
    deliveredPerSec: Math.round(g.total.delivered / loadSec),
    latency: lat,
    cpuPct,
    serverCpuUsPerMsg: g.total.delivered > 0 ? round((serverMs * 1000) / g.total.delivered, 1) : 0,
    genCpuPct: Math.max(...loads.map((l) => l.genCpuPct)),
    coreBusyPct: busy,
    othersPct: round(Math.max(0, busy.reduce((a, b) => a + b, 0) - (explained / loadMs) * 100), 1),
    behind: loads.reduce((a, l) => a + l.behind, 0),
    pass: lost === 0 && g.total.errors === 0 && g.total.acked >= sent && lat.p99Ms < p99LimitMs,
  };
}

export function stepLine(label: string, r: StepResult): string {
  const cpu = Object.entries(r.cpuPct).map(([k, v]) => `${k} ${v}%`).join(' ');
  return `  ${label.padEnd(16)} ${String(r.rate).padStart(6)}/s → ${String(r.deliveredPerSec).padStart(6)} delivered/s  p50 ${r.latency.p50Ms} p99 ${r.latency.p99Ms} max ${r.latency.maxMs} ms  lost ${r.lost} err ${r.errors}  ${cpu}  ${r.serverCpuUsPerMsg} µs/msg  gen ${r.genCpuPct}%  others ${r.othersPct}%`;
}

export interface LadderResult {
  steps: StepResult[];
  /** Highest delivered msg/s of a passing step (zero loss, p99 < 50 ms). */
  maxRate: number;
  stoppedBy: string;
  /** True when the ladder ended at the system's own limit (loss or p99), so maxRate is its capacity and not a lower bound. */
  limitReached: boolean;
}

/** A step whose generator did not send 90% of what was due (starved of CPU, or saturated). */
export function shortSent(r: StepResult, stepMs: number): boolean {
  return r.sent < 0.9 * r.rate * (stepMs / 1000);
}

/**
 * Stepped rates until the first repeated miss. The cores are shared with other
 * tenants, so a step that misses (or whose generator fell behind) is measured
 * again after waiting, bounded, for a quiet machine; the better try is kept.
 */
export async function ladder(
  rig: Rig,
  label: string,
  rates: readonly number[],
  stepMs: number,
  drainMs: number,
  progress: Progress,
  quiet: () => Promise<void> = () => sleep(1000),
  firstStep = 2,
): Promise<LadderResult> {
  const steps: StepResult[] = [];
  let stoppedBy = 'rates exhausted';
  let limitReached = false;
  let stepNo = firstStep;
  for (const rate of rates) {
    progress.note(`${label}: ${rate} msg/s`);
    let r = await step(rig, stepNo++, rate, stepMs, drainMs);
    progress.log(stepLine(label, r));
    if (!r.pass || shortSent(r, stepMs)) {
      await quiet();
      progress.note(`${label}: ${rate} msg/s (again)`);
      const again = await step(rig, stepNo++, rate, stepMs, drainMs);
      progress.log(`${stepLine(label, again)}  (repeat)`);
      const better = (again.pass && !shortSent(again, stepMs)) || (!r.pass && again.pass) || again.deliveredPerSec > r.deliveredPerSec;
      r = better ? { ...again, attempts: 2 } : { ...r, attempts: 2 };
    }
    steps.push(r);
    if (r.lost > 0 || r.errors > 0) {
      stoppedBy = `loss at ${rate}/s`;
      limitReached = true;
      break;
    }
    if (r.latency.p99Ms >= 50) {
      stoppedBy = `p99 ≥ 50 ms at ${rate}/s`;
      limitReached = true;
      break;
    }
    if (shortSent(r, stepMs) || r.genCpuPct > 95) {
      stoppedBy = r.genCpuPct > 90 ? `generator saturated at ${rate}/s (gen CPU ${r.genCpuPct}%)` : `generator fell behind at ${rate}/s twice (gen CPU ${r.genCpuPct}%, other tenants ${r.othersPct}% of a core)`;
      break;
    }
    await sleep(300);
  }
  const passing = steps.filter((x) => x.pass);
  return { steps, maxRate: passing.length ? Math.max(...passing.map((x) => x.deliveredPerSec)) : 0, stoppedBy, limitReached };
}

/** Waits (bounded) until the given processes together use under 5% of a core over half a second. */
export async function settle(pids: () => number[], maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  const total = (): number => pids().reduce((a, p) => a + cpuMs(p), 0);
  let prev = total();
  do {
    await sleep(500);
    const now = total();
    if (now - prev < 25) return;
    prev = now;
  } while (Date.now() < deadline);
}
