/**
 * Turning a run into what people read: the Markdown table with ratios and the
 * issue's targets as pass/fail, the throughput-vs-p99 chart (hand-written SVG),
 * and the results section of docs/benchmarks.md.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { System } from './gen/wire.js';
import type { ProfileSummary } from './lib/cpuprofile.js';
import { SYSTEM_NAMES } from './lib/systems.js';
import type {
  DirectResult,
  GroupSizeResult,
  IdleResult,
  Options,
  StormResult,
  SyncStoredResult,
  SystemResult,
} from './workloads.js';

export interface Machine {
  nproc: number;
  cpuModel: string;
  node: string;
  kernel: string;
  memGiB: number;
  taskset: boolean;
  serverCore: number | null;
  genCore: number | null;
  affinity: Record<string, string>;
}

export interface RunResults {
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: Machine;
  options: Options;
  parleyLaunch: string;
  idle: Partial<Record<System, SystemResult<IdleResult>>>;
  direct: Partial<Record<System, SystemResult<DirectResult>>>;
  group: Partial<Record<System, SystemResult<GroupSizeResult[]>>>;
  sync: SystemResult<SyncStoredResult[]> | null;
  storm: Partial<Record<System, SystemResult<StormResult>>>;
  targets: TargetRow[];
  /** With --profile: the server's CPU profile per "<workload>-<system>". */
  profiles?: Record<string, ProfileSummary>;
}

export interface TargetRow {
  name: string;
  target: string;
  value: string;
  pass: boolean | null;
}

type Row = [workload: string, metric: string, ws: number | null, sio: number | null, parley: number | null, target: string, pass: boolean | null];

function fmt(x: number | null | undefined): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en-US');
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

function ratio(a: number | null | undefined, b: number | null | undefined): string {
  if (a === null || a === undefined || b === null || b === undefined || b === 0) return '—';
  return `${(a / b).toFixed(2)}×`;
}

function passCell(p: boolean | null): string {
  return p === null ? '—' : p ? '✅ pass' : '❌ miss';
}

function res<T>(r: SystemResult<T> | undefined | null): T | undefined {
  return r?.result;
}

