/**
 * One simulated client of the load generator: a raw `ws` socket speaking the
 * system under test's wire format (bare ws router, Socket.IO v5 over Engine.IO
 * v4, or Parley protocol v1). Not the Parley SDK, so every system pays the same
 * client-side costs.
 */
import WebSocket from 'ws';
import { Histogram } from '../lib/histogram.js';
import { frameType, makeBody, nowUs, parseBody, q, type BodyInfo, type System } from './wire.js';

export interface ClientSpec {
  idx: number;
  userId: string;
  token?: string;
}

/** Counters shared by all clients of one worker; reset per measured step. */
export class Counters {
  step = 0;
  sent = 0;
  acked = 0;
  delivered = 0;
  /** Deliveries that belong to another step (late arrivals). */
  stale = 0;
  /** A sender receiving its own message back. */
  echo = 0;
  errors = 0;
  errorCodes: Record<string, number> = {};
  closes: Record<string, number> = {};
  hist = new Histogram();

  reset(step: number): void {
    this.step = step;
    this.sent = this.acked = this.delivered = this.stale = this.echo = this.errors = 0;
    this.errorCodes = {};
    this.closes = {};
    this.hist.reset();
  }
}

export interface Endpoints {
  system: System;
  /** ws router: ws://host:port/ ; sio: ws://host:port/socket.io/?EIO=4&transport=websocket ; parley: ws://host:port/v1/ws */
  wsUrl: string;
}

export interface SyncResult {
  events: number;
  conversations: number;
  ordered: boolean;
  ms: number;
}

const info: BodyInfo = { us: 0, sender: 0, step: 0 };

interface ParleyFrame {
  type?: string;
  code?: string;
  event?: { conversationId?: string; seq?: number };
  message?: { conversationId?: string; seq?: number };
  conversation?: { id?: string; lastSeq?: number };
}

export class BenchClient {
  ws: WebSocket | null = null;
  ready = false;
  /** ws/sio direct: the peer's user id; rooms: the room; parley: the conversation id. */
  target = '';
  toRoom = false;
  private ref = 0;
  private onReady: ((err?: Error) => void) | null = null;
  private onAck: (() => void) | null = null;
  /** Parley only, while tracking: last seq seen per conversation (what a real client stores). */
  positions: Map<string, number> | null = null;
  private syncState: { ref: string; events: number; convs: number; ordered: boolean; last: Map<string, number>; done: () => void } | null = null;
  private burstLeft = 0;
  private burstOut = 0;
  private burstDone: (() => void) | null = null;

  constructor(
    readonly ep: Endpoints,
    readonly spec: ClientSpec,
    readonly c: Counters,
  ) {}

  get idx(): number {
    return this.spec.idx;
  }

