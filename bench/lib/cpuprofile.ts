/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per
 * module, so a run can say where the server's time went without opening DevTools.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface HotSpot {
  name: string;
  where: string;
  selfMs: number;
  pct: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  idlePct: number;
  gcPct: number;
  functions: HotSpot[];
  modules: HotSpot[];
  /**
   * Busy time charged to the innermost function of the repository's own code
   * (src/ or bench/) on the stack: what each of our functions costs including
   * the library and native work it calls (SQLite, socket writes, JSON).
   */
  ownCode: HotSpot[];
}

/** node_modules/<pkg>, node:<internal>, or the repo-relative file. */
export function moduleOf(url: string): string {
  if (!url) return '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1] ?? ''}` : (rest[0] ?? url);
  }
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const src = url.search(/\/(src|bench)\//);
  return src >= 0 ? url.slice(src + 1) : url.replace(/^file:\/\//, '');
}

export function summarizeProfile(file: string, top = 25, profile?: CpuProfile): ProfileSummary {
  const p = profile ?? (JSON.parse(readFileSync(file, 'utf8')) as CpuProfile);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  // Self time per node from samples and their time deltas (more exact than hitCount × average interval).
  const self = new Map<number, number>();
  if (p.samples && p.timeDeltas) {
    for (let i = 0; i < p.samples.length; i++) {
      const id = p.samples[i] as number;
      self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0));
    }
  } else {
    const total = p.endTime - p.startTime;
    const hits = p.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0) || 1;
    for (const n of p.nodes) self.set(n.id, ((n.hitCount ?? 0) * total) / hits);
  }
  const totalUs = [...self.values()].reduce((a, b) => a + b, 0) || 1;
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const own = new Map<string, HotSpot>();
  const ownOf = (id: number): ProfileNode | undefined => {
    for (let cur: number | undefined = id, hops = 0; cur !== undefined && hops < 500; cur = parent.get(cur), hops++) {
      const n = byId.get(cur);
      if (n && /\/(src|bench)\//.test(n.callFrame.url) && !n.callFrame.url.includes('node_modules')) return n;
    }
    return undefined;
  };
  const fns = new Map<string, HotSpot>();
  const mods = new Map<string, HotSpot>();
  let idle = 0;
  let gc = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') idle += us;
    if (name === '(garbage collector)') gc += us;
    // V8's pseudo-frames ((idle), (garbage collector), (program)) are their own module.
    const mod = !n.callFrame.url && name.startsWith('(') ? name : moduleOf(n.callFrame.url);
    const where = n.callFrame.url ? `${mod}:${n.callFrame.lineNumber + 1}` : mod;
    const key = `${name}@${where}`;
    const f = fns.get(key) ?? { name, where, selfMs: 0, pct: 0 };
    f.selfMs += us / 1000;
    fns.set(key, f);
    const m = mods.get(mod) ?? { name: mod, where: mod, selfMs: 0, pct: 0 };
    m.selfMs += us / 1000;
    mods.set(mod, m);
    if (name !== '(idle)') {
      const o = ownOf(id);
      const oname = o ? o.callFrame.functionName || '(anonymous)' : '(outside the repository code)';
      const owhere = o ? `${moduleOf(o.callFrame.url)}:${o.callFrame.lineNumber + 1}` : '';
      const ok = `${oname}@${owhere}`;
      const h = own.get(ok) ?? { name: oname, where: owhere, selfMs: 0, pct: 0 };
      h.selfMs += us / 1000;
      own.set(ok, h);
    }
  }
  // Percentages of busy time, so an idle server does not dilute the picture.
  const busyUs = Math.max(totalUs - idle, 1);
  const finish = (xs: HotSpot[]): HotSpot[] =>
    xs
      .filter((x) => x.name !== '(idle)')
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, top)
      .map((x) => ({ ...x, selfMs: Math.round(x.selfMs * 10) / 10, pct: Math.round(((x.selfMs * 1000) / busyUs) * 1000) / 10 }));
  return {
    file,
    totalMs: Math.round(totalUs / 1000),
    idlePct: Math.round((idle / totalUs) * 1000) / 10,
    gcPct: Math.round((gc / busyUs) * 1000) / 10,
    functions: finish([...fns.values()]),
    modules: finish([...mods.values()]),
    ownCode: finish([...own.values()]),
  };
}

/** One profile out of several windows of the same process: node ids are renumbered, samples appended. */
export function mergeProfiles(a: CpuProfile, b: CpuProfile): CpuProfile {
  const offset = a.nodes.reduce((m, n) => Math.max(m, n.id), 0);
  const nodes = [
    ...a.nodes,
    ...b.nodes.map((n) => ({ ...n, id: n.id + offset, children: n.children?.map((c) => c + offset) })),
  ];
  return {
    nodes,
    startTime: a.startTime,
    endTime: a.endTime + (b.endTime - b.startTime),
    samples: [...(a.samples ?? []), ...(b.samples ?? []).map((x) => x + offset)],
    timeDeltas: [...(a.timeDeltas ?? []), ...(b.timeDeltas ?? [])],
  };
}
