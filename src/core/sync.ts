/**
 * Catch-up for a device that was away: every event after the positions it
 * names, in seq order, then the conversations it did not name. The peer is
 * already attached to the hub (subscribe first), and its live events for the
 * conversations being read are held back meanwhile, so nothing is missed and
 * nothing is sent twice.
 */
import type { Id } from '../protocol/model.js';
import type { FrameRef, ServerFrame } from '../protocol/frames.js';
import type { Store } from './ports/store.js';
import type { MembershipCache } from './membership.js';
import { SyncBuffer, type Peer } from './peer.js';
import { eventFrame, serializeFrame } from './frames.js';
import { toParleyError } from './errors.js';

const PAGE = 500;

/** Frames a sync makes itself (live events it releases were counted when the hub pushed them). */
export type SyncFrameCounter = (type: 'event' | 'conversation' | 'synced' | 'error', n: number) => void;

export class SyncService {
  constructor(
    private readonly store: Store,
    private readonly membership: MembershipCache,
    private readonly count: SyncFrameCounter = () => undefined,
  ) {}

  /** Frames go to `out` (the peer's send, or a collector for HTTP). */
  async sync(peer: Peer, positions: Record<Id, number>, ref: FrameRef | undefined, out: (frame: string) => void): Promise<void> {
    const mine = new Set(await this.store.conversations.idsForUser(peer.userId));
    const named = Object.keys(positions);
    const buffer = (peer.syncing ??= new SyncBuffer());
    for (const id of named) if (mine.has(id)) buffer.hold(id);
    try {
      for (const id of named) {
        if (!mine.has(id)) {
          out(serializeFrame(await this.refusal(id, peer.userId, ref)));
          this.count('error', 1);
          continue;
        }
        let after = positions[id] ?? 0;
        let sentUpTo = after;
        let removed = false;
        try {
          for (;;) {
            const events = await this.store.events.after(id, after, PAGE);
            let sent = 0;
            for (const e of events) {
              out(eventFrame(e));
              sent++;
              sentUpTo = after = e.seq;
              // Membership was checked when the sync began; a removal committed since then ends what
              // this device may read here (its own member.left is the last event it gets).
              if (e.kind === 'member.left' && e.userId === peer.userId && !(await this.stillMember(id, peer.userId))) {
                removed = true;
                break;
              }
            }
            this.count('event', sent);
            if (removed || events.length < PAGE) break;
          }
        } finally {
          const held = buffer.release(id, sentUpTo);
          if (!removed) for (const f of held) out(f);
        }
      }
      for (const id of mine) {
        if (id in positions) continue;
        const conversation = await this.store.conversations.get(id);
        if (!conversation) continue;
        out(serializeFrame({ type: 'conversation', conversation }));
        this.count('conversation', 1);
      }
    } finally {
      if (peer.syncing === buffer && buffer.empty) peer.syncing = undefined;
    }
    out(serializeFrame(ref === undefined ? { type: 'synced' } : { type: 'synced', ref }));
    this.count('synced', 1);
  }

  /** Asked of the store, not the cache: the removal just read is committed, its cache drop may not have arrived yet. */
  private async stillMember(conversationId: Id, userId: Id): Promise<boolean> {
    const conversation = await this.store.conversations.get(conversationId);
    return conversation?.members.some((m) => m.userId === userId) ?? false;
  }

  private async refusal(id: Id, userId: Id, ref: FrameRef | undefined): Promise<ServerFrame> {
    try {
      await this.membership.require(id, userId);
      return { type: 'error', ref, code: 'forbidden', message: 'You are not a member of this conversation.' };
    } catch (err) {
      const e = toParleyError(err);
      return { type: 'error', ref, code: e.code, message: `${e.message} (conversation ${id.slice(0, 64)})` };
    }
  }
}
