/**
 * Rate limits as policy of the core, so every transport gets the same: a
 * per-user bucket for writes, shared across devices and nodes (Limiter port),
 * and a per-connection bucket for every frame, local to the node holding it.
 */
import type { Limiter, RateRule } from './ports/limiter.js';
import { MemoryLimiter } from '../engines/memory/limiter.js';
import { ParleyError } from './errors.js';

export interface LimitsOptions {
  user: RateRule;
  connection: RateRule;
  /** Searches per user, all devices together: each reads an index, a cost no write has. Undefined: none. */
  search?: RateRule;
  /**
   * Keep a local share of each user's shared bucket: up to `tokens` taken in
   * one call, spent here for at most `ttlMs`. For a shared limiter across the
   * network (Redis), where a round trip on every write was a fifth of a
   * cluster node's CPU. The budget is never exceeded: every token spent here
   * was taken from the shared bucket first. What a node holds unspent is
   * missing from the others' for at most `ttlMs` (it then refills as usual).
   * @default none: every write asks the shared limiter
   */
  share?: { tokens: number; ttlMs: number };
  onLimited?: (scope: Scope) => void;
  /** The shared limiter failed and the node's own bucket decided instead; called at most every 10 s. */
  onDegraded?: (err: unknown) => void;
}

type Scope = 'user' | 'connection' | 'search';

const TOO_MANY: Record<Scope, string> = {
  user: 'messages from this account',
  connection: 'frames on this connection',
  search: 'searches from this account',
};

/** Tokens of a user's shared bucket this node took and has not spent yet. */
interface Share {
  tokens: number;
  until: number;
  /** The shared limiter call in flight for this user, which concurrent writes wait on. */
  asking: Promise<void> | undefined;
}

export class RateLimits {
  /** A connection lives on one node, so its bucket never needs a shared engine. */
  private readonly local = new MemoryLimiter();
  private degradedReportedAt = -Infinity;
  private readonly shares = new Map<string, Share>();
  private nextShareSweep = 0;

  constructor(
    private readonly shared: Limiter,
    private readonly opts: LimitsOptions,
  ) {}

  /**
   * Throws rate_limited when the user's write bucket is empty. When the shared
   * limiter cannot answer (Redis down), the limit still holds per node: a
   * broken limiter must never stop messages (R29), nor let a flood through.
   */
  async write(userId: string): Promise<void> {
    const key = `u:${userId}`;
    if (this.opts.share) return this.writeFromShare(key, this.opts.share);
    const now = Date.now();
    let wait: number;
    try {
      wait = await this.shared.take(key, 1, this.opts.user, now);
    } catch (err) {
      wait = this.degraded(key, now, err);
    }
    if (wait > 0) throw this.limited('user', wait);
  }

  /** Throws rate_limited when the user's search bucket is empty; degrades as `write` does. */
  async search(userId: string): Promise<void> {
    const rule = this.opts.search;
    if (!rule) return;
    const key = `s:${userId}`;
    const now = Date.now();
    let wait: number;
    try {
      wait = await this.shared.take(key, 1, rule, now);
    } catch (err) {
      wait = this.degraded(key, now, err, rule);
    }
    if (wait > 0) throw this.limited('search', wait);
  }

  private async writeFromShare(key: string, opts: { tokens: number; ttlMs: number }): Promise<void> {
    for (;;) {
      const now = Date.now();
      if (now >= this.nextShareSweep) this.sweepShares(now);
      let share = this.shares.get(key);
      if (share && share.tokens > 0 && now < share.until) {
        share.tokens--;
        return;
      }
      if (share?.asking) {
        // Another write of this user is asking already: its share may cover this one too.
        await share.asking;
        continue;
      }
      share ??= { tokens: 0, until: 0, asking: undefined };
      this.shares.set(key, share);
      let wait = 0;
      const entry = share;
      entry.tokens = 0;
      entry.asking = (async () => {
        try {
          const got = await this.shared.takeUpTo(key, opts.tokens, this.opts.user, now);
          wait = got.waitMs;
          // This write spends the first token.
          entry.tokens = Math.max(0, got.taken - 1);
          entry.until = now + opts.ttlMs;
        } catch (err) {
          wait = this.degraded(key, now, err);
        }
      })();
      await entry.asking;
      entry.asking = undefined;
      if (wait > 0) throw this.limited('user', wait);
      return;
    }
  }

  /** Unspent shares past their time are dropped, so idle users hold no memory. */
  private sweepShares(now: number): void {
    this.nextShareSweep = now + 10_000;
    for (const [key, share] of this.shares) if (share.until <= now && !share.asking) this.shares.delete(key);
  }

  /** The shared limiter failed: this node's own bucket decides. */
  private degraded(key: string, now: number, err: unknown, rule: RateRule = this.opts.user): number {
    if (now - this.degradedReportedAt >= 10_000) {
      this.degradedReportedAt = now;
      this.opts.onDegraded?.(err);
    }
    return this.local.take(key, 1, rule, now);
  }

  frame(connId: string): void {
    const wait = this.local.take(connId, 1, this.opts.connection, Date.now());
    if (wait > 0) throw this.limited('connection', wait);
  }

  private limited(scope: Scope, waitMs: number): ParleyError {
    this.opts.onLimited?.(scope);
    const ms = Math.max(1, Math.ceil(waitMs));
    return new ParleyError('rate_limited', `Too many ${TOO_MANY[scope]}; retry in ${ms} ms.`, ms);
  }
}
