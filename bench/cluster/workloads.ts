/**
 * The cluster workloads: 1:1 throughput on one node vs two nodes (every pair
 * split across them) vs two Socket.IO processes on the Redis adapter, one step
 * through nginx, idle connections on one node, and recovery after kill -9.
 * Each starts its own processes and stops them by PID whatever happens.
 */
import { fileURLToPath } from 'node:url';
import { registerUsers, Worker } from '../gen/commands.js';
import type { ClientSpec } from '../gen/client.js';
import type { BenchUser } from '../gen/parley-http.js';
import { nowUs } from '../gen/wire.js';
import { Histogram, summarize, type LatencySummary } from '../lib/histogram.js';
import { affinity, cpuMs, rssKiB, stopProc, waitQuiet, type Proc } from '../lib/proc.js';
import type { Progress } from '../lib/progress.js';
import { RemoteProfiler } from '../lib/inspector.js';
import { summarizeProfile, type ProfileSummary } from '../lib/cpuprofile.js';
import { freePort, type RunningServer } from '../lib/systems.js';
import { childPids, startNginx, startParleyNode, startSocketIo, type Endpoint, type ParleyNode } from './nodes.js';
import { closeRig, connectRig, ladder, partner, round, routeRig, settle, sleep, startRig, step, stepLine, stopRig, type LadderResult, type PidGroups, type Rig, type StepResult } from './load.js';
import { servicePids, type Isolation } from './services.js';
import { IpcChild } from './ipc.js';
import type { SdkCommand, SdkResults } from './sdk-commands.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ClusterOptions {
  quick: boolean;
  serverCore: number | null;
  genCore: number | null;
  clients: number;
  rates: number[];
  stepMs: number;
  warmupMs: number;
  drainMs: number;
  idleN: number;
  recoveryClients: number;
  recoveryNodes: number;
  /** SDK reconnect backoff floors, one recovery run each (the SDK's default is 500 ms). */
  backoffMinMs: number[];
  /** Before repeating a missed step: wait up to this long for other tenants to leave the cores idle. */
  retryQuietMs: number;
  profile: boolean;
  profileDir: string;
  workloads: ClusterWorkload[];
  perWorker: number;
}

export type ClusterWorkload = 'direct' | 'idle' | 'recovery';
export const CLUSTER_WORKLOADS: readonly ClusterWorkload[] = ['direct', 'idle', 'recovery'];

export interface ClusterCtx {
  opts: ClusterOptions;
  progress: Progress;
  iso: Isolation;
  dataDir: string;
  runId: string;
  /** Users registered in the run's schema, index = client index. */
  users: BenchUser[];
  /** Conversation of pair k (clients 2k and 2k+1). */
  pairConvs: string[];
  /** Where each process really ran, from /proc. */
  affinity: Record<string, string>;
  profiles: Record<string, ProfileSummary>;
  nodeSeq: number;
}

function nextNodeId(ctx: ClusterCtx): string {
  return `b${ctx.runId}-n${++ctx.nodeSeq}`;
}

async function startNodes(ctx: ClusterCtx, n: number, inspectFirst = false): Promise<{ nodes: ParleyNode[]; inspectPort?: number }> {
  const nodes: ParleyNode[] = [];
  const inspectPort = inspectFirst ? await freePort() : undefined;
  try {
    for (let i = 0; i < n; i++) {
      const node = await startParleyNode(nextNodeId(ctx), ctx.iso, ctx.dataDir, ctx.opts.serverCore, i === 0 ? inspectPort : undefined);
      ctx.affinity[`parley node ${i + 1}`] = affinity(node.pid);
      nodes.push(node);
    }
  } catch (e) {
    await Promise.all(nodes.map((x) => stopProc(x.proc, 10_000)));
    throw e;
  }
  return { nodes, inspectPort };
}

const stopNodes = (procs: readonly Proc[]): Promise<unknown> => Promise.all(procs.map((p) => stopProc(p, 10_000)));

