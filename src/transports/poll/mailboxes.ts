/**
 * Long-poll fallback for networks that block WebSocket: each device gets a
 * mailbox that stands in for its socket in the hub. Frames are numbered; a
 * poll passes the last number it received, which acknowledges everything up to
 * it, so a lost response is simply sent again (at-least-once, deduplicated by
 * seq on the client).
 */
import type { Core } from '../../core/core.js';
import type { SyncBuffer } from '../../core/peer.js';
import type { ClientPeer } from '../frame-handler.js';
import type { Principal } from '../../core/auth.js';

/** A mailbox this full belongs to a client that stopped polling: drop it, the client resyncs. */
const MAX_FRAMES = 10_000;

export class Mailbox implements ClientPeer {
  readonly connId: string;
  readonly userId: string;
  readonly deviceId: string;
  syncing: SyncBuffer | undefined = undefined;
  strikes = 0;
  /** Number of the frame before frames[0]. */
  private base = 0;
  private frames: string[] = [];
  private waiter: (() => void) | undefined;
  lastPoll = Date.now();
  closed = false;
  /** Why it closed: 4001 revoked, 4010 draining, 4009 overflow, 1000 idle or replaced. */
  closeCode = 0;

  constructor(p: Principal, connId: string, private readonly onClose: (m: Mailbox) => void) {
    this.userId = p.userId;
    this.deviceId = p.deviceId;
    this.connId = connId;
  }

  push(frame: string): void {
    if (this.closed) return;
    if (this.frames.length >= MAX_FRAMES) return this.close(4009, 'mailbox overflow');
    this.frames.push(frame);
    this.wake();
  }

  close(code: number, _reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closeCode = code;
    this.wake();
    this.onClose(this);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Frames after `cursor`, waiting up to `timeoutMs` for the first one. */
  async poll(cursor: number, timeoutMs: number): Promise<{ frames: string[]; cursor: number }> {
    this.lastPoll = Date.now();
    const drop = Math.min(Math.max(0, cursor - this.base), this.frames.length);
    if (drop > 0) {
      this.frames.splice(0, drop);
      this.base += drop;
    }
    if (this.frames.length === 0 && timeoutMs > 0 && !this.closed) {
      this.wake(); // an older poll of the same device answers empty
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          if (this.waiter === done) this.waiter = undefined;
          resolve();
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(t);
          resolve();
        };
        this.waiter = done;
      });
      this.lastPoll = Date.now();
    }
    return { frames: this.frames.slice(), cursor: this.base + this.frames.length };
  }

  get waiting(): boolean {
    return this.waiter !== undefined;
  }
}

export class Mailboxes {
  private readonly byDevice = new Map<string, Mailbox>();
  private readonly sweeper: NodeJS.Timeout;
  private seq = 0;

  constructor(private readonly core: Core) {
    this.sweeper = setInterval(() => this.sweep(Date.now()), 1000).unref();
  }

  get size(): number {
    return this.byDevice.size;
  }

  get(deviceId: string): Mailbox | undefined {
    return this.byDevice.get(deviceId);
  }

  async open(p: Principal): Promise<Mailbox> {
    const existing = this.byDevice.get(p.deviceId);
    if (existing) return existing;
    const m = new Mailbox(p, `${this.core.config.nodeId}.poll.${(++this.seq).toString(36)}`, (mb) => this.closed(mb));
    this.byDevice.set(p.deviceId, m);
    await this.core.hub.attach(m);
    await this.core.presence.connected(m).catch(() => undefined);
    return m;
  }

  private closed(m: Mailbox): void {
    if (this.byDevice.get(m.deviceId) !== m) return;
    this.byDevice.delete(m.deviceId);
    this.core.hub.detach(m);
    this.core.presence.disconnected(m);
  }

  private sweep(now: number): void {
    for (const m of this.byDevice.values()) {
      if (!m.waiting && now - m.lastPoll > this.core.config.idleTimeoutMs) m.close(1000, 'idle');
    }
  }

  closeAll(): void {
    clearInterval(this.sweeper);
    for (const m of [...this.byDevice.values()]) m.close(4010, 'draining');
  }
}
