/**
 * The cryptography of end-to-end encryption (R18), on WebCrypto only (the
 * browser's, or Node 20's global `crypto`), so the same code runs in both.
 * Stateless: keys come in, envelopes and payloads go out. Formats and signed
 * texts: protocol/e2e.ts; the scheme: docs/protocol.md "End-to-end encryption".
 *
 * - A device has an identity key pair (ECDSA P-256), which signs, and an
 *   agreement key pair (ECDH P-256).
 * - Two devices agree on a wrapping key: HKDF-SHA-256 over their ECDH secret,
 *   with both device ids in `info` (ordered, so both sides derive the same).
 *   It is derived once per pair of devices and kept in memory.
 * - A message gets a fresh AES-256-GCM key and IV; the key is wrapped (AES-KW)
 *   for each recipient device under the pair's wrapping key; the sender
 *   device signs the whole (the header, the ciphertext and every wrapped key),
 *   so no recipient can reuse the message key to forge another message.
 */
import {
  E2E_SIZES,
  deviceKeysSignedText,
  envelopeAad,
  envelopeSignedText,
  formatEnvelope,
  type DeviceKeys,
  type Envelope,
  type EnvelopeHeader,
  type EnvelopePayload,
} from '../../protocol/e2e.js';
import type { Id } from '../../protocol/model.js';

const subtle = (): SubtleCrypto => {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error('WebCrypto is not available (a browser on http:// other than localhost, or Node before 20)');
  return s;
};

