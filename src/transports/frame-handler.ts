/**
 * What each client frame does, for any transport: the WebSocket read loop and
 * the long-poll `POST /v1/frames` both land here after parsing. Replies go to
 * `out` as serialised frames.
 */
import type { ClientFrame, FrameRef, ServerFrame } from '../protocol/frames.js';
import type { Core } from '../core/core.js';
import type { Peer } from '../core/peer.js';
import { ParleyError, toParleyError } from '../core/errors.js';
import { messageAckFrame, serializeFrame } from '../core/frames.js';
import { CLOSE } from '../protocol/errors.js';

/** A peer as the frame handler sees it: with a count of refused frames in a row. */
export interface ClientPeer extends Peer {
  strikes: number;
}

export type Out = (frame: string) => void;

/** Refused frames in a row before a client counts as abusive and is disconnected. */
const MAX_STRIKES = 100;

export class FrameHandler {
  constructor(private readonly core: Core) {}

  async handle(peer: ClientPeer, frame: ClientFrame, out: Out): Promise<void> {
    const { core } = this;
    const now = Date.now();
    core.metrics.framesIn.inc({ type: frame.type });
    core.presence.activity(peer, now);
    core.auth.used(peer.deviceId, now);
    try {
      core.limits.frame(peer.connId);
      await this.dispatch(peer, frame, out);
      peer.strikes = 0;
    } catch (err) {
      if (!(err instanceof ParleyError)) core.log.warn({ err, type: frame.type }, 'frame failed');
      this.answerError(peer, toParleyError(err), frame.ref, out);
    }
  }

  /**
   * A frame that could not be read (not JSON, not an object, unknown type, a
   * bad field, binary): it is answered with `error`, and it still counts
   * against the connection's frame bucket, so a flood of junk is rate limited
   * and, past MAX_STRIKES, disconnected like any other flood.
   */
  refuse(peer: ClientPeer, error: ParleyError, ref: FrameRef | undefined, out: Out): void {
    let e = error;
    try {
      this.core.limits.frame(peer.connId);
    } catch (err) {
      e = toParleyError(err);
    }
    this.answerError(peer, e, ref, out);
  }

  /** The `error` frame for a refused frame; a client rate limited MAX_STRIKES times in a row is disconnected instead. */
  private answerError(peer: ClientPeer, e: ParleyError, ref: FrameRef | undefined, out: Out): void {
    if (e.code === 'rate_limited' && ++peer.strikes >= MAX_STRIKES) {
      peer.close(CLOSE.policy, 'rate limit exceeded repeatedly');
      return;
    }
    this.core.metrics.framesOut.inc({ type: 'error' });
    out(errorFrame(e, ref));
  }

  private async dispatch(peer: ClientPeer, f: ClientFrame, out: Out): Promise<void> {
    const { core } = this;
    const reply = (frame: ServerFrame): void => {
      core.metrics.framesOut.inc({ type: frame.type });
      out(serializeFrame(frame));
    };
    switch (f.type) {
      case 'auth':
        throw new ParleyError('bad_request', 'This connection is already authenticated.');
      case 'send': {
        const { message } = await core.messaging.send(peer.userId, f.conversationId, f.clientId, f.body, f.replyTo, peer.deviceId, f.attachments);
        core.metrics.framesOut.inc({ type: 'ack' });
        return out(messageAckFrame(f.ref, message));
      }
      case 'edit':
        return reply({ type: 'ack', ref: f.ref, event: await core.messaging.edit(peer.userId, f.messageId, f.body, peer.deviceId) });
      case 'delete':
        return reply({ type: 'ack', ref: f.ref, event: await core.messaging.delete(peer.userId, f.messageId) });
      case 'react':
      case 'unreact':
        return reply({ type: 'ack', ref: f.ref, ...(await core.messaging.react(peer.userId, f.messageId, f.reaction, f.type === 'react')) });
      case 'sync':
        return core.sync.sync(peer, f.positions, f.ref, out);
      case 'typing':
        return core.ephemeral.typingChanged(peer.userId, f.conversationId, f.active);
      case 'receipt':
        return core.ephemeral.receipt(peer.userId, peer.connId, f.conversationId, f.seq, f.kind);
      case 'presence':
        return core.presence.setStatus(peer, f.status);
      case 'ping':
        return reply({ type: 'pong', ref: f.ref });
    }
  }
}

export function errorFrame(e: ParleyError, ref: FrameRef | undefined): string {
  const f: ServerFrame = { type: 'error', ref, code: e.code, message: e.message };
  if (e.retryAfterMs !== undefined) f.retryAfterMs = e.retryAfterMs;
  return serializeFrame(f);
}