/** Shared-service CPU is reported beside the servers': on a cluster, Redis and PostgreSQL are part of the cost. */
function servicesGroups(): PidGroups {
  return { redis: () => servicePids().redis, postgres: () => servicePids().postgres };
}

// ---------------------------------------------------------------- set-up

/** Registers users up to n and the pair conversations of the first `pairsOf` users, through one node of the run's schema. */
export async function ensureUsers(ctx: ClusterCtx, n: number, pairsOf: number): Promise<void> {
  if (ctx.users.length >= n && ctx.pairConvs.length * 2 >= pairsOf) return;
  const { nodes } = await startNodes(ctx, 1);
  const node = nodes[0] as ParleyNode;
  const nWorkers = n - ctx.users.length > 2000 ? 2 : 1;
  const workers: Worker[] = [];
  try {
    for (let i = 0; i < nWorkers; i++) workers.push(new Worker(i, ctx.opts.genCore));
    await Promise.all(workers.map((w) => w.call({ cmd: 'init', system: 'parley', wsUrl: node.wsUrl, httpUrl: node.httpUrl }, 30_000)));
    await registerUsers(workers, ctx.users, n, `c${ctx.runId}_`, 600_000, (done, t0) =>
      ctx.progress.note(`registered ${done}/${n} users (${Math.round(done / ((performance.now() - t0) / 1000))}/s)`),
    );
    const want = Math.floor(pairsOf / 2);
    if (ctx.pairConvs.length < want) {
      ctx.progress.note(`creating ${want - ctx.pairConvs.length} direct conversations`);
      const pairs = [];
      for (let k = ctx.pairConvs.length; k < want; k++) pairs.push({ token: (ctx.users[2 * k] as BenchUser).token, peerId: (ctx.users[2 * k + 1] as BenchUser).userId });
      const { ids } = await (workers[0] as Worker).call({ cmd: 'directConvs', pairs }, 600_000);
      ctx.pairConvs.push(...ids);
    }
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await stopNodes([node.proc]);
  }
}

function parleySpec(ctx: ClusterCtx): (idx: number) => ClientSpec {
  return (idx) => {
    const u = ctx.users[idx];
    if (!u) throw new Error(`no user ${idx}`);
    return { idx, userId: u.userId, token: u.token };
  };
}

// ---------------------------------------------------------------- direct

export type DirectSystem = 'parley1' | 'parley2' | 'sio2' | 'sio1';

export const DIRECT_LABELS: Record<DirectSystem, string> = {
  parley1: 'Parley, 1 node',
  parley2: 'Parley, 2 nodes',
  sio2: 'Socket.IO ×2 + Redis',
  sio1: 'Socket.IO ×1 + Redis',
};

export interface DirectClusterResult extends LadderResult {
  system: DirectSystem;
  servers: number;
  clients: number;
  /** Pairs whose two clients sit on different servers. */
  crossPairs: number;
  warmup: StepResult;
}

export interface NginxStepResult extends StepResult {
  /** The 2-node Parley cluster reached only through nginx: pairs land wherever least_conn puts them. */
  note: string;
}

async function profiledLadder(ctx: ClusterCtx, key: string, inspectPort: number | undefined, run: () => Promise<LadderResult>): Promise<LadderResult> {
  if (!inspectPort) return run();
  const prof = await RemoteProfiler.attach(inspectPort);
  try {
    await prof.start();
    const out = await run();
    const p = await prof.stop();
    mkdirSync(ctx.opts.profileDir, { recursive: true });
    const file = join(ctx.opts.profileDir, `${key}.cpuprofile`);
    writeFileSync(file, JSON.stringify(p));
    ctx.profiles[key] = summarizeProfile(file, 25, p);
    return out;
  } finally {
    prof.close();
  }
}

