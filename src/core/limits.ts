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
}

export class RateLimits {
  /** A connection lives on one node, so its bucket never needs a shared engine. */
  private readonly local = new MemoryLimiter();

  constructor(
    private readonly shared: Limiter,
    private readonly opts: LimitsOptions,
  ) {}

  /** Throws rate_limited when the user's write bucket is empty. */
  async write(userId: string): Promise<void> {
    const wait = await this.shared.take(`u:${userId}`, 1, this.opts.user, Date.now());
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
