/**
 * A WebSocket test client over the real `ws` package. It keeps a log of every
 * frame it received, and lets a test wait for the next frame of a type that
 * matches a predicate. A frame handed out by `next` is not handed out again, so
 * tests can count deliveries.
 */
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import type { ServerFrame, ServerFrameType } from '../../src/protocol/frames.js';

export type FrameOf<T extends ServerFrameType> = Extract<ServerFrame, { type: T }>;

export interface CloseInfo {
  code: number;
  reason: string;
}

interface Waiter {
  match: (f: ServerFrame) => boolean;
  resolve: (f: ServerFrame) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export interface OpenOpts {
  /** When false the client does not answer protocol pings: truly silent. */
  autoPong?: boolean;
  timeoutMs?: number;
}

let refSeq = 0;
export const newRef = (): string => `r${++refSeq}`;

export class TestWs {
  /** Every frame received, in order. */
  readonly log: ServerFrame[] = [];
  /** Receive time of each frame in `log` (performance.now()). */
  readonly times: number[] = [];
  /** Messages that were not one JSON object with a string `type`: protocol violations. */
  readonly violations: string[] = [];
  private readonly taken = new Set<number>();
  private waiters: Waiter[] = [];
  closeInfo: CloseInfo | undefined;
  private readonly closedP: Promise<CloseInfo>;
  /** Bytes of text received, for volume checks. */
  bytesIn = 0;