/** Evaluates the issue's targets against what this run measured; null = not measured in this run. */
export function evaluateTargets(r: RunResults): TargetRow[] {
  const rows: TargetRow[] = [];
  const idleWs = res(r.idle.ws);
  const idleP = res(r.idle.parley);
  const n = r.options.idleN;
  rows.push({
    name: `idle: KB per authenticated idle connection (${n.toLocaleString('en-US')} conns${n < 19_500 ? '; target defined at 19,500' : ''})`,
    target: '≤ 6 KB and ≤ 1.25× bare ws',
    value: idleP ? `${fmt(idleP.kbPerConn)} KB (${ratio(idleP.kbPerConn, idleWs?.kbPerConn)} ws)` : '—',
    pass: idleP && idleWs ? idleP.kbPerConn <= 6 && idleP.kbPerConn <= 1.25 * idleWs.kbPerConn && idleP.failed === 0 : null,
  });
  const dS = res(r.direct.sio);
  const dP = res(r.direct.parley);
  rows.push({
    name: 'direct: highest 1:1 msg/s at p99 < 50 ms, zero loss',
    target: '≥ 1.2× Socket.IO',
    value: dP ? `${fmt(dP.maxRate)} msg/s (${ratio(dP.maxRate, dS?.maxRate)} Socket.IO)` : '—',
    pass: dP && dS ? dP.maxRate >= 1.2 * dS.maxRate : null,
  });
  rows.push({
    name: 'direct: p99 at 10,000 msg/s',
    target: '< 5 ms',
    value: dP?.p99At10k !== null && dP?.p99At10k !== undefined ? `${fmt(dP.p99At10k)} ms` : '—',
    pass: dP?.p99At10k !== null && dP?.p99At10k !== undefined ? dP.p99At10k < 5 && dP.steps.some((s) => s.rate === 10_000 && s.lost === 0) : null,
  });
  const gW = res(r.group.ws);
  const gP = res(r.group.parley);
  const g1kW = gW?.find((g) => g.members === 1000);
  const g1kP = gP?.find((g) => g.members === 1000);
  rows.push({
    name: 'group 1,000: server CPU per delivery',
    target: '≤ 1.3× bare ws',
    value: g1kP ? `${fmt(g1kP.serverCpuUsPerDelivery)} µs (${ratio(g1kP.serverCpuUsPerDelivery, g1kW?.serverCpuUsPerDelivery)} ws)` : '—',
    pass: g1kP && g1kW ? g1kP.serverCpuUsPerDelivery <= 1.3 * g1kW.serverCpuUsPerDelivery && g1kP.lost === 0 : null,
  });
  const g10kP = gP?.find((g) => g.members === 10_000);
  rows.push({
    name: 'group 10,000 at 10 msg/s: every delivery, p99',
    target: 'no loss, p99 < 100 ms',
    value: g10kP ? `lost ${g10kP.lost}, p99 ${fmt(g10kP.latency.p99Ms)} ms` : '—',
    pass: g10kP ? g10kP.lost === 0 && g10kP.latency.p99Ms < 100 : null,
  });
  const sy = res(r.sync);
  const s10k = sy?.find((s) => s.stored === 10_000) ?? sy?.[0];
  rows.push({
    name: `sync: 1,000 missed messages, reconnect → synced (${s10k ? s10k.stored.toLocaleString('en-US') : '10,000'} stored)`,
    target: '< 50 ms',
    value: s10k ? `${fmt(s10k.medianMs)} ms median` : '—',
    pass: s10k ? s10k.medianMs < 50 && s10k.allComplete : null,
  });
  const big = sy && sy.length > 1 ? sy.reduce((a, b) => (b.stored > a.stored ? b : a)) : undefined;
  rows.push({
    name: `sync: same time with ${big ? big.stored.toLocaleString('en-US') : '10,000,000'} stored`,
    target: `within 20% of ${s10k ? s10k.stored.toLocaleString('en-US') : '10,000'} stored`,
    value: big && s10k ? `${fmt(big.medianMs)} ms (${ratio(big.medianMs, s10k.medianMs)})` : '— (run with --sync-stored 10000,10000000)',
    pass: big && s10k ? big.medianMs <= 1.2 * s10k.medianMs && big.allComplete : null,
  });
  rows.push({ name: 'cluster: 2 nodes + Redis vs 2 Socket.IO + Redis adapter', target: '≥ 2×', value: '— (cluster mode not in this run)', pass: null });
  return rows;
}

