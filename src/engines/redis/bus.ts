/**
 * Redis pub/sub engine of the Bus port (contract in core/ports/bus.ts).
 *
 * One publisher and one subscriber connection per node, whatever the number of
 * sockets, users or topics. Channel = prefix + topic. One publisher connection
 * keeps publish order per topic: Redis handles a connection's commands in order.
 *
 * The set of wanted topics lives here, not in ioredis: after a reconnect this
 * node subscribes to exactly what it still wants (ioredis' autoResubscribe
 * would also bring back topics unsubscribed while the link was down), and
 * `healthy()` stays false until that is done, so a node never claims health
 * while it would miss messages.
 *
 * What is published while the publisher link is down is kept and sent, in
 * order, the moment it is back (publish-backlog.ts); until then newer
 * publishes queue behind it.
 */
import type { Redis } from 'ioredis';
import type { Bus, BusHandler, BusMessage } from '../../core/ports/bus.js';
import { close, connect, DEFAULT_PREFIX, openAll, type RedisEngineOptions } from './connection.js';
import { decodeBusMessage, encodeBusMessage } from './codec.js';
import { PublishBacklog, type PublishBacklogOptions, type PublishBacklogStats } from './publish-backlog.js';
import { TurnBatcher } from './turn-batcher.js';

export type PublishBatching = 'none' | 'turn';

export interface RedisBusOptions extends RedisEngineOptions {
  /** Told when this node's handler throws or a payload on our channels is not a bus message. @default writes to stderr */
  onHandlerError?: (error: unknown, topic: string) => void;
  /**
   * How publishes reach Redis: `turn` sends those made in one tick of the event
   * loop (one socket read, one group commit and everything they resolve) as one
   * write, flushed before the loop moves on, so it adds no wait
   * (turn-batcher.ts); `none` writes each at once. Measured in
   * bench/redis-bus.ts: `turn` cuts Redis CPU per publish from 17 to 3 µs and
   * carries 1.45x the publishes per second; at 20,000/s its p99 was 25-64 ms
   * against 161-1,377 ms. Redis' single thread is the cluster's shared
   * ceiling. @default 'turn'
   */
  publishBatching?: PublishBatching;
  /** Bounds of what is kept while the publisher link is down (publish-backlog.ts). */
  backlog?: PublishBacklogOptions;
}

/** Channels per SUBSCRIBE when resubscribing, so no single command carries thousands. */
const RESUBSCRIBE_BATCH = 1000;

export class RedisBus implements Bus {
  /** Connects both links; rejects if Redis does not answer within `openTimeoutMs`. */
  static async open(options: RedisBusOptions): Promise<RedisBus> {
    const bus = new RedisBus(options);
    await openAll(options, [bus.pub, bus.sub]);
    return bus;
  }

  private readonly prefix: string;
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly batcher: TurnBatcher | undefined;
  private readonly backlog: PublishBacklog;
  private readonly onHandlerError: (error: unknown, topic: string) => void;
  /** Wanted topics, each with the SUBSCRIBE that made it live (callers wait on it). */
  private readonly topics = new Map<string, Promise<void>>();
  private handler: BusHandler | undefined;
  private closed = false;
  /** False from the subscriber's drop until every wanted topic is subscribed on the new link. */
  private resubscribed = false;
  /** Counts subscriber (re)connections, so a stale resubscription cannot report success. */
  private link = 0;
  private readonly recoveredListeners: (() => void)[] = [];
  /** A link dropped since the last recovery call. */
  private outage = false;

  private constructor(options: RedisBusOptions) {
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    this.onHandlerError =
      options.onHandlerError ?? ((error, topic) => console.error(`bus handler failed on ${topic}:`, error));
    this.pub = connect(options, 'parley-bus-pub');
    this.batcher = options.publishBatching === 'none' ? undefined : new TurnBatcher(this.pub);
    this.backlog = new PublishBacklog(options.backlog);
    this.sub = connect(options, 'parley-bus-sub');
    this.sub.on('message', (channel: string, payload: string) => this.receive(channel, payload));
    this.sub.on('close', () => {
      this.resubscribed = false;
    });
    this.sub.on('ready', () => void this.resubscribe());
    // One outage (a Redis restart drops both links) makes one recovery call, once both are back.
    this.pub.on('close', () => {
      this.outage = true;
    });
    this.sub.on('close', () => {
      this.outage = true;
    });
    this.pub.on('ready', () => {
      // Synchronously, before any newer publish can reach the new link.
      this.backlog.flush(this.pub);
      this.recoveredIfHealthy();
    });
  }