/** One system's ladder. Clients 2k and 2k+1 talk to each other; with two servers they are always on different ones. */
export async function directCluster(ctx: ClusterCtx, system: DirectSystem): Promise<{ result: DirectClusterResult; nginx?: NginxStepResult }> {
  const { opts } = ctx;
  const n = opts.clients - (opts.clients % 2);
  const isParley = system.startsWith('parley');
  const serverCount = system.endsWith('2') ? 2 : 1;
  if (isParley) await ensureUsers(ctx, n, n);
  let procs: Proc[];
  let endpoints: Endpoint[];
  let inspectPort: number | undefined;
  if (isParley) {
    const started = await startNodes(ctx, serverCount, opts.profile);
    procs = started.nodes.map((x) => x.proc);
    endpoints = started.nodes;
    inspectPort = started.inspectPort;
  } else {
    const sio: RunningServer[] = await startSocketIo(serverCount, ctx.iso.redisUrl, opts.serverCore);
    sio.forEach((s, i) => (ctx.affinity[`socket.io ${i + 1}`] = affinity(s.pid)));
    procs = sio.map((s) => s.proc);
    endpoints = sio.map((s) => ({ wsUrl: s.wsUrl, httpUrl: s.httpUrl }));
  }
  const serverPids = procs.map((p) => p.pid);
  const label = DIRECT_LABELS[system];
  let rig: Rig | null = null;
  try {
    rig = await startRig(isParley ? 'parley' : 'sio', endpoints, n, 2, opts.genCore, { servers: () => serverPids, ...servicesGroups() });
    ctx.progress.note(`${label}: connecting ${n}`);
    const spec = isParley ? parleySpec(ctx) : (idx: number): ClientSpec => ({ idx, userId: `u${idx}` });
    const c = await connectRig(rig, spec, 0);
    if (c.failed > 0) throw new Error(`${c.failed} of ${n} clients failed to connect: ${JSON.stringify(c.errors)}`);
    await routeRig(rig, isParley ? (idx) => ctx.pairConvs[Math.floor(idx / 2)] as string : (idx) => `u${partner(idx)}`);
    await settle(() => serverPids, 30_000);
    ctx.progress.note(`${label}: warm-up`);
    // V8 optimises the hot paths during the first seconds of traffic; those are not measured.
    const warmup = await step(rig, 1, Math.min(1000, Math.max(...opts.rates)), opts.warmupMs, Math.max(opts.drainMs, 10_000), Infinity);
    ctx.progress.log(`${stepLine(label, warmup)}  (warm-up)`);
    const r = await profiledLadder(ctx, `direct-${system}`, inspectPort, () =>
      ladder(rig as Rig, label, opts.rates, opts.stepMs, opts.drainMs, ctx.progress, async () => {
        const q = await waitQuiet(opts.retryQuietMs);
        if (q.waitedMs > 1500) ctx.progress.log(`  (waited ${Math.round(q.waitedMs / 1000)} s for other tenants before the repeat)`);
      }),
    );
    await closeRig(rig);
    const crossPairs = serverCount === 2 ? n / 2 : 0;
    const result: DirectClusterResult = { ...r, system, servers: serverCount, clients: n, crossPairs, warmup };
    let nginx: NginxStepResult | undefined;
    if (system === 'parley2') nginx = await nginxStep(ctx, endpoints as ParleyNode[], serverPids, r, n);
    return { result, nginx };
  } finally {
    if (rig) await stopRig(rig);
    await stopNodes(procs);
  }
}