  private constructor(readonly ws: WebSocket, readonly label: string) {
    this.closedP = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        for (const w of this.waiters) {
          clearTimeout(w.timer);
          w.reject(new Error(`${this.label}: socket closed ${code} ${reason.toString()} while waiting; ${this.tail()}`));
        }
        this.waiters = [];
        resolve(this.closeInfo);
      });
    });
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    // An error (e.g. ECONNRESET after the server closes) is followed by close.
    ws.on('error', () => undefined);
  }

  static open(url: string, label = 'ws', opts: OpenOpts = {}): Promise<TestWs> {
    const ws = new WebSocket(url, { autoPong: opts.autoPong ?? true, perMessageDeflate: false });
    const client = new TestWs(ws, label);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${label}: connect timeout`)), opts.timeoutMs ?? 5000);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve(client);
      });
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        reject(new Error(`${label}: upgrade refused with HTTP ${res.statusCode}`));
      });
      ws.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
    this.bytesIn += text.length;
    if (isBinary) {
      this.violations.push(`binary frame: ${text.slice(0, 100)}`);
      return;
    }
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      this.violations.push(`not JSON: ${text.slice(0, 100)}`);
      return;
    }
    if (!frame || typeof frame !== 'object' || Array.isArray(frame) || typeof (frame as { type?: unknown }).type !== 'string') {
      this.violations.push(`not a frame object: ${text.slice(0, 100)}`);
      return;
    }
    const f = frame as ServerFrame;
    const i = this.log.length;
    this.log.push(f);
    this.times.push(performance.now());
    const w = this.waiters.find((x) => x.match(f));
    if (w) {
      this.taken.add(i);
      this.waiters = this.waiters.filter((x) => x !== w);
      clearTimeout(w.timer);
      w.resolve(f);
    }
  }

  /** The last few frames, for failure messages. */
  tail(n = 6): string {
    const frames = this.log.slice(-n).map((f) => JSON.stringify(f).slice(0, 200));
    const v = this.violations.length ? ` violations=${JSON.stringify(this.violations.slice(-3))}` : '';
    return `last frames: [${frames.join(', ')}]${v}`;
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(frame: object): void {
    this.ws.send(JSON.stringify(frame));
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  /**
   * The oldest frame of `type` matching `pred` not handed out before; waits for
   * it up to `timeoutMs`. Rejects on timeout or when the socket closes.
   */
  next<T extends ServerFrameType>(type: T, pred: (f: FrameOf<T>) => boolean = () => true, timeoutMs = 3000): Promise<FrameOf<T>> {
    const match = (f: ServerFrame): boolean => f.type === type && pred(f as FrameOf<T>);
    for (let i = 0; i < this.log.length; i++) {
      const f = this.log[i] as ServerFrame;
      if (!this.taken.has(i) && match(f)) {
        this.taken.add(i);
        return Promise.resolve(f as FrameOf<T>);
      }
    }
    if (this.closeInfo) {
      return Promise.reject(new Error(`${this.label}: closed ${this.closeInfo.code} before a ${type} frame; ${this.tail()}`));
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        match,
        resolve: (f) => resolve(f as FrameOf<T>),
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== w);
          reject(new Error(`${this.label}: no ${type} frame within ${timeoutMs} ms; ${this.tail()}`));
        }, timeoutMs),
      };
      this.waiters.push(w);
    });
  }

  /** `n` frames of a type matching `pred`, in arrival order. */
  async collect<T extends ServerFrameType>(type: T, n: number, pred: (f: FrameOf<T>) => boolean = () => true, timeoutMs = 5000): Promise<FrameOf<T>[]> {
    const end = Date.now() + timeoutMs;
    const out: FrameOf<T>[] = [];
    for (let i = 0; i < n; i++) {
      const left = Math.max(1, end - Date.now());
      try {
        out.push(await this.next(type, pred, left));
      } catch (e) {
        throw new Error(`${this.label}: got ${out.length} of ${n} ${type} frames: ${(e as Error).message}`, { cause: e });
      }
    }
    return out;
  }

  /** Every frame of `type` matching `pred` received so far (handed out or not). */
  all<T extends ServerFrameType>(type: T, pred: (f: FrameOf<T>) => boolean = () => true): FrameOf<T>[] {
    return this.log.filter((f): f is FrameOf<T> => f.type === type && pred(f as FrameOf<T>));
  }

  /** Waits `ms` and asserts that no frame of `type` matching `pred` arrived that was not handed out. */
  async nothing<T extends ServerFrameType>(type: T, pred: (f: FrameOf<T>) => boolean = () => true, ms = 300): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    const extra = this.log.filter((f, i) => !this.taken.has(i) && f.type === type && pred(f as FrameOf<T>));
    assert.equal(extra.length, 0, `${this.label}: unexpected ${type} frames: ${JSON.stringify(extra).slice(0, 500)}`);
  }

  /** Marks every frame received so far as handed out. */
  drain(): void {
    for (let i = 0; i < this.log.length; i++) this.taken.add(i);
  }

  /** Sends a frame with a fresh ref (unless it has one) and waits for the answer carrying that ref. */
  async request(frame: Record<string, unknown>, timeoutMs = 3000): Promise<ServerFrame> {
    const ref = frame.ref ?? newRef();
    const replyTypes = new Set(['ack', 'error', 'pong', 'ready', 'synced']);
    const p = this.nextAny((f) => replyTypes.has(f.type) && (f as { ref?: unknown }).ref === ref, timeoutMs, `reply to ${String(frame.type)} ${String(ref)}`);
    this.send({ ...frame, ref });
    return p;
  }

  /** Like request, but asserts an ack and returns it. */
  async ack(frame: Record<string, unknown>, timeoutMs = 3000): Promise<FrameOf<'ack'>> {
    const r = await this.request(frame, timeoutMs);
    assert.equal(r.type, 'ack', `${this.label}: expected ack for ${JSON.stringify(frame).slice(0, 200)}, got ${JSON.stringify(r)}`);
    return r as FrameOf<'ack'>;
  }

  /** Like request, but asserts an error frame with `code` echoing the ref, and returns it. */
  async error(frame: Record<string, unknown>, code: string, timeoutMs = 3000): Promise<FrameOf<'error'>> {
    const r = await this.request(frame, timeoutMs);
    assert.equal(r.type, 'error', `${this.label}: expected error ${code} for ${JSON.stringify(frame).slice(0, 200)}, got ${JSON.stringify(r).slice(0, 300)}`);
    const e = r as FrameOf<'error'>;
    assert.equal(e.code, code, `${this.label}: error code for ${JSON.stringify(frame).slice(0, 200)}: ${JSON.stringify(e)}`);
    assert.equal(typeof e.message, 'string');
    assert.ok(e.message.length > 0, 'error message is empty');
    return e;
  }

  /** The next frame of any type matching `pred`. */
  nextAny(pred: (f: ServerFrame) => boolean, timeoutMs = 3000, what = 'frame'): Promise<ServerFrame> {
    for (let i = 0; i < this.log.length; i++) {
      const f = this.log[i] as ServerFrame;
      if (!this.taken.has(i) && pred(f)) {
        this.taken.add(i);
        return Promise.resolve(f);
      }
    }
    if (this.closeInfo) return Promise.reject(new Error(`${this.label}: closed ${this.closeInfo.code} before ${what}; ${this.tail()}`));
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        match: pred,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== w);
          reject(new Error(`${this.label}: no ${what} within ${timeoutMs} ms; ${this.tail()}`));
        }, timeoutMs),
      };
      this.waiters.push(w);
    });
  }

  /** Resolves with the close code and reason; rejects when the socket is still open after `timeoutMs`. */
  closed(timeoutMs = 3000): Promise<CloseInfo> {
    if (this.closeInfo) return Promise.resolve(this.closeInfo);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.label}: still open after ${timeoutMs} ms; ${this.tail()}`)), timeoutMs);
      void this.closedP.then((c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
  }

  /** Stops reading from the TCP socket: the server's writes back up. */
  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  async close(): Promise<void> {
    if (this.closeInfo) return;
    if (this.ws.readyState === WebSocket.CONNECTING || this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    try {
      await this.closed(1000);
    } catch {
      this.ws.terminate();
      await this.closedP;
    }
  }

  terminate(): void {
    this.ws.terminate();
  }
}

/** After a bad frame the socket must still be open and still work: a ping is answered and a send acked. */
export async function stillWorks(ws: TestWs, conversationId: string, what: string): Promise<void> {
  assert.ok(ws.open, `${what}: socket closed ${JSON.stringify(ws.closeInfo)}`);
  assert.equal((await ws.request({ type: 'ping' })).type, 'pong', `${what}: ping after the bad frame`);
  const ack = await ws.ack({ type: 'send', conversationId, clientId: `after-${newRef()}`, body: `still fine after ${what}` });
  assert.ok('message' in ack, `${what}: send after the bad frame`);
}
