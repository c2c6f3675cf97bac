/**
 * Limiter port: token buckets keyed by user or connection.
 *
 * Contract: `take` removes `cost` tokens from bucket `key` (refilled at
 * `ratePerSec`, holding at most `burst`) and answers 0 when allowed, or the
 * milliseconds to wait until it would be; a refused take removes nothing. A
 * bucket holds across every node sharing the engine. The in-memory engine
 * answers synchronously, so the hot path pays no promise when it can.
 */
export interface RateRule {
  ratePerSec: number;
  burst: number;
}

export interface Limiter {
  take(key: string, cost: number, rule: RateRule, now: number): number | Promise<number>;
  close(): Promise<void>;
}
