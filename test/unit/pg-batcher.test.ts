/**
 * The PostgreSQL append batcher's scheduling (engines/postgres/batcher.ts),
 * with a `run` the test settles by hand so every interleaving is exact: how
 * many batches are in flight, what forms the next one, per-key order, and
 * which items a failed batch takes down.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { Batcher, type Settled } from '../../src/engines/postgres/batcher.js';

interface Item {
  key: string;
  n: number;
}

/** A batcher whose batches wait until the test settles them. */
function harness(maxInFlight: number, maxBatch = 100) {
  const sent: { items: Item[]; settle: (fail?: Error) => void }[] = [];
  const batcher = new Batcher<Item, string>({
    key: (i) => i.key,
    maxBatch,
    maxInFlight,
    run: (items) =>
      new Promise<Settled<string>[]>((resolve, reject) => {
        sent.push({
          items: [...items],
          settle: (fail) => (fail ? reject(fail) : resolve(items.map((i) => ({ ok: true, value: `${i.key}${i.n}` })))),
        });
      }),
  });
  const names = (k: number): string[] => (sent[k]?.items ?? []).map((i) => `${i.key}${i.n}`);
  return { batcher, sent, names };
}

test('one batch in flight: what arrives meanwhile, over many turns, goes out as the next batch', async () => {
  const { batcher, sent, names } = harness(1);
  const first = [batcher.submit({ key: 'a', n: 1 }), batcher.submit({ key: 'b', n: 1 })];
  await turn();
  assert.equal(sent.length, 1);
  assert.deepEqual(names(0), ['a1', 'b1']);

  const later: Promise<string>[] = [];
  for (const key of ['c', 'd', 'e', 'f']) {
    later.push(batcher.submit({ key, n: 1 }));
    await turn();
  }
  assert.equal(sent.length, 1, 'nothing else goes out while the batch is in flight');

  sent[0]?.settle();
  assert.deepEqual(await Promise.all(first), ['a1', 'b1']);
  await turn();
  assert.equal(sent.length, 2);
  assert.deepEqual(names(1), ['c1', 'd1', 'e1', 'f1']);
  sent[1]?.settle();
  assert.deepEqual(await Promise.all(later), ['c1', 'd1', 'e1', 'f1']);
  await batcher.close();
});

test('several in flight: ready items are spread over the free slots, at least eight a batch', async () => {
  const { batcher, sent } = harness(3);
  const all = Array.from({ length: 20 }, (_, i) => batcher.submit({ key: `k${String(i).padStart(2, '0')}`, n: 1 }));
  await turn();
  // ceil(ready / free slots), at least eight: 20/3 → 8, 12/2 → 8, 4/1 → 4.
  assert.deepEqual(sent.map((b) => b.items.length), [8, 8, 4]);
  for (const b of sent) b.settle();
  assert.equal((await Promise.all(all)).length, 20);
  await batcher.close();
});

test('a key in flight holds its later items back, in order, even with slots free', async () => {
  const { batcher, sent, names } = harness(3);
  const a1 = batcher.submit({ key: 'a', n: 1 });
  await turn();
  const a2 = batcher.submit({ key: 'a', n: 2 });
  const b1 = batcher.submit({ key: 'b', n: 1 });
  const a3 = batcher.submit({ key: 'a', n: 3 });
  await turn();
  assert.deepEqual(names(0), ['a1']);
  assert.deepEqual(names(1), ['b1'], 'b goes out beside a; a2 and a3 wait for a1');
  sent[0]?.settle();
  await a1;
  await turn();
  assert.deepEqual(names(2), ['a2', 'a3']);
  sent[1]?.settle();
  sent[2]?.settle();
  assert.deepEqual(await Promise.all([a2, b1, a3]), ['a2', 'b1', 'a3']);
  await batcher.close();
});

test('a batch that fails rejects its own items only; the next batch still goes', async () => {
  const { batcher, sent } = harness(1);
  const x = batcher.submit({ key: 'x', n: 1 });
  await turn();
  const y = batcher.submit({ key: 'y', n: 1 });
  sent[0]?.settle(new Error('connection lost'));
  await assert.rejects(x, /connection lost/);
  await turn();
  assert.equal(sent.length, 2);
  sent[1]?.settle();
  assert.equal(await y, 'y1');
  await batcher.close();
  await assert.rejects(batcher.submit({ key: 'z', n: 1 }), /closed/);
});

test('close waits for what is in flight and what is queued behind it', async () => {
  const { batcher, sent } = harness(1);
  const p = [batcher.submit({ key: 'a', n: 1 })];
  await turn();
  p.push(batcher.submit({ key: 'b', n: 1 }));
  let closed = false;
  const closing = batcher.close().then(() => (closed = true));
  sent[0]?.settle();
  await turn();
  await turn();
  assert.equal(closed, false, 'b is still out');
  sent[1]?.settle();
  await closing;
  assert.deepEqual(await Promise.all(p), ['a1', 'b1']);
});
