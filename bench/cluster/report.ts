/**
 * The cluster bench's results: their shape, the ratios, and the Markdown that
 * goes into docs/cluster-benchmarks.md between two markers (the analysis
 * around them is written by hand and kept).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { ProfileSummary } from '../lib/cpuprofile.js';
import type { StepResult } from './load.js';
import { DIRECT_LABELS, type ClusterOptions, type DirectClusterResult, type DirectSystem, type IdleClusterResult, type NginxStepResult, type RecoveryResult } from './workloads.js';

export interface Outcome<T> {
  result?: T;
  error?: string;
}

export interface ClusterRun {
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: { nproc: number; cpuModel: string; node: string; kernel: string; memGiB: number; redis: string; postgres: string };
  layout: { serverCore: number | null; genCore: number | null; affinity: Record<string, string>; text: string };
  parleyLaunch: string;
  isolation: { schema: string; prefix: string; redisUrl: string; databaseUrl: string; cleanup: string };
  options: ClusterOptions;
  direct: Partial<Record<DirectSystem, Outcome<DirectClusterResult>>>;
  nginx: Outcome<NginxStepResult> | null;
  idle: Outcome<IdleClusterResult> | null;
  /** One run per SDK backoff floor, the SDK's default first. */
  recovery: Outcome<RecoveryResult>[];
  ratios: Ratios;
  profiles: Record<string, ProfileSummary>;
}

export interface Ratios {
  /** 2 Parley nodes ÷ 1 Parley node, highest passing msg/s. */
  parley2OverParley1: number | null;
  /** The issue-5 cluster target: 2 Parley nodes ÷ 2 Socket.IO processes on the Redis adapter (≥ 2 wanted). */
  parley2OverSio2: number | null;
  /** Null when a ladder ended before its system's own limit (its highest rate is then only a lower bound). */
  targetMet: boolean | null;
  caveat: string;
}

/** A ratio of two highest rates; null when either is missing, 0 when the numerator never passed. */
export function ratio(a: number | undefined, b: number | undefined): number | null {
  if (a === undefined || b === undefined || b <= 0) return null;
  return Math.round((a / b) * 1000) / 1000;
}

export function computeRatios(direct: Partial<Record<DirectSystem, { result?: { maxRate: number; limitReached: boolean; stoppedBy: string } }>>): Ratios {
  const max = (s: DirectSystem): number | undefined => direct[s]?.result?.maxRate;
  const vsSio = ratio(max('parley2'), max('sio2'));
  const open = (['parley2', 'sio2'] as const).filter((s) => direct[s]?.result && !direct[s]?.result?.limitReached);
  const caveat = open.length ? `inconclusive: ${open.map((s) => `${DIRECT_LABELS[s]} stopped by "${direct[s]?.result?.stoppedBy}" before its own limit`).join('; ')}` : '';
  return {
    parley2OverParley1: ratio(max('parley2'), max('parley1')),
    parley2OverSio2: vsSio,
    targetMet: vsSio === null || open.length ? null : vsSio >= 2,
    caveat,
  };
}

const fmt = (x: number | null | undefined, digits = 0): string =>
  x === null || x === undefined || Number.isNaN(x) ? '—' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });

function stepRow(label: string, s: StepResult): string {
  const cpu = (k: string): string => fmt(s.cpuPct[k], 1);
  return `| ${label} | ${fmt(s.rate)} | ${fmt(s.deliveredPerSec)} | ${fmt(s.latency.p50Ms, 2)} | ${fmt(s.latency.p99Ms, 2)} | ${fmt(s.latency.maxMs, 1)} | ${s.lost} | ${s.errors} | ${cpu('servers')} | ${fmt(s.serverCpuUsPerMsg, 1)} | ${cpu('redis')} | ${cpu('postgres')} | ${fmt(s.genCpuPct, 1)} | ${fmt(s.othersPct, 1)} | ${s.pass ? 'yes' : 'no'} |`;
}

const STEP_HEADER =
  '| system | target msg/s | delivered/s | p50 ms | p99 ms | max ms | lost | errors | servers CPU % | servers µs/msg | Redis CPU % | PostgreSQL CPU % | generator CPU % | others % | pass |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|';

