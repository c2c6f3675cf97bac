/**
 * Notifier port (R12): the providers that carry a notification to a device
 * with no live connection (Web Push, APNs, FCM), and the fallback that hears
 * of users no push reached (a webhook). The queue, retries, circuit breakers
 * and the choice of whom to notify are the core's (core/push/); a provider only
 * makes one attempt and says how it went.
 *
 * Contract:
 * - `send` never throws for what happens on the network: it resolves with an
 *   outcome. A throw is treated as `retry`.
 * - `gone` means the provider said the token or endpoint will never work again
 *   (expired, unregistered, not this app's): the core removes the subscription.
 * - `retry` is a failure that may pass (5xx, 429, a timeout, a refused
 *   connection), with the provider's Retry-After when it gave one. Only these
 *   count against the provider's circuit breaker.
 * - `failed` will fail the same way again (a payload or credentials the
 *   provider refuses); the core does not retry it.
 * - One attempt is bounded by the provider's own timeout.
 */
import type { Id } from '../../protocol/model.js';
import type { PushKind, PushNotification } from '../../protocol/push.js';
import type { PushSubscriptionRecord } from './store.js';

export type PushOutcome =
  | { status: 'sent' }
  | { status: 'gone'; reason: string }
  | { status: 'retry'; reason: string; retryAfterMs?: number }
  | { status: 'failed'; reason: string };

export interface PushProvider {
  readonly kind: PushKind;
  send(target: PushSubscriptionRecord, notification: PushNotification): Promise<PushOutcome>;
  close(): Promise<void>;
}

/** One user's notification that no push delivered: they have no subscription, or every push to them failed for good. */
export interface FallbackItem {
  userId: Id;
  reason: 'no_subscription' | 'push_failed';
  notification: PushNotification;
}

/** Where undelivered notifications go, in batches (e-mail digests are built from them downstream). */
export interface FallbackSink {
  deliver(items: readonly FallbackItem[]): Promise<PushOutcome>;
  close(): Promise<void>;
}

/** What the composition root hands the core: the providers configured, the fallback if any, the VAPID public key. */
export interface NotifierEngines {
  providers: Partial<Record<PushKind, PushProvider>>;
  fallback?: FallbackSink;
  vapidPublicKey: string;
}
