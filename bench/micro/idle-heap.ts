/**
 * What one idle authenticated connection keeps alive in Parley's JS heap, by
 * kind of object: `node --import tsx bench/micro/idle-heap.ts [--n 2000]
 * [--parley-from src|dist] [--system parley|ws]` (ws: the bare router, to see
 * which objects are ws's own).
 *
 * Starts Parley (bench settings, inspector on loopback), registers N users,
 * opens and closes a warm-up wave, takes a heap snapshot, connects N clients
 * (auth → ready) from this process, takes another, and prints the difference
 * per connection: objects and bytes by constructor (or by V8 node type), plus
 * RSS per connection. The idle workload of the bench gives the number; this
 * names what it is made of.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { RemoteProfiler } from '../lib/inspector.js';
import { rssKiB, stopAll } from '../lib/proc.js';
import { chooseLaunch, freePort, startSystem, type LaunchChoice } from '../lib/systems.js';
import { pool, registerAndLogin, type BenchUser } from '../gen/parley-http.js';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/**
 * Count and self size per kind: objects by constructor name, plain Objects by
 * their property names too (`Object{a,b}`), arrays and hash tables by what
 * holds them (`(array) of Set`), the rest by V8 node type.
 */
function tally(json: string): Map<string, { count: number; bytes: number }> {
  const s = JSON.parse(json) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const iEdges = fields.indexOf('edge_count');
  const types = s.snapshot.meta.node_types[0];
  const efields = s.snapshot.meta.edge_fields;
  const ewidth = efields.length;
  const eType = efields.indexOf('type');
  const eName = efields.indexOf('name_or_index');
  const eTo = efields.indexOf('to_node');
  const etypes = s.snapshot.meta.edge_types[0];
  const nodeCount = s.nodes.length / width;
  const label = new Array<string>(nodeCount);
  const holder = new Array<string | undefined>(nodeCount);
  let e = 0;
  for (let n = 0; n < nodeCount; n++) {
    const i = n * width;
    const type = types[s.nodes[i + iType] as number] ?? '?';
    const name = s.strings[s.nodes[i + iName] as number] ?? '';
    const props: string[] = [];
    const edges = s.nodes[i + iEdges] as number;
    for (let k = 0; k < edges; k++, e += ewidth) {
      const et = etypes[s.edges[e + eType] as number];
      const to = (s.edges[e + eTo] as number) / width;
      if (et === 'property' && type === 'object' && name === 'Object') props.push(s.strings[s.edges[e + eName] as number] ?? '?');
      if (et !== 'weak' && holder[to] === undefined) holder[to] = type === 'object' ? name : `(${type})`;
    }
    label[n] =
      type === 'object' && name === 'Object' ? `Object{${props.slice(0, 6).join(',')}}` : type === 'object' || type === 'native' || type === 'closure' ? `${type}:${name}` : `(${type})`;
  }
  const out = new Map<string, { count: number; bytes: number }>();
  for (let n = 0; n < nodeCount; n++) {
    const kind = label[n] === '(array)' || label[n] === '(hidden)' ? `${label[n]} of ${holder[n] ?? '?'}` : (label[n] as string);
    const x = out.get(kind) ?? { count: 0, bytes: 0 };
    x.count++;
    x.bytes += s.nodes[n * width + iSize] as number;
    out.set(kind, x);
  }
  return out;
}

