/**
 * Who gets a push notification for new messages, and when (R12): "members
 * with no device online go to the notifier".
 *
 * - The send path calls `messageCreated` after the append, on the node that
 *   made it; that call only notes the message in memory (O(1), no await, never
 *   throws), so an ack never waits for anything push-related.
 * - Messages of one conversation are coalesced over `coalesceMs`: the first
 *   opens a window, those within it join it, and when it closes each member
 *   gets at most one notification for that conversation, with the count of
 *   messages it stands for and a preview of the newest (preview.ts).
 * - When a window closes: the conversation's members, less those who sent
 *   every message of the window, less those with a device connected anywhere
 *   in the cluster (the Presence port's connections, invisible included: such
 *   a device receives messages live), less the messages of senders a block
 *   separates them from. Each one left gets a push per subscription (queue.ts);
 *   one with no subscription, or whose every push failed for good, goes to the
 *   fallback (fallback.ts) when one is configured.
 *
 * Coalescing is per node: in a cluster a burst sent through two nodes can make
 * two notifications per window. Windows live in memory, like the queue.
 */
import type { Id, Message } from '../../protocol/model.js';
import type { PushNotification } from '../../protocol/push.js';
import type { Store, PushSubscriptionRecord } from '../ports/store.js';
import type { Presence } from '../ports/presence.js';
import type { NotifierEngines } from '../ports/notifier.js';
import type { BlockService } from '../blocks.js';
import type { MembershipEntry } from '../membership.js';
import type { PushQueue, JobResult } from './queue.js';
import { FallbackBatcher } from './fallback.js';
import { buildNotification } from './preview.js';

export interface MemberLookup {
  get(conversationId: Id): MembershipEntry | undefined | Promise<MembershipEntry | undefined>;
}

export interface NotifierOptions {
  coalesceMs: number;
  /** Conversations with more members send no pushes. */
  fanoutMax: number;
  /** Conversations with an open window at once; past it new messages make no notification. @default 50000 */
  maxWindows?: number;
  /** Windows being resolved at once (each reads the store and presence). @default 4 */
  flushConcurrency?: number;
}

export interface NotifierObserver {
  /** A notification was decided for one user: pushed, handed to the fallback, or skipped (with why). */
  notification(route: 'push' | 'fallback' | 'skipped'): void;
  tokenRemoved(kind: PushSubscriptionRecord['kind']): void;
  error(err: unknown): void;
}

/** Least time between two passes over the windows: a window may close this much late. */
const TICK_MS = 100;
/** Recipients resolved per turn of the event loop. */
const YIELD_EVERY = 100;
/** Members whose subscriptions are read per store call (SQLite answers on the event loop: ~10 µs a row). */
const LOOKUP_CHUNK = 250;

interface Window {
  conversationId: Id;
  dueAt: number;
  total: number;
  /**
   * Per sender: their messages in the window and the seq of the newest (the
   * only one a preview may show). Seqs, not messages: a message held for the
   * window's two seconds outlives the young generation, and at 5,000 msg/s
   * the promoted garbage cost the server 10-20% more CPU per message. The few
   * windows that notify anyone read their message back from the store, as it
   * is then (an edit shows, a deleted message's text does not).
   */
  bySender: Map<Id, { n: number; newestSeq: number }>;
  /** Due and waiting in the flush queue. */
  queued?: boolean;
}

export class Notifier {
  private readonly windows = new Map<Id, Window>();
  /**
   * Windows whose time has come, waiting for a flush slot; they stay in the
   * Map (later messages still join them) until their resolution starts. Found
   * in one pass per timer: a Map keeps a deleted entry's slot until it is
   * rehashed, so going over it from the start after each of hundreds of
   * resolutions skipped the same holes again and again (4% of the server's
   * busy time at 5,000 msg/s over 500 conversations).
   */
  private due: Window[] = [];
  private dueHead = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing = 0;
  private readonly running = new Set<Promise<void>>();
  private closed = false;
  readonly fallback: FallbackBatcher;

