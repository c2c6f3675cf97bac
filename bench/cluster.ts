/**
 * `npm run bench:cluster [-- --quick]`: Parley's cluster mode on this machine.
 * 1:1 throughput with one node vs two nodes (every pair split across them,
 * so all traffic crosses Redis) vs two Socket.IO processes on the Redis
 * adapter, one step through nginx, idle connections on one node, and recovery
 * after kill -9 of a node under ~1,000 SDK clients. Every process is stopped by
 * its PID; the run's PostgreSQL schema and Redis keys are removed at the end.
 * Writes bench/results/cluster-<time>.json and the results section of
 * docs/cluster-benchmarks.md.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { execFileSync } from 'node:child_process';
import { killAllSync, pinSelf, pinningAvailable, stopAll, waitQuiet } from './lib/proc.js';
import { Progress } from './lib/progress.js';
import { ROOT } from './lib/paths.js';
import { parleyLaunch } from './lib/systems.js';
import { checkServices, cleanup, newIsolation } from './cluster/services.js';
import { CLUSTER_WORKLOADS, directCluster, idleCluster, recovery, type ClusterCtx, type ClusterOptions, type ClusterWorkload, type DirectSystem } from './cluster/workloads.js';
import { computeRatios, markdown, updateDoc, type ClusterRun, type Outcome } from './cluster/report.js';

const HELP = `npm run bench:cluster -- [options]
  --quick                  about 2 minutes: 1 s steps, 2,000 idle connections, 300 recovery clients
  --workloads a,b          any of ${CLUSTER_WORKLOADS.join(', ')} (default: all)
  --clients N              1:1 clients, in pairs (default 1000)
  --rates a,b,…            1:1 target msg/s steps
  --step-ms N              length of one load step
  --idle N                 idle connections on one node (default 10000; quick 2000)
  --recovery-clients N     SDK clients in the recovery workload (default 1000; quick 300)
  --recovery-nodes N       nodes behind nginx in the recovery workload, 2 or 3 (default 3)
  --backoff-min-ms a,b     SDK reconnect backoff floors, one recovery run each (default 500,50: the SDK's own, then
                           a short one that leaves mostly the servers' part; quick 500)
  --systems a,b            1:1 systems, any of parley1, parley2, sio2, sio1 (default: parley1,parley2,sio2)
  --sio1                   also measure ONE Socket.IO process on the Redis adapter
  --quiet-wait S           before each workload, wait up to S seconds for other tenants to leave the cores idle (default 0)
  --profile                CPU-profile the first Parley node over the 1:1 ladders (V8 inspector)
  --no-pin                 do not pin servers and generator to cores
  --no-save                print only: no JSON, no docs update
  --help`;

interface RunFlags {
  opts: ClusterOptions;
  save: boolean;
  systems: DirectSystem[];
  quietWaitMs: number;
}

const DIRECT_SYSTEMS: readonly DirectSystem[] = ['parley1', 'parley2', 'sio2', 'sio1'];

function parseArgs(argv: string[]): RunFlags {
  const flags = new Map<string, string>();
  const booleans = ['quick', 'sio1', 'profile', 'no-pin', 'no-save', 'help'];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const [k, inline] = a.slice(2).split('=', 2) as [string, string | undefined];
    flags.set(k, booleans.includes(k) ? 'true' : (inline ?? argv[++i] ?? ''));
  }
  if (flags.has('help')) {
    process.stdout.write(`${HELP}\n`);
    process.exit(0);
  }
  const known = [...booleans, 'systems', 'quiet-wait', 'workloads', 'clients', 'rates', 'step-ms', 'idle', 'recovery-clients', 'recovery-nodes', 'backoff-min-ms'];
  for (const k of flags.keys()) if (!known.includes(k)) throw new Error(`unknown option --${k}\n${HELP}`);
  const quick = flags.has('quick');
  const nums = (k: string): number[] | undefined =>
    flags
      .get(k)
      ?.split(',')
      .filter(Boolean)
      .map((x) => {
        const n = Number(x);
        if (!Number.isFinite(n) || n < 0) throw new Error(`--${k}: ${x} is not a number ≥ 0`);
        return n;
      });
  const num = (k: string, def: number): number => nums(k)?.[0] ?? def;
  const asked = (flags.get('workloads')?.split(',').filter(Boolean) ?? [...CLUSTER_WORKLOADS]) as ClusterWorkload[];
  for (const w of asked) if (!CLUSTER_WORKLOADS.includes(w)) throw new Error(`unknown workload ${w}`);
  const pin = !flags.has('no-pin') && pinningAvailable();
  const recoveryNodes = num('recovery-nodes', 3);
  if (recoveryNodes < 2 || recoveryNodes > 3) throw new Error('--recovery-nodes must be 2 or 3');
  const systems = (flags.get('systems')?.split(',').filter(Boolean) ?? ['parley1', 'parley2', 'sio2', ...(flags.has('sio1') ? ['sio1'] : [])]) as DirectSystem[];
  for (const x of systems) if (!DIRECT_SYSTEMS.includes(x)) throw new Error(`unknown system ${x}`);
  return {
    save: !flags.has('no-save'),
    systems: DIRECT_SYSTEMS.filter((x) => systems.includes(x)),
    quietWaitMs: num('quiet-wait', 0) * 1000,
    opts: {
      quick,
      serverCore: pin ? 0 : null,
      genCore: pin ? 1 : null,
      clients: num('clients', 1000),
      rates: nums('rates') ?? (quick ? [500, 1000, 2000, 3000, 4000, 6000, 8000, 10_000, 12_500] : [250, 500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 7000, 8000, 10_000, 12_500, 15_000, 20_000]),
      stepMs: num('step-ms', quick ? 1000 : 3000),
      warmupMs: quick ? 2000 : 5000,
      drainMs: quick ? 1500 : 3000,
      idleN: num('idle', quick ? 2000 : 10_000),
      recoveryClients: num('recovery-clients', quick ? 300 : 1000),
      recoveryNodes,
      backoffMinMs: nums('backoff-min-ms') ?? (quick ? [500] : [500, 50]),
      retryQuietMs: quick ? 5000 : 15_000,
      profile: flags.has('profile'),
      profileDir: join(tmpdir(), `parley-cluster-prof-${Date.now()}`),
      workloads: CLUSTER_WORKLOADS.filter((w) => asked.includes(w)),
      perWorker: 8000,
    },
  };
}

function cpuModel(): string {
  try {
    const m = /Model name:\s+(.+)/.exec(execFileSync('lscpu', { encoding: 'utf8' }));
    if (m?.[1]) return m[1].trim();
  } catch {
    /* fall back to os.cpus() */
  }
  return cpus()[0]?.model ?? 'unknown';
}