const ECDSA = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const ECDH = { name: 'ECDH', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const HKDF_SALT = new TextEncoder().encode('parley-e2e/1/wrap');

type Bytes = Uint8Array<ArrayBuffer>;

export function b64url(bytes: ArrayBuffer | Uint8Array): string {
  const u = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let bin = '';
  for (let i = 0; i < u.length; i++) bin += String.fromCharCode(u[i] as number);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function unb64url(s: string): Bytes {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const utf8 = (s: string): Bytes => new TextEncoder().encode(s);

/** A device's two key pairs. Private keys are non-extractable where the store can keep CryptoKeys (IndexedDB). */
export interface DeviceKeyPairs {
  identity: CryptoKeyPair;
  agreement: CryptoKeyPair;
}

export async function generateDeviceKeys(extractable: boolean): Promise<DeviceKeyPairs> {
  const s = subtle();
  const [identity, agreement] = await Promise.all([
    s.generateKey(ECDSA, extractable, ['sign', 'verify']),
    s.generateKey(ECDH, extractable, ['deriveBits']),
  ]);
  return { identity, agreement };
}

/** The private keys as JWK, for a store that holds only JSON (Node's file store). */
export interface DeviceKeysJwk {
  identity: JsonWebKey;
  agreement: JsonWebKey;
}

export async function exportDeviceKeys(k: DeviceKeyPairs): Promise<DeviceKeysJwk> {
  const s = subtle();
  return { identity: await s.exportKey('jwk', k.identity.privateKey), agreement: await s.exportKey('jwk', k.agreement.privateKey) };
}

export async function importDeviceKeys(j: DeviceKeysJwk): Promise<DeviceKeyPairs> {
  const s = subtle();
  const pub = (k: JsonWebKey): JsonWebKey => ({ kty: k.kty, crv: k.crv, x: k.x, y: k.y, ext: true });
  return {
    identity: {
      privateKey: await s.importKey('jwk', j.identity, ECDSA, true, ['sign']),
      publicKey: await s.importKey('jwk', pub(j.identity), ECDSA, true, ['verify']),
    },
    agreement: {
      privateKey: await s.importKey('jwk', j.agreement, ECDH, true, ['deriveBits']),
      publicKey: await s.importKey('jwk', pub(j.agreement), ECDH, true, []),
    },
  };
}

/** What a device publishes (PUT /v1/keys): both public keys, signed by the identity key for this user and device. */
export async function publicDeviceKeys(k: DeviceKeyPairs, userId: Id, deviceId: Id): Promise<{ identityKey: string; agreementKey: string; signature: string }> {
  const s = subtle();
  const identityKey = b64url(await s.exportKey('raw', k.identity.publicKey));
  const agreementKey = b64url(await s.exportKey('raw', k.agreement.publicKey));
  const signature = b64url(await s.sign(SIGN, k.identity.privateKey, utf8(deviceKeysSignedText({ userId, deviceId, identityKey, agreementKey }))));
  return { identityKey, agreementKey, signature };
}

export function importIdentityKey(identityKey: string): Promise<CryptoKey> {
  return subtle().importKey('raw', unb64url(identityKey), ECDSA, false, ['verify']);
}

/** True when the published keys are what their identity key signed for that user and device. */
export async function verifyDeviceKeys(k: DeviceKeys): Promise<boolean> {
  try {
    const key = await importIdentityKey(k.identityKey);
    return await subtle().verify(SIGN, key, unb64url(k.signature), utf8(deviceKeysSignedText(k)));
  } catch {
    return false;
  }
}

/** The wrapping key two devices share (either side derives the same one). */
export async function wrappingKey(myAgreement: CryptoKey, myDeviceId: Id, theirAgreementKey: string, theirDeviceId: Id): Promise<CryptoKey> {
  const s = subtle();
  const theirs = await s.importKey('raw', unb64url(theirAgreementKey), ECDH, false, []);
  const secret = await s.deriveBits({ name: 'ECDH', public: theirs }, myAgreement, 256);
  const ikm = await s.importKey('raw', secret, 'HKDF', false, ['deriveKey']);
  const pair = [myDeviceId, theirDeviceId].sort();
  return s.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: HKDF_SALT, info: utf8(JSON.stringify(pair)) },
    ikm,
    { name: 'AES-KW', length: 256 },
    false,
    ['wrapKey', 'unwrapKey'],
  );
}

/** Encrypts a payload for the given devices (each with the wrapping key this device shares with it) and signs it. */
export async function sealEnvelope(
  header: EnvelopeHeader,
  payload: EnvelopePayload,
  recipients: ReadonlyMap<Id, CryptoKey>,
  signingKey: CryptoKey,
): Promise<string> {
  const s = subtle();
  const messageKey = await s.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt']);
  const iv = crypto.getRandomValues(new Uint8Array(E2E_SIZES.iv));
  const ct = b64url(await s.encrypt({ name: 'AES-GCM', iv, additionalData: utf8(envelopeAad(header)) }, messageKey, utf8(JSON.stringify(payload))));
  const keys: Record<Id, string> = {};
  await Promise.all(
    [...recipients].map(async ([deviceId, kek]) => {
      keys[deviceId] = b64url(await s.wrapKey('raw', messageKey, kek, 'AES-KW'));
    }),
  );
  const body = { iv: b64url(iv), ct, keys };
  const sig = b64url(await s.sign(SIGN, signingKey, utf8(envelopeSignedText(header, body))));
  return formatEnvelope({ sd: header.senderDevice, ...body, sig });
}

export class EnvelopeError extends Error {
  constructor(readonly reason: 'not-for-this-device' | 'bad-signature' | 'malformed' | 'failed') {
    super(reason);
    this.name = 'EnvelopeError';
  }
}

/**
 * Verifies the sender device's signature, unwraps the message key this
 * device's entry holds, and decrypts. Throws EnvelopeError.
 */
export async function openEnvelope(
  header: EnvelopeHeader,
  envelope: Envelope,
  myDeviceId: Id,
  senderIdentity: CryptoKey,
  kek: CryptoKey,
): Promise<EnvelopePayload> {
  const s = subtle();
  const wrapped = envelope.keys[myDeviceId];
  if (wrapped === undefined) throw new EnvelopeError('not-for-this-device');
  const signed = await s.verify(SIGN, senderIdentity, unb64url(envelope.sig), utf8(envelopeSignedText(header, envelope))).catch(() => false);
  if (!signed) throw new EnvelopeError('bad-signature');
  let plain: ArrayBuffer;
  try {
    const messageKey = await s.unwrapKey('raw', unb64url(wrapped), kek, 'AES-KW', { name: 'AES-GCM', length: 256 }, false, ['decrypt']);
    plain = await s.decrypt({ name: 'AES-GCM', iv: unb64url(envelope.iv), additionalData: utf8(envelopeAad(header)) }, messageKey, unb64url(envelope.ct));
  } catch {
    throw new EnvelopeError('failed');
  }
  let payload: unknown;
  try {
    payload = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plain));
  } catch {
    throw new EnvelopeError('malformed');
  }
  if (typeof payload !== 'object' || payload === null || typeof (payload as EnvelopePayload).body !== 'string') throw new EnvelopeError('malformed');
  return payload as EnvelopePayload;
}

/**
 * A number two people can read to each other to check that each one's app
 * holds the other's real keys (no one in between): 12 groups of 5 digits, the
 * first six from one user's device identity keys, the last six from the
 * other's, in a fixed order, so both see the same number. It changes when
 * either adds or removes a device.
 */
export async function safetyNumber(a: { userId: Id; identityKeys: string[] }, b: { userId: Id; identityKeys: string[] }): Promise<string> {
  const half = async (u: { userId: Id; identityKeys: string[] }): Promise<string[]> => {
    let data = utf8(JSON.stringify(['parley-e2e/1/safety', u.userId, [...u.identityKeys].sort()]));
    // Iterated, as Signal does, so that finding keys with a chosen number costs more.
    for (let i = 0; i < 1024; i++) data = new Uint8Array(await subtle().digest('SHA-256', data));
    const groups: string[] = [];
    for (let i = 0; i < 30; i += 5) {
      let n = 0;
      for (let j = 0; j < 5; j++) n = n * 256 + (data[i + j] as number);
      groups.push(String(n % 100000).padStart(5, '0'));
    }
    return groups;
  };
  const [first, second] = a.userId < b.userId ? [a, b] : [b, a];
  return [...(await half(first)), ...(await half(second))].join(' ');
}