  constructor(
    private readonly store: Store,
    /** Members and roles as the send path sees them (MembershipCache). */
    private readonly members: MemberLookup,
    /** True when the user has a connection on this node: no need to ask Presence. */
    private readonly connectedHere: (userId: Id) => boolean,
    private readonly presence: Presence,
    private readonly blocks: BlockService,
    private readonly engines: NotifierEngines,
    private readonly queue: PushQueue,
    private readonly opts: NotifierOptions,
    private readonly observer: NotifierObserver,
  ) {
    this.fallback = new FallbackBatcher(engines.fallback, queue);
  }

  /** Send path: notes a new message. Constant time, no I/O, never throws. */
  messageCreated(message: Message): void {
    if (this.closed) return;
    let w = this.windows.get(message.conversationId);
    if (!w) {
      if (this.windows.size >= (this.opts.maxWindows ?? 50_000)) {
        this.observer.notification('skipped');
        return;
      }
      w = { conversationId: message.conversationId, dueAt: Date.now() + this.opts.coalesceMs, total: 0, bySender: new Map() };
      this.windows.set(message.conversationId, w);
      this.timer ??= setTimeout(() => this.tick(), this.opts.coalesceMs).unref();
    }
    w.total++;
    // One message per sender is held, not the burst: a flood of large bodies must not pile up here.
    const mine = w.bySender.get(message.senderId);
    if (mine) {
      mine.n++;
      if (message.seq > mine.newestSeq) mine.newestSeq = message.seq;
    } else w.bySender.set(message.senderId, { n: 1, newestSeq: message.seq });
  }

  /** Resolves every open window now, waits for them, then hands the fallback what it holds. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const all = [...this.windows.values()];
    this.due = [];
    this.dueHead = 0;
    this.windows.clear();
    await Promise.allSettled([...this.running, ...all.map((w) => this.resolve(w))]);
    this.fallback.flush();
  }

  /** Moves the windows that are due to the flush queue; windows open in time order (the Map keeps insertion order and every window lasts coalesceMs). */
  private tick(): void {
    this.timer = undefined;
    const now = Date.now();
    let next: Window | undefined;
    for (const w of this.windows.values()) {
      if (w.queued) continue;
      if (w.dueAt > now) {
        next = w;
        break;
      }
      w.queued = true;
      this.due.push(w);
    }
    this.drain();
    // Every window has its own due time; closing those of a tenth of a second together costs one timer, not one each.
    if (next && !this.closed) this.timer = setTimeout(() => this.tick(), Math.max(TICK_MS, next.dueAt - now)).unref();
  }

  /** Resolves due windows, at most `flushConcurrency` at once. */
  private drain(): void {
    const limit = this.opts.flushConcurrency ?? 4;
    while (this.flushing < limit && this.dueHead < this.due.length) {
      const w = this.due[this.dueHead++] as Window;
      this.windows.delete(w.conversationId);
      this.flushing++;
      const p = this.resolve(w)
        .catch((err: unknown) => this.observer.error(err))
        .finally(() => {
          this.flushing--;
          this.running.delete(p);
          if (!this.closed) this.drain();
        });
      this.running.add(p);
    }
    if (this.dueHead === this.due.length) {
      this.due = [];
      this.dueHead = 0;
    }
  }