export function markdownTable(r: RunResults): string {
  const rows: Row[] = [];
  const idle = (s: System): IdleResult | undefined => res(r.idle[s]);
  if (r.options.workloads.includes('idle')) {
    const n = r.options.idleN.toLocaleString('en-US');
    rows.push([`idle ${n}`, 'server KB per connection', idle('ws')?.kbPerConn ?? null, idle('sio')?.kbPerConn ?? null, idle('parley')?.kbPerConn ?? null, '≤ 6 KB, ≤ 1.25× ws', r.targets[0]?.pass ?? null]);
    rows.push([`idle ${n}`, 'server KB per connection, second half only', idle('ws')?.kbPerConnSecondHalf ?? null, idle('sio')?.kbPerConnSecondHalf ?? null, idle('parley')?.kbPerConnSecondHalf ?? null, '', null]);
    if ((['ws', 'sio', 'parley'] as const).some((x) => typeof idle(x)?.jsHeapKbPerConn === 'number')) {
      rows.push([`idle ${n}`, 'of which live JS heap, KB per connection', idle('ws')?.jsHeapKbPerConn ?? null, idle('sio')?.jsHeapKbPerConn ?? null, idle('parley')?.jsHeapKbPerConn ?? null, '', null]);
    }
    rows.push([`idle ${n}`, 'seconds to connect all', sec(idle('ws')?.connectMs), sec(idle('sio')?.connectMs), sec(idle('parley')?.connectMs), '', null]);
    rows.push([`idle ${n}`, 'server CPU µs per connect', idle('ws')?.serverCpuUsPerConn ?? null, idle('sio')?.serverCpuUsPerConn ?? null, idle('parley')?.serverCpuUsPerConn ?? null, '', null]);
  }
  const d = (s: System): DirectResult | undefined => res(r.direct[s]);
  if (r.options.workloads.includes('direct')) {
    rows.push(['direct 1:1', 'max msg/s (p99 < 50 ms, no loss)', d('ws')?.maxRate ?? null, d('sio')?.maxRate ?? null, d('parley')?.maxRate ?? null, '≥ 1.2× Socket.IO', r.targets[1]?.pass ?? null]);
    rows.push(['direct 1:1', 'p99 ms at 10,000 msg/s', d('ws')?.p99At10k ?? null, d('sio')?.p99At10k ?? null, d('parley')?.p99At10k ?? null, '< 5 ms', r.targets[2]?.pass ?? null]);
    rows.push(['direct 1:1', 'server CPU µs/msg at 10,000 msg/s', d('ws')?.cpuUsPerMsgAt10k ?? null, d('sio')?.cpuUsPerMsgAt10k ?? null, d('parley')?.cpuUsPerMsgAt10k ?? null, '', null]);
  }
  if (r.options.workloads.includes('group')) {
    for (const m of r.options.groupSizes) {
      const g = (s: System): GroupSizeResult | undefined => res(r.group[s])?.find((x) => x.members === m);
      const label = `group ${m.toLocaleString('en-US')} @ ${g('ws')?.msgPerSec ?? g('parley')?.msgPerSec ?? '?'} msg/s`;
      rows.push([label, 'deliveries/s', g('ws')?.deliveredPerSec ?? null, g('sio')?.deliveredPerSec ?? null, g('parley')?.deliveredPerSec ?? null, '', null]);
      rows.push([label, 'p99 ms', g('ws')?.latency.p99Ms ?? null, g('sio')?.latency.p99Ms ?? null, g('parley')?.latency.p99Ms ?? null, m >= 10_000 ? '< 100 ms, no loss' : '', m >= 10_000 ? (r.targets[4]?.pass ?? null) : null]);
      rows.push([label, 'server CPU µs per delivery', g('ws')?.serverCpuUsPerDelivery ?? null, g('sio')?.serverCpuUsPerDelivery ?? null, g('parley')?.serverCpuUsPerDelivery ?? null, m === 1000 ? '≤ 1.3× ws' : '', m === 1000 ? (r.targets[3]?.pass ?? null) : null]);
      rows.push([label, 'lost deliveries', g('ws')?.lost ?? null, g('sio')?.lost ?? null, g('parley')?.lost ?? null, '', null]);
    }
  }
  if (r.options.workloads.includes('sync')) {
    for (const s of res(r.sync) ?? []) {
      const first = s.stored === (res(r.sync)?.[0]?.stored ?? -1);
      rows.push([`sync, ${s.stored.toLocaleString('en-US')} stored`, 'ms to synced (1,000 missed)', null, null, s.medianMs, first ? '< 50 ms' : 'within 20%', first ? (r.targets[5]?.pass ?? null) : (r.targets[6]?.pass ?? null)]);
    }
  }
  const st = (s: System): StormResult | undefined => res(r.storm[s]);
  if (r.options.workloads.includes('storm')) {
    const n = r.options.stormN.toLocaleString('en-US');
    rows.push([`reconnect storm ${n}`, 'ms until all are back (+ synced)', st('ws')?.allMs ?? null, st('sio')?.allMs ?? null, st('parley')?.allMs ?? null, '', null]);
    rows.push([`reconnect storm ${n}`, 'p99 ms per client', st('ws')?.perClient.p99Ms ?? null, st('sio')?.perClient.p99Ms ?? null, st('parley')?.perClient.p99Ms ?? null, '', null]);
    rows.push([`reconnect storm ${n}`, 'failed reconnects', st('ws')?.failed ?? null, st('sio')?.failed ?? null, st('parley')?.failed ?? null, '', null]);
  }
  const head = `| workload | metric | ${SYSTEM_NAMES.ws} | ${SYSTEM_NAMES.sio} | Parley | Parley ÷ ws | Parley ÷ Socket.IO | target | pass |\n|---|---|--:|--:|--:|--:|--:|---|---|`;
  const body = rows.map(([w, m, a, b, p, t, ok]) => `| ${w} | ${m} | ${fmt(a)} | ${fmt(b)} | ${fmt(p)} | ${ratio(p, a)} | ${ratio(p, b)} | ${t} | ${passCell(ok)} |`);
  const errs: string[] = [];
  for (const [wl, bySys] of [['idle', r.idle], ['direct', r.direct], ['group', r.group], ['storm', r.storm]] as const) {
    for (const [sys, v] of Object.entries(bySys) as [System, SystemResult<unknown>][]) {
      if (v.error) errs.push(`- ${wl} / ${SYSTEM_NAMES[sys]}: error: ${v.error}`);
      if (v.skipped) errs.push(`- ${wl} / ${SYSTEM_NAMES[sys]}: skipped: ${v.skipped}`);
    }
  }
  if (r.sync?.error) errs.push(`- sync / Parley: error: ${r.sync.error}`);
  if (r.sync?.skipped) errs.push(`- sync / Parley: skipped: ${r.sync.skipped}`);
  return [head, ...body, ...(errs.length ? ['', ...errs] : [])].join('\n');
}

