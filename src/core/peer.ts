/**
 * A client endpoint on this node: a WebSocket, or a long-poll mailbox. The hub
 * pushes serialised frames to peers and never knows which transport is behind.
 */
import type { Id } from '../protocol/model.js';

export interface Peer {
  readonly connId: string;
  readonly userId: Id;
  readonly deviceId: Id;
  /** Set only while a sync runs on this peer, so idle peers carry nothing. */
  syncing: SyncBuffer | undefined;
  /** Queue one serialised frame. Never throws; a peer that cannot keep up closes itself. */
  push(frame: string): void;
  close(code: number, reason: string): void;
}

/**
 * Live events that arrive for a conversation while a sync is reading it are
 * held back, then released past the last seq the sync sent, so a device sees
 * each event once, in order, however the two race.
 */
export class SyncBuffer {
  private readonly held = new Map<Id, { seq: number; frame: string }[]>();

  hold(conversationId: Id): void {
    if (!this.held.has(conversationId)) this.held.set(conversationId, []);
  }

  /** True when the frame was held back. */
  offer(conversationId: Id, seq: number, frame: string): boolean {
    const q = this.held.get(conversationId);
    if (!q) return false;
    q.push({ seq, frame });
    return true;
  }

  /** Stops holding the conversation and returns the held frames past `sentUpTo`, in seq order. */
  release(conversationId: Id, sentUpTo: number): string[] {
    const q = this.held.get(conversationId) ?? [];
    this.held.delete(conversationId);
    return q
      .filter((e) => e.seq > sentUpTo)
      .sort((a, b) => a.seq - b.seq)
      .map((e) => e.frame);
  }

  get empty(): boolean {
    return this.held.size === 0;
  }
}

export function deliverEvent(peer: Peer, conversationId: Id, seq: number, frame: string): void {
  if (peer.syncing?.offer(conversationId, seq, frame)) return;
  peer.push(frame);
}
