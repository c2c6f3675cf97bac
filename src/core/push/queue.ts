/**
 * The push queue of one node: jobs (one push to one subscription, or one
 * webhook batch) wait for their time in a heap, go out at most `concurrency` at
 * once, and fail over to a retry with exponential backoff and jitter
 * (backoff.ts), at most `maxAttempts` times. Each channel (provider kind, or
 * `webhook`) has its own circuit breaker (breaker.ts): while it is open, that
 * channel's jobs do not touch the network; they spend an attempt and wait, so a
 * dead provider ends in the fallback within the same bounded time instead of
 * holding requests open.
 *
 * In memory, on purpose: a notification is worth something for minutes, and
 * the message it announces is durable and synced on the next open whatever
 * happens here. A node that crashes loses what it held (at most `maxSize`
 * jobs); a node that drains gets `drain()` to finish what it can.
 *
 * Nothing here runs on the send path: jobs are added from the notifier's
 * flushes, after the acks.
 */
import type { PushOutcome } from '../ports/notifier.js';
import { CircuitBreaker, type BreakerState } from './breaker.js';
import { retryDelay } from './backoff.js';
import { DueHeap } from './heap.js';

/** How a job ended: `exhausted` after its last attempt failed, `dropped` when the queue was full or closed. */
export type JobResult = 'sent' | 'gone' | 'failed' | 'exhausted' | 'dropped';

export interface QueueJob {
  /** The provider kind, or 'webhook': one circuit breaker and one set of metrics each. */
  readonly channel: string;
  run(): Promise<PushOutcome>;
  /** Called once, with how the job ended. */
  done(result: JobResult, reason?: string): void;
}

export interface QueueOptions {
  maxSize: number;
  concurrency: number;
  maxAttempts: number;
  retryBaseMs: number;
  /** @default 300000 */
  retryMaxMs?: number;
  breakerFailures: number;
  breakerMs: number;
}

export interface QueueObserver {
  sent(channel: string): void;
  retried(channel: string): void;
  failed(channel: string, result: Exclude<JobResult, 'sent'>): void;
  breaker(channel: string, state: BreakerState): void;
}

/**
 * Starting a push costs the event loop ~0.5 ms (Web Push encrypts each payload with a fresh ECDH key), and
 * sends share that loop. Within any SLICE_MS, jobs are started for at most BUDGET_MS; the rest wait for the
 * next slice, so a notification to a thousand members takes a few seconds instead of blocking a send for a
 * hundred milliseconds (measured: 1,000 pushes moved the loop's worst delay from 170 to ~10 ms).
 */
const SLICE_MS = 20;
const BUDGET_MS = 5;

interface Entry {
  job: QueueJob;
  attempt: number;
  dueAt: number;
}

export class PushQueue {
  private readonly heap = new DueHeap<Entry>();
  private readonly breakers = new Map<string, CircuitBreaker>();
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private closed = false;
  private draining = false;
  private sliceStart = -Infinity;
  private sliceUsed = 0;
  private idle: (() => void)[] = [];

  constructor(
    private readonly opts: QueueOptions,
    private readonly observer: QueueObserver,
    private readonly now: () => number = Date.now,
  ) {}

  /** Jobs waiting, retrying or in flight. */
  get depth(): number {
    return this.heap.size + this.inFlight;
  }

  breakerState(channel: string): BreakerState {
    return this.breakers.get(channel)?.state ?? 'closed';
  }

  /** Queues a job to run now. False (and the job told `dropped`) when the queue is full or closed. */
  add(job: QueueJob): boolean {
    if (this.closed || this.depth >= this.opts.maxSize) {
      this.observer.failed(job.channel, 'dropped');
      job.done('dropped', this.closed ? 'the queue is closed' : 'the queue is full');
      return false;
    }
    this.heap.push({ job, attempt: 1, dueAt: this.now() });
    this.pump();
    return true;
  }

