/**
 * A device's push subscriptions (R12): register, list, remove. A subscription
 * belongs to the device of the access token that registered it, and goes when
 * that session is revoked or logs out (the store removes it with the device).
 */
import type { Id } from '../../protocol/model.js';
import type { PushKind, PushSubscription, PushSubscriptionInput } from '../../protocol/push.js';
import type { PushSubscriptionRecord, Store } from '../ports/store.js';
import type { IdGenerator } from '../ids.js';
import type { RateLimits } from '../limits.js';
import { badRequest, conflict, notFound } from '../errors.js';
import { checkSubscription } from './validate.js';

/** Subscriptions one device may hold: a browser profile has one, an app one per provider; more is a client bug. */
export const MAX_PER_DEVICE = 10;

export interface PushSubscriptionPage {
  subscriptions: PushSubscription[];
  next: string | null;
}

const NAMES: Record<PushKind, string> = { webpush: 'Web Push', apns: 'APNs', fcm: 'FCM' };

export function toView(r: PushSubscriptionRecord, currentDeviceId: Id): PushSubscription {
  const v: PushSubscription = { id: r.id, kind: r.kind, deviceId: r.deviceId, current: r.deviceId === currentDeviceId, createdAt: r.createdAt };
  if (r.kind === 'webpush') v.endpoint = r.address;
  else v.token = r.address;
  if (r.topic !== undefined) v.topic = r.topic;
  return v;
}

export class PushSubscriptionService {
  constructor(
    private readonly store: Store,
    private readonly ids: IdGenerator,
    private readonly limits: RateLimits,
    /** The kinds this server can deliver; APNs needs a topic from the subscription or the server. */
    private readonly deliverable: { kinds: ReadonlySet<PushKind>; apnsDefaultTopic: string },
    private readonly allowPrivateEndpoints: boolean,
  ) {}

  get kinds(): PushKind[] {
    return [...this.deliverable.kinds];
  }

  /** Registers for the caller's device; the same address again is the same subscription (200, not 201). */
  async register(userId: Id, deviceId: Id, input: PushSubscriptionInput): Promise<{ subscription: PushSubscription; created: boolean }> {
    if (!this.deliverable.kinds.has(input.kind)) {
      throw badRequest(`This server does not deliver ${NAMES[input.kind]} notifications (it has no ${NAMES[input.kind]} credentials configured).`);
    }
    const checked = checkSubscription(input, this.allowPrivateEndpoints);
    if (checked.kind === 'apns' && checked.topic === undefined && !this.deliverable.apnsDefaultTopic) {
      throw badRequest('This server has no default APNs topic: give the app\'s bundle id as "topic".');
    }
    await this.limits.write(userId);
    if ((await this.store.push.countForDevice(deviceId)) >= MAX_PER_DEVICE) {
      const mine = await this.store.push.listForUser(userId, 100);
      if (!mine.some((s) => s.deviceId === deviceId && s.kind === checked.kind && s.address === checked.address)) {
        throw conflict(`This device already has ${MAX_PER_DEVICE} push subscriptions; remove one first.`);
      }
    }
    const { subscription, created } = await this.store.push.put({ id: this.ids.next(), userId, deviceId, createdAt: Date.now(), ...checked });
    return { subscription: toView(subscription, deviceId), created };
  }

  /** The user's subscriptions on every device, by id, a keyset page at a time. */
  async list(userId: Id, deviceId: Id, limit: number, after?: string): Promise<PushSubscriptionPage> {
    const rows = await this.store.push.listForUser(userId, limit + 1, after);
    const page = rows.slice(0, limit);
    return { subscriptions: page.map((r) => toView(r, deviceId)), next: rows.length > limit ? (page[page.length - 1]?.id ?? null) : null };
  }

  /** Removes one of the user's subscriptions (any of their devices'); someone else's is not found. */
  async remove(userId: Id, id: Id): Promise<void> {
    const sub = await this.store.push.get(id);
    if (!sub || sub.userId !== userId) throw notFound('No push subscription of yours has that id.');
    await this.store.push.remove(id);
  }
}
