/**
 * Presence as others see it: changes from the Presence port are coalesced over
 * a short window (1,000 users connecting in a second make one flush, not a
 * storm) and pushed only into conversations small enough for it to matter.
 */
import type { Id, PresenceRequest, PresenceStatus } from '../protocol/model.js';
import type { Presence, PresenceChange, PresenceSnapshot } from './ports/presence.js';
import type { Bus } from './ports/bus.js';
import { convTopic } from './ports/bus.js';
import type { Store } from './ports/store.js';
import type { MembershipCache } from './membership.js';
import type { BlockService } from './blocks.js';
import type { Peer } from './peer.js';
import type { Fanout } from './fanout.js';
import { serializeFrame } from './frames.js';

export interface PresenceOptions {
  ttlMs: number;
  batchMs: number;
  fanoutMaxMembers: number;
}

export class PresenceService {
  private pending = new Map<Id, PresenceChange>();
  private readonly flusher: NodeJS.Timeout;
  private readonly sweeper: NodeJS.Timeout;
  /** When each connection last refreshed its TTL, so frames do not all touch the engine. */
  private readonly touched = new WeakMap<Peer, number>();

  constructor(
    private readonly presence: Presence,
    private readonly bus: Bus,
    private readonly store: Store,
    private readonly membership: MembershipCache,
    private readonly blocks: BlockService,
    private readonly fanout: Fanout,
    private readonly localConversationsOf: (userId: Id) => Iterable<Id> | undefined,
    private readonly opts: PresenceOptions,
    private readonly onError: (err: unknown) => void,
  ) {
    this.flusher = setInterval(() => void this.flush(), opts.batchMs).unref();
    this.sweeper = setInterval(() => void this.sweep(), Math.max(100, Math.min(5000, opts.ttlMs / 4))).unref();
  }

  async connected(peer: Peer): Promise<void> {
    const now = Date.now();
    this.touched.set(peer, now);
    this.queue(await this.presence.connect(peer.userId, peer.connId, now, this.opts.ttlMs));
  }

  /** Any frame from a peer counts as activity; the engine hears of it a few times per TTL at most. */
  activity(peer: Peer, now: number): void {
    const last = this.touched.get(peer) ?? 0;
    if (now - last < this.opts.ttlMs / 6) return;
    this.touched.set(peer, now);
    this.presence.touch(peer.userId, peer.connId, now, this.opts.ttlMs).catch(this.onError);
  }

  async setStatus(peer: Peer, status: PresenceRequest): Promise<void> {
    this.queue(await this.presence.setStatus(peer.userId, status, Date.now()));
  }

  disconnected(peer: Peer): void {
    this.presence
      .disconnect(peer.userId, peer.connId, Date.now())
      .then((c) => this.queue(c))
      .catch(this.onError);
  }

  snapshot(userIds: readonly Id[]): Promise<PresenceSnapshot[]> {
    return this.presence.get(userIds);
  }

  /**
   * Presence frames only report changes, so a block or unblock must correct
   * what each side's clients show of the other: a block shows the other as
   * offline (with the last activity they could already see, nothing newer), an
   * unblock shows their status now. Only between users who share a
   * conversation: nobody else was shown the other's presence.
   */
  async blockChanged(a: Id, b: Id, blocked: boolean): Promise<void> {
    try {
      const [convsOfA, convsOfB] = await Promise.all([this.store.conversations.idsForUser(a), this.store.conversations.idsForUser(b)]);
      const ofB = new Set(convsOfB);
      if (!convsOfA.some((c) => ofB.has(c))) return;
      const snaps = new Map((await this.presence.get([a, b])).map((s) => [s.userId, s]));
      const now = Date.now();
      const pairs: [viewer: Id, subject: Id][] = [
        [a, b],
        [b, a],
      ];
      await Promise.all(
        pairs.map(([viewer, subject]) => {
          const snap = snaps.get(subject);
          // A user never seen online has nothing to correct: the viewer shows them offline already.
          if (snap?.lastActiveAt === undefined) return undefined;
          const status = blocked ? 'offline' : snap.status;
          return this.fanout.toUser(viewer, { type: 'presence', userId: subject, status, lastActiveAt: Math.min(snap.lastActiveAt, now) });
        }),
      );
    } catch (err) {
      // The block itself stands; a client corrects itself at its next presence fetch.
      this.onError(err);
    }
  }

  private queue(change: PresenceChange | undefined): void {
    if (change) this.pending.set(change.userId, change);
  }

  private async sweep(): Promise<void> {
    try {
      for (const c of await this.presence.sweep(Date.now())) this.queue(c);
    } catch (err) {
      this.onError(err);
    }
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    for (const change of batch.values()) {
      try {
        await this.publish(change);
      } catch (err) {
        this.onError(err);
      }
    }
  }

  private async publish(change: PresenceChange): Promise<void> {
    const status: PresenceStatus = change.status;
    const frame = serializeFrame({ type: 'presence', userId: change.userId, status, lastActiveAt: change.lastActiveAt });
    const convs = this.localConversationsOf(change.userId) ?? (await this.store.conversations.idsForUser(change.userId));
    const hideFrom = await this.blocks.hiddenFrom(change.userId);
    const sends: Promise<void>[] = [];
    for (const conversationId of convs) {
      const entry = await this.membership.get(conversationId);
      if (!entry || entry.roles.size > this.opts.fanoutMaxMembers) continue;
      const { userId, lastActiveAt } = change;
      sends.push(this.bus.publish(convTopic(conversationId), { t: 'presence', conversationId, userId, status, lastActiveAt, ...(hideFrom ? { hideFrom } : {}), frame }));
    }
    await Promise.all(sends);
  }

  close(): void {
    clearInterval(this.flusher);
    clearInterval(this.sweeper);
  }
}