  /**
   * For a shutdown: jobs due now run, those in flight finish, nothing is retried
   * and jobs waiting for a later attempt are dropped at once. Resolves when
   * nothing is left, or after `timeoutMs`; then every job left is dropped.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    const now = this.now();
    for (const e of this.heap.drain()) {
      if (e.dueAt <= now) this.heap.push(e);
      else this.end(e, 'dropped', 'the server is shutting down');
    }
    this.pump();
    if (this.depth > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.idle.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.close();
  }

  /** Drops every waiting job; those in flight finish and are reported, but nothing is retried. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const e of this.heap.drain()) this.end(e, 'dropped', 'the server is shutting down');
    this.notifyIdle();
  }

  private end(e: Entry, result: Exclude<JobResult, 'sent'>, reason: string): void {
    this.observer.failed(e.job.channel, result);
    e.job.done(result, reason);
  }

  private breaker(channel: string): CircuitBreaker {
    let b = this.breakers.get(channel);
    if (!b) {
      b = new CircuitBreaker(this.opts.breakerFailures, this.opts.breakerMs, (state) => this.observer.breaker(channel, state));
      this.breakers.set(channel, b);
    }
    return b;
  }

  private pump(): void {
    const now = this.now();
    let resumeAt = -Infinity;
    while (this.inFlight < this.opts.concurrency) {
      const top = this.heap.peek();
      if (!top || top.dueAt > now) break;
      const t0 = performance.now();
      if (t0 - this.sliceStart >= SLICE_MS) {
        this.sliceStart = t0;
        this.sliceUsed = 0;
      } else if (this.sliceUsed >= BUDGET_MS) {
        resumeAt = now + Math.ceil(this.sliceStart + SLICE_MS - t0);
        break;
      }
      this.heap.pop();
      const wait = this.breaker(top.job.channel).wait(now);
      if (wait > 0) this.retryOrEnd(top, now, wait, 'the circuit breaker is open');
      else void this.run(top);
      this.sliceUsed += performance.now() - t0;
    }
    this.schedule(resumeAt);
  }

  /** Wakes for the earliest job (not before `notBefore`, the next slice), unless a timer already will. */
  private schedule(notBefore: number): void {
    const top = this.heap.peek();
    if (!top || this.closed) return;
    // Full: the next completion pumps.
    if (this.inFlight >= this.opts.concurrency) return;
    const at = Math.max(top.dueAt, notBefore);
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Infinity;
        this.pump();
      },
      Math.max(0, at - this.now()),
    );
    this.timer.unref();
  }

  private async run(e: Entry): Promise<void> {
    this.inFlight++;
    let outcome: PushOutcome;
    try {
      outcome = await e.job.run();
    } catch (err) {
      outcome = { status: 'retry', reason: err instanceof Error ? err.message : String(err) };
    }
    this.inFlight--;
    const breaker = this.breaker(e.job.channel);
    const now = this.now();
    switch (outcome.status) {
      case 'sent':
        breaker.success();
        this.observer.sent(e.job.channel);
        e.job.done('sent');
        break;
      case 'gone':
      case 'failed':
        breaker.success();
        this.observer.failed(e.job.channel, outcome.status);
        e.job.done(outcome.status, outcome.reason);
        break;
      case 'retry':
        breaker.failure(now);
        this.retryOrEnd(e, now, outcome.retryAfterMs, outcome.reason);
        break;
    }
    if (!this.closed) this.pump();
    this.notifyIdle();
  }

  private retryOrEnd(e: Entry, now: number, atLeastMs: number | undefined, reason: string): void {
    if (this.closed || this.draining) return this.end(e, 'dropped', reason);
    if (e.attempt >= this.opts.maxAttempts) return this.end(e, 'exhausted', reason);
    this.observer.retried(e.job.channel);
    const delay = retryDelay(e.attempt, this.opts.retryBaseMs, this.opts.retryMaxMs ?? 300_000, atLeastMs);
    this.heap.push({ job: e.job, attempt: e.attempt + 1, dueAt: now + delay });
  }

  private notifyIdle(): void {
    if (this.inFlight > 0 || (this.heap.size > 0 && !this.closed)) return;
    const waiters = this.idle;
    this.idle = [];
    for (const w of waiters) w();
  }
}
