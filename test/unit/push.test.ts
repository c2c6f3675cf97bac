/**
 * The parts of push delivery that decide timing and shape, on their own:
 * backoff and Retry-After, the schedule heap, the circuit breaker, the queue
 * (concurrency, bounds, attempts, breaker gating, drain), previews, and which
 * addresses count as private.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { retryDelay, parseRetryAfter, MAX_RETRY_AFTER_MS } from '../../src/core/push/backoff.js';
import { DueHeap } from '../../src/core/push/heap.js';
import { CircuitBreaker, type BreakerState } from '../../src/core/push/breaker.js';
import { PushQueue, type JobResult, type QueueJob } from '../../src/core/push/queue.js';
import { buildNotification, previewText } from '../../src/core/push/preview.js';
import { isPrivateAddress } from '../../src/core/push/validate.js';
import type { PushOutcome } from '../../src/core/ports/notifier.js';
import type { Conversation, Message } from '../../src/protocol/model.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('push backoff', () => {
  it('doubles from the base, capped, with at least half of each step kept', () => {
    assert.deepEqual([1, 2, 3, 4, 10].map((n) => retryDelay(n, 100, 1000, undefined, () => 0)), [50, 100, 200, 400, 500]);
    assert.deepEqual([1, 2, 3, 4, 10].map((n) => retryDelay(n, 100, 1000, undefined, () => 1)), [100, 200, 400, 800, 1000]);
  });

  it('waits at least a Retry-After, unless it is beyond an hour', () => {
    assert.equal(retryDelay(1, 100, 1000, 5000, () => 0), 5000);
    assert.equal(retryDelay(3, 100, 1000, 10, () => 1), 400);
    assert.equal(retryDelay(1, 100, 1000, MAX_RETRY_AFTER_MS + 1, () => 1), 100);
  });

  it('reads Retry-After as seconds or an HTTP date, and nothing else', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter(['3'], now), 3000);
    assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now), 0);
    for (const v of [undefined, '', 'soon', '-5']) assert.equal(parseRetryAfter(v, now), undefined, String(v));
  });
});

describe('push schedule heap', () => {
  it('hands items out by dueAt, whatever the order they came in', () => {
    const heap = new DueHeap<{ dueAt: number }>();
    const values = Array.from({ length: 500 }, (_, i) => (i * 7919) % 503);
    for (const dueAt of values) heap.push({ dueAt });
    const out: number[] = [];
    for (let x = heap.pop(); x; x = heap.pop()) out.push(x.dueAt);
    assert.deepEqual(out, [...values].sort((a, b) => a - b));
    assert.equal(heap.size, 0);
  });
});

describe('push circuit breaker', () => {
  it('opens after the threshold, lets one probe through after the cooldown, and closes or opens again on its answer', () => {
    const states: BreakerState[] = [];
    const b = new CircuitBreaker(3, 1000, (s) => states.push(s));
    b.failure(0);
    b.failure(1);
    assert.equal(b.wait(2), 0, 'two failures: still closed');
    b.failure(2);
    assert.equal(b.state, 'open');
    assert.equal(b.wait(500), 502);
    assert.equal(b.wait(1002), 0, 'the probe');
    assert.equal(b.state, 'half-open');
    assert.ok(b.wait(1003) > 0, 'only one probe at a time');
    b.failure(1100);
    assert.equal(b.state, 'open', 'a failed probe opens it again');
    assert.equal(b.wait(2100), 0);
    b.success();
    assert.equal(b.state, 'closed');
    assert.equal(b.wait(2101), 0);
    assert.deepEqual(states, ['open', 'half-open', 'open', 'half-open', 'closed']);
  });

  it('forgets failures after a success', () => {
    const b = new CircuitBreaker(2, 1000);
    b.failure(0);
    b.success();
    b.failure(1);
    assert.equal(b.state, 'closed');
  });
});

/** A job whose attempts answer from a script and take `ms`. */
function job(channel: string, answers: PushOutcome[], ms = 0, log: { calls: number; result?: JobResult; running: number; maxRunning: number } = { calls: 0, running: 0, maxRunning: 0 }) {
  const j: QueueJob & { log: typeof log } = {
    channel,
    log,
    async run() {
      log.calls++;
      log.running++;
      log.maxRunning = Math.max(log.maxRunning, log.running);
      await sleep(ms);
      log.running--;
      return answers.shift() ?? { status: 'sent' };
    },
    done(result) {
      log.result = result;
    },
  };
  return j;
}

const quiet = { sent: () => undefined, retried: () => undefined, failed: () => undefined, breaker: () => undefined };
const opts = { maxSize: 100, concurrency: 4, maxAttempts: 3, retryBaseMs: 10, breakerFailures: 3, breakerMs: 10_000 };