  /**
   * Usually every member is connected, most of them to this node: then the
   * window costs the cached member list and a Map lookup per member, with no
   * store read and no Presence round trip (a store read per active
   * conversation every window was 15% of the server's CPU at 5,000 msg/s).
   */
  private async resolve(w: Window): Promise<void> {
    const cached = this.members.get(w.conversationId);
    const entry = cached instanceof Promise ? await cached : cached;
    if (!entry) return;
    if (entry.roles.size > this.opts.fanoutMax) {
      this.observer.notification('skipped');
      return;
    }
    const others: Id[] = [];
    for (const u of entry.roles.keys()) {
      if (w.total - (w.bySender.get(u)?.n ?? 0) > 0 && !this.connectedHere(u)) others.push(u);
    }
    if (others.length === 0) return;
    // Connected elsewhere in the cluster next; only those left have their subscriptions read.
    const online = new Set(await this.presence.connectedAmong(others, Date.now()));
    const candidates = others.filter((u) => !online.has(u));
    if (candidates.length === 0) return;
    const conversation = await this.store.conversations.get(w.conversationId);
    if (!conversation) return;
    const subs = new Map<Id, PushSubscriptionRecord[]>();
    for (let i = 0; i < candidates.length; i += LOOKUP_CHUNK) {
      if (i > 0) await new Promise((resolve) => setImmediate(resolve));
      for (const s of await this.store.push.forUsers(candidates.slice(i, i + LOOKUP_CHUNK))) {
        const list = subs.get(s.userId);
        if (list) list.push(s);
        else subs.set(s.userId, [s]);
      }
    }
    const offline = this.fallback.enabled ? candidates : candidates.filter((u) => subs.has(u));
    if (offline.length === 0) return;
    const names = new Map((await this.store.users.byIds([...w.bySender.keys()])).map((u) => [u.id, u.displayName]));
    const messages = new Map<number, Message | undefined>();
    let i = 0;
    for (const userId of offline) {
      // A large group's members are worked through in steps, letting sends (I/O) in between.
      if (++i % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
      const what = await this.forUser(w, userId);
      if (!what) continue;
      if (!messages.has(what.newestSeq)) messages.set(what.newestSeq, await this.messageAt(w.conversationId, what.newestSeq));
      const newest = messages.get(what.newestSeq);
      // Gone already (retention, or the conversation's history cleared): nothing to point the notification at.
      if (!newest) continue;
      const notification = buildNotification(conversation, newest, names.get(newest.senderId) ?? 'Someone', what.count);
      this.dispatch(userId, notification, subs.get(userId) ?? []);
    }
  }

  /** The message as it is now; a deleted one has an empty body, so its text is never shown. */
  private async messageAt(conversationId: Id, seq: number): Promise<Message | undefined> {
    const { messages } = await this.store.events.messages(conversationId, { after: seq - 1, before: seq + 1, limit: 1 });
    return messages[0];
  }

  /** The messages of the window this user is told of: not their own, none from someone a block separates them from. */
  private async forUser(w: Window, userId: Id): Promise<{ newestSeq: number; count: number } | undefined> {
    const r = this.blocks.relationsOf(userId);
    const rel = r instanceof Promise ? await r : r;
    const hidden = (id: Id): boolean => id === userId || rel.blocks.has(id) || rel.blockedBy.has(id);
    let count = 0;
    let newestSeq = 0;
    for (const [sender, mine] of w.bySender) {
      if (hidden(sender)) continue;
      count += mine.n;
      if (mine.newestSeq > newestSeq) newestSeq = mine.newestSeq;
    }
    return count > 0 ? { newestSeq, count } : undefined;
  }

  private dispatch(userId: Id, notification: PushNotification, subs: readonly PushSubscriptionRecord[]): void {
    if (subs.length === 0) {
      this.observer.notification('fallback');
      this.fallback.add({ userId, reason: 'no_subscription', notification });
      return;
    }
    this.observer.notification('push');
    let pending = subs.length;
    let delivered = false;
    for (const sub of subs) {
      const provider = this.engines.providers[sub.kind];
      this.queue.add({
        channel: sub.kind,
        run: () => (provider ? provider.send(sub, notification) : Promise.resolve({ status: 'failed', reason: `${sub.kind} is not configured on this server` })),
        done: (result: JobResult) => {
          if (result === 'sent') delivered = true;
          if (result === 'gone') this.removeGone(sub);
          if (--pending === 0 && !delivered) this.fallback.add({ userId, reason: 'push_failed', notification });
        },
      });
    }
  }

  private removeGone(sub: PushSubscriptionRecord): void {
    this.store.push.remove(sub.id).then(
      (removed) => {
        if (removed) this.observer.tokenRemoved(sub.kind);
      },
      (err: unknown) => this.observer.error(err),
    );
  }
}