function sec(ms: number | undefined): number | null {
  return ms === undefined ? null : ms / 1000;
}

export function targetsTable(rows: TargetRow[]): string {
  return ['| target | required | measured | result |', '|---|---|---|---|', ...rows.map((t) => `| ${t.name} | ${t.target} | ${t.value} | ${passCell(t.pass)} |`)].join('\n');
}

export function directStepsTable(r: RunResults): string {
  const lines = ['| system | target msg/s | sent/s | delivered/s | p50 ms | p95 ms | p99 ms | max ms | lost | errors | server CPU % | server µs/msg | generator CPU % |', '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|'];
  for (const s of ['ws', 'sio', 'parley'] as const) {
    for (const st of res(r.direct[s])?.steps ?? []) {
      lines.push(`| ${SYSTEM_NAMES[s]} | ${fmt(st.rate)} | ${fmt(st.sentPerSec)} | ${fmt(st.deliveredPerSec)} | ${fmt(st.latency.p50Ms)} | ${fmt(st.latency.p95Ms)} | ${fmt(st.latency.p99Ms)} | ${fmt(st.latency.maxMs)} | ${st.lost} | ${st.errors} | ${fmt(st.serverCpuPct)} | ${fmt(st.serverCpuUsPerDelivery)} | ${fmt(st.genCpuPct)} |`);
    }
  }
  return lines.join('\n');
}

const COLORS: Record<System, string> = { ws: '#1f77b4', sio: '#ff7f0e', parley: '#2ca02c' };