export function markdown(r: ClusterRun, jsonPath: string): string {
  const out: string[] = [];
  out.push(`## Latest run (${r.startedAt.replace('T', ' ').slice(0, 16)} UTC)`, '');
  out.push(`- Command: \`${r.command}\``);
  out.push(`- Machine: ${r.machine.nproc} cores, ${r.machine.cpuModel}, ${r.machine.memGiB} GiB RAM, Linux ${r.machine.kernel}, Node ${r.machine.node}, Redis ${r.machine.redis}, PostgreSQL ${r.machine.postgres}`);
  out.push(`- Where things ran: ${r.layout.text}`);
  out.push(`- Seen in /proc: ${Object.entries(r.layout.affinity).map(([k, v]) => `${k}=${v}`).join(', ') || '—'}`);
  out.push(`- Parley started from: ${r.parleyLaunch}`);
  out.push(`- Isolation: PostgreSQL schema \`${r.isolation.schema}\`, Redis prefix \`${r.isolation.prefix}\`; ${r.isolation.cleanup}`);
  out.push(`- Raw data: [\`${jsonPath}\`](../${jsonPath})`, '');

  out.push('### Summary', '');
  out.push('| measurement | value |', '|---|--:|');
  const max = (s: DirectSystem): string => {
    const d = r.direct[s];
    if (!d) return 'not run';
    if (d.error) return `error: ${d.error}`;
    const x = d.result;
    if (!x) return '—';
    return `${fmt(x.maxRate)} msg/s${x.limitReached ? '' : ` (at least: ${x.stoppedBy})`}`;
  };
  for (const s of Object.keys(DIRECT_LABELS) as DirectSystem[]) {
    if (r.direct[s]) out.push(`| 1:1, highest msg/s with zero loss and p99 < 50 ms: ${DIRECT_LABELS[s]}${s === 'parley2' || s === 'sio2' ? ' (every pair split across the two)' : ''} | ${max(s)} |`);
  }
  out.push(`| 2 Parley nodes ÷ 1 Parley node | ${fmt(r.ratios.parley2OverParley1, 2)}× |`);
  const verdict = r.ratios.targetMet === null ? `— ${r.ratios.caveat}` : r.ratios.targetMet ? '✅ met' : '❌ missed';
  out.push(`| **2 Parley nodes ÷ 2 Socket.IO processes (issue 5 target: ≥ 2×)** | **${fmt(r.ratios.parley2OverSio2, 2)}× ${verdict}** |`);
  const d1 = r.direct.parley1?.result;
  const d2 = r.direct.parley2?.result;
  const p99At = (d: DirectClusterResult | undefined): string => {
    const best = d?.steps.filter((x) => x.pass).at(-1);
    return best ? `${fmt(best.latency.p50Ms, 2)} / ${fmt(best.latency.p99Ms, 2)} ms at ${fmt(best.rate)} msg/s` : '—';
  };
  out.push(`| p50 / p99 at the highest passing step, 1 node | ${p99At(d1)} |`);
  out.push(`| p50 / p99 at the highest passing step, 2 nodes | ${p99At(d2)} |`);
  if (r.nginx?.result) {
    const s = r.nginx.result;
    out.push(`| through nginx (2 nodes), one step at ${fmt(s.rate)} msg/s | ${fmt(s.deliveredPerSec)} delivered/s, p99 ${fmt(s.latency.p99Ms, 2)} ms, lost ${s.lost}, ${s.pass ? 'pass' : 'miss'} |`);
  } else if (r.nginx?.error) out.push(`| through nginx | error: ${r.nginx.error} |`);
  const idle = r.idle?.result;
  if (idle) {
    out.push(`| idle: authenticated connections on one cluster node | ${fmt(idle.connections)} of ${fmt(idle.connections + idle.failed)} |`);
    out.push(`| idle: node RSS per connection (second half only) | ${fmt(idle.kbPerConn, 2)} KB (${fmt(idle.kbPerConnSecondHalf, 2)} KB) |`);
    out.push(`| idle: time to connect them all | ${fmt(idle.connectMs / 1000, 2)} s (${fmt(idle.connectsPerSec)}/s, ${fmt(idle.serverCpuUsPerConn)} µs node CPU each) |`);
  } else if (r.idle?.error) out.push(`| idle | error: ${r.idle.error} |`);
  for (const o of r.recovery) {
    const rec = o.result;
    if (!rec) {
      out.push(`| recovery | error: ${o.error ?? 'unknown'} |`);
      continue;
    }
    const floor = rec.backoffMinMs === 500 ? 'SDK default backoff' : `SDK backoff floor ${rec.backoffMinMs} ms`;
    out.push(`| recovery: kill -9 of 1 of ${rec.nodes} nodes, ${fmt(rec.clients)} SDK clients via nginx, ${floor}: kill → last cut-off client resynced | **${fmt(rec.lastResyncedMs)} ms** (${rec.resynced}/${rec.dropped} resynced; per client p50 ${fmt(rec.perClient.p50Ms)} ms, p99 ${fmt(rec.perClient.p99Ms)} ms) |`);
    out.push(`| recovery (${floor}): kill → every client holds both messages sent right after the kill | ${rec.allMessagesMs === null ? `never (${rec.missingMessages} clients missing one)` : `${fmt(rec.allMessagesMs)} ms, none missing`} |`);
  }
  out.push('');

  out.push('### 1:1 ladders, every step', '');
  out.push('CPU columns are % of one core over the load window. Redis and PostgreSQL are the machine\'s shared servers: their CPU includes anything else using them at the time (usually nothing).', '');
  out.push(STEP_HEADER);
  for (const s of Object.keys(DIRECT_LABELS) as DirectSystem[]) {
    const d = r.direct[s]?.result;
    if (!d) continue;
    for (const st of d.steps) out.push(stepRow(DIRECT_LABELS[s] + (st.attempts === 2 ? ' (2nd try)' : ''), st));
  }
  if (r.nginx?.result) out.push(stepRow('Parley, 2 nodes, via nginx', r.nginx.result));
  out.push('');
  const stops = (Object.keys(DIRECT_LABELS) as DirectSystem[]).filter((s) => r.direct[s]?.result).map((s) => `${DIRECT_LABELS[s]}: ${r.direct[s]?.result?.stoppedBy}`);
  if (stops.length) out.push(`Ladders stopped by: ${stops.join('; ')}.`, '');
  if (r.nginx?.result) out.push(`nginx CPU during that step: ${fmt(r.nginx.result.cpuPct.nginx, 1)}% of a core.`, '');

  const recs = r.recovery.map((o) => o.result).filter((x): x is RecoveryResult => x !== undefined);
  if (recs.length) {
    out.push('### Recovery detail', '');
    out.push(`| | ${recs.map((x) => `backoff floor ${x.backoffMinMs} ms`).join(' | ')} |`, `|---|${recs.map(() => '--:').join('|')}|`);
    const row = (label: string, f: (x: RecoveryResult) => string): void => {
      out.push(`| ${label} | ${recs.map(f).join(' | ')} |`);
    };
    row('nodes behind nginx / killed', (x) => `${x.nodes} / ${x.killedNode}`);
    row('SDK clients (direct pairs) / cut off by the kill', (x) => `${x.clients} / ${x.dropped}`);
    row('kill → first / last client noticed', (x) => `${fmt(x.detectFirstMs, 1)} / ${fmt(x.detectLastMs, 1)} ms`);
    row('kill → resynced, per cut-off client: p50 / p99 / max', (x) => `${fmt(x.perClient.p50Ms)} / ${fmt(x.perClient.p99Ms)} / ${fmt(x.perClient.maxMs)} ms`);
    row('kill → every client holds both messages', (x) => (x.allMessagesMs === null ? `never (${x.missingMessages} missing)` : `${fmt(x.allMessagesMs)} ms`));
    row("surviving nodes' CPU from the kill to the end", (x) => Object.entries(x.nodeCpuMs).map(([k, v]) => `${k} ${v} ms`).join(', '));
    row('SDK process CPU while waiting', (x) => `${fmt(x.sdkCpuPct, 1)}%`);
    out.push('', 'The SDK retries a lost socket after floor/2 + random·floor (then doubling, full jitter), so with its default 500 ms floor the first retry comes 250–750 ms after the loss; the short floor leaves mostly the servers\' part.', '');
  }

  const profs = Object.entries(r.profiles);
  if (profs.length) {
    out.push('### CPU profile of a node', '');
    for (const [name, p] of profs) {
      out.push(`\`${name}\`: ${p.totalMs} ms sampled, idle ${p.idlePct}%, GC ${p.gcPct}% of busy. By module: ${p.modules.slice(0, 8).map((m) => `${m.name} ${m.pct}%`).join(', ')}.`, '');
      out.push('| % | function | where |', '|--:|---|---|');
      for (const f of p.functions.slice(0, 12)) out.push(`| ${f.pct} | \`${f.name}\` | ${f.where} |`);
      out.push('');
    }
  }
  return out.join('\n');
}

const BEGIN = '<!-- cluster-bench:results:begin -->';
const END = '<!-- cluster-bench:results:end -->';

/** Replaces the generated section of the doc (or appends one), leaving the hand-written text alone. */
export function updateDoc(path: string, section: string, template: string): void {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : template;
  const block = `${BEGIN}\n${section}\n${END}`;
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  const next = a >= 0 && b > a ? text.slice(0, a) + block + text.slice(b + END.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(path, next);
}