/** One step through nginx on the running 2-node cluster, at the highest rate the direct ladder passed (or its first). */
async function nginxStep(ctx: ClusterCtx, nodes: ParleyNode[], serverPids: number[], r: LadderResult, n: number): Promise<NginxStepResult> {
  const { opts } = ctx;
  const lb = await startNginx(nodes, ctx.dataDir, opts.serverCore);
  ctx.affinity.nginx = affinity(lb.pid);
  let rig: Rig | null = null;
  try {
    const passed = r.steps.filter((x) => x.pass).map((x) => x.rate);
    const rate = passed.length ? Math.max(...passed) : (opts.rates[0] as number);
    const nginxPids = [lb.pid, ...childPids(lb.pid)];
    rig = await startRig('parley', [lb], n, 2, opts.genCore, { servers: () => serverPids, nginx: () => nginxPids, ...servicesGroups() });
    ctx.progress.note(`through nginx: connecting ${n}`);
    const c = await connectRig(rig, parleySpec(ctx), 3);
    if (c.failed > 0) throw new Error(`${c.failed} of ${n} clients failed to connect through nginx: ${JSON.stringify(c.errors)}`);
    await routeRig(rig, (idx) => ctx.pairConvs[Math.floor(idx / 2)] as string);
    await settle(() => serverPids, 30_000);
    await step(rig, 100, Math.min(rate, 2000), opts.warmupMs, opts.drainMs, Infinity);
    ctx.progress.note(`through nginx: ${rate} msg/s`);
    let s = await step(rig, 101, rate, opts.stepMs, opts.drainMs);
    ctx.progress.log(stepLine('via nginx', s));
    if (!s.pass) {
      await sleep(1000);
      const again = await step(rig, 102, rate, opts.stepMs, opts.drainMs);
      ctx.progress.log(`${stepLine('via nginx', again)}  (repeat)`);
      s = again.pass || again.deliveredPerSec > s.deliveredPerSec ? { ...again, attempts: 2 } : { ...s, attempts: 2 };
    }
    await closeRig(rig);
    return { ...s, note: `2 Parley nodes behind nginx (least_conn); clients connect to nginx, so a pair is on one node or split by chance` };
  } finally {
    if (rig) await stopRig(rig);
    await stopProc(lb.proc, 5000);
  }
}

// ---------------------------------------------------------------- idle

export interface IdleClusterResult {
  connections: number;
  failed: number;
  connectMs: number;
  connectsPerSec: number;
  rssBeforeKiB: number;
  rssMidKiB: number;
  rssAfterKiB: number;
  kbPerConn: number;
  kbPerConnSecondHalf: number;
  serverCpuUsPerConn: number;
  redisCpuMs: number;
  postgresCpuMs: number;
  genCpuPct: number;
  workers: number;
  errors: Record<string, number>;
}

async function steadyRss(pid: number): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < 5; i++) {
    xs.push(rssKiB(pid));
    await sleep(250);
  }
  xs.sort((a, b) => a - b);
  return xs[2] as number;
}

