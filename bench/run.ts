/**
 * `npm run bench [-- --workloads direct,idle --quick]`: runs each workload
 * against the bare ws router, Socket.IO 4 and Parley in one run, prints a
 * Markdown table of ratios, writes bench/results/<time>.json and .svg, and
 * updates docs/benchmarks.md. Run with tsx (no build step needed).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { execFileSync } from 'node:child_process';
import { killAllSync, pinSelf, pinningAvailable, stopAll, waitQuiet } from './lib/proc.js';
import { Progress } from './lib/progress.js';
import { ROOT } from './lib/paths.js';
import { chooseLaunch, parleyLaunch, SYSTEM_NAMES, type LaunchChoice } from './lib/systems.js';
import { SYSTEMS, type System } from './gen/wire.js';
import { direct, group, idle, storm, sync, WORKLOADS, type Ctx, type Options, type SystemResult, type WorkloadName } from './workloads.js';
import { chartSvg, evaluateTargets, markdownTable, resultsSection, targetsTable, updateDocs, type RunResults } from './report.js';

const HELP = `npm run bench -- [options]
  --quick                  short run (under ~2 minutes): fewer connections, 1 s steps
  --workloads a,b          any of ${WORKLOADS.join(', ')} (default: all)
  --systems a,b            any of ${SYSTEMS.join(', ')} (default: all)
  --idle N                 idle connections (default 19500; quick 2000)
  --clients N              direct-workload clients, in pairs (default 1000)
  --rates a,b,…            direct-workload target msg/s steps
  --step-ms N              length of one load step
  --group-sizes a,b        group sizes (default 100,1000,10000; quick 1000)
  --sync-stored a,b        messages stored before the sync test (default 10000,1000000; quick 10000); 10000000 works, slowly
  --sync-trials N          reconnects measured per store size
  --storm N                clients in the reconnect storm (default 10000; quick 1000)
  --profile                CPU-profile each server over the measured windows (V8 inspector) and list the hot spots
  --quiet-wait S           before each workload, wait up to S seconds for other tenants to leave the cores idle (default 0)
  --parley-from W          auto (default: dist/ when it is at least as new as src/), src (tsx) or dist
  --no-pin                 do not pin server and generator to cores
  --no-save                print only: no JSON, SVG or docs update
  --render FILE.json       only redraw the chart and the docs section from a saved run
  --help`;

function parseArgs(argv: string[]): Options & { save: boolean; quietWaitMs: number; parleyFrom: LaunchChoice } {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const [k, inline] = a.slice(2).split('=', 2) as [string, string | undefined];
    const boolean = ['quick', 'profile', 'no-pin', 'no-save', 'help'].includes(k);
    flags.set(k, boolean ? 'true' : (inline ?? argv[++i] ?? ''));
  }
  if (flags.has('help')) {
    process.stdout.write(`${HELP}\n`);
    process.exit(0);
  }
  const known = ['parley-from', 'quiet-wait', 'quick', 'workloads', 'systems', 'idle', 'clients', 'rates', 'step-ms', 'group-sizes', 'sync-stored', 'sync-trials', 'storm', 'profile', 'no-pin', 'no-save', 'help'];
  for (const k of flags.keys()) if (!known.includes(k)) throw new Error(`unknown option --${k}\n${HELP}`);
  const quick = flags.has('quick');
  const list = (k: string): string[] | undefined => flags.get(k)?.split(',').map((x) => x.trim()).filter(Boolean);
  const nums = (k: string): number[] | undefined => list(k)?.map((x) => {
    const n = Number(x);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${k}: ${x} is not a number ≥ 0`);
    return n;
  });
  const num = (k: string, def: number): number => nums(k)?.[0] ?? def;
  const asked = (list('workloads') ?? [...WORKLOADS]) as WorkloadName[];
  for (const w of asked) if (!WORKLOADS.includes(w)) throw new Error(`unknown workload ${w}`);
  const workloads = WORKLOADS.filter((w) => asked.includes(w)); // always in the canonical order
  const systems = (list('systems') ?? [...SYSTEMS]) as System[];
  for (const s of systems) if (!SYSTEMS.includes(s)) throw new Error(`unknown system ${s}`);
  const pin = !flags.has('no-pin') && pinningAvailable();
  const parleyFrom = (flags.get('parley-from') ?? 'auto') as LaunchChoice;
  if (!['auto', 'src', 'dist'].includes(parleyFrom)) throw new Error(`--parley-from: ${parleyFrom} is not auto, src or dist`);
  return {
    quick,
    workloads,
    systems,
    serverCore: pin ? 0 : null,
    genCore: pin ? 1 : null,
    profile: flags.has('profile'),
    profileDir: join(tmpdir(), `parley-bench-prof-${Date.now()}`),
    idleN: num('idle', quick ? 2000 : 19_500),
    directClients: num('clients', 1000),
    rates: nums('rates') ?? (quick ? [5_000, 10_000, 20_000, 30_000, 40_000, 60_000] : [2_500, 5_000, 7_500, 10_000, 12_500, 15_000, 20_000, 25_000, 30_000, 35_000, 40_000, 50_000, 60_000, 80_000, 100_000, 120_000]),
    stepMs: num('step-ms', quick ? 1000 : 3000),
    warmupMs: quick ? 2000 : 5000,
    drainMs: quick ? 1000 : 3000,
    groupSizes: nums('group-sizes') ?? (quick ? [1000] : [100, 1000, 10_000]),
    groupSenders: 4,
    syncStored: nums('sync-stored') ?? (quick ? [10_000] : [10_000, 1_000_000]),
    syncTrials: num('sync-trials', quick ? 5 : 20),
    stormN: num('storm', quick ? 1000 : 10_000),
    perWorker: 8000,
    quietWaitMs: num('quiet-wait', 0) * 1000,
    save: !flags.has('no-save'),
    parleyFrom,
  };
}

function machine(ctx: Ctx, opts: Options): RunResults['machine'] {
  let model = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /Model name:\s+(.+)/.exec(execFileSync('lscpu', { encoding: 'utf8' }));
    if (m?.[1]) model = m[1].trim();
  } catch {
    /* keep os.cpus() model */
  }
  return {
    nproc: cpus().length,
    cpuModel: model,
    node: process.version,
    kernel: release(),
    memGiB: Math.round(totalmem() / 2 ** 30),
    taskset: opts.serverCore !== null,
    serverCore: opts.serverCore,
    genCore: opts.genCore,
    affinity: ctx.affinity,
  };
}

