/**
 * The fallback webhook (R12): notifications no push delivered, POSTed as JSON
 * in batches to PARLEY_PUSH_WEBHOOK_URL, for an e-mail digest or any other
 * route the operator runs.
 *
 * Signed like Stripe's: `X-Parley-Signature: t=<ms>,v1=<hex HMAC-SHA256 of
 * "<t>.<body>" with PARLEY_PUSH_WEBHOOK_SECRET>`; a receiver recomputes it and
 * refuses old timestamps. `X-Parley-Delivery` is the same on every retry of a
 * batch, so a receiver can drop a repeat. 2xx is delivered; 408, 429 and 5xx
 * are retried; anything else fails.
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { FallbackItem, FallbackSink, PushOutcome } from '../../core/ports/notifier.js';
import { retryOutcome } from '../../core/push/backoff.js';
import { describeError, request } from './http.js';

export interface WebhookOptions {
  url: string;
  secret: string;
  timeoutMs: number;
}

/** The signature header's value for a body sent at `t` (ms). */
export function webhookSignature(secret: string, t: number, body: string): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

export class WebhookSink implements FallbackSink {
  /** Delivery ids of the batches being tried, so retries of one batch carry the same id. */
  private readonly ids = new WeakMap<readonly FallbackItem[], string>();

  constructor(private readonly opts: WebhookOptions) {}

  async deliver(items: readonly FallbackItem[]): Promise<PushOutcome> {
    let id = this.ids.get(items);
    if (!id) {
      id = randomUUID();
      this.ids.set(items, id);
    }
    const t = Date.now();
    const body = JSON.stringify({ type: 'parley.push.undelivered', id, sentAt: t, notifications: items });
    let res;
    try {
      res = await request(this.opts.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'parley-push-webhook',
          'x-parley-delivery': id,
          'x-parley-signature': webhookSignature(this.opts.secret, t, body),
        },
        body,
        timeoutMs: this.opts.timeoutMs,
      });
    } catch (err) {
      return { status: 'retry', reason: describeError(err) };
    }
    if (res.status >= 200 && res.status < 300) return { status: 'sent' };
    const reason = `webhook answered ${res.status}`;
    if (res.status === 408 || res.status === 429 || res.status >= 500) {
      return retryOutcome(reason, res.headers['retry-after']);
    }
    return { status: 'failed', reason };
  }

  async close(): Promise<void> {}
}
