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
  onLimited?: (scope: 'user' | 'connection') => void;
  /** The shared limiter failed and the node's own bucket decided instead; called at most every 10 s. */
  onDegraded?: (err: unknown) => void;
}

export class RateLimits {
  /** A connection lives on one node, so its bucket never needs a shared engine. */
  private readonly local = new MemoryLimiter();
  private degradedReportedAt = -Infinity;

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
    const now = Date.now();
    let wait: number;
    try {
      wait = await this.shared.take(key, 1, this.opts.user, now);
    } catch (err) {
      if (now - this.degradedReportedAt >= 10_000) {
        this.degradedReportedAt = now;
        this.opts.onDegraded?.(err);
      }
      wait = this.local.take(key, 1, this.opts.user, now);
    }
    if (wait > 0) throw this.limited('user', wait);
  }

  frame(connId: string): void {
    const wait = this.local.take(connId, 1, this.opts.connection, Date.now());
    if (wait > 0) throw this.limited('connection', wait);
  }

  private limited(scope: 'user' | 'connection', waitMs: number): ParleyError {
    this.opts.onLimited?.(scope);
    const ms = Math.max(1, Math.ceil(waitMs));
    return new ParleyError('rate_limited', `Too many ${scope === 'user' ? 'messages from this account' : 'frames on this connection'}; retry in ${ms} ms.`, ms);
  }
}