function connect(url: string, token: string | null): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const timer = setTimeout(() => reject(new Error('no ready within 30 s')), 30_000);
    ws.once('open', () => {
      if (token !== null) return ws.send(JSON.stringify({ type: 'auth', ref: 'a', token }));
      clearTimeout(timer);
      resolve(ws);
    });
    ws.on('message', (d: Buffer) => {
      if (d.toString().startsWith('{"type":"ready"')) {
        clearTimeout(timer);
        resolve(ws);
      }
    });
    ws.once('error', reject);
  });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const arg = (k: string, d: string): string => {
    const i = argv.indexOf(`--${k}`);
    return i >= 0 ? (argv[i + 1] ?? d) : d;
  };
  const n = Number(arg('n', '2000'));
  const parley = arg('system', 'parley') !== 'ws';
  chooseLaunch(arg('parley-from', 'src') as LaunchChoice);
  const dataDir = mkdtempSync(join(tmpdir(), 'parley-heap-'));
  const inspectPort = await freePort();
  const server = await startSystem(parley ? 'parley' : 'ws', { core: null, dataDir, inspectPort });
  const prof = await RemoteProfiler.attach(inspectPort);
  try {
    const run = Date.now().toString(36);
    const users: BenchUser[] = parley
      ? await pool(
          Array.from({ length: n }, (_, i) => `heap${run}${i}`),
          16,
          (name) => registerAndLogin(server.httpUrl, name),
        )
      : Array.from({ length: n }, (_, i) => ({ userId: `u${i}`, token: '' }));
    const open = (u: BenchUser): Promise<WebSocket> => (parley ? connect(server.wsUrl, u.token) : connect(`${server.wsUrl}?u=${u.userId}`, null));
    // Warm-up: code and one-time structures (caches, statement objects) are not per connection.
    const warm = await pool(users.slice(0, Math.min(200, n)), 50, open);
    for (const ws of warm) ws.close();
    await new Promise((r) => setTimeout(r, 1500));
    const before = tally(await prof.heapSnapshot());
    const mem0 = await prof.memory();
    const rss0 = rssKiB(server.pid);
    const sockets = await pool(users, 50, open);
    await new Promise((r) => setTimeout(r, 1500));
    const rss1 = rssKiB(server.pid);
    // Read before the snapshot's full GC: what the process holds while the clients are connected.
    const mem1 = await prof.memory();
    const after = tally(await prof.heapSnapshot());
    const rows = [...new Set([...before.keys(), ...after.keys()])]
      .map((k) => {
        const a = before.get(k) ?? { count: 0, bytes: 0 };
        const b = after.get(k) ?? { count: 0, bytes: 0 };
        return { k, count: (b.count - a.count) / n, bytes: (b.bytes - a.bytes) / n };
      })
      .filter((r) => Math.abs(r.bytes) >= 4)
      .sort((x, y) => y.bytes - x.bytes);
    const total = rows.reduce((t, r) => t + r.bytes, 0);
    process.stdout.write(`${n} idle connections: JS heap +${(total / 1024).toFixed(2)} KB/conn (snapshot self sizes), RSS +${((rss1 - rss0) / n).toFixed(2)} KB/conn\n`);
    for (const r of rows.slice(0, 40)) process.stdout.write(`  ${r.bytes.toFixed(0).padStart(6)} B  ${r.count.toFixed(2).padStart(6)} ×  ${r.k}\n`);
    const kb = (b: number): string => `${(b / 1024 / n).toFixed(2)} KB/conn`;
    process.stdout.write('heap spaces, growth per connection (committed / used):\n');
    for (const sp of mem1.spaces) {
      const s0 = mem0.spaces.find((x) => x.name === sp.name);
      process.stdout.write(`  ${sp.name.padEnd(24)} ${kb(sp.committed - (s0?.committed ?? 0)).padStart(16)} / ${kb(sp.used - (s0?.used ?? 0))}  (now ${(sp.committed / 2 ** 20).toFixed(1)} MB)\n`);
    }
    const u0 = mem0.usage;
    const u1 = mem1.usage;
    process.stdout.write(`  external ${kb(u1.external - u0.external)}, array buffers ${kb(u1.arrayBuffers - u0.arrayBuffers)}, rss ${kb(u1.rss - u0.rss)}\n`);
    for (const ws of sockets) ws.terminate();
  } finally {
    prof.close();
    await stopAll(5000);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  async (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    await stopAll(2000);
    process.exit(1);
  },
);
