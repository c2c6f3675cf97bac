/**
 * Limiter port: token buckets keyed by user or connection.
 *
 * Contract: `take` removes `cost` tokens from bucket `key` (refilled at
 * `ratePerSec`, holding at most `burst`) and answers 0 when allowed, or the
 * milliseconds to wait until it would be; a refused take removes nothing. A
 * bucket holds across every node sharing the engine. The in-memory engine
 * answers synchronously, so the hot path pays no promise when it can.
 *
 * `takeUpTo` takes as many tokens as the bucket holds, up to `max`, at least
 * one: it answers how many it took, or 0 and the wait until one would be. A
 * node keeps them as its local share of a shared bucket (core/limits.ts), so
 * a busy user costs one round trip per share instead of one per write.
 *
 * `waitFor` answers what `take` would answer and removes nothing: for budgets
 * spent only on an outcome known later (a failed login), checked before it.
 */
export interface RateRule {
  ratePerSec: number;
  burst: number;
}

export interface Taken {
  taken: number;
  /** 0 when something was taken; otherwise the milliseconds until one token would be. */
  waitMs: number;
}

export interface Limiter {
  take(key: string, cost: number, rule: RateRule, now: number): number | Promise<number>;
  takeUpTo(key: string, max: number, rule: RateRule, now: number): Taken | Promise<Taken>;
  waitFor(key: string, cost: number, rule: RateRule, now: number): number | Promise<number>;
  close(): Promise<void>;
}