/** Throughput (delivered msg/s) against p99 latency (log scale) for the direct workload, one line per system. */
export function chartSvg(r: RunResults): string {
  const W = 840;
  const H = 420;
  const L = 70;
  const R = 140; // legend column
  const T = 40;
  const B = 60;
  const series = (['ws', 'sio', 'parley'] as const).map((s) => ({ s, pts: (res(r.direct[s])?.steps ?? []).map((x) => [x.deliveredPerSec, Math.max(x.latency.p99Ms, 0.1)] as const) }));
  const xMaxRaw = Math.max(10_000, ...series.flatMap((x) => x.pts.map((p) => p[0])));
  const xStep = xMaxRaw > 100_000 ? 20_000 : xMaxRaw > 40_000 ? 10_000 : 5_000;
  const xMax = Math.ceil(xMaxRaw / xStep) * xStep;
  const yMin = 0.1;
  const yMax = Math.max(100, ...series.flatMap((x) => x.pts.map((p) => p[1])));
  const yTop = 10 ** Math.ceil(Math.log10(yMax));
  const px = (x: number): number => L + ((W - L - R) * x) / xMax;
  const py = (y: number): number => T + (H - T - B) * (1 - (Math.log10(y) - Math.log10(yMin)) / (Math.log10(yTop) - Math.log10(yMin)));
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">direct 1:1, ${r.options.directClients} clients: delivered msg/s vs p99 latency</text>`);
  for (let x = 0; x <= xMax; x += xStep) {
    out.push(`<line x1="${px(x)}" y1="${T}" x2="${px(x)}" y2="${H - B}" stroke="#eee"/>`);
    out.push(`<text x="${px(x)}" y="${H - B + 16}" text-anchor="middle">${x >= 1000 ? `${x / 1000}k` : x}</text>`);
  }
  for (let y = yMin; y <= yTop * 1.0001; y *= 10) {
    out.push(`<line x1="${L}" y1="${py(y)}" x2="${W - R}" y2="${py(y)}" stroke="#eee"/>`);
    out.push(`<text x="${L - 6}" y="${py(y) + 4}" text-anchor="end">${y < 1 ? y.toFixed(1) : y.toFixed(0)}</text>`);
  }
  out.push(`<line x1="${L}" y1="${py(50)}" x2="${W - R}" y2="${py(50)}" stroke="#d62728" stroke-dasharray="6 4"/>`);
  out.push(`<text x="${W - R - 4}" y="${py(50) - 4}" text-anchor="end" fill="#d62728">p99 50 ms</text>`);
  out.push(`<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 18}" text-anchor="middle">delivered messages per second</text>`);
  out.push(`<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">p99 latency, ms (log)</text>`);
  series.forEach(({ s, pts }, i) => {
    if (pts.length === 0) return;
    out.push(`<polyline fill="none" stroke="${COLORS[s]}" stroke-width="2" points="${pts.map((p) => `${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) out.push(`<circle cx="${px(p[0]).toFixed(1)}" cy="${py(p[1]).toFixed(1)}" r="3.5" fill="${COLORS[s]}"/>`);
    const ly = T + 14 + i * 18;
    const lx = W - R + 14;
    out.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 20}" y2="${ly - 4}" stroke="${COLORS[s]}" stroke-width="2"/>`);
    out.push(`<circle cx="${lx + 10}" cy="${ly - 4}" r="3.5" fill="${COLORS[s]}"/>`);
    out.push(`<text x="${lx + 26}" y="${ly}">${SYSTEM_NAMES[s]}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

function profileSection(p: Record<string, ProfileSummary> | undefined): string[] {
  if (!p || Object.keys(p).length === 0) return [];
  const out = ['', '### Where the server time went (CPU profile of the measured windows)', ''];
  for (const [name, s] of Object.entries(p)) {
    out.push(`**${name}** (${s.totalMs} ms profiled, ${s.idlePct}% idle, GC ${s.gcPct}% of busy). Busy time by the innermost own function on the stack:`, '');
    out.push('| % of busy | function | file |', '|--:|---|---|');
    for (const f of s.ownCode.slice(0, 8)) out.push(`| ${f.pct} | \`${f.name}\` | ${f.where} |`);
    out.push('', `Self time: ${s.functions.slice(0, 6).map((f) => `\`${f.name}\` ${f.pct}%`).join(', ')}.`, '');
  }
  return out;
}

const START = '<!-- bench:results:start -->';
const END = '<!-- bench:results:end -->';

export function resultsSection(r: RunResults, jsonRel: string, svgRel: string): string {
  const m = r.machine;
  return [
    START,
    `## Latest run (${r.finishedAt.slice(0, 16).replace('T', ' ')} UTC${r.options.quick ? ', quick mode' : ''})`,
    '',
    `- Command: \`${r.command}\``,
    `- Machine: ${m.nproc} cores, ${m.cpuModel}, ${m.memGiB} GiB RAM, Linux ${m.kernel}, Node ${m.node}`,
    `- Pinning: ${m.taskset ? `server on core ${m.serverCore}, generator on core ${m.genCore} (taskset; seen in /proc: ${Object.entries(m.affinity).map(([k, v]) => `${k}=${v}`).join(', ') || 'n/a'})` : 'none (taskset missing)'}`,
    `- Parley started from: ${r.parleyLaunch}`,
    `- Raw data: [\`${jsonRel}\`](${jsonRel.replace(/^bench\//, '../bench/')})`,
    '',
    '### Summary',
    '',
    markdownTable(r),
    '',
    '### Targets (issue 5)',
    '',
    targetsTable(r.targets),
    '',
    '### Direct workload, every step',
    '',
    directStepsTable(r),
    '',
    `![throughput vs p99](${svgRel.replace(/^bench\//, '../bench/')})`,
    ...profileSection(r.profiles),
    END,
  ].join('\n');
}

export function updateDocs(path: string, section: string, template: string): void {
  const doc = existsSync(path) ? readFileSync(path, 'utf8') : template;
  const a = doc.indexOf(START);
  const b = doc.indexOf(END);
  const next = a >= 0 && b > a ? doc.slice(0, a) + section + doc.slice(b + END.length) : `${doc.trimEnd()}\n\n${section}\n`;
  writeFileSync(path, next);
}
