/**
 * CPU profiling of a server over the V8 inspector protocol, so a profile covers
 * only the measured window (not start-up, module loading or set-up requests).
 * The server is started with --inspect=127.0.0.1:<port>; loopback only.
 */
import WebSocket from 'ws';
import type { CpuProfile } from './cpuprofile.js';

interface Reply {
  id?: number;
  result?: unknown;
  error?: { message: string };
}

export class RemoteProfiler {
  private nextId = 0;
  private waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  /** Chunks of the heap snapshot being taken, if one is. */
  private snapshotChunks: string[] | undefined;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => {
      const m = JSON.parse(d.toString()) as Reply & { method?: string; params?: { chunk?: string } };
      if (m.method === 'HeapProfiler.addHeapSnapshotChunk' && m.params?.chunk !== undefined) this.snapshotChunks?.push(m.params.chunk);
      if (m.id === undefined) return;
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.error) w.reject(new Error(m.error.message));
      else w.resolve(m.result);
    });
    ws.on('close', () => {
      for (const w of this.waiting.values()) w.reject(new Error('inspector closed'));
      this.waiting.clear();
    });
  }

  static async attach(port: number, timeoutMs = 10_000): Promise<RemoteProfiler> {
    const deadline = Date.now() + timeoutMs;
    let url: string | undefined;
    while (!url && Date.now() < deadline) {
      try {
        const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`, { signal: AbortSignal.timeout(1000) })).json()) as { webSocketDebuggerUrl?: string }[];
        url = list[0]?.webSocketDebuggerUrl;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if (!url) throw new Error(`no inspector on port ${port}`);
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1 << 30 });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new RemoteProfiler(ws);
  }

  private call(method: string, params: object = {}, timeoutMs = 60_000): Promise<unknown> {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${method} timed out`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  async start(samplingIntervalUs = 250): Promise<void> {
    await this.call('Profiler.enable');
    await this.call('Profiler.setSamplingInterval', { interval: samplingIntervalUs });
    await this.call('Profiler.start');
  }

  async stop(): Promise<CpuProfile> {
    const r = (await this.call('Profiler.stop')) as { profile: CpuProfile };
    return r.profile;
  }

  /** Bytes of live JS heap after a full GC: how much of a connection's RSS is JS objects. */
  async heapUsedAfterGc(): Promise<number> {
    await this.call('HeapProfiler.enable');
    await this.call('HeapProfiler.collectGarbage');
    const r = (await this.call('Runtime.getHeapUsage')) as { usedSize: number };
    return r.usedSize;
  }

  /** V8's heap spaces (committed and used bytes each) and process.memoryUsage(), read inside the server. */
  async memory(): Promise<{ spaces: { name: string; committed: number; used: number }[]; usage: NodeJS.MemoryUsage }> {
    // Evaluated in the server's main context, where dynamic import() is not available: getBuiltinModule is (Node ≥ 20.16).
    const expression = `JSON.stringify({
      spaces: process.getBuiltinModule('node:v8').getHeapSpaceStatistics().map((s) => ({ name: s.space_name, committed: s.space_size, used: s.space_used_size })),
      usage: process.memoryUsage(),
    })`;
    const r = (await this.call('Runtime.evaluate', { expression, returnByValue: true })) as { result: { value?: string } };
    if (typeof r.result.value !== 'string') throw new Error('memory(): the server did not answer');
    return JSON.parse(r.result.value) as Awaited<ReturnType<RemoteProfiler['memory']>>;
  }

  /** A heap snapshot (after a full GC), as the JSON text V8 writes. */
  async heapSnapshot(): Promise<string> {
    await this.call('HeapProfiler.enable');
    await this.call('HeapProfiler.collectGarbage');
    this.snapshotChunks = [];
    try {
      await this.call('HeapProfiler.takeHeapSnapshot', { reportProgress: false }, 300_000);
      return this.snapshotChunks.join('');
    } finally {
      this.snapshotChunks = undefined;
    }
  }

  close(): void {
    this.ws.close();
  }
}