/** Used only when docs/benchmarks.md does not exist yet; afterwards only the results section is rewritten. */
const DOC_TEMPLATE = '# Benchmarks\n\nRun `npm run bench` (see `npm run bench -- --help`).\n';

/** Re-renders the chart and the docs section from a saved run (after a change to the report code). */
function render(jsonPath: string): void {
  const r = JSON.parse(readFileSync(jsonPath, 'utf8')) as RunResults;
  r.targets = evaluateTargets(r);
  const svg = jsonPath.replace(/\.json$/, '.svg');
  writeFileSync(svg, chartSvg(r));
  updateDocs(join(ROOT, 'docs', 'benchmarks.md'), resultsSection(r, relative(ROOT, jsonPath), relative(ROOT, svg)), DOC_TEMPLATE);
  process.stdout.write(`${markdownTable(r)}\n\n${targetsTable(r.targets)}\n\nrewrote ${relative(ROOT, svg)} and docs/benchmarks.md\n`);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--render') {
    if (!argv[1]) throw new Error('--render needs the path of a results JSON');
    render(argv[1]);
    return;
  }
  const opts = parseArgs(argv);
  if (opts.genCore !== null) pinSelf(opts.genCore);
  chooseLaunch(opts.parleyFrom);
  const launch = parleyLaunch();
  const systems = opts.systems.filter((s) => s !== 'parley' || launch !== null);
  const units = opts.workloads.reduce((a, w) => a + (w === 'sync' ? (systems.includes('parley') ? 1 : 0) : systems.length), 0);
  const progress = new Progress(units);
  const dataDir = mkdtempSync(join(tmpdir(), 'parley-bench-'));
  const ctx: Ctx = { opts, progress, runId: Date.now().toString(36).slice(-6), users: [], dataDir, tmpDirs: [dataDir], affinity: {}, profiles: {} };
  const startedAt = new Date().toISOString();
  const results: RunResults = {
    startedAt,
    finishedAt: '',
    command: `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
    machine: machine(ctx, opts),
    options: opts,
    parleyLaunch: launch ? (launch.mode === 'dist' ? 'node dist/src/cli.js serve (compiled)' : `node --import tsx src/cli.ts serve (sources; ${opts.parleyFrom === 'src' ? 'asked with --parley-from src' : 'dist/ was missing or older than src/'})`) : 'not available (no src/cli.ts yet)',
    idle: {},
    direct: {},
    group: {},
    sync: null,
    storm: {},
    targets: [],
  };
  if (!launch && opts.systems.includes('parley')) {
    for (const w of opts.workloads) if (w !== 'sync') (results[w] as Record<string, SystemResult<unknown>>).parley = { skipped: 'Parley is not built yet' };
    if (opts.workloads.includes('sync')) results.sync = { skipped: 'Parley is not built yet' };
  }
  progress.log(`bench: ${opts.workloads.join(', ')} × ${systems.map((s) => SYSTEM_NAMES[s]).join(', ')}${opts.quick ? ' (quick)' : ''}; server core ${opts.serverCore ?? '-'}, generator core ${opts.genCore ?? '-'}`);

  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) return;
    interrupted = true;
    progress.log('interrupted: stopping every process started by this run');
    void stopAll(2000).finally(() => {
      for (const d of ctx.tmpDirs) rmSync(d, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killAllSync);

  const capture = async <T>(label: string, fn: () => Promise<T>): Promise<SystemResult<T>> => {
    progress.begin(label);
    if (opts.quietWaitMs > 0) {
      progress.note('waiting for a quiet machine');
      const q = await waitQuiet(opts.quietWaitMs);
      if (q.waitedMs > 1500) progress.log(`  ${label}: waited ${Math.round(q.waitedMs / 1000)} s for other tenants (cores ${q.busyPct}% busy at start)`);
    }
    try {
      return { result: await fn() };
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      progress.log(`  ${label}: ERROR ${msg}`);
      return { error: msg };
    } finally {
      await stopAll(5000); // nothing of one unit survives into the next, even after an error
      progress.end();
    }
  };

  try {
    for (const w of opts.workloads) {
      if (interrupted) break;
      if (w === 'sync') {
        if (systems.includes('parley')) results.sync = await capture('sync / Parley', () => sync(ctx));
        continue;
      }
      for (const s of systems) {
        if (interrupted) break;
        const label = `${w} / ${SYSTEM_NAMES[s]}`;
        if (w === 'idle') results.idle[s] = await capture(label, () => idle(ctx, s));
        else if (w === 'direct') results.direct[s] = await capture(label, () => direct(ctx, s));
        else if (w === 'group') results.group[s] = await capture(label, () => group(ctx, s));
        else if (w === 'storm') results.storm[s] = await capture(label, () => storm(ctx, s));
      }
    }
  } finally {
    await stopAll(5000);
    for (const d of ctx.tmpDirs) rmSync(d, { recursive: true, force: true });
  }
  progress.finish();

  results.finishedAt = new Date().toISOString();
  results.machine = machine(ctx, opts);
  results.targets = evaluateTargets(results);
  const prof = ctx.profiles;
  results.profiles = prof;
  const out = results;

  process.stdout.write(`\n${markdownTable(results)}\n\n${targetsTable(results.targets)}\n`);
  for (const [name, p] of Object.entries(prof)) {
    process.stdout.write(`\nCPU profile ${name} (${p.totalMs} ms, idle ${p.idlePct}%, GC ${p.gcPct}% of busy):\n`);
    for (const f of p.functions.slice(0, 12)) process.stdout.write(`  ${String(f.pct).padStart(5)}%  ${f.name}  ${f.where}\n`);
    process.stdout.write('  by module: ' + p.modules.slice(0, 8).map((m) => `${m.name} ${m.pct}%`).join(', ') + '\n');
    process.stdout.write('  by innermost own function (inclusive of what it calls):\n');
    for (const f of p.ownCode.slice(0, 10)) process.stdout.write(`  ${String(f.pct).padStart(5)}%  ${f.name}  ${f.where}\n`);
  }
  if (opts.save) {
    const stamp = startedAt.replace(/[:]/g, '-').replace(/\..*$/, '');
    const dir = join(ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const json = join(dir, `${stamp}${opts.quick ? '-quick' : ''}.json`);
    const svg = json.replace(/\.json$/, '.svg');
    writeFileSync(json, `${JSON.stringify(out, null, 1)}\n`);
    writeFileSync(svg, chartSvg(results));
    const docs = join(ROOT, 'docs', 'benchmarks.md');
    updateDocs(docs, resultsSection(results, relative(ROOT, json), relative(ROOT, svg)), DOC_TEMPLATE);
    process.stdout.write(`\nwrote ${relative(ROOT, json)}, ${relative(ROOT, svg)}, docs/benchmarks.md\n`);
    if (opts.profile) process.stdout.write(`CPU profiles kept in ${opts.profileDir}\n`);
  }
}

main().then(
  () => process.exit(0),
  async (e: unknown) => {
    process.stderr.write(`\nbench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    await stopAll(2000);
    process.exit(1);
  },
);
