/**
 * Checks of what a device registers for push (R12), each failure one sentence
 * for a 400. The Web Push endpoint is a URL the server will POST to on the
 * user's word, so it must be https and must not name this network (loopback,
 * private, link-local addresses): the provider checks the resolved address
 * again at send time (engines/push/http.ts).
 */
import { createPublicKey } from 'node:crypto';
import { isIP } from 'node:net';
import type { PushSubscriptionInput } from '../../protocol/push.js';
import { badRequest } from '../errors.js';

const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;
const APNS_TOKEN = /^[0-9a-fA-F]{64,200}$/;
const APNS_TOPIC = /^[A-Za-z0-9][A-Za-z0-9.-]{0,254}$/;
const FCM_TOKEN = /^[A-Za-z0-9_:-]{32,4096}$/;

/** What a subscription stores, once checked. */
export interface CheckedSubscription {
  kind: PushSubscriptionInput['kind'];
  address: string;
  p256dh?: string;
  auth?: string;
  topic?: string;
}

export function decodeBase64url(s: string): Buffer | undefined {
  if (!BASE64URL.test(s)) return undefined;
  return Buffer.from(s.replace(/=+$/, ''), 'base64url');
}

/** True for addresses of this host or its private networks (IPv4 and IPv6, mapped IPv4 included). */
export function isPrivateAddress(ip: string): boolean {
  const v = isIP(ip);
  if (v === 4) {
    const [a = 0, b = 0] = ip.split('.').map(Number);
    return (
      a === 0 || a === 10 || a === 127 || (a === 100 && b >= 64 && b <= 127) || (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 198 && (b === 18 || b === 19)) || a >= 224
    );
  }
  if (v === 6) {
    const x = ip.toLowerCase();
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(x);
    if (mapped) return isPrivateAddress(mapped[1]!);
    return x === '::' || x === '::1' || /^f[cd]/.test(x) || /^fe[89ab]/.test(x) || /^ff/.test(x);
  }
  return false;
}

function checkEndpoint(raw: string, allowPrivate: boolean): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw badRequest('The Web Push endpoint must be an absolute URL.');
  }
  if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) throw badRequest('The Web Push endpoint must be an https URL.');
  if (url.username || url.password) throw badRequest('The Web Push endpoint must not carry a user name or password.');
  if (url.hash) throw badRequest('The Web Push endpoint must not have a #fragment.');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!allowPrivate && (host === 'localhost' || host.endsWith('.localhost') || isPrivateAddress(host))) {
    throw badRequest('The Web Push endpoint must be a public push service, not a local or private address.');
  }
  return url.href;
}

function checkP256dh(s: string): string {
  const bytes = decodeBase64url(s);
  if (!bytes || bytes.length !== 65 || bytes[0] !== 0x04) {
    throw badRequest('keys.p256dh must be an uncompressed P-256 public key: 65 bytes, base64url.');
  }
  try {
    createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: bytes.subarray(1, 33).toString('base64url'), y: bytes.subarray(33).toString('base64url') }, format: 'jwk' });
  } catch {
    throw badRequest('keys.p256dh is not a point on the P-256 curve.');
  }
  return bytes.toString('base64url');
}

function checkAuth(s: string): string {
  const bytes = decodeBase64url(s);
  if (!bytes || bytes.length !== 16) throw badRequest('keys.auth must be a 16-byte secret, base64url.');
  return bytes.toString('base64url');
}

export function checkSubscription(input: PushSubscriptionInput, allowPrivate: boolean): CheckedSubscription {
  switch (input.kind) {
    case 'webpush':
      return { kind: 'webpush', address: checkEndpoint(input.endpoint, allowPrivate), p256dh: checkP256dh(input.keys.p256dh), auth: checkAuth(input.keys.auth) };
    case 'apns': {
      if (!APNS_TOKEN.test(input.token) || input.token.length % 2 !== 0) {
        throw badRequest('An APNs device token must be hexadecimal: an even number of 64 to 200 digits.');
      }
      if (input.topic !== undefined && !APNS_TOPIC.test(input.topic)) {
        throw badRequest('The APNs topic must be a bundle id: letters, digits, dots and hyphens.');
      }
      return { kind: 'apns', address: input.token.toLowerCase(), ...(input.topic === undefined ? {} : { topic: input.topic }) };
    }
    case 'fcm':
      if (!FCM_TOKEN.test(input.token)) throw badRequest('An FCM registration token must be 32 or more characters of A-Z a-z 0-9 _ : -.');
      return { kind: 'fcm', address: input.token };
  }
}
