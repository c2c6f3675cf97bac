import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdGenerator, idTime } from '../../src/core/ids.js';

test('ids are unique and sort by creation as strings, even within one millisecond', () => {
  const gen = new IdGenerator('node-a', () => 1_700_000_000_000);
  const ids = Array.from({ length: 10_000 }, () => gen.next());
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids);
  assert.ok(ids.every((id) => id.length === 20));
});

test('a clock that steps back does not break the order', () => {
  let now = 2_000_000;
  const gen = new IdGenerator('n', () => now);
  const a = gen.next();
  now -= 1000;
  const b = gen.next();
  assert.ok(b > a);
});

test('the time is recoverable from an id, and two nodes never collide in the same millisecond', () => {
  const t = 1_795_000_000_123;
  const a = new IdGenerator('node-a', () => t).next();
  const b = new IdGenerator('node-b', () => t).next();
  assert.equal(idTime(a), t);
  assert.notEqual(a, b);
});
