import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimits } from '../../src/core/limits.js';
import type { Limiter, RateRule, Taken } from '../../src/core/ports/limiter.js';
import { MemoryLimiter } from '../../src/engines/memory/limiter.js';
import { ParleyError } from '../../src/core/errors.js';

/** A shared limiter whose broker is down: every take rejects, as the Redis engine does. */
class DownLimiter implements Limiter {
  calls = 0;
  take(): Promise<number> {
    this.calls++;
    return Promise.reject(new Error('Redis is unreachable'));
  }
  takeUpTo(): Promise<Taken> {
    this.calls++;
    return Promise.reject(new Error('Redis is unreachable'));
  }
  waitFor(): Promise<number> {
    this.calls++;
    return Promise.reject(new Error('Redis is unreachable'));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

test('a failing shared limiter degrades to a per-node bucket: writes go on, the limit still holds, the failure is reported sparingly', async () => {
  const down = new DownLimiter();
  const reports: unknown[] = [];
  const limits = new RateLimits(down, {
    user: { ratePerSec: 1, burst: 5 },
    connection: { ratePerSec: 100, burst: 100 },
    onDegraded: (err) => reports.push(err),
  });
  for (let i = 0; i < 5; i++) await limits.write('alice');
  await assert.rejects(limits.write('alice'), (err: unknown) => err instanceof ParleyError && err.code === 'rate_limited');
  await limits.write('bob');
  assert.equal(down.calls, 7, 'the shared limiter is still asked first every time');
  assert.equal(reports.length, 1, 'one report for the burst of failures');
});

/**
 * The shared bucket one engine holds for every node, answering a tick later as
 * a network limiter would; it counts the calls made to it.
 */
class SharedBucket implements Limiter {
  readonly engine = new MemoryLimiter();
  calls = 0;
  async take(key: string, cost: number, rule: RateRule, now: number): Promise<number> {
    this.calls++;
    await new Promise((r) => setImmediate(r));
    return this.engine.take(key, cost, rule, now);
  }
  async takeUpTo(key: string, max: number, rule: RateRule, now: number): Promise<Taken> {
    this.calls++;
    await new Promise((r) => setImmediate(r));
    return this.engine.takeUpTo(key, max, rule, now);
  }
  async waitFor(key: string, cost: number, rule: RateRule, now: number): Promise<number> {
    this.calls++;
    await new Promise((r) => setImmediate(r));
    return this.engine.waitFor(key, cost, rule, now);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const limited = (err: unknown): boolean => err instanceof ParleyError && err.code === 'rate_limited';

test('local shares: one call to the shared limiter per share, concurrent writes wait for it, the budget across nodes is never exceeded', async () => {
  const shared = new SharedBucket();
  const user: RateRule = { ratePerSec: 1, burst: 40 };
  const node = (): RateLimits => new RateLimits(shared, { user, connection: { ratePerSec: 1000, burst: 1000 }, share: { tokens: 8, ttlMs: 60_000 } });
  const a = node();
  const b = node();
  // 10 concurrent writes on node a: one call for the first share of 8, one more for the rest.
  await Promise.all(Array.from({ length: 10 }, () => a.write('alice')));
  assert.equal(shared.calls, 2, 'two shares of 8 served 10 writes');
  // Both nodes write until refused: together they get exactly the burst, never more.
  let ok = 10;
  for (const n of [a, b, a, b]) {
    for (;;) {
      try {
        await n.write('alice');
        ok++;
      } catch (err) {
        assert.ok(limited(err));
        break;
      }
    }
  }
  assert.ok(ok <= 40, `${ok} writes passed a burst of 40`);
  assert.ok(ok >= 40 - 8, `${ok} writes: at most one unspent share (on the other node) may be missing`);
  // Another user has a bucket of their own.
  await b.write('bob');
});

test('local shares: when the shared limiter fails, the node\'s own bucket decides', async () => {
  const down = new DownLimiter();
  const limits = new RateLimits(down, {
    user: { ratePerSec: 1, burst: 3 },
    connection: { ratePerSec: 100, burst: 100 },
    share: { tokens: 8, ttlMs: 1000 },
  });
  for (let i = 0; i < 3; i++) await limits.write('alice');
  await assert.rejects(limits.write('alice'), limited);
});