/** N authenticated idle connections on one cluster node, spread over generator processes and 64 source addresses. */
export async function idleCluster(ctx: ClusterCtx): Promise<IdleClusterResult> {
  const n = ctx.opts.idleN;
  await ensureUsers(ctx, n, 0);
  const { nodes } = await startNodes(ctx, 1);
  const node = nodes[0] as ParleyNode;
  let rig: Rig | null = null;
  try {
    const nWorkers = Math.max(1, Math.ceil(n / ctx.opts.perWorker));
    rig = await startRig('parley', [node], n, nWorkers, ctx.opts.genCore, { servers: () => [node.pid] });
    const spec = parleySpec(ctx);
    const warm = Math.min(200, Math.ceil(n / 10));
    ctx.progress.note(`idle: warm-up wave of ${warm}`);
    await connectRig(rig, spec, 2, (i) => i < warm);
    await closeRig(rig);
    await sleep(1000);
    await settle(() => [node.pid], 10_000);
    const before = await steadyRss(node.pid);
    const half = Math.floor(n / 2);
    const svc0 = servicePids();
    const svcCpu = (pids: number[]): number => pids.reduce((a, p) => a + cpuMs(p), 0);
    const redis0 = svcCpu(svc0.redis);
    const pg0 = svcCpu(svc0.postgres);
    ctx.progress.note(`idle: connecting ${half}`);
    let cpu = cpuMs(node.pid);
    const a = await connectRig(rig, spec, 0, (i) => i < half);
    let cpuConnect = cpuMs(node.pid) - cpu;
    await sleep(500);
    const mid = await steadyRss(node.pid);
    ctx.progress.note(`idle: connecting ${n - half} more`);
    cpu = cpuMs(node.pid);
    const b = await connectRig(rig, spec, 0, (i) => i >= half);
    cpuConnect += cpuMs(node.pid) - cpu;
    const redisCpu = svcCpu(svc0.redis) - redis0;
    const pgCpu = svcCpu(svc0.postgres) - pg0;
    await sleep(1000);
    await settle(() => [node.pid], 15_000);
    const after = await steadyRss(node.pid);
    await closeRig(rig);
    const connected = a.connected + b.connected;
    const connectMs = a.ms + b.ms;
    const errors: Record<string, number> = { ...a.errors };
    for (const [k, v] of Object.entries(b.errors)) errors[k] = (errors[k] ?? 0) + v;
    const res: IdleClusterResult = {
      connections: connected,
      failed: n - connected,
      connectMs: Math.round(connectMs),
      connectsPerSec: Math.round(connected / (connectMs / 1000)),
      rssBeforeKiB: before,
      rssMidKiB: mid,
      rssAfterKiB: after,
      kbPerConn: connected ? round((after - before) / connected) : 0,
      kbPerConnSecondHalf: b.connected ? round((after - mid) / b.connected) : 0,
      serverCpuUsPerConn: connected ? round((cpuConnect * 1000) / connected, 1) : 0,
      redisCpuMs: Math.round(redisCpu),
      postgresCpuMs: Math.round(pgCpu),
      genCpuPct: Math.max(a.genCpuPct, b.genCpuPct),
      workers: nWorkers,
      errors,
    };
    ctx.progress.log(
      `  idle on 1 cluster node: ${connected}/${n} in ${round(connectMs / 1000)} s (${res.connectsPerSec}/s), ${res.kbPerConn} KB/conn (second half ${res.kbPerConnSecondHalf}), RSS ${before} → ${mid} → ${after} KiB, ${res.serverCpuUsPerConn} µs CPU/connect, Redis ${res.redisCpuMs} ms, PostgreSQL ${res.postgresCpuMs} ms`,
    );
    return res;
  } finally {
    if (rig) await stopRig(rig);
    await stopNodes([node.proc]);
  }
}

// ---------------------------------------------------------------- recovery

export interface RecoveryResult {
  nodes: number;
  clients: number;
  killedNode: string;
  /** Clients whose socket the kill cut (the killed node's). */
  dropped: number;
  resynced: number;
  /** Kill → last dropped client synced again: the number. */
  lastResyncedMs: number;
  /** Per dropped client, kill → synced again. */
  perClient: LatencySummary;
  /** Kill → the first and last client noticed the lost socket. */
  detectFirstMs: number;
  detectLastMs: number;
  /** Kill → every client holds both messages of the round sent right after the kill (its own and its partner's). */
  allMessagesMs: number | null;
  missingMessages: number;
  backoffMinMs: number;
  setupMs: number;
  sdkCpuPct: number;
  nodeCpuMs: Record<string, number>;
}

const SDK_WORKER = fileURLToPath(new URL('./sdk-worker.ts', import.meta.url));

/**
 * ~1,000 SDK clients through nginx on 2-3 nodes, in direct pairs; one node is
 * killed with SIGKILL and right after it every client sends one message to its
 * partner. Measured: from the kill to the last cut-off client synced again,
 * and to every client holding both messages of its conversation.
 */
