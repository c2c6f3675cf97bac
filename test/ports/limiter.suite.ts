/**
 * The Limiter port suite (contract in src/core/ports/limiter.ts), run by every
 * engine. Time is the `now` the suite passes, so refills need no sleeping.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type { Limiter, RateRule } from '../../src/core/ports/limiter.js';

export interface LimiterSuiteOptions {
  /** The engine answers with a number, not a promise, as the in-memory one promises. */
  synchronous?: boolean;
}

const T0 = 1_700_000_000_000;
/** One token every 100 ms, five at most. */
const RULE: RateRule = { ratePerSec: 10, burst: 5 };

export function limiterSuite(
  name: string,
  open: () => Promise<Limiter>,
  dispose: (limiter: Limiter) => Promise<void>,
  options: LimiterSuiteOptions = {},
): void {
  describe(`Limiter port: ${name}`, () => {
    let limiter: Limiter;
    const take = async (key: string, now: number, cost = 1, rule = RULE): Promise<number> =>
      limiter.take(key, cost, rule, now);
    /** Answers of `count` takes of 1 at `now`. */
    const takes = async (key: string, now: number, count: number): Promise<number[]> => {
      const answers: number[] = [];
      for (let i = 0; i < count; i++) answers.push(await take(key, now));
      return answers;
    };

    beforeEach(async () => {
      limiter = await open();
    });

    afterEach(async () => {
      await dispose(limiter);
    });

    it('allows a burst, then refuses with the time until the next token', async () => {
      assert.deepEqual(await takes('k', T0, 5), [0, 0, 0, 0, 0]);
      assert.equal(await take('k', T0), 100);
      assert.equal(await take('k', T0 + 40), 60);
    });

    it('allows the take once the answered wait has passed, not before', async () => {
      await takes('k', T0, 5);
      const wait = await take('k', T0 + 13);
      assert.ok(wait > 0);
      assert.ok((await take('k', T0 + 13 + wait - 1)) > 0);
      assert.equal(await take('k', T0 + 13 + wait), 0);
    });

    it('refills at the rate, lazily from now, and never beyond the burst', async () => {
      await takes('k', T0, 5);
      assert.deepEqual(await takes('k', T0 + 250, 3), [0, 0, 50]);
      assert.deepEqual(await takes('k', T0 + 5_000, 6), [0, 0, 0, 0, 0, 100]);
    });

    it('removes nothing on a refused take', async () => {
      await takes('k', T0, 5);
      for (let i = 0; i < 10; i++) assert.equal(await take('k', T0 + 50), 50);
      assert.equal(await take('k', T0 + 100), 0);
      assert.equal(await take('k', T0 + 100), 100);
    });

    it('takes several tokens at once, and refuses a cost larger than what is left as a whole', async () => {
      assert.equal(await take('k', T0, 3), 0);
      assert.equal(await take('k', T0, 3), 100, 'two left, one more needed');
      assert.equal(await take('k', T0, 2), 0, 'the refused take of 3 left both tokens');
      assert.equal(await take('k', T0 + 250, 3), 50);
      assert.equal(await take('k', T0 + 300, 3), 0);
    });

    it('keeps keys independent', async () => {
      await takes('user:a', T0, 5);
      assert.ok((await take('user:a', T0)) > 0);
      assert.deepEqual(await takes('user:b', T0, 5), [0, 0, 0, 0, 0]);
      assert.equal(await take('conn:a', T0), 0);
    });

    it('applies the rule given with each take', async () => {
      const fast: RateRule = { ratePerSec: 1000, burst: 2 };
      assert.equal(await take('k', T0, 2, fast), 0);
      assert.equal(await take('k', T0, 1, fast), 1);
      assert.equal(await take('k', T0 + 1, 1, fast), 0);
    });

    it('rejects a cost above the burst, which could never pass', async () => {
      await assert.rejects(take('k', T0, 6), RangeError);
    });

    it('takeUpTo takes what the bucket holds, up to the max, and shares the bucket with take', async () => {
      const upTo = async (now: number, max: number): Promise<{ taken: number; waitMs: number }> => limiter.takeUpTo('k', max, RULE, now);
      assert.deepEqual(await upTo(T0, 3), { taken: 3, waitMs: 0 });
      assert.deepEqual(await upTo(T0, 3), { taken: 2, waitMs: 0 }, 'only two were left');
      assert.deepEqual(await upTo(T0, 3), { taken: 0, waitMs: 100 });
      assert.equal(await take('k', T0 + 50), 50, 'take sees the same empty bucket');
      assert.deepEqual(await upTo(T0 + 250, 10), { taken: 2, waitMs: 0 }, 'refilled two in 250 ms');
      assert.deepEqual(await upTo(T0 + 5_000, 10), { taken: 5, waitMs: 0 }, 'never more than the burst');
      assert.deepEqual(await upTo(T0 + 5_000, 1), { taken: 0, waitMs: 100 });
    });

    it('waitFor answers what take would, and removes nothing', async () => {
      const waitFor = async (now: number, cost = 1): Promise<number> => limiter.waitFor('k', cost, RULE, now);
      assert.equal(await waitFor(T0), 0, 'an untouched bucket is full');
      await takes('k', T0, 4);
      assert.equal(await waitFor(T0), 0);
      assert.equal(await waitFor(T0, 2), 100);
      for (let i = 0; i < 5; i++) assert.equal(await waitFor(T0), 0, 'asking spends nothing');
      assert.equal(await take('k', T0), 0);
      assert.equal(await waitFor(T0 + 30), 70);
      assert.equal(await take('k', T0 + 30), 70, 'take agrees');
      assert.equal(await waitFor(T0 + 100), 0);
      await assert.rejects(async () => limiter.waitFor('k', 6, RULE, T0), RangeError);
    });

    it('takeUpTo refuses a max below one', async () => {
      await assert.rejects(async () => limiter.takeUpTo('k', 0, RULE, T0), RangeError);
    });

    if (options.synchronous) {
      it('answers synchronously', () => {
        assert.equal(limiter.take('k', 1, RULE, T0), 0);
        assert.equal(limiter.take('k', 5, RULE, T0), 100);
      });
    }
  });
}
