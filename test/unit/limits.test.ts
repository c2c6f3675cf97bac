import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimits } from '../../src/core/limits.js';
import type { Limiter } from '../../src/core/ports/limiter.js';
import { ParleyError } from '../../src/core/errors.js';

/** A shared limiter whose broker is down: every take rejects, as the Redis engine does. */
class DownLimiter implements Limiter {
  calls = 0;
  take(): Promise<number> {
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
