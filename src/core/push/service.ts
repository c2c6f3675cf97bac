/**
 * Push notifications of one node (R12), put together: the subscriptions
 * devices register, the notifier that decides who is told of new messages, the
 * queue that delivers with retries and circuit breakers, and its metrics.
 */
import type { Config } from '../../config.js';
import type { Id, Message } from '../../protocol/model.js';
import type { PushKind } from '../../protocol/push.js';
import type { Store } from '../ports/store.js';
import type { Presence } from '../ports/presence.js';
import type { NotifierEngines } from '../ports/notifier.js';
import type { BlockService } from '../blocks.js';
import type { IdGenerator } from '../ids.js';
import type { RateLimits } from '../limits.js';
import type { Logger } from '../../observability/logger.js';
import type { Registry } from 'prom-client';
import { PushMetrics } from '../../observability/push-metrics.js';
import { PushQueue } from './queue.js';
import { Notifier, type MemberLookup } from './notifier.js';
import { PushSubscriptionService } from './subscriptions.js';

/** How long a draining node gives pushes in flight and due to finish. */
const DRAIN_MS = 3000;

export class PushService {
  readonly queue: PushQueue;
  readonly notifier: Notifier;
  readonly subscriptions: PushSubscriptionService;
  readonly metrics: PushMetrics;

  constructor(
    private readonly engines: NotifierEngines,
    config: Config,
    store: Store,
    members: MemberLookup,
    connectedHere: (userId: Id) => boolean,
    presence: Presence,
    blocks: BlockService,
    ids: IdGenerator,
    limits: RateLimits,
    registry: Registry,
    log: Logger,
  ) {
    this.metrics = new PushMetrics(registry, () => this.queue.depth);
    this.queue = new PushQueue(
      {
        maxSize: Math.max(1, config.pushQueueMax),
        concurrency: Math.max(1, config.pushConcurrency),
        maxAttempts: Math.max(1, config.pushMaxAttempts),
        retryBaseMs: config.pushRetryBaseMs,
        breakerFailures: Math.max(1, config.pushBreakerFailures),
        breakerMs: config.pushBreakerMs,
      },
      {
        sent: (c) => this.metrics.sent(c),
        retried: (c) => this.metrics.retried(c),
        failed: (c, r) => this.metrics.failed(c, r),
        breaker: (c, state) => {
          this.metrics.breaker(c, state);
          if (state === 'open') log.warn({ provider: c }, 'push provider failing; its circuit breaker is open');
          else if (state === 'closed') log.info({ provider: c }, 'push provider answers again; circuit breaker closed');
        },
      },
    );
    this.notifier = new Notifier(store, members, connectedHere, presence, blocks, engines, this.queue, { coalesceMs: config.pushCoalesceMs, fanoutMax: config.pushFanoutMax }, {
      notification: (route) => this.metrics.notifications.inc({ route }),
      tokenRemoved: (kind) => this.metrics.removedTotal.inc({ provider: kind }),
      error: (err) => log.warn({ err }, 'push notification failed'),
    });
    const kinds = new Set(Object.keys(engines.providers) as PushKind[]);
    this.subscriptions = new PushSubscriptionService(store, ids, limits, { kinds, apnsDefaultTopic: config.apnsTopic }, config.pushAllowPrivateEndpoints === true);
  }

  get vapidPublicKey(): string {
    return this.engines.vapidPublicKey;
  }

  /** Send path, after the append: see Notifier.messageCreated. */
  messageCreated(message: Message): void {
    this.notifier.messageCreated(message);
  }

  /** Resolves open windows, gives the queue a bounded time to finish, then closes the providers. */
  async close(): Promise<void> {
    await this.notifier.close();
    await this.queue.drain(DRAIN_MS);
    const { providers, fallback } = this.engines;
    await Promise.allSettled([...Object.values(providers).map((p) => p.close()), fallback?.close()]);
  }
}