  /** Opens the socket and completes the system's handshake (Socket.IO namespace connect, Parley auth → ready). */
  connect(localAddress: string, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const sys = this.ep.system;
      const url =
        sys === 'ws'
          ? `${this.ep.wsUrl}?u=${encodeURIComponent(this.spec.userId)}`
          : sys === 'sio'
            ? `${this.ep.wsUrl}&u=${encodeURIComponent(this.spec.userId)}`
            : this.ep.wsUrl;
      const ws = new WebSocket(url, { perMessageDeflate: false, localAddress, handshakeTimeout: timeoutMs });
      this.ws = ws;
      this.ready = false;
      let settled = false;
      const timer = setTimeout(() => finish(new Error('connect timeout')), timeoutMs);
      const finish = (err?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.onReady = null;
        if (err) {
          ws.terminate();
          reject(err);
        } else {
          this.ready = true;
          resolve();
        }
      };
      this.onReady = finish;
      ws.on('open', () => {
        if (sys === 'ws') finish();
        else if (sys === 'parley') ws.send(`{"type":"auth","ref":"auth","token":${q(this.spec.token ?? '')}}`);
        // Socket.IO: wait for the Engine.IO open packet, then connect to the namespace.
      });
      ws.on('message', (data: Buffer) => this.onMessage(data));
      ws.on('error', (e: Error) => finish(e));
      ws.on('close', (code: number) => {
        this.c.closes[code] = (this.c.closes[code] ?? 0) + 1;
        finish(new Error(`closed ${code} before ready`));
        // A socket dropped on purpose closes later, possibly while its successor is syncing: leave that one alone.
        if (this.ws !== ws) return;
        this.ready = false;
        this.ws = null;
        this.syncState?.done();
        this.burstDone?.();
      });
    });
  }

  private onMessage(buf: Buffer): void {
    const sys = this.ep.system;
    if (sys === 'sio') return this.onSio(buf);
    const t = frameType(buf);
    switch (t) {
      case 'msg':
      case 'event':
        if (parseBody(buf, info)) this.delivery();
        if (this.positions || this.syncState) {
          // Parsed once, and only while positions matter (sync and storm workloads, not the load steps).
          const f = JSON.parse(buf.toString()) as ParleyFrame;
          if (this.positions) this.track(f);
          if (this.syncState) this.syncEvent(f);
        }
        return;
      case 'ack':
        this.c.acked++;
        if (this.positions) this.track(JSON.parse(buf.toString()) as ParleyFrame);
        this.acked();
        return;
      case 'ready':
        this.onReady?.();
        return;
      case 'synced':
        this.syncState?.done();
        return;
      case 'conversation':
        if (this.positions) this.track(JSON.parse(buf.toString()) as ParleyFrame);
        if (this.syncState) this.syncState.convs++;
        return;
      case 'error':
        this.error(buf);
        return;
      default:
        return; // pong, presence, typing, receipt
    }
  }

  private onSio(buf: Buffer): void {
    const a = buf[0];
    if (a === 50 && buf.length === 1) {
      this.ws?.send('3'); // Engine.IO ping → pong
    } else if (a === 52) {
      const b = buf[1];
      if (b === 50) {
        if (parseBody(buf, info)) this.delivery();
      } else if (b === 51) {
        this.c.acked++;
        this.acked();
      } else if (b === 48) {
        this.onReady?.();
      } else if (b === 52) {
        this.onReady?.(new Error(`socket.io connect_error ${buf.toString()}`));
      }
    } else if (a === 48) {
      this.ws?.send('40');
    }
  }

  private delivery(): void {
    const c = this.c;
    if (info.sender === this.spec.idx) c.echo++;
    else if (info.step === c.step) {
      c.delivered++;
      c.hist.record(nowUs() - info.us);
    } else c.stale++;
  }

  private acked(): void {
    if (this.onAck) {
      const f = this.onAck;
      this.onAck = null;
      f();
    }
    if (this.burstDone) {
      this.burstOut--;
      if (this.burstLeft > 0) {
        this.burstLeft--;
        this.burstOut++;
        this.sendBench(0);
      } else if (this.burstOut <= 0) {
        const f = this.burstDone;
        this.burstDone = null;
        f();
      }
    }
  }

  private error(buf: Buffer): void {
    this.c.errors++;
    let code = 'unknown';
    try {
      code = (JSON.parse(buf.toString()) as ParleyFrame).code ?? code;
    } catch {
      /* keep unknown */
    }
    this.c.errorCodes[code] = (this.c.errorCodes[code] ?? 0) + 1;
    // An error answers a request like an ack does, so closed-loop senders keep going.
    this.acked();
  }

  private track(f: ParleyFrame): void {
    const pos = this.positions;
    if (!pos) return;
    const put = (id: string | undefined, seq: number | undefined): void => {
      if (id !== undefined && seq !== undefined && seq > (pos.get(id) ?? 0)) pos.set(id, seq);
    };
    if (f.event) put(f.event.conversationId, f.event.seq);
    else if (f.message) put(f.message.conversationId, f.message.seq);
    else if (f.conversation?.id !== undefined) {
      // A conversation announced during sync: a real client would fetch its history; the bench only wants its head.
      if (!pos.has(f.conversation.id)) pos.set(f.conversation.id, f.conversation.lastSeq ?? 0);
    }
  }

  private syncEvent(f: ParleyFrame): void {
    const s = this.syncState;
    if (!s) return;
    s.events++;
    const id = f.event?.conversationId;
    const seq = f.event?.seq;
    if (id !== undefined && seq !== undefined) {
      const prev = s.last.get(id);
      if (prev !== undefined && seq !== prev + 1) s.ordered = false;
      s.last.set(id, seq);
    }
  }

  /** One bench message to the client's target, open-loop (the ack is counted, not awaited). */
  sendBench(step: number): boolean {
    const ws = this.ws;
    if (!ws || !this.ready) return false;
    const body = makeBody(nowUs(), this.spec.idx, step);
    const ref = ++this.ref;
    switch (this.ep.system) {
      case 'ws':
        ws.send(`{"type":"send","ref":${ref},"${this.toRoom ? 'room' : 'to'}":${q(this.target)},"body":"${body}"}`);
        break;
      case 'sio':
        ws.send(`42${ref}["send",{"${this.toRoom ? 'room' : 'to'}":${q(this.target)},"body":"${body}"}]`);
        break;
      case 'parley':
        ws.send(`{"type":"send","ref":${ref},"conversationId":${q(this.target)},"clientId":"b${this.spec.idx}-${ref}-${body.slice(0, 16)}","body":"${body}"}`);
        break;
    }
    this.c.sent++;
    return true;
  }

  /** Baselines only: join a room and wait for the ack. */
  join(room: string, timeoutMs: number): Promise<void> {
    const ws = this.ws;
    if (!ws) return Promise.reject(new Error('not connected'));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('join timeout')), timeoutMs);
      this.onAck = () => {
        clearTimeout(timer);
        resolve();
      };
      const ref = ++this.ref;
      if (this.ep.system === 'ws') ws.send(`{"type":"join","ref":${ref},"room":${q(room)}}`);
      else ws.send(`42${ref}["join",${q(room)}]`);
    });
  }

  /** Closed loop: `count` messages with at most `window` unacknowledged; resolves when all are answered. */
  burst(count: number, window: number, timeoutMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.burstDone = null;
        this.burstLeft = 0;
        resolve(false);
      }, timeoutMs);
      this.burstDone = () => {
        clearTimeout(timer);
        this.burstDone = null;
        this.burstLeft = 0;
        resolve(this.ready);
      };
      this.burstLeft = count;
      this.burstOut = 0;
      const first = Math.min(window, count);
      for (let i = 0; i < first; i++) {
        this.burstLeft--;
        this.burstOut++;
        if (!this.sendBench(0)) {
          this.burstDone();
          return;
        }
      }
      if (count === 0) this.burstDone();
    });
  }

  /** Parley: sends `sync` with the stored positions and waits for `synced`. */
  sync(timeoutMs: number): Promise<SyncResult> {
    const ws = this.ws;
    if (!ws || !this.ready) return Promise.reject(new Error('not connected'));
    const positions = Object.fromEntries(this.positions ?? []);
    const ref = `sync${++this.ref}`;
    const t0 = nowUs();
    return new Promise<SyncResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.syncState = null;
        reject(new Error('sync timeout'));
      }, timeoutMs);
      const st = {
        ref,
        events: 0,
        convs: 0,
        ordered: true,
        last: new Map<string, number>(),
        done: () => {
          clearTimeout(timer);
          this.syncState = null;
          if (!this.ready) reject(new Error('closed during sync'));
          else resolve({ events: st.events, conversations: st.convs, ordered: st.ordered, ms: (nowUs() - t0) / 1000 });
        },
      };
      this.syncState = st;
      ws.send(`{"type":"sync","ref":"${ref}","positions":${JSON.stringify(positions)}}`);
    });
  }

  ping(): void {
    if (this.ready && this.ep.system === 'parley') this.ws?.send('{"type":"ping"}');
  }

  /** Graceful close; resolves when the socket is closed (or after timeoutMs, terminating it). */
  close(timeoutMs = 3000): Promise<void> {
    const ws = this.ws;
    if (!ws) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, timeoutMs);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.close();
    });
  }

  /** Abrupt drop (what a network failure or a crashed client looks like to the server). */
  drop(): void {
    const ws = this.ws;
    this.ready = false;
    this.ws = null;
    ws?.terminate();
  }
}