export async function recovery(ctx: ClusterCtx, backoffMinMs: number): Promise<RecoveryResult> {
  const { opts } = ctx;
  const n = opts.recoveryClients - (opts.recoveryClients % 2);
  const { nodes, inspectPort } = await startNodes(ctx, opts.recoveryNodes, opts.profile);
  let lb: Awaited<ReturnType<typeof startNginx>> | null = null;
  let sdk: IpcChild<SdkCommand, SdkResults> | null = null;
  try {
    lb = await startNginx(nodes, ctx.dataDir, opts.serverCore);
    sdk = new IpcChild<SdkCommand, SdkResults>('sdk', SDK_WORKER, opts.genCore);
    ctx.progress.note(`recovery: ${n} SDK clients signing in through nginx`);
    const setup = await sdk.call({ cmd: 'setup', url: lb.httpUrl, count: n, tag: `r${ctx.runId}b${backoffMinMs}`, concurrency: 16, backoffMinMs }, 300_000);
    await settle(() => nodes.map((x) => x.pid), 30_000);
    await sdk.call({ cmd: 'arm' }, 10_000);
    const victim = nodes[1] as ParleyNode;
    const cpu0 = Object.fromEntries(nodes.map((x) => [x.id, cpuMs(x.pid)]));
    ctx.progress.note(`recovery: kill -9 ${victim.id}`);
    // With --profile: node 1 (a survivor) from the kill until every client is back.
    const prof = inspectPort ? await RemoteProfiler.attach(inspectPort) : null;
    await prof?.start();
    const killUs = nowUs();
    process.kill(victim.pid, 'SIGKILL');
    await sdk.call({ cmd: 'sendAll', tag: 'after-kill' }, 10_000);
    const w = await sdk.call({ cmd: 'wait', tag: 'after-kill', timeoutMs: 60_000 }, 90_000);
    if (prof) {
      const p = await prof.stop();
      prof.close();
      mkdirSync(opts.profileDir, { recursive: true });
      const file = join(opts.profileDir, `recovery-${backoffMinMs}.cpuprofile`);
      writeFileSync(file, JSON.stringify(p));
      ctx.profiles[`recovery-${backoffMinMs}-survivor`] = summarizeProfile(file, 25, p);
    }
    const nodeCpuMs = Object.fromEntries(nodes.filter((x) => x !== victim).map((x) => [x.id, Math.round(cpuMs(x.pid) - (cpu0[x.id] as number))]));
    const hist = new Histogram();
    for (const s of w.syncedUs) hist.record(s - killUs);
    const res: RecoveryResult = {
      nodes: nodes.length,
      clients: w.clients,
      killedNode: victim.id,
      dropped: w.dropped,
      resynced: w.resynced,
      lastResyncedMs: w.syncedUs.length ? round((Math.max(...w.syncedUs) - killUs) / 1000, 1) : -1,
      perClient: summarize(hist),
      detectFirstMs: w.lostUs.length ? round((Math.min(...w.lostUs) - killUs) / 1000, 1) : -1,
      detectLastMs: w.lostUs.length ? round((Math.max(...w.lostUs) - killUs) / 1000, 1) : -1,
      allMessagesMs: w.allMessagesUs > 0 ? round((w.allMessagesUs - killUs) / 1000, 1) : null,
      missingMessages: w.missing,
      backoffMinMs,
      setupMs: Math.round(setup.ms),
      sdkCpuPct: w.cpuPct,
      nodeCpuMs,
    };
    ctx.progress.log(
      `  recovery (backoff ${backoffMinMs} ms): kill -9 ${victim.id} of ${nodes.length} with ${n} SDK clients via nginx: ${res.resynced}/${res.dropped} cut-off clients resynced, last ${res.lastResyncedMs} ms after the kill (p50 ${res.perClient.p50Ms} ms), every message in place after ${res.allMessagesMs ?? '—'} ms, missing ${res.missingMessages}`,
    );
    await sdk.call({ cmd: 'stop' }, 10_000).catch(() => undefined);
    return res;
  } finally {
    if (sdk) await sdk.stop();
    if (lb) await stopProc(lb.proc, 5000);
    await stopNodes(nodes.map((x) => x.proc));
  }
}