function layoutText(o: ClusterOptions): string {
  if (o.serverCore === null) return 'not pinned (--no-pin): every process wherever the scheduler put it';
  return (
    `every Parley node, Socket.IO process and nginx on core ${o.serverCore} (taskset); the generator workers, the SDK clients and this runner on core ${o.genCore}; ` +
    `Redis and PostgreSQL are the machine's shared servers, not pinned (they run on either core). ` +
    `Two cores in all: the two-node numbers are two server processes sharing ONE core with each other, and Redis + PostgreSQL share the cores with the servers and the generator.`
  );
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const { opts, save, systems, quietWaitMs } = parseArgs(argv);
  if (opts.genCore !== null) pinSelf(opts.genCore);
  const launch = parleyLaunch();
  if (!launch) throw new Error('Parley is not built: neither dist/src/cli.js nor src/cli.ts exists');
  const runId = Date.now().toString(36).slice(-6);
  const iso = newIsolation(runId);
  const versions = await checkServices(iso);
  const directSystems: DirectSystem[] = opts.workloads.includes('direct') ? systems : [];
  const units = directSystems.length + (opts.workloads.includes('idle') ? 1 : 0) + (opts.workloads.includes('recovery') ? opts.backoffMinMs.length : 0);
  const progress = new Progress(units);
  const dataDir = mkdtempSync(join(tmpdir(), 'parley-cluster-bench-'));
  const ctx: ClusterCtx = { opts, progress, iso, dataDir, runId, users: [], pairConvs: [], affinity: {}, profiles: {}, nodeSeq: 0 };
  const startedAt = new Date().toISOString();
  const run: ClusterRun = {
    startedAt,
    finishedAt: '',
    command: `npm run bench:cluster${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
    machine: { nproc: cpus().length, cpuModel: cpuModel(), node: process.version, kernel: release(), memGiB: Math.round(totalmem() / 2 ** 30), redis: versions.redisVersion, postgres: versions.postgresVersion },
    layout: { serverCore: opts.serverCore, genCore: opts.genCore, affinity: ctx.affinity, text: layoutText(opts) },
    parleyLaunch: launch.mode === 'dist' ? 'node dist/src/cli.js serve (compiled)' : 'node --import tsx src/cli.ts serve (sources: dist/ was missing or older than src/)',
    isolation: { schema: iso.schema, prefix: iso.prefix, redisUrl: iso.redisUrl, databaseUrl: iso.databaseUrl, cleanup: 'not done yet' },
    options: opts,
    direct: {},
    nginx: null,
    idle: null,
    recovery: [],
    ratios: { parley2OverParley1: null, parley2OverSio2: null, targetMet: null, caveat: '' },
    profiles: ctx.profiles,
  };
  progress.log(`bench:cluster${opts.quick ? ' (quick)' : ''}: ${opts.workloads.join(', ')}; schema ${iso.schema}, Redis prefix ${iso.prefix}; servers on core ${opts.serverCore ?? '-'}, generator on core ${opts.genCore ?? '-'}`);

  const finish = async (): Promise<void> => {
    await stopAll(5000);
    try {
      const c = await cleanup(iso);
      run.isolation.cleanup = `schema dropped and ${c.keys} Redis keys deleted after the run`;
    } catch (e) {
      run.isolation.cleanup = `cleanup FAILED: ${(e as Error).message}`;
      progress.log(`cleanup failed: ${(e as Error).message}`);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) return;
    interrupted = true;
    progress.log('interrupted: stopping every process of this run and removing its schema and keys');
    void finish().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killAllSync);

  const capture = async <T>(label: string, fn: () => Promise<T>): Promise<Outcome<T>> => {
    progress.begin(label);
    if (quietWaitMs > 0) {
      progress.note('waiting for a quiet machine');
      const q = await waitQuiet(quietWaitMs);
      if (q.waitedMs > 1500) progress.log(`  ${label}: waited ${Math.round(q.waitedMs / 1000)} s for other tenants (cores ${q.busyPct}% busy at the end)`);
    }
    try {
      return { result: await fn() };
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      progress.log(`  ${label}: ERROR ${msg}`);
      return { error: msg };
    } finally {
      await stopAll(5000); // nothing of one workload survives into the next, even after an error
      progress.end();
    }
  };

  try {
    for (const s of directSystems) {
      if (interrupted) break;
      const out = await capture(`direct / ${s}`, () => directCluster(ctx, s));
      run.direct[s] = out.result ? { result: out.result.result } : { error: out.error ?? 'unknown' };
      if (s === 'parley2') run.nginx = out.result?.nginx ? { result: out.result.nginx } : out.error ? { error: out.error } : null;
    }
    if (opts.workloads.includes('idle') && !interrupted) run.idle = await capture('idle / 1 node', () => idleCluster(ctx));
    for (const backoff of opts.workloads.includes('recovery') ? opts.backoffMinMs : []) {
      if (interrupted) break;
      run.recovery.push(await capture(`recovery / kill -9 (backoff ${backoff} ms)`, () => recovery(ctx, backoff)));
    }
  } finally {
    await finish();
  }
  progress.finish();
  run.finishedAt = new Date().toISOString();
  run.ratios = computeRatios(run.direct);

  const stamp = startedAt.replace(/[:]/g, '-').replace(/\..*$/, '');
  const jsonRel = join('bench', 'results', `cluster-${stamp}${opts.quick ? '-quick' : ''}.json`);
  const md = markdown(run, jsonRel);
  process.stdout.write(`\n${md}\n`);
  if (save) {
    mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(join(ROOT, jsonRel), `${JSON.stringify(run, null, 1)}\n`);
    updateDoc(join(ROOT, 'docs', 'cluster-benchmarks.md'), md, '# Cluster benchmarks\n\nRun `npm run bench:cluster` (see `npm run bench:cluster -- --help`).\n');
    process.stdout.write(`\nwrote ${relative(ROOT, join(ROOT, jsonRel))} and docs/cluster-benchmarks.md\n`);
  }
}

main().then(
  () => process.exit(0),
  async (e: unknown) => {
    process.stderr.write(`\nbench:cluster failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    await stopAll(2000);
    process.exit(1);
  },
);
