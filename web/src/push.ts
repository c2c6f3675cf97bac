/**
 * Web Push in the browser (R12): the service worker (/sw.js) and this
 * device's subscription. Enabling asks for permission, subscribes through
 * PushManager with the server's VAPID key and registers the subscription
 * with the server; it belongs to this session and ends with it.
 */
import type { ParleyClient, PushSubscription as ServerSubscription } from '../../src/client/index.js';

export type PushState = 'unsupported' | 'denied' | 'off' | 'on';

export function pushSupported(): boolean {
  return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
}

let registration: Promise<ServiceWorkerRegistration> | undefined;

/** Registers /sw.js once per page; clicks on notifications then open their conversation here. */
export function serviceWorker(): Promise<ServiceWorkerRegistration> | undefined {
  if (!('serviceWorker' in navigator)) return undefined;
  if (!registration) {
    navigator.serviceWorker.addEventListener('message', (e: MessageEvent) => {
      const d = e.data as { type?: unknown; conversationId?: unknown } | undefined;
      if (d?.type === 'parley.open' && typeof d.conversationId === 'string') location.hash = `#/c/${encodeURIComponent(d.conversationId)}`;
    });
    registration = navigator.serviceWorker.register('/sw.js', { scope: '/' }).then(() => navigator.serviceWorker.ready);
    registration.catch(() => {
      registration = undefined;
    });
  }
  return registration;
}

function mine(subs: ServerSubscription[], endpoint: string | undefined): ServerSubscription | undefined {
  return subs.find((s) => s.current && s.kind === 'webpush' && s.endpoint === endpoint);
}

/** Whether this device gets notifications now; registers the browser's subscription again if the server lost it. */
export async function pushState(client: ParleyClient): Promise<PushState> {
  if (!pushSupported()) return 'unsupported';
  if (Notification.permission === 'denied') return 'denied';
  const reg = await serviceWorker();
  const sub = await reg?.pushManager.getSubscription();
  if (!sub) return 'off';
  return mine(await client.pushSubscriptions(), sub.endpoint) ? 'on' : 'off';
}

function keyBytes(base64url: string): Uint8Array<ArrayBuffer> {
  const b64 = base64url.replace(/-/g, '+').replace(/_/g, '/');
  const raw = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(new ArrayBuffer(raw.length));
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

/** Turns notifications on for this device. Throws an Error whose message is for the user. */
export async function enablePush(client: ParleyClient): Promise<void> {
  if (!pushSupported()) throw new Error('This browser cannot receive push notifications.');
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') throw new Error('Notifications are blocked for this site. Allow them in the browser’s site settings, then try again.');
  const reg = await serviceWorker();
  if (!reg) throw new Error('The notification service worker could not start.');
  const { publicKey } = await client.pushVapid();
  let sub = await reg.pushManager.getSubscription();
  // A subscription made with another server key cannot be used: replace it.
  const wanted = keyBytes(publicKey);
  const current = sub?.options.applicationServerKey;
  if (sub && current && !sameBytes(new Uint8Array(current), wanted)) {
    await sub.unsubscribe();
    sub = null;
  }
  if (!sub) {
    try {
      sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: wanted });
    } catch (err) {
      const why = err instanceof Error && err.message ? ` (${err.message})` : '';
      throw new Error(`This browser could not reach its push service, so notifications cannot be turned on${why}.`, { cause: err });
    }
  }
  const json = sub.toJSON() as { endpoint?: string; keys?: { p256dh?: string; auth?: string } };
  if (!json.endpoint || !json.keys?.p256dh || !json.keys.auth) throw new Error('The browser gave an incomplete push subscription.');
  await client.registerPush({ kind: 'webpush', endpoint: json.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth } });
}

/** Turns notifications off for this device: on the server first, then in the browser. */
export async function disablePush(client: ParleyClient): Promise<void> {
  const reg = await serviceWorker();
  const sub = await reg?.pushManager.getSubscription();
  const found = mine(await client.pushSubscriptions(), sub?.endpoint);
  if (found) await client.unregisterPush(found.id);
  await sub?.unsubscribe();
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
