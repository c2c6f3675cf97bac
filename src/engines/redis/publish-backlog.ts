/**
 * Publishes made while the publisher link is down, kept to send once it is
 * back. Without it, a node whose publisher alone dropped (its subscriber
 * still up, so nobody resyncs) lost what it published meanwhile for every
 * other node's clients, until a later event in the same conversation showed
 * them the gap.
 *
 * Only what was never sent is kept: a publish in flight when the link dropped
 * may have reached Redis, and sending it again could deliver it twice (the
 * bus is at-most-once). Bounded in count and age: a long outage ends in the
 * nodes' own catch-up (every client syncs when the links are back), and
 * typing or presence minutes old is worth nothing.
 */
import type { Redis } from 'ioredis';

interface Held {
  channel: string;
  payload: string;
  at: number;
}

export interface PublishBacklogOptions {
  /** Most publishes kept; beyond it the oldest go. @default 10000 */
  maxMessages?: number;
  /** Publishes older than this when the link is back are dropped. @default 30000 */
  maxAgeMs?: number;
}

export interface PublishBacklogStats {
  /** Publishes sent late, after the link came back. */
  sent: number;
  /** Publishes dropped: too many waiting, too old, or the late send failed. */
  dropped: number;
}

export class PublishBacklog {
  private held: Held[] = [];
  private readonly maxMessages: number;
  private readonly maxAgeMs: number;
  readonly stats: PublishBacklogStats = { sent: 0, dropped: 0 };

  constructor(opts: PublishBacklogOptions = {}) {
    this.maxMessages = Math.max(1, opts.maxMessages ?? 10_000);
    this.maxAgeMs = opts.maxAgeMs ?? 30_000;
  }

  get size(): number {
    return this.held.length;
  }

  add(channel: string, payload: string): void {
    if (this.held.length >= this.maxMessages) {
      this.held.shift();
      this.stats.dropped++;
    }
    this.held.push({ channel, payload, at: Date.now() });
  }

  /**
   * Sends everything kept, in the order it was published, as one pipeline on
   * `redis` (which must be ready). Called before any newer publish is written
   * to the link, so order per topic holds.
   */
  flush(redis: Redis): void {
    const oldest = Date.now() - this.maxAgeMs;
    const batch = this.held.filter((h) => h.at >= oldest);
    this.stats.dropped += this.held.length - batch.length;
    this.held = [];
    if (batch.length === 0) return;
    const pipeline = redis.pipeline();
    for (const h of batch) pipeline.publish(h.channel, h.payload);
    pipeline.exec().then(
      (results) => {
        const failed = results?.filter(([error]) => error).length ?? batch.length;
        this.stats.sent += batch.length - failed;
        this.stats.dropped += failed;
      },
      () => {
        this.stats.dropped += batch.length;
      },
    );
  }
}
