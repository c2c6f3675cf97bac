/**
 * One client WebSocket. Subclassing ws's class keeps per-connection state in
 * the object ws allocates anyway: no wrapper, no closures, no timers per socket.
 */
import { WebSocket } from 'ws';
import type { ClientPeer } from '../frame-handler.js';
import type { SyncBuffer } from '../../core/peer.js';
import { CLOSE } from '../../protocol/errors.js';

/** ws closes oversized frames with 1009; the protocol says 4008. */
const MESSAGE_TOO_BIG = 1009;

export class ParleySocket extends WebSocket implements ClientPeer {
  connId = '';
  userId = '';
  deviceId = '';
  syncing: SyncBuffer | undefined = undefined;
  strikes = 0;
  openedAt = 0;
  lastSeen = 0;
  /** 0 until the auth frame, 1 while it is checked, 2 once ready. */
  authState = 0;
  /** Set when the socket was asked to close, so the sweeper can cut a peer that never answers. */
  closingSince = 0;
  /** Frames waiting for the previous one of this socket to finish: frames take effect in order. */
  queue: string[] | undefined = undefined;
  busy = false;
  /** Largest number of unsent bytes allowed before 4009. */
  maxBuffered = 0;

  push(frame: string): void {
    if (this.readyState !== WebSocket.OPEN) return;
    if (this.bufferedAmount > this.maxBuffered) {
      this.close(CLOSE.tooSlow, 'client is not reading its frames');
      return;
    }
    this.send(frame);
  }

  override close(code?: number, reason?: string | Buffer): void {
    if (this.closingSince === 0) this.closingSince = Date.now();
    super.close(code === MESSAGE_TOO_BIG ? CLOSE.policy : code, code === MESSAGE_TOO_BIG ? 'frame too large' : reason);
  }
}
