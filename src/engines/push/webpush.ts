/**
 * Web Push (RFC 8030) with VAPID (RFC 8292) and an aes128gcm payload (RFC
 * 8291), for browsers. The `web-push` library encrypts and signs; the request
 * goes through http.ts, so the address check, the timeout and the answer's
 * reading are ours.
 *
 * Answers: 201 (or any 2xx) sent; 404 and 410 the subscription is gone
 * (expired, or the user revoked permission); 429 and 5xx retry, after
 * Retry-After when given; anything else (400 malformed, 401/403 a VAPID key
 * the service does not accept for this subscription, 413 too large) will not
 * pass by itself.
 */
import webpush from 'web-push';
import type { PushProvider, PushOutcome } from '../../core/ports/notifier.js';
import type { PushSubscriptionRecord } from '../../core/ports/store.js';
import type { PushNotification } from '../../protocol/push.js';
import { retryOutcome } from '../../core/push/backoff.js';
import { describeError, request } from './http.js';

export interface VapidKeys {
  publicKey: string;
  privateKey: string;
  subject: string;
}

export interface WebPushOptions {
  vapid: VapidKeys;
  timeoutMs: number;
  /** Let endpoints resolve to private addresses (tests with a local push service). */
  allowPrivate: boolean;
  /** How long the push service keeps an undelivered notification. @default 86400 */
  ttlSec?: number;
}

/** A Topic header value (RFC 8030 §5.4): at most 32 characters of the base64url alphabet. */
const TOPIC = /^[A-Za-z0-9_-]{1,32}$/;

/** A VAPID JWT lasts this long (RFC 8292 allows up to 24 h) and is reused for half of it. */
const VAPID_TTL_SEC = 12 * 3600;

export class WebPushProvider implements PushProvider {
  readonly kind = 'webpush';
  /**
   * The Authorization header per push service (the JWT's audience is its origin). Signing one costs ~1 ms of
   * the event loop (web-push converts the key with a JavaScript ASN.1 encoder each time): more than the
   * encryption, and the same for every push to that service for hours.
   */
  private readonly vapidHeaders = new Map<string, { value: string; renewAt: number }>();

  constructor(private readonly opts: WebPushOptions) {}

  private authorization(endpoint: string): string {
    const audience = new URL(endpoint).origin;
    const now = Date.now();
    const hit = this.vapidHeaders.get(audience);
    if (hit && now < hit.renewAt) return hit.value;
    const { publicKey, privateKey, subject } = this.opts.vapid;
    const value = webpush.getVapidHeaders(audience, subject, publicKey, privateKey, 'aes128gcm', Math.floor(now / 1000) + VAPID_TTL_SEC).Authorization;
    // Few push services exist (a handful of origins); the bound only guards against a flood of made-up ones.
    if (this.vapidHeaders.size >= 1000) this.vapidHeaders.clear();
    this.vapidHeaders.set(audience, { value, renewAt: now + (VAPID_TTL_SEC / 2) * 1000 });
    return value;
  }

  async send(target: PushSubscriptionRecord, notification: PushNotification): Promise<PushOutcome> {
    if (!target.p256dh || !target.auth) return { status: 'failed', reason: 'the subscription has no keys' };
    let details: webpush.RequestDetails;
    try {
      details = webpush.generateRequestDetails({ endpoint: target.address, keys: { p256dh: target.p256dh, auth: target.auth } }, JSON.stringify(notification), {
        headers: { Authorization: this.authorization(target.address) },
        TTL: this.opts.ttlSec ?? 86_400,
        urgency: 'high',
        contentEncoding: 'aes128gcm',
        // A newer notification of the same conversation replaces one the browser has not fetched yet.
        ...(TOPIC.test(notification.conversationId) ? { topic: notification.conversationId } : {}),
      });
    } catch (err) {
      return { status: 'failed', reason: `could not encrypt for this subscription: ${describeError(err)}` };
    }
    let res;
    try {
      res = await request(details.endpoint, {
        method: details.method,
        headers: details.headers as Record<string, string | number>,
        body: details.body ?? undefined,
        timeoutMs: this.opts.timeoutMs,
        publicOnly: !this.opts.allowPrivate,
      });
    } catch (err) {
      if ((err as { code?: string }).code === 'EPRIVATE') return { status: 'failed', reason: describeError(err) };
      return { status: 'retry', reason: describeError(err) };
    }
    if (res.status >= 200 && res.status < 300) return { status: 'sent' };
    const reason = `push service answered ${res.status}${res.body ? `: ${res.body.slice(0, 200)}` : ''}`;
    if (res.status === 404 || res.status === 410) return { status: 'gone', reason };
    if (res.status === 429 || res.status >= 500) {
      return retryOutcome(reason, res.headers['retry-after']);
    }
    return { status: 'failed', reason };
  }

  async close(): Promise<void> {}
}
