/**
 * The fallback route (R12): notifications no push delivered go to the
 * FallbackSink (a webhook) in batches, through the push queue like any push
 * (retries, backoff, a circuit breaker of its own). Batched because a message
 * to a large group can leave thousands of members without a push at once.
 */
import type { FallbackItem, FallbackSink } from '../ports/notifier.js';
import type { PushQueue } from './queue.js';

/** Items per webhook request. */
export const FALLBACK_BATCH = 100;
/** How long an item waits for others to share its request. */
export const FALLBACK_LINGER_MS = 200;

export class FallbackBatcher {
  private buffer: FallbackItem[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sink: FallbackSink | undefined,
    private readonly queue: PushQueue,
  ) {}

  get enabled(): boolean {
    return this.sink !== undefined;
  }

  add(item: FallbackItem): void {
    if (!this.sink) return;
    this.buffer.push(item);
    if (this.buffer.length >= FALLBACK_BATCH) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FALLBACK_LINGER_MS).unref();
  }

  /** Hands what is buffered to the queue now. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const sink = this.sink;
    if (!sink || this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    this.queue.add({ channel: 'webhook', run: () => sink.deliver(batch), done: () => undefined });
  }
}