describe('push queue', () => {
  it('runs at most `concurrency` jobs at once and finishes them all', async () => {
    const q = new PushQueue(opts, quiet);
    const shared = { calls: 0, running: 0, maxRunning: 0 };
    const jobs = Array.from({ length: 20 }, () => job('webpush', [], 10, shared));
    for (const j of jobs) q.add(j);
    await q.drain(5000);
    assert.equal(shared.maxRunning, 4);
    assert.equal(shared.calls, 20);
  });

  it('retries up to maxAttempts, then reports exhausted; a sent or gone job is not retried', async () => {
    const q = new PushQueue({ ...opts, breakerFailures: 100 }, quiet);
    const failing = job('apns', [{ status: 'retry', reason: 'x' }, { status: 'retry', reason: 'x' }, { status: 'retry', reason: 'x' }, { status: 'retry', reason: 'x' }]);
    const recovering = job('apns', [{ status: 'retry', reason: 'x' }]);
    const gone = job('apns', [{ status: 'gone', reason: 'x' }]);
    q.add(failing);
    q.add(recovering);
    q.add(gone);
    await sleep(300);
    assert.deepEqual([failing.log.calls, failing.log.result], [3, 'exhausted']);
    assert.deepEqual([recovering.log.calls, recovering.log.result], [2, 'sent']);
    assert.deepEqual([gone.log.calls, gone.log.result], [1, 'gone']);
    q.close();
  });

  it('is bounded: a job past maxSize is dropped at once', () => {
    const q = new PushQueue({ ...opts, maxSize: 2, concurrency: 1 }, quiet);
    const jobs = [job('fcm', [], 50), job('fcm', [], 50), job('fcm', [], 50)];
    assert.deepEqual(jobs.map((j) => q.add(j)), [true, true, false]);
    assert.equal(jobs[2]!.log.result, 'dropped');
    assert.equal(q.depth, 2);
    q.close();
  });

  it('sends nothing to a channel whose breaker is open; other channels go on', async () => {
    const q = new PushQueue({ ...opts, breakerFailures: 2, maxAttempts: 2 }, quiet);
    const down = [job('webpush', [{ status: 'retry', reason: 'x' }, { status: 'retry', reason: 'x' }]), job('webpush', [{ status: 'retry', reason: 'x' }, { status: 'retry', reason: 'x' }])];
    for (const j of down) q.add(j);
    await sleep(50);
    assert.equal(q.breakerState('webpush'), 'open');
    const after = job('webpush', []);
    const other = job('fcm', []);
    q.add(after);
    q.add(other);
    await sleep(100);
    assert.equal(after.log.calls, 0, 'not tried while open');
    assert.equal(after.log.result, undefined, 'it waits for the breaker');
    assert.deepEqual([other.log.calls, other.log.result], [1, 'sent']);
    q.close();
  });

  it('drains by running what is due and dropping what waits for a later attempt', async () => {
    const q = new PushQueue({ ...opts, retryBaseMs: 60_000, breakerFailures: 100 }, quiet);
    const later = job('webpush', [{ status: 'retry', reason: 'x' }]);
    q.add(later);
    await sleep(20);
    const now = job('webpush', [], 20);
    q.add(now);
    const t0 = Date.now();
    await q.drain(5000);
    assert.ok(Date.now() - t0 < 1000, 'did not wait for the retry');
    assert.deepEqual([later.log.result, now.log.result], ['dropped', 'sent']);
    assert.equal(q.add(job('webpush', [])), false, 'closed after the drain');
  });
});

describe('push previews', () => {
  const conv = (kind: 'direct' | 'group', title?: string): Conversation => ({ id: 'c1', kind, ...(title ? { title } : {}), members: [], lastSeq: 1, createdAt: 0, updatedAt: 0 });
  const msg = (body: string): Message => ({ id: 'm1', conversationId: 'c1', seq: 3, senderId: 'u1', clientId: 'k', body, createdAt: 5 });

  it('collapses white space and cuts at 120 characters, counting code points', () => {
    assert.equal(previewText(conv('direct'), msg('  a\n\n b\t c ')), 'a b c');
    const long = '😀'.repeat(200);
    const p = previewText(conv('direct'), msg(long))!;
    assert.equal(Array.from(p).length, 120);
    assert.ok(p.endsWith('…'), 'ends with an ellipsis');
    assert.equal(previewText(conv('direct'), msg('   ')), undefined);
  });

  it('titles a group by its title and prefixes the sender; a direct chat by the sender', () => {
    const g = buildNotification(conv('group', 'Trip'), msg('hi'), 'Ann', 2);
    assert.deepEqual([g.title, g.body, g.count, g.seq], ['Trip', 'Ann: hi', 2, 3]);
    const d = buildNotification(conv('direct'), msg('hi'), 'Ann', 1);
    assert.deepEqual([d.title, d.body], ['Ann', 'hi']);
    assert.equal('body' in buildNotification(conv('direct'), msg(''), 'Ann', 1), false, 'no preview: no body');
  });
});

describe('private addresses', () => {
  it('covers loopback, private, link-local, CGNAT, unspecified and multicast, IPv4 and IPv6', () => {
    for (const ip of ['127.0.0.1', '10.2.3.4', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '::1', '::', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', 'ff02::1']) {
      assert.equal(isPrivateAddress(ip), true, ip);
    }
    for (const ip of ['8.8.8.8', '172.32.0.1', '142.250.74.110', '2607:f8b0:4004:800::200e', '::ffff:8.8.8.8', 'push.example']) {
      assert.equal(isPrivateAddress(ip), false, ip);
    }
  });
});
