/**
 * The WebSocket endpoint `/v1/ws`: upgrade, the auth handshake, the read loop,
 * and one shared sweeper for auth timeouts, idle sockets and stuck closes.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { BINARY, ParleySocket } from './socket.js';
import type { Core } from '../../core/core.js';
import { FrameHandler, errorFrame } from '../frame-handler.js';
import { parseClientFrame } from '../parse.js';
import { CLOSE } from '../../protocol/errors.js';
import { ParleyError, toParleyError } from '../../core/errors.js';
import { serializeFrame } from '../../core/frames.js';

/** Frames a socket may queue while an earlier one is handled; beyond it the socket stops being read (TCP backpressure). */
const MAX_QUEUED_FRAMES = 64;
/**
 * A socket that has not completed its close handshake in this long is cut. A
 * slow reader needs time to drain its queue and read the 4009; its memory is
 * already bounded because nothing more is queued once closing.
 */
const CLOSE_GRACE_MS = 15_000;

export class WsTransport {
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<ParleySocket>();
  private readonly sweeper: NodeJS.Timeout;
  private seq = 0;
  draining = false;

  constructor(
    private readonly core: Core,
    private readonly handler: FrameHandler,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: core.config.maxFrameBytes,
      perMessageDeflate: false,
      clientTracking: false,
      WebSocket: ParleySocket,
    });
    const c = core.config;
    // ws calls listeners with `this` = the socket; one pair of listeners per transport, not per socket.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    this.onMessage = function (data, isBinary) {
      self.received(this as ParleySocket, data, isBinary);
    };
    this.onClose = function (code) {
      self.core.metrics.closes.inc({ code: String(code) });
      self.cleanup(this as ParleySocket);
    };
    this.onTooSlow = () => self.core.metrics.slowReaders.inc();
    const every = Math.max(50, Math.min(1000, c.authTimeoutMs / 4, c.idleTimeoutMs / 4));
    this.sweeper = setInterval(() => this.sweep(Date.now()), every).unref();
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  attachTo(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (req.url ?? '').split('?', 1)[0];
      if (path !== '/v1/ws') return reject(socket, 404, 'Not Found');
      if (this.draining) return reject(socket, 503, 'Service Unavailable');
      this.wss.handleUpgrade(req, socket, head, (ws) => this.opened(ws as ParleySocket));
    });
  }

  /** Frames the transport answers itself (the frame handler counts its own). */
  private pushCounted(ws: ParleySocket, type: 'ready' | 'error', frame: string): void {
    this.core.metrics.framesOut.inc({ type });
    ws.push(frame);
  }

  private opened(ws: ParleySocket): void {
    const now = Date.now();
    ws.connId = `${this.core.config.nodeId}.${(++this.seq).toString(36)}`;
    ws.openedAt = ws.lastSeen = now;
    ws.maxBuffered = this.core.config.sendQueueBytes;
    ws.onTooSlow = this.onTooSlow;
    this.sockets.add(ws);
    ws.on('message', this.onMessage);
    ws.on('close', this.onClose);
    ws.on('error', onError);
  }

  // Shared listeners: ws calls them with `this` bound to the socket, so there is no closure per connection.
  private readonly onMessage: (this: WebSocket, data: RawData, isBinary: boolean) => void;
  private readonly onClose: (this: WebSocket, code: number) => void;
  private readonly onTooSlow: () => void;

  private received(ws: ParleySocket, data: RawData, isBinary: boolean): void {
    ws.lastSeen = Date.now();
    // A binary message is refused in its turn, after the frames before it (its content is never read).
    // Text frames arrive as one Buffer (ws's default binaryType); decoded in place, not copied first.
    const text = isBinary ? BINARY : Array.isArray(data) ? Buffer.concat(data).toString() : Buffer.isBuffer(data) ? data.toString() : Buffer.from(data).toString();
    if (ws.busy) {
      const q = (ws.queue ??= []);
      q.push(text);
      if (q.length >= MAX_QUEUED_FRAMES) ws.pause();
      return;
    }
    void this.run(ws, text);
  }

  private async run(ws: ParleySocket, first: string | typeof BINARY): Promise<void> {
    ws.busy = true;
    try {
      let text: string | typeof BINARY | undefined = first;
      while (text !== undefined) {
        try {
          await this.process(ws, text);
        } catch (err) {
          this.core.log.error({ err }, 'frame handling failed');
          this.pushCounted(ws, 'error', errorFrame(toParleyError(err), undefined));
        }
        text = ws.queue?.shift();
        if (ws.isPaused && (ws.queue?.length ?? 0) < MAX_QUEUED_FRAMES / 2) ws.resume();
      }
      ws.queue = undefined;
    } finally {
      ws.busy = false;
    }
  }

  /** Handles one frame text; frames of a socket take effect one at a time, in order. */
  private async process(ws: ParleySocket, text: string | typeof BINARY): Promise<void> {
    if (text === BINARY) {
      if (ws.authState !== 2) ws.close(CLOSE.unauthorized, 'the first frame must be auth');
      else this.handler.refuse(ws, new ParleyError('bad_request', 'Frames must be JSON text, not binary.'), undefined, (f) => ws.push(f));
      return;
    }
    if (ws.authState !== 2) return this.authenticate(ws, text);
    const parsed = parseClientFrame(text);
    if (!parsed.ok) {
      // Unreadable frames count against the connection's bucket like any other.
      this.handler.refuse(ws, parsed.error, parsed.ref, (f) => ws.push(f));
      return;
    }
    await this.handler.handle(ws, parsed.frame, (f) => ws.push(f));
  }

  private async authenticate(ws: ParleySocket, text: string): Promise<void> {
    const parsed = parseClientFrame(text);
    if (!parsed.ok || parsed.frame.type !== 'auth') {
      ws.close(CLOSE.unauthorized, 'the first frame must be auth');
      return;
    }
    ws.authState = 1;
    const { core } = this;
    try {
      const principal = await core.auth.verify(parsed.frame.token);
      const user = await core.engines.store.users.byId(principal.userId);
      if (!user) throw new ParleyError('unauthorized', 'The account no longer exists.');
      if (ws.readyState !== ParleySocket.OPEN) return;
      ws.userId = principal.userId;
      ws.deviceId = principal.deviceId;
      // Subscribe first: from here on every committed event reaches this socket, so a sync after `ready` misses nothing.
      await core.hub.attach(ws);
      ws.authState = 2;
      if (ws.readyState !== ParleySocket.OPEN) {
        this.cleanup(ws);
        return;
      }
      await core.presence.connected(ws).catch((err) => core.log.warn({ err }, 'presence connect failed'));
      core.log.info({ conn: ws.connId, user: ws.userId, device: ws.deviceId }, 'connection open');
      this.pushCounted(ws, 'ready', serializeFrame({ type: 'ready', ref: parsed.frame.ref, user, deviceId: ws.deviceId, heartbeatMs: core.config.heartbeatMs }));
    } catch (err) {
      const e = toParleyError(err);
      if (e.code === 'unauthorized') ws.close(CLOSE.unauthorized, e.message.slice(0, 120));
      else {
        // The token may be fine: an engine failed. Tell the client to retry rather than re-login.
        this.pushCounted(ws, 'error', errorFrame(e, parsed.frame.ref));
        ws.close(1011, 'try again');
      }
    }
  }

  private cleanup(ws: ParleySocket): void {
    if (!this.sockets.delete(ws)) return;
    if (ws.authState === 2) {
      this.core.hub.detach(ws);
      this.core.presence.disconnected(ws);
      this.core.log.info({ conn: ws.connId, user: ws.userId }, 'connection closed');
    }
  }

  private sweep(now: number): void {
    const { authTimeoutMs, idleTimeoutMs } = this.core.config;
    for (const ws of this.sockets) {
      if (ws.closingSince !== 0) {
        if (now - ws.closingSince > CLOSE_GRACE_MS) ws.terminate();
      } else if (ws.authState !== 2 && now - ws.openedAt > authTimeoutMs) {
        ws.close(CLOSE.unauthorized, 'auth timeout');
      } else if (now - ws.lastSeen > idleTimeoutMs) {
        ws.close(1000, 'idle timeout');
      }
    }
  }

  /** Tells every client to reconnect elsewhere; resolves when the sockets are gone or the grace ran out. */
  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    for (const ws of this.sockets) ws.close(CLOSE.draining, 'server is shutting down');
    const until = Date.now() + graceMs;
    while (this.sockets.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
    for (const ws of this.sockets) ws.terminate();
  }

  close(): void {
    clearInterval(this.sweeper);
    this.wss.close();
  }
}

function onError(this: WebSocket): void {
  // ws closes the socket itself after an error (bad frame, oversized payload); the close listener cleans up.
}

function reject(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
