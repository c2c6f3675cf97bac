/**
 * One client WebSocket. Subclassing ws's class keeps per-connection state in
 * the object ws allocates anyway: no wrapper, no closures, no timers per socket.
 */
import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import type { ClientPeer } from '../frame-handler.js';
import type { SyncBuffer } from '../../core/peer.js';
import { CLOSE } from '../../protocol/errors.js';

/** Stands for a binary message in a socket's queue: refused in its turn, never parsed. */
export const BINARY: unique symbol = Symbol('binary message');

/** ws closes oversized frames with 1009; the protocol says 4008. */
const MESSAGE_TOO_BIG = 1009;
/** A corked socket holding this much is written out at once (a sync's replay), so little waits in this process. */
const CORK_SLICE_BYTES = 64 * 1024;

/**
 * Sockets corked during this tick. A socket with a frame of its own in
 * progress gets its answers in one `writev` per tick (the sender's `event` and
 * `ack`; a sync's replay, in 64 KB slices): on this kind of VM a system call
 * costs more than the frame. They are uncorked together once the tick's
 * callbacks and microtasks have run, before any timer or I/O. Other sockets
 * (fan-out recipients) are written at once: a group's first members should not
 * wait for its last.
 */
const corked: ParleySocket[] = [];
let uncorkQueued = false;

/**
 * The last frame pushed, and once it is pushed a second time, its bytes on the
 * wire. Fan-out pushes the same string to every recipient in a row: from the
 * second recipient on, the frame is encoded (UTF-8 and the WebSocket header)
 * once and the same Buffer is written to each socket, where ws.send would
 * measure, frame and encode the string again for each (10,000 members: 7.6
 * instead of 9.9 us per delivery). A frame for one socket (an ack, a direct
 * message) goes through ws.send, which hands the string to the socket without
 * making a Buffer of it. Server frames are unmasked, uncompressed
 * (permessage-deflate is off) text frames, exactly what ws.send writes.
 */
let lastText: string | undefined;
let lastWire: Buffer | undefined;

function wire(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const buf = Buffer.allocUnsafe(header + length);
  buf[0] = 0x81; // FIN, opcode 1 (text)
  if (header === 2) buf[1] = length;
  else if (header === 4) {
    buf[1] = 126;
    buf.writeUInt16BE(length, 2);
  } else {
    buf[1] = 127;
    buf.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    buf.writeUInt32BE(length >>> 0, 6);
  }
  buf.write(text, header, 'utf8');
  return buf;
}

function uncorkAll(): void {
  uncorkQueued = false;
  for (const ws of corked) {
    ws.corkedNow = false;
    const raw = ws._socket;
    if (raw && !raw.destroyed) raw.uncork();
  }
  corked.length = 0;
}

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
  queue: (string | typeof BINARY)[] | undefined = undefined;
  busy = false;
  /** Largest number of unsent bytes allowed before 4009. */
  maxBuffered = 0;
  /** Told when this socket is closed for not reading (the transport counts it: the client may be gone before the close completes). */
  onTooSlow: (() => void) | undefined = undefined;
  /** True while this socket is in `corked`. */
  corkedNow = false;
  /** ws's TCP socket (not in its type definitions); undefined until open, null once gone. */
  declare readonly _socket: Socket | null | undefined;

  push(frame: string): void {
    if (this.readyState !== WebSocket.OPEN) return;
    if (this.bufferedAmount > this.maxBuffered) {
      this.onTooSlow?.();
      this.close(CLOSE.tooSlow, 'client is not reading its frames');
      return;
    }
    const raw = this._socket;
    if (!raw) return;
    if (this.busy && !this.corkedNow) {
      raw.cork();
      this.corkedNow = true;
      corked.push(this);
      if (!uncorkQueued) {
        uncorkQueued = true;
        process.nextTick(uncorkAll);
      }
    }
    if (frame !== lastText) {
      lastText = frame;
      lastWire = undefined;
      this.send(frame);
    } else raw.write((lastWire ??= wire(frame)));
    if (this.corkedNow && raw.writableLength > CORK_SLICE_BYTES) {
      raw.uncork();
      raw.cork();
    }
  }

  override close(code?: number, reason?: string | Buffer): void {
    if (this.closingSince === 0) this.closingSince = Date.now();
    super.close(code === MESSAGE_TOO_BIG ? CLOSE.policy : code, code === MESSAGE_TOO_BIG ? 'frame too large' : reason);
  }
}
