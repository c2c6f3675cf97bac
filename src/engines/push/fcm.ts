/**
 * Firebase Cloud Messaging, HTTP v1 API. The service account's key signs an
 * RS256 JWT that its token_uri exchanges for an OAuth access token (scope
 * firebase.messaging), kept until a minute before it expires; one exchange at
 * a time, shared by the sends waiting for it.
 *
 * Answers (https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode):
 * 200 sent; 404 or UNREGISTERED, and SENDER_ID_MISMATCH (a token of another
 * project): gone; 401 a new access token, then retry; 429 (QUOTA_EXCEEDED) and
 * 5xx (UNAVAILABLE, INTERNAL) retry, after Retry-After when given;
 * INVALID_ARGUMENT and the rest fail as is.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import type { PushProvider, PushOutcome } from '../../core/ports/notifier.js';
import type { PushSubscriptionRecord } from '../../core/ports/store.js';
import type { PushNotification } from '../../protocol/push.js';
import { retryOutcome } from '../../core/push/backoff.js';
import { describeError, jsonOf, request } from './http.js';

/** The fields of a Google service-account JSON file that are used. */
export interface ServiceAccount {
  project_id: string;
  client_email: string;
  private_key: string;
  token_uri: string;
}

export interface FcmOptions {
  credentials: ServiceAccount;
  /** https://fcm.googleapis.com */
  url: string;
  timeoutMs: number;
}

const SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
const GONE_CODES = new Set(['UNREGISTERED', 'SENDER_ID_MISMATCH']);

export function parseServiceAccount(text: string): ServiceAccount {
  const j = jsonOf(text) as Partial<ServiceAccount> | undefined;
  for (const k of ['project_id', 'client_email', 'private_key', 'token_uri'] as const) {
    if (!j || typeof j[k] !== 'string' || j[k] === '') throw new Error(`the FCM service-account file has no "${k}"`);
  }
  return j as ServiceAccount;
}

/** The FcmError code of an error answer, when it has one. */
function fcmErrorCode(body: string): string | undefined {
  const err = (jsonOf(body) as { error?: { status?: unknown; details?: { errorCode?: unknown }[] } } | undefined)?.error;
  const detail = err?.details?.find((d) => typeof d.errorCode === 'string')?.errorCode;
  if (typeof detail === 'string') return detail;
  return typeof err?.status === 'string' ? err.status : undefined;
}

export class FcmProvider implements PushProvider {
  readonly kind = 'fcm';
  private readonly key: KeyObject;
  private access: { token: string; until: number } | undefined;
  private fetching: Promise<string> | undefined;

  constructor(private readonly opts: FcmOptions) {
    this.key = createPrivateKey(opts.credentials.private_key);
  }

  private accessToken(): Promise<string> {
    if (this.access && Date.now() < this.access.until) return Promise.resolve(this.access.token);
    this.fetching ??= this.exchange().finally(() => {
      this.fetching = undefined;
    });
    return this.fetching;
  }

  private async exchange(): Promise<string> {
    const { client_email, token_uri } = this.opts.credentials;
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({ scope: SCOPE })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
      .setIssuer(client_email)
      .setAudience(token_uri)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(this.key);
    const res = await request(token_uri, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString(),
      timeoutMs: this.opts.timeoutMs,
    });
    const j = jsonOf(res.body) as { access_token?: unknown; expires_in?: unknown } | undefined;
    if (res.status !== 200 || typeof j?.access_token !== 'string') throw new Error(`the OAuth token exchange answered ${res.status}: ${res.body.slice(0, 200)}`);
    const ttl = typeof j.expires_in === 'number' ? j.expires_in : 3600;
    this.access = { token: j.access_token, until: Date.now() + Math.max(0, ttl - 60) * 1000 };
    return j.access_token;
  }

  async send(target: PushSubscriptionRecord, n: PushNotification): Promise<PushOutcome> {
    const body = JSON.stringify({
      message: {
        token: target.address,
        notification: { title: n.title, body: n.body ?? (n.count > 1 ? `${n.count} new messages` : 'New message') },
        // Data values must be strings: the whole notification, for the app to route a tap.
        data: { parley: JSON.stringify(n) },
        android: { priority: 'HIGH', collapse_key: n.conversationId, notification: { tag: n.conversationId } },
        apns: { headers: { 'apns-collapse-id': n.conversationId } },
      },
    });
    let res;
    try {
      const token = await this.accessToken();
      res = await request(`${this.opts.url.replace(/\/+$/, '')}/v1/projects/${encodeURIComponent(this.opts.credentials.project_id)}/messages:send`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json; charset=utf-8' },
        body,
        timeoutMs: this.opts.timeoutMs,
      });
    } catch (err) {
      return { status: 'retry', reason: describeError(err) };
    }
    if (res.status === 200) return { status: 'sent' };
    const code = fcmErrorCode(res.body);
    const reason = `FCM answered ${res.status}${code ? ` ${code}` : ''}`;
    if (res.status === 404 || (code !== undefined && GONE_CODES.has(code))) return { status: 'gone', reason };
    if (res.status === 401) {
      this.access = undefined;
      return { status: 'retry', reason };
    }
    if (res.status === 429 || res.status >= 500) {
      return retryOutcome(reason, res.headers['retry-after']);
    }
    return { status: 'failed', reason };
  }

  async close(): Promise<void> {}
}
