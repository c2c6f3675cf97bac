/**
 * Extension (R12): push notifications. What a client registers, what it reads
 * back, and what a notification carries (the web app's service worker and
 * native apps read the same object). Browser-safe.
 */
import { Type } from '@sinclair/typebox';
import type { Id, Millis } from './model.js';
import { IdStr, LookupText } from './fields.js';

export type PushKind = 'webpush' | 'apns' | 'fcm';
export const PUSH_KINDS: readonly PushKind[] = ['webpush', 'apns', 'fcm'];

/** Lengths the schema allows; the core checks each value's shape (docs/protocol.md "Push notifications"). */
export const PUSH_LIMITS = { endpoint: 2048, token: 4096, topic: 255 } as const;

/** POST /v1/push/subscriptions. A browser's `PushSubscription.toJSON()` plus `kind: "webpush"` is a valid body. */
export const PushSubscriptionBody = Type.Union([
  Type.Object({
    kind: Type.Literal('webpush'),
    endpoint: Type.String({ minLength: 1, maxLength: PUSH_LIMITS.endpoint }),
    keys: Type.Object({ p256dh: Type.String({ maxLength: 256 }), auth: Type.String({ maxLength: 256 }) }),
    /** As the browser gives it; not used (the push service tells when a subscription ends). */
    expirationTime: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
  }),
  Type.Object({
    kind: Type.Literal('apns'),
    token: Type.String({ minLength: 1, maxLength: PUSH_LIMITS.token }),
    topic: Type.Optional(Type.String({ minLength: 1, maxLength: PUSH_LIMITS.topic })),
  }),
  Type.Object({ kind: Type.Literal('fcm'), token: Type.String({ minLength: 1, maxLength: PUSH_LIMITS.token }) }),
]);

export const PushSubscriptionsQuery = Type.Object({ after: Type.Optional(LookupText({ maxLength: 64 })), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })) });
export const PushSubscriptionParams = Type.Object({ id: IdStr });

export type PushSubscriptionInput =
  | { kind: 'webpush'; endpoint: string; keys: { p256dh: string; auth: string }; expirationTime?: number | null }
  | { kind: 'apns'; token: string; topic?: string }
  | { kind: 'fcm'; token: string };

/** A subscription as its owner reads it. */
export interface PushSubscription {
  id: Id;
  kind: PushKind;
  /** The device (session) it belongs to; it goes when that session is revoked or logs out. */
  deviceId: Id;
  /** True for the subscriptions of the device making the request. */
  current: boolean;
  createdAt: Millis;
  /** Web Push. */
  endpoint?: string;
  /** APNs and FCM. */
  token?: string;
  /** APNs, when given. */
  topic?: string;
}

/** The body of a notification, as the service worker (`event.data.json()`) and native apps receive it. */
export interface PushNotification {
  type: 'message';
  conversationId: Id;
  /** The newest message the notification stands for. */
  messageId: Id;
  seq: number;
  /** The group's title, or the sender's display name in a direct conversation. */
  title: string;
  /**
   * A short preview of the newest message ("Alice: see you at 8" in a group).
   * Absent when the server withholds it (see core/push/preview.ts): show a
   * generic text then.
   */
  body?: string;
  senderId: Id;
  senderName: string;
  /** Messages this notification stands for (several sent within the coalescing window). */
  count: number;
  /** When the newest message was sent. */
  at: Millis;
}

/** GET /v1/push/vapid. */
export interface PushVapidInfo {
  /** The server's VAPID public key, base64url: `applicationServerKey` for `PushManager.subscribe`. */
  publicKey: string;
  /** The kinds this server can deliver; registering another is refused. */
  kinds: PushKind[];
}
