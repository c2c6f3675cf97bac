/**
 * How many members of a conversation are online: what a client shows for a
 * conversation too large for presence frames (R9: "shown as a count in large
 * channels"). Counting reads the presence of every member, so a count is kept
 * for a few seconds per conversation and concurrent askers share one reading.
 */
import type { Id, Millis } from '../protocol/model.js';
import type { PresenceSnapshot } from './ports/presence.js';
import type { MembershipCache } from './membership.js';

export interface OnlineCount {
  conversationId: Id;
  /** Members of the conversation. */
  members: number;
  /** Members shown as online, away or busy (invisible counts as offline), the caller included. */
  online: number;
  /** When the count was taken. */
  at: Millis;
}

/** Presence is read in slices so one huge conversation does not make one huge engine call. */
const SLICE = 1000;
const MAX_ENTRIES = 10_000;

export class OnlineCounts {
  private readonly cache = new Map<Id, { until: number; count: Promise<OnlineCount> }>();

  constructor(
    private readonly membership: MembershipCache,
    private readonly snapshot: (userIds: readonly Id[]) => Promise<PresenceSnapshot[]>,
    private readonly keepMs = 5000,
  ) {}

  /** The caller must be a member (forbidden / not_found otherwise). */
  async count(actorId: Id, conversationId: Id): Promise<OnlineCount> {
    const { entry } = await this.membership.require(conversationId, actorId);
    const now = Date.now();
    const hit = this.cache.get(conversationId);
    if (hit && hit.until > now) return hit.count;
    if (this.cache.size >= MAX_ENTRIES) this.cache.clear();
    const count = this.take(conversationId, [...entry.roles.keys()], now);
    this.cache.set(conversationId, { until: now + this.keepMs, count });
    // A failed reading is not kept: the next caller tries again.
    count.catch(() => {
      if (this.cache.get(conversationId)?.count === count) this.cache.delete(conversationId);
    });
    return count;
  }

  private async take(conversationId: Id, members: Id[], at: Millis): Promise<OnlineCount> {
    let online = 0;
    for (let i = 0; i < members.length; i += SLICE) {
      for (const s of await this.snapshot(members.slice(i, i + SLICE))) if (s.status !== 'offline') online++;
    }
    return { conversationId, members: members.length, online, at };
  }
}
