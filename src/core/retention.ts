/**
 * Retention (R8). History is kept forever unless a policy says otherwise: the
 * operator's default (`retentionDays`, 0 = forever) or a conversation's own
 * (set by its owner or an admin, or by either member of a direct one), which
 * wins over the default. A sweep walks the conversations with events left to
 * clear and removes, for each with a policy, the events older than it, oldest
 * first, a bounded batch per transaction so appends never wait long behind it.
 *
 * What stays is the log from `clearedThroughSeq + 1` on, still gap-free;
 * members online learn the new `clearedThroughSeq` from a `conversation`
 * frame, and a device that syncs from before it gets what is left.
 *
 * Every node sweeps on its own timer. Clears are idempotent and serialised per
 * conversation by the store, so two nodes sweeping at once only repeat a read.
 */
import type { Conversation, Id, Millis } from '../protocol/model.js';
import type { Store } from './ports/store.js';
import type { Fanout } from './fanout.js';
import type { MembershipCache } from './membership.js';
import { badRequest, forbidden, notFound } from './errors.js';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

export const DAY_MS = 86_400_000;
/** The longest policy a conversation may set: 100 years. */
export const MAX_RETENTION_DAYS = 36_500;

export interface RetentionOptions {
  /** The operator's default for conversations without their own policy; 0 keeps history forever. */
  defaultDays: number;
  /** How often a sweep starts; 0 never (sweepOnce still works). */
  intervalMs: number;
  /** Events removed per transaction. @default 250 */
  batch?: number;
  /**
   * The most events a sweep removes per second. Unpaced, a sweep deletes about
   * 130,000 a second on SQLite and the pages it dirties hold back live appends:
   * in bench/micro/store-append.ts --sweep (2,000 appends/s, 200,000 to delete)
   * their p99 went from 0.2–0.3 ms to 2.5–2.7 ms; at this pace, 0.9–1.0 ms.
   * @default 5000
   */
  eventsPerSec?: number;
  /** Conversations read per scan page. @default 200 */
  page?: number;
}

export interface SweepResult {
  conversations: number;
  events: number;
}

export class RetentionService {
  private readonly timer: NodeJS.Timeout | undefined;
  private running: Promise<SweepResult> | undefined;

  constructor(
    private readonly store: Store,
    private readonly membership: MembershipCache,
    private readonly fanout: Fanout,
    private readonly opts: RetentionOptions,
    private readonly hooks: { onError(err: unknown): void; onCleared?(events: number): void },
  ) {
    if (opts.intervalMs > 0) this.timer = setInterval(() => void this.sweepOnce().catch(hooks.onError), opts.intervalMs).unref();
  }

  /**
   * Sets or drops (null) a conversation's own policy. Group: owner or admin;
   * direct: either member, as both own that history.
   */
  async setPolicy(actorId: Id, conversationId: Id, days: number | null): Promise<Conversation> {
    const { role, entry } = await this.membership.require(conversationId, actorId);
    if (entry.kind === 'group' && role === 'member') throw forbidden("Only owners and admins set a group's retention.");
    if (days !== null && (!Number.isSafeInteger(days) || days < 1 || days > MAX_RETENTION_DAYS)) {
      throw badRequest(`retentionDays must be a whole number of days from 1 to ${MAX_RETENTION_DAYS}, or null for the server's default.`);
    }
    if (!(await this.store.retention.setPolicy(conversationId, days))) throw notFound('No conversation has that id.');
    const conv = await this.store.conversations.get(conversationId);
    if (!conv) throw notFound('No conversation has that id.');
    await this.fanout.conversationChanged(conv);
    // Applied now rather than at the next sweep: a member who shortens it expects the old messages gone.
    void this.clearOne(conversationId, conv.retentionDays ?? this.opts.defaultDays, Date.now(), conv.clearedThroughSeq ?? 0).catch(this.hooks.onError);
    return conv;
  }

  /** One pass over every conversation; a second call while one runs shares it. */
  sweepOnce(now: Millis = Date.now()): Promise<SweepResult> {
    this.running ??= this.sweep(now).finally(() => (this.running = undefined));
    return this.running;
  }

  private async sweep(now: Millis): Promise<SweepResult> {
    const result: SweepResult = { conversations: 0, events: 0 };
    let after: Id | undefined;
    for (;;) {
      // With no default, only conversations with a policy of their own can have anything to clear.
      const page = await this.store.retention.scan(this.opts.page ?? 200, after, { withPolicyOnly: this.opts.defaultDays <= 0 });
      if (page.length === 0) return result;
      for (const t of page) {
        const cleared = await this.clearOne(t.id, t.retentionDays ?? this.opts.defaultDays, now, t.clearedThroughSeq);
        if (cleared > 0) {
          result.conversations++;
          result.events += cleared;
        }
      }
      after = page[page.length - 1]?.id;
    }
  }

  /** Clears what `days` allows in one conversation, cleared through `from` so far; returns how many events went. */
  private async clearOne(conversationId: Id, days: number, now: Millis, from: number): Promise<number> {
    if (days <= 0) return 0;
    const before = now - days * DAY_MS;
    let through = from;
    for (;;) {
      const started = performance.now();
      const next = await this.store.retention.clear(conversationId, before, this.opts.batch ?? 250);
      if (next === undefined) break;
      const paced = ((next - through) * 1000) / (this.opts.eventsPerSec ?? 5_000) - (performance.now() - started);
      through = next;
      if (paced > 1) await sleep(paced);
    }
    if (through === from) return 0;
    const conv = await this.store.conversations.get(conversationId);
    if (conv) await this.fanout.conversationChanged(conv);
    this.hooks.onCleared?.(through - from);
    return through - from;
  }

  /** Stops the timer and waits for a sweep under way, so the store is not closed under it. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }
}
