/**
 * In-memory engine of the Limiter port (see core/ports/limiter.ts for the
 * contract), for one process.
 *
 * Each bucket is kept as the one number GCRA keeps: the time at which it will
 * be full again. At `now` it holds `burst - (fullAt - now) / msPerToken`
 * tokens, so refilling is lazy and a full bucket needs no entry at all. A Redis
 * engine stores the same number under the key with PEXPIREAT at that time.
 */
import type { Limiter, RateRule, Taken } from '../../core/ports/limiter.js';

export interface MemoryLimiterOptions {
  /** How often, on the callers' clock, takes drop the buckets that are full again. @default 10_000 */
  sweepEveryMs?: number;
}

/**
 * Absorbs float rounding at epoch-millisecond magnitudes (an ulp there is
 * about 0.25 µs), so waiting exactly the answered time always succeeds.
 */
const EPSILON_MS = 0.001;

export class MemoryLimiter implements Limiter {
  private readonly fullAt = new Map<string, number>();
  private readonly sweepEveryMs: number;
  private nextSweepAt = Number.NEGATIVE_INFINITY;

  constructor(options: MemoryLimiterOptions = {}) {
    this.sweepEveryMs = options.sweepEveryMs ?? 10_000;
  }

  /** @throws RangeError when `cost` exceeds `burst` (it could never pass) or the rate is not positive. */
  take(key: string, cost: number, rule: RateRule, now: number): number {
    const { wait, fullAfter } = this.after(key, cost, rule, now);
    if (wait > 0) return wait;
    this.fullAt.set(key, fullAfter);
    return 0;
  }

  /** @throws RangeError as `take` does. */
  waitFor(key: string, cost: number, rule: RateRule, now: number): number {
    return this.after(key, cost, rule, now).wait;
  }

  /** What taking `cost` at `now` would leave, and the wait (0 when it would pass). */
  private after(key: string, cost: number, rule: RateRule, now: number): { wait: number; fullAfter: number } {
    if (!(cost <= rule.burst && rule.ratePerSec > 0)) {
      throw new RangeError(`cannot take ${cost} from a bucket of ${rule.burst} at ${rule.ratePerSec}/s`);
    }
    if (now >= this.nextSweepAt) this.sweep(now);
    const msPerToken = 1000 / rule.ratePerSec;
    const fullAfter = Math.max(this.fullAt.get(key) ?? now, now) + cost * msPerToken;
    const wait = fullAfter - rule.burst * msPerToken - now;
    return { wait: wait > EPSILON_MS ? Math.ceil(wait) : 0, fullAfter };
  }

  /** @throws RangeError when `max` is below 1 or the rate is not positive. */
  takeUpTo(key: string, max: number, rule: RateRule, now: number): Taken {
    if (!(max >= 1 && rule.ratePerSec > 0)) throw new RangeError(`cannot take up to ${max} at ${rule.ratePerSec}/s`);
    if (now >= this.nextSweepAt) this.sweep(now);
    const msPerToken = 1000 / rule.ratePerSec;
    const fullAt = Math.max(this.fullAt.get(key) ?? now, now);
    // Whole tokens the bucket holds (the same epsilon as take: one more is due within a microsecond).
    const held = Math.floor((rule.burst * msPerToken - (fullAt - now) + EPSILON_MS) / msPerToken);
    if (held < 1) return { taken: 0, waitMs: Math.ceil(fullAt + msPerToken - rule.burst * msPerToken - now) };
    const taken = Math.min(held, Math.floor(max));
    this.fullAt.set(key, fullAt + taken * msPerToken);
    return { taken, waitMs: 0 };
  }

  /** Drops the buckets that are full at `now`; takes call it every `sweepEveryMs`. */
  sweep(now: number): void {
    this.nextSweepAt = now + this.sweepEveryMs;
    for (const [key, fullAt] of this.fullAt) {
      if (fullAt <= now) this.fullAt.delete(key);
    }
  }

  /** Buckets held in memory. */
  get size(): number {
    return this.fullAt.size;
  }

  async close(): Promise<void> {
    this.fullAt.clear();
  }
}
