/**
 * Failed-login budgets (R16, R19): password guessing is slowed per account and
 * client address, and per address across accounts, while people who type their
 * password right are never counted. Only failures spend a token, so the check
 * before verifying asks without taking (`waitFor`), and a failure takes after.
 *
 * Keyed by account *and* address, a stranger guessing someone's password does
 * not lock its owner out from elsewhere; the per-address budget is what stops
 * one address trying a little on many accounts. A throttled attempt is refused
 * before the password is verified: the answer would otherwise tell a guesser
 * which guess was right, and an argon2 verification is the costly part.
 */
import type { Limiter, RateRule } from './ports/limiter.js';
import { MemoryLimiter } from '../engines/memory/limiter.js';
import { ParleyError } from './errors.js';

export interface LoginThrottleOptions {
  /** Failures per account and address; undefined turns this budget off. */
  perAccount?: RateRule;
  /** Failures per address, all accounts together; undefined turns this budget off. */
  perAddress?: RateRule;
  onLimited?: () => void;
  /** The shared limiter failed and this node's own buckets decided instead. */
  onDegraded?: (err: unknown) => void;
}

/** Rules from settings: `n` failures at once, then one per `everyMs`; 0 turns it off. */
export function failureRule(n: number, everyMs: number): RateRule | undefined {
  return n > 0 ? { burst: n, ratePerSec: 1000 / everyMs } : undefined;
}

export class LoginThrottle {
  /** Used while the shared limiter is down, so a broken Redis neither stops logins nor lifts the limit. */
  private readonly local = new MemoryLimiter();

  constructor(
    private readonly shared: Limiter,
    private readonly opts: LoginThrottleOptions,
  ) {}

  /** Throws rate_limited when either budget of this attempt is spent. */
  async check(username: string, address: string): Promise<void> {
    const now = Date.now();
    let wait = 0;
    for (const [key, rule] of this.budgets(username, address)) {
      wait = Math.max(wait, await this.ask((l) => l.waitFor(key, 1, rule, now)));
    }
    if (wait > 0) {
      this.opts.onLimited?.();
      throw new ParleyError('rate_limited', `Too many failed logins; retry in ${Math.ceil(wait / 1000)} s.`, wait);
    }
  }

  /** Spends one token of each budget; a bucket already empty stays so. */
  async failed(username: string, address: string): Promise<void> {
    const now = Date.now();
    for (const [key, rule] of this.budgets(username, address)) {
      await this.ask((l) => l.take(key, 1, rule, now));
    }
  }

  private budgets(username: string, address: string): Array<[string, RateRule]> {
    const out: Array<[string, RateRule]> = [];
    // The name as login looks it up, so "Alice" and "alice " share one budget.
    const account = username.trim().toLowerCase();
    if (this.opts.perAccount) out.push([`login:${address}:${account}`, this.opts.perAccount]);
    if (this.opts.perAddress) out.push([`login:${address}`, this.opts.perAddress]);
    return out;
  }

  private async ask(call: (l: Limiter) => number | Promise<number>): Promise<number> {
    try {
      return await call(this.shared);
    } catch (err) {
      this.opts.onDegraded?.(err);
      return call(this.local);
    }
  }
}
