/**
 * Child processes of a bench run, and what /proc says about them.
 * Every process goes through spawnPinned, so the registry can stop each one by
 * its PID at the end of the run, on error and on Ctrl-C alike.
 */
import { spawn, execFileSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';

export interface Proc {
  name: string;
  pid: number;
  child: ChildProcess;
  exited: Promise<number | null>;
}

const live = new Map<number, Proc>();

let tasksetPath: string | null | undefined;
function taskset(): string | null {
  if (tasksetPath === undefined) {
    tasksetPath = ['/usr/bin/taskset', '/bin/taskset'].find((p) => existsSync(p)) ?? null;
  }
  return tasksetPath;
}

export function pinningAvailable(): boolean {
  return taskset() !== null;
}

export interface SpawnOptions {
  core?: number | null;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  ipc?: boolean;
  /** Keep the child's stdout readable by the caller (readiness lines). */
  pipeStdout?: boolean;
}

/** Starts `cmd args` pinned to one core; taskset execs the command, so the PID is the command's own. */
export function spawnPinned(name: string, cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  const ts = taskset();
  const [file, argv] =
    opts.core !== undefined && opts.core !== null && ts ? [ts, ['-c', String(opts.core), cmd, ...args]] : [cmd, args];
  const stdio: StdioOptions = ['ignore', opts.pipeStdout ? 'pipe' : 'inherit', 'inherit'];
  if (opts.ipc) stdio.push('ipc');
  const child = spawn(file, argv, { env: opts.env ?? process.env, cwd: opts.cwd, stdio });
  if (child.pid === undefined) throw new Error(`could not start ${name}`);
  const pid = child.pid;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(pid);
      resolve(code ?? (signal ? -1 : null));
    });
    child.once('error', () => {
      live.delete(pid);
      resolve(-1);
    });
  });
  const p: Proc = { name, pid, child, exited };
  live.set(pid, p);
  return p;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM (so a server can write its CPU profile), then SIGKILL after graceMs. */
export async function stopProc(p: Proc, graceMs = 5000): Promise<void> {
  if (!live.has(p.pid)) return;
  try {
    process.kill(p.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
  if ((await Promise.race([p.exited.then(() => 'exited' as const), timer])) === 'timeout' && alive(p.pid)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await Promise.race([p.exited, new Promise((r) => setTimeout(r, 2000).unref())]);
  }
}

export async function stopAll(graceMs = 5000): Promise<void> {
  await Promise.all([...live.values()].map((p) => stopProc(p, graceMs)));
}

/** Last resort on process exit: nothing async is possible, so SIGKILL whatever is left. */
export function killAllSync(): void {
  for (const p of live.values()) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
}

export function liveProcs(): Proc[] {
  return [...live.values()];
}

let clkTck: number | undefined;
function ticksPerSec(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** Resident set size in KiB (VmRSS), or 0 when the process is gone. */
export function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** User + system CPU time, in milliseconds, from the text of a /proc stat file (a process's or one thread's). */
function statCpuMs(stat: string): number {
  // The command name may contain spaces, so fields are counted after its closing parenthesis.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / ticksPerSec();
}

/** User + system CPU time of the whole process (all threads), in milliseconds. */
export function cpuMs(pid: number): number {
  try {
    return statCpuMs(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return 0;
  }
}

/**
 * CPU time of each thread of a process, in milliseconds, summed by thread name:
 * "main" for the event loop's thread, else the name Linux shows (Node names
 * some, e.g. "V8Worker", "libuv-worker"; a worker_threads Worker keeps the
 * command's name), to tell which of them a measured window's CPU went to.
 */
export function threadCpuMs(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // The main thread (its id is the process id) apart: worker_threads Workers carry the process's name too.
      const name = tid === String(pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      out[name] = (out[name] ?? 0) + statCpuMs(stat);
    } catch {
      /* the thread ended between the listing and the read */
    }
  }
  return out;
}

/** Per-name difference of two threadCpuMs() readings, names that used no CPU left out. */
export function threadCpuDelta(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, ms] of Object.entries(b)) {
    const d = ms - (a[name] ?? 0);
    if (d > 0) out[name] = Math.round(d);
  }
  return out;
}

/** Which cores the process may run on, as taskset prints it, e.g. "0". */
export function affinity(pid: number): string {
  try {
    const m = /Cpus_allowed_list:\s+(\S+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ?? '?';
  } catch {
    return '?';
  }
}

/** Pins an already running process and all its threads (used for the runner itself). */
export function pinSelf(core: number): boolean {
  const ts = taskset();
  if (!ts) return false;
  try {
    execFileSync(ts, ['-a', '-p', '-c', String(core), String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface CoreTimes {
  busy: number;
  total: number;
}

/** Busy and total jiffies per core from /proc/stat, to see who else used the cores during a step. */
export function coreTimes(): CoreTimes[] {
  const out: CoreTimes[] = [];
  try {
    for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
      const m = /^cpu(\d+)\s+(.*)$/.exec(line);
      if (!m) continue;
      const v = (m[2] as string).split(/\s+/).map(Number);
      const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
      const idle = (v[3] ?? 0) + (v[4] ?? 0);
      out[Number(m[1])] = { busy: total - idle, total };
    }
  } catch {
    /* not Linux */
  }
  return out;
}

/** Percent busy of each core between two coreTimes() readings. */
export function coreBusyPct(a: CoreTimes[], b: CoreTimes[]): number[] {
  return b.map((x, i) => {
    const y = a[i];
    const dt = y ? x.total - y.total : 0;
    return y && dt > 0 ? Math.round(((x.busy - y.busy) / dt) * 1000) / 10 : 0;
  });
}

/**
 * Waits (at most maxWaitMs) until the machine is quiet: all cores together
 * busier than thresholdPct of one core means someone else is working. Returns
 * how long it waited and the last reading, for the record.
 */
export async function waitQuiet(maxWaitMs: number, thresholdPct = 25): Promise<{ waitedMs: number; busyPct: number }> {
  const t0 = Date.now();
  let busy: number;
  do {
    const a = coreTimes();
    await new Promise((r) => setTimeout(r, 1000));
    busy = coreBusyPct(a, coreTimes()).reduce((x, y) => x + y, 0);
    if (busy < thresholdPct) break;
  } while (Date.now() - t0 < maxWaitMs);
  return { waitedMs: Date.now() - t0, busyPct: Math.round(busy) };
}