  private recoveredIfHealthy(): void {
    if (!this.outage || !this.healthy()) return;
    this.outage = false;
    for (const listener of this.recoveredListeners) listener();
  }

  async publish(topic: string, message: BusMessage): Promise<void> {
    this.assertOpen();
    const channel = this.prefix + topic;
    const payload = encodeBusMessage(message);
    if (this.pub.status !== 'ready' || this.backlog.size > 0) {
      this.backlog.add(channel, payload);
      return;
    }
    await (this.batcher ? this.batcher.publish(channel, payload) : this.pub.publish(channel, payload));
  }

  subscribe(topic: string): Promise<void> {
    if (this.closed) return Promise.reject(new Error('bus is closed'));
    let live = this.topics.get(topic);
    if (!live) {
      const subscribing = this.sub.subscribe(this.prefix + topic).then(() => undefined);
      this.topics.set(topic, subscribing);
      // A topic that could not be subscribed is not wanted: the caller got the
      // error and decides (the hub detaches the peer, which unsubscribes).
      subscribing.catch(() => {
        if (this.topics.get(topic) === subscribing) this.topics.delete(topic);
      });
      live = subscribing;
    }
    return live;
  }

  async unsubscribe(topic: string): Promise<void> {
    if (!this.topics.delete(topic)) return;
    // Down: the next link will not subscribe it. A failed UNSUBSCRIBE on a live
    // link leaves a server-side subscription whose messages `receive` drops.
    if (this.sub.status !== 'ready') return;
    await this.sub.unsubscribe(this.prefix + topic).catch(() => undefined);
  }

  onMessage(handler: BusHandler): void {
    this.handler = handler;
  }

  /**
   * Runs `listener` each time a link is back after a drop: the subscriber once
   * resubscribed (what was published meanwhile never reached this node), the
   * publisher once ready (what this node published meanwhile reached nobody;
   * its own clients at least catch up). A client only notices a gap when a
   * later message arrives, so this is the moment to have local clients sync.
   */
  onRecovered(listener: () => void): void {
    this.recoveredListeners.push(listener);
  }

  healthy(): boolean {
    return !this.closed && this.resubscribed && this.pub.status === 'ready' && this.sub.status === 'ready';
  }

  /** Publishes sent late or dropped by the backlog. */
  get backlogStats(): PublishBacklogStats {
    return { ...this.backlog.stats };
  }

  /** Topics this node is subscribed to (or subscribing). */
  get topicCount(): number {
    return this.topics.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.topics.clear();
    await Promise.all([close(this.pub), close(this.sub)]);
  }

  private receive(channel: string, payload: string): void {
    if (!this.handler || !channel.startsWith(this.prefix)) return;
    const topic = channel.slice(this.prefix.length);
    // Also drops what arrives between an unsubscribe call and Redis' answer to it.
    if (!this.topics.has(topic)) return;
    let message: BusMessage;
    try {
      message = decodeBusMessage(payload);
    } catch (error) {
      this.onHandlerError(error, topic);
      return;
    }
    // A throw must not reach ioredis' reply parser, which would lose the link's state.
    try {
      this.handler(topic, message);
    } catch (error) {
      this.onHandlerError(error, topic);
    }
  }

  private async resubscribe(): Promise<void> {
    const link = ++this.link;
    const channels = [...this.topics.keys()].map((topic) => this.prefix + topic);
    const batches: Promise<unknown>[] = [];
    for (let i = 0; i < channels.length; i += RESUBSCRIBE_BATCH) {
      batches.push(this.sub.subscribe(...channels.slice(i, i + RESUBSCRIBE_BATCH)));
    }
    try {
      await Promise.all(batches);
      if (link !== this.link || this.sub.status !== 'ready') return;
      this.resubscribed = true;
      this.recoveredIfHealthy();
    } catch {
      // A dropped link resubscribes on its next 'ready'. A live link that failed
      // (a timeout) is dropped so the next one tries again: never stay half-subscribed.
      if (link === this.link && this.sub.status === 'ready' && !this.closed) this.sub.disconnect(true);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('bus is closed');
  }
}
