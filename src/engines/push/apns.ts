/**
 * APNs over HTTP/2 with token authentication: an ES256 JWT (key id, team id)
 * signed with the .p8 key, reused for 50 minutes (Apple refuses tokens older
 * than an hour and throttles ones renewed more often than every 20 minutes).
 * One HTTP/2 session per node, reopened when it fails or the server sends
 * GOAWAY; requests are streams on it.
 *
 * Answers (https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns):
 * 200 sent; 410 (Unregistered, ExpiredToken) and 400 BadDeviceToken or
 * DeviceTokenNotForTopic: the token is gone; 403 ExpiredProviderToken or
 * InvalidProviderToken: a new JWT, then retry; 429 and 5xx retry; anything else
 * fails as is.
 */
import http2 from 'node:http2';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import type { PushProvider, PushOutcome } from '../../core/ports/notifier.js';
import type { PushSubscriptionRecord } from '../../core/ports/store.js';
import type { PushNotification } from '../../protocol/push.js';
import { retryOutcome } from '../../core/push/backoff.js';
import { describeError, jsonOf } from './http.js';

export interface ApnsOptions {
  /** https://api.push.apple.com, https://api.sandbox.push.apple.com; http:// speaks HTTP/2 without TLS (a local test server). */
  url: string;
  /** The .p8 key's PEM text. */
  keyPem: string;
  keyId: string;
  teamId: string;
  /** Bundle id for subscriptions that name none. */
  defaultTopic: string;
  timeoutMs: number;
}

const TOKEN_REUSE_MS = 50 * 60_000;
const GONE_REASONS = new Set(['BadDeviceToken', 'DeviceTokenNotForTopic', 'Unregistered', 'ExpiredToken']);
const STALE_JWT_REASONS = new Set(['ExpiredProviderToken', 'InvalidProviderToken']);

export class ApnsProvider implements PushProvider {
  readonly kind = 'apns';
  private readonly key: KeyObject;
  private session: http2.ClientHttp2Session | undefined;
  private jwt: { token: string; at: number } | undefined;

  constructor(private readonly opts: ApnsOptions) {
    this.key = createPrivateKey(opts.keyPem);
    if (this.key.asymmetricKeyType !== 'ec') throw new Error('the APNs key must be an EC (P-256) private key, as Apple issues them (.p8)');
  }

  private async token(): Promise<string> {
    const now = Date.now();
    if (this.jwt && now - this.jwt.at < TOKEN_REUSE_MS) return this.jwt.token;
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: this.opts.keyId }).setIssuer(this.opts.teamId).setIssuedAt(Math.floor(now / 1000)).sign(this.key);
    this.jwt = { token, at: now };
    return token;
  }

  private connect(): http2.ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const session = http2.connect(this.opts.url);
    session.on('error', () => undefined); // reported to the streams in flight; the next send reconnects
    session.on('goaway', () => session.close());
    session.on('close', () => {
      if (this.session === session) this.session = undefined;
    });
    session.unref();
    this.session = session;
    return session;
  }

  async send(target: PushSubscriptionRecord, n: PushNotification): Promise<PushOutcome> {
    const topic = target.topic ?? this.opts.defaultTopic;
    if (!topic) return { status: 'failed', reason: 'no APNs topic for this subscription' };
    const payload = JSON.stringify({
      aps: { alert: { title: n.title, body: n.body ?? (n.count > 1 ? `${n.count} new messages` : 'New message') }, 'thread-id': n.conversationId, sound: 'default', 'mutable-content': 1 },
      parley: n,
    });
    let answer: { status: number; body: string; headers: http2.IncomingHttpHeaders };
    try {
      answer = await this.post(target.address, topic, n.conversationId, payload);
    } catch (err) {
      return { status: 'retry', reason: describeError(err) };
    }
    if (answer.status === 200) return { status: 'sent' };
    const reasonCode = (jsonOf(answer.body) as { reason?: unknown } | undefined)?.reason;
    const reason = `APNs answered ${answer.status}${typeof reasonCode === 'string' ? ` ${reasonCode}` : ''}`;
    if (answer.status === 410 || (typeof reasonCode === 'string' && GONE_REASONS.has(reasonCode))) return { status: 'gone', reason };
    if (answer.status === 403 && typeof reasonCode === 'string' && STALE_JWT_REASONS.has(reasonCode)) {
      this.jwt = undefined;
      return { status: 'retry', reason };
    }
    if (answer.status === 429 || answer.status >= 500) {
      return retryOutcome(reason, answer.headers['retry-after']);
    }
    return { status: 'failed', reason };
  }

  private async post(deviceToken: string, topic: string, collapseId: string, payload: string): Promise<{ status: number; body: string; headers: http2.IncomingHttpHeaders }> {
    const jwt = await this.token();
    const session = this.connect();
    return new Promise((resolve, reject) => {
      const stream = session.request({
        ':method': 'POST',
        ':path': `/3/device/${deviceToken}`,
        authorization: `bearer ${jwt}`,
        'apns-topic': topic,
        'apns-push-type': 'alert',
        'apns-priority': '10',
        'apns-expiration': String(Math.floor(Date.now() / 1000) + 86_400),
        // A newer notification of the conversation replaces the shown one (at most 64 bytes).
        ...(Buffer.byteLength(collapseId) <= 64 ? { 'apns-collapse-id': collapseId } : {}),
        'content-type': 'application/json',
      });
      const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), this.opts.timeoutMs);
      let headers: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      stream.on('response', (h) => {
        headers = h;
      });
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('close', () => {
        clearTimeout(timer);
        const status = Number(headers[':status'] ?? 0);
        if (status === 0) reject(new Error(stream.rstCode === http2.constants.NGHTTP2_CANCEL ? `no answer within ${this.opts.timeoutMs} ms` : 'the APNs stream closed without an answer'));
        else resolve({ status, body: Buffer.concat(chunks).toString('utf8'), headers });
      });
      stream.on('error', () => undefined); // followed by close, which decides
      stream.end(payload);
    });
  }

  async close(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s && !s.closed) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
