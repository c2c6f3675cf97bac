/**
 * The key directory of end-to-end encryption (R18): each device publishes its
 * public keys once, anyone signed in reads them. The server never holds a
 * private key; it checks what it is given strictly, so a client cannot publish
 * something that no other client could use: both keys must be points of P-256
 * and the identity key must have signed the pair for this user and device.
 */
import type { Id } from '../protocol/model.js';
import { deviceKeysSignedText, E2E_SIZES, b64Length, type DeviceKeys } from '../protocol/e2e.js';
import type { Store } from './ports/store.js';
import type { MembershipCache } from './membership.js';
import { badRequest, conflict, notFound } from './errors.js';

export interface PublishKeys {
  identityKey: string;
  agreementKey: string;
  signature: string;
}

const B64URL = /^[A-Za-z0-9_-]+$/;

function bytesOf(field: string, value: string, size: number): Uint8Array<ArrayBuffer> {
  if (value.length !== b64Length(size) || !B64URL.test(value)) throw badRequest(`"${field}" must be ${size} bytes in base64url (no padding).`);
  const bytes = Buffer.from(value, 'base64url');
  // Re-encoding must give the same text: no stray bits in the last character.
  if (bytes.length !== size || bytes.toString('base64url') !== value) throw badRequest(`"${field}" must be ${size} bytes in base64url (no padding).`);
  return new Uint8Array(bytes);
}

async function importPoint(field: string, bytes: Uint8Array<ArrayBuffer>, algorithm: 'ECDSA' | 'ECDH'): Promise<CryptoKey> {
  // WebCrypto refuses a point that is not on the curve; a compressed point is refused by its length above.
  if (bytes[0] !== 0x04) throw badRequest(`"${field}" must be an uncompressed P-256 point (65 bytes starting with 0x04).`);
  try {
    return await crypto.subtle.importKey('raw', bytes, { name: algorithm, namedCurve: 'P-256' }, true, algorithm === 'ECDSA' ? ['verify'] : []);
  } catch {
    throw badRequest(`"${field}" is not a point of the P-256 curve.`);
  }
}

export class KeyService {
  constructor(
    private readonly store: Store,
    private readonly membership: MembershipCache,
  ) {}

  /** Publishes the calling device's keys; `created` false when it had published these very keys before. */
  async publish(userId: Id, deviceId: Id, body: PublishKeys): Promise<{ keys: DeviceKeys; created: boolean }> {
    const identity = bytesOf('identityKey', body.identityKey, E2E_SIZES.point);
    const agreement = bytesOf('agreementKey', body.agreementKey, E2E_SIZES.point);
    const signature = bytesOf('signature', body.signature, E2E_SIZES.signature);
    if (body.identityKey === body.agreementKey) throw badRequest('"identityKey" and "agreementKey" must be two different keys.');
    const verifier = await importPoint('identityKey', identity, 'ECDSA');
    await importPoint('agreementKey', agreement, 'ECDH');
    const signed = new TextEncoder().encode(deviceKeysSignedText({ userId, deviceId, identityKey: body.identityKey, agreementKey: body.agreementKey }));
    const valid = await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, verifier, signature, signed);
    if (!valid) throw badRequest('"signature" is not the identity key\'s signature of these keys for this user and device.');
    const keys: DeviceKeys = { userId, deviceId, ...body, createdAt: Date.now() };
    const outcome = await this.store.keys.put(keys);
    if (outcome === 'different') throw conflict('This device already published other keys; a device keeps its keys for its life (sign in again to get a new device).');
    if (outcome === 'created') return { keys, created: true };
    const [had] = (await this.store.keys.forUsers([userId])).filter((k) => k.deviceId === deviceId);
    return { keys: had ?? keys, created: false };
  }

  /** The public keys of a user's devices that are not revoked. */
  async ofUser(userId: Id): Promise<DeviceKeys[]> {
    if (!(await this.store.users.byId(userId))) throw notFound('No user has that id.');
    return this.store.keys.forUsers([userId]);
  }

  /** The public keys of every device of every member, for a member. */
  async ofConversation(actorId: Id, conversationId: Id): Promise<DeviceKeys[]> {
    await this.membership.require(conversationId, actorId);
    return this.store.keys.forConversation(conversationId);
  }
}
