/**
 * The Notifier port's engines from the configuration (core/ports/notifier.ts):
 * Web Push always (it needs only a VAPID key pair), APNs and FCM when their
 * credentials are set, the webhook fallback when its URL is. The same on one
 * node or many: providers are remote services, and the VAPID pair is in the
 * store (or the settings), so every node signs with the same one.
 */
import { readFileSync } from 'node:fs';
import webpush from 'web-push';
import type { Config } from '../../config.js';
import type { NotifierEngines } from '../../core/ports/notifier.js';
import type { Store } from '../../core/ports/store.js';
import { decodeBase64url } from '../../core/push/validate.js';
import { WebPushProvider, type VapidKeys } from './webpush.js';
import { ApnsProvider } from './apns.js';
import { FcmProvider, parseServiceAccount } from './fcm.js';
import { WebhookSink } from './webhook.js';

/** The name of the VAPID pair in the store's server secrets. */
const VAPID_SECRET = 'vapid';

function vapidSubject(config: Config): string {
  if (config.vapidSubject) return config.vapidSubject;
  if (config.publicUrl.startsWith('https://')) return new URL(config.publicUrl).origin;
  return 'mailto:push@parley.invalid';
}

/** The VAPID pair: from the settings, or generated once and kept in the store (the first node's wins). */
export async function resolveVapid(config: Config, store: Store): Promise<VapidKeys> {
  let pair: { publicKey: string; privateKey: string };
  if (config.vapidPublicKey || config.vapidPrivateKey) {
    pair = { publicKey: config.vapidPublicKey, privateKey: config.vapidPrivateKey };
  } else {
    const stored = await store.push.ensureSecret(VAPID_SECRET, JSON.stringify(webpush.generateVAPIDKeys()));
    pair = JSON.parse(stored) as { publicKey: string; privateKey: string };
  }
  if (decodeBase64url(pair.publicKey)?.length !== 65) throw new Error('PARLEY_VAPID_PUBLIC_KEY must be a P-256 public key: 65 bytes, base64url');
  if (decodeBase64url(pair.privateKey)?.length !== 32) throw new Error('PARLEY_VAPID_PRIVATE_KEY must be a P-256 private key: 32 bytes, base64url');
  const subject = vapidSubject(config);
  if (!/^(mailto:|https:\/\/)/.test(subject)) throw new Error('PARLEY_VAPID_SUBJECT must be a mailto: or https: URL');
  return { ...pair, subject };
}

export async function openNotifierEngines(config: Config, store: Store): Promise<NotifierEngines> {
  const vapid = await resolveVapid(config, store);
  const timeoutMs = config.pushTimeoutMs;
  const engines: NotifierEngines = {
    vapidPublicKey: vapid.publicKey,
    providers: { webpush: new WebPushProvider({ vapid, timeoutMs, allowPrivate: config.pushAllowPrivateEndpoints === true }) },
  };
  const apns = [config.apnsKeyFile, config.apnsKeyId, config.apnsTeamId];
  if (apns.some(Boolean)) {
    if (!apns.every(Boolean)) throw new Error('APNs needs PARLEY_APNS_KEY_FILE, PARLEY_APNS_KEY_ID and PARLEY_APNS_TEAM_ID together');
    engines.providers.apns = new ApnsProvider({
      url: config.apnsUrl,
      keyPem: readFileSync(config.apnsKeyFile, 'utf8'),
      keyId: config.apnsKeyId,
      teamId: config.apnsTeamId,
      defaultTopic: config.apnsTopic,
      timeoutMs,
    });
  }
  if (config.fcmCredentialsFile) {
    engines.providers.fcm = new FcmProvider({ credentials: parseServiceAccount(readFileSync(config.fcmCredentialsFile, 'utf8')), url: config.fcmUrl, timeoutMs });
  }
  if (config.pushWebhookUrl) {
    if (!config.pushWebhookSecret) throw new Error('PARLEY_PUSH_WEBHOOK_URL needs PARLEY_PUSH_WEBHOOK_SECRET to sign what it sends');
    engines.fallback = new WebhookSink({ url: config.pushWebhookUrl, secret: config.pushWebhookSecret, timeoutMs });
  }
  return engines;
}
