import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoadingCache } from '../../src/core/loading-cache.js';

/** A loader whose loads the test resolves by hand, in any order. */
function manualLoader(): { load: (key: string) => Promise<string>; pending: ((value: string) => void)[]; calls: number } {
  const state = { pending: [] as ((value: string) => void)[], calls: 0, load: (_key: string) => Promise.resolve('') };
  state.load = () => {
    state.calls++;
    return new Promise<string>((resolve) => state.pending.push(resolve));
  };
  return state;
}

test('one load per key at a time; the value is then served from memory', async () => {
  const l = manualLoader();
  const c = new LoadingCache(l.load, 10);
  const a = c.get('k');
  const b = c.get('k');
  assert.equal(l.calls, 1);
  l.pending[0]?.('v1');
  assert.equal(await a, 'v1');
  assert.equal(await b, 'v1');
  assert.equal(c.get('k'), 'v1', 'synchronous once cached');
});

test('a load overtaken by invalidate is never cached, whichever load finishes first', async () => {
  for (const order of [[0, 1], [1, 0]]) {
    const l = manualLoader();
    const c = new LoadingCache(l.load, 10);
    const stale = c.get('k');
    c.invalidate('k');
    const fresh = c.get('k');
    assert.equal(l.calls, 2, 'the invalidation starts a new load');
    const values = ['stale', 'fresh'];
    for (const i of order) {
      l.pending[i]?.(values[i] ?? '');
      await (i === 0 ? stale : fresh);
    }
    assert.equal(c.get('k'), 'fresh', `order ${order.join(',')}: the newer load fills the cache`);
  }
});

test('undefined is answered, not cached; the oldest entry goes when the cache is full', async () => {
  let calls = 0;
  const c = new LoadingCache<string, string | undefined>(async (k) => (calls++, k === 'none' ? undefined : k.toUpperCase()), 2);
  assert.equal(await c.get('none'), undefined);
  assert.equal(await c.get('none'), undefined);
  assert.equal(calls, 2, 'a missing value is looked up again');
  await c.get('a');
  await c.get('b');
  await c.get('c');
  assert.ok(c.get('a') instanceof Promise, 'the oldest entry was dropped');
  assert.equal(c.get('c'), 'C');
});
