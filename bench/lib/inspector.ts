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

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => {
      const m = JSON.parse(d.toString()) as Reply;
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

  close(): void {
    this.ws.close();
  }
}
