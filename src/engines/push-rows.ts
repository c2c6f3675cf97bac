/** Row shape of push_subscriptions, the same in both SQL engines (migration 7). */
import type { PushSubscriptionRecord } from '../core/ports/store.js';

export interface PushSubscriptionRow {
  id: string;
  user_id: string;
  device_id: string;
  kind: PushSubscriptionRecord['kind'];
  address: string;
  p256dh: string | null;
  auth: string | null;
  topic: string | null;
  created_at: number;
}

/** Optional fields are left out, not set to undefined, so records deep-equal what was stored. */
export function toPushSubscription(r: PushSubscriptionRow): PushSubscriptionRecord {
  const s: PushSubscriptionRecord = { id: r.id, userId: r.user_id, deviceId: r.device_id, kind: r.kind, address: r.address, createdAt: Number(r.created_at) };
  if (r.p256dh !== null) s.p256dh = r.p256dh;
  if (r.auth !== null) s.auth = r.auth;
  if (r.topic !== null) s.topic = r.topic;
  return s;
}

/** Columns of a subscription read through a join with devices (alias s). */
export const PUSH_COLUMNS = 's.id, s.user_id, s.device_id, s.kind, s.address, s.p256dh, s.auth, s.topic, s.created_at';
