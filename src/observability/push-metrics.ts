/** Prometheus metrics of push notifications (R12), in the node's registry beside the others (metrics.ts). */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { QueueObserver, JobResult } from '../core/push/queue.js';
import type { BreakerState } from '../core/push/breaker.js';

export class PushMetrics implements QueueObserver {
  readonly sentTotal: Counter<'provider'>;
  readonly failedTotal: Counter<'provider' | 'reason'>;
  readonly retriedTotal: Counter<'provider'>;
  readonly removedTotal: Counter<'provider'>;
  readonly notifications: Counter<'route'>;
  readonly breakerOpen: Gauge<'provider'>;

  constructor(registry: Registry, depth: () => number) {
    const registers = [registry];
    this.sentTotal = new Counter({ name: 'parley_push_sent_total', help: 'Pushes (and webhook batches) the provider accepted, by provider.', labelNames: ['provider'], registers });
    this.failedTotal = new Counter({
      name: 'parley_push_failed_total',
      help: 'Pushes that ended without delivery, by provider and reason: gone (token expired or unregistered), failed (refused), exhausted (every attempt failed), dropped (queue full or shut down).',
      labelNames: ['provider', 'reason'],
      registers,
    });
    this.retriedTotal = new Counter({ name: 'parley_push_retried_total', help: 'Push attempts that failed and were scheduled again, by provider.', labelNames: ['provider'], registers });
    this.removedTotal = new Counter({ name: 'parley_push_tokens_removed_total', help: 'Subscriptions removed because the provider said their token or endpoint is gone.', labelNames: ['provider'], registers });
    this.notifications = new Counter({
      name: 'parley_push_notifications_total',
      help: 'Notifications decided (one per user, conversation and coalescing window), by route: push, fallback (no subscription), skipped (conversation too large, queue of windows full).',
      labelNames: ['route'],
      registers,
    });
    this.breakerOpen = new Gauge({ name: 'parley_push_breaker_open', help: '1 while a provider\'s circuit breaker is open or probing, else 0.', labelNames: ['provider'], registers });
    new Gauge({
      name: 'parley_push_queue_depth',
      help: 'Pushes and webhook batches this node holds: waiting, retrying or in flight.',
      registers,
      collect() {
        this.set(depth());
      },
    });
  }

  sent(channel: string): void {
    this.sentTotal.inc({ provider: channel });
  }

  retried(channel: string): void {
    this.retriedTotal.inc({ provider: channel });
  }

  failed(channel: string, result: Exclude<JobResult, 'sent'>): void {
    this.failedTotal.inc({ provider: channel, reason: result });
  }

  breaker(channel: string, state: BreakerState): void {
    this.breakerOpen.set({ provider: channel }, state === 'closed' ? 0 : 1);
  }
}
