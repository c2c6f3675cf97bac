/**
 * End-to-end encryption (R18): the wire format of an encrypted message body
 * and of a device's public keys, and the exact bytes that are signed. Shared by
 * the server, which checks the shape of what it stores and routes (it can read
 * nothing else), and the SDK, which encrypts, signs, verifies and decrypts
 * (src/client/e2e/). Browser-safe: no Node imports, no crypto here.
 *
 * Keys are P-256 points, uncompressed (65 bytes, 0x04 || X || Y); every binary
 * field is base64url without padding. docs/protocol.md "End-to-end encryption
 * (extension)" describes the scheme and its limits.
 */
import type { Id, Millis } from './model.js';

export const E2E_VERSION = 1;

/** Every envelope starts with these characters (its first member is `"e2e":1`), so a reader can tell one cheaply. */
export const ENVELOPE_PREFIX = '{"e2e":1,';

/** Devices one envelope may carry a key for: every active device of every member, the sender's own included. */
export const MAX_ENVELOPE_DEVICES = 1000;

/** A member limit for encrypted groups: each message carries a wrapped key per device, so it grows with the group. */
export const MAX_ENCRYPTED_MEMBERS = 200;

/**
 * An encrypted message body, as sent in `body` (JSON text starting with
 * ENVELOPE_PREFIX). `ct` is AES-256-GCM of the payload under a fresh message
 * key; `keys` holds that key wrapped (AES-KW, RFC 3394) for each recipient
 * device under the key the sender's and the recipient's devices agree on
 * (ECDH P-256, then HKDF-SHA-256); `sig` is the sender device's ECDSA P-256
 * signature (SHA-256, r || s) over `envelopeSignedText`.
 */
export interface Envelope {
  e2e: 1;
  /** Sender device id: the device whose keys sign and wrap. */
  sd: Id;
  /** 12 bytes. */
  iv: string;
  /** Ciphertext with its 16-byte GCM tag. */
  ct: string;
  /** Recipient device id → the message key wrapped for it (40 bytes). */
  keys: Record<Id, string>;
  /** 64 bytes. */
  sig: string;
}

/** What the ciphertext holds once decrypted: JSON, so later versions can add fields. */
export interface EnvelopePayload {
  body: string;
  /**
   * The message's attachments (R14 × R18), in the order the message carries
   * them: for each, the encrypted upload's id, its key, and what the file
   * really is. Absent when it has none. Signed with the rest.
   */
  files?: EnvelopeFile[];
}

/**
 * What reads an encrypted file: its bytes on the server are AES-256-GCM of
 * the plain file under `key` and `iv` (additional data FILE_AAD), and
 * `sha256` is the plain file's hash, checked after decrypting.
 */
export interface E2eFileKey {
  /** 32 bytes, base64url. */
  key: string;
  /** 12 bytes, base64url. */
  iv: string;
  /** 32 bytes, base64url. */
  sha256: string;
}

/** One attachment as an envelope's payload tells it. */
export interface EnvelopeFile extends E2eFileKey {
  /** The encrypted upload's id (`POST /v1/attachments?encrypted=1`). */
  id: Id;
  /** The real file name (protocol/file-name.ts rules). */
  name: string;
  /** The real media type. */
  type: string;
  /** Bytes of the plain file (the upload is E2E_SIZES.tag more). */
  size: number;
  /** Images: pixels, when the sender measured them. */
  width?: number;
  height?: number;
}

/** Additional authenticated data of a file's encryption: says what the bytes are for, nothing more (the id comes after). */
export const FILE_AAD = 'parley-e2e/1/file';

/** Longest media type a file entry may give, in characters. */
export const MAX_FILE_TYPE_CHARS = 127;

/**
 * Ciphertext bytes one file entry may add to a payload: the JSON of the
 * fields above at their longest (a 255-character name of 4-byte characters is
 * 1,020 bytes, the keys and hash 102, an id 64, a type 127, the numbers and
 * the JSON around them the rest). The server allows this much more ciphertext
 * per attachment of a message (core/envelopes.ts).
 */
export const MAX_FILE_ENTRY_BYTES = 1536;

/** A device's public keys as the server publishes them (GET /v1/users/:id/keys). */
export interface DeviceKeys {
  userId: Id;
  deviceId: Id;
  /** ECDSA P-256 public key: signs the device's envelopes and its own agreement key. */
  identityKey: string;
  /** ECDH P-256 public key: what others agree message-key wrapping keys with. */
  agreementKey: string;
  /** The identity key's signature over `deviceKeysSignedText`. */
  signature: string;
  createdAt: Millis;
}

/** Byte sizes of the fixed-size fields. */
export const E2E_SIZES = { point: 65, iv: 12, wrappedKey: 40, signature: 64, tag: 16 } as const;

const B64URL = /^[A-Za-z0-9_-]*$/;

/** Characters of base64url without padding for `bytes` bytes. */
export const b64Length = (bytes: number): number => Math.ceil((bytes * 4) / 3);

/** Bytes a base64url text without padding decodes to; undefined when it is not one. */
export function b64Bytes(s: string): number | undefined {
  if (!B64URL.test(s) || s.length % 4 === 1) return undefined;
  return Math.floor((s.length * 3) / 4);
}

function isExactB64(s: unknown, bytes: number): s is string {
  return typeof s === 'string' && s.length === b64Length(bytes) && b64Bytes(s) === bytes;
}

const isId = (s: unknown): s is string => typeof s === 'string' && s.length >= 1 && s.length <= 64 && !s.includes('\u0000');

/** True when `body` has an envelope's first characters; cheap, and says nothing about the rest. */
export const looksLikeEnvelope = (body: string): boolean => body.startsWith(ENVELOPE_PREFIX);

/**
 * Reads an envelope strictly: exactly the fields above, each of its type and
 * size. Returns the reason in one sentence when it is not one.
 */
export function parseEnvelope(body: string): { envelope: Envelope } | { error: string } {
  if (!looksLikeEnvelope(body)) return { error: 'it does not start with {"e2e":1,' };
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return { error: 'it is not valid JSON' };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { error: 'it is not a JSON object' };
  const o = v as Record<string, unknown>;
  const fields = Object.keys(o).sort().join(',');
  if (fields !== 'ct,e2e,iv,keys,sd,sig') return { error: 'it must have exactly the fields e2e, sd, iv, ct, keys and sig' };
  if (o['e2e'] !== E2E_VERSION) return { error: `"e2e" must be ${E2E_VERSION}` };
  if (!isId(o['sd'])) return { error: '"sd" must be a device id' };
  if (!isExactB64(o['iv'], E2E_SIZES.iv)) return { error: `"iv" must be ${E2E_SIZES.iv} bytes in base64url` };
  const ct = o['ct'];
  const ctBytes = typeof ct === 'string' ? b64Bytes(ct) : undefined;
  if (ctBytes === undefined || ctBytes <= E2E_SIZES.tag) return { error: '"ct" must be a ciphertext with its tag, in base64url' };
  if (!isExactB64(o['sig'], E2E_SIZES.signature)) return { error: `"sig" must be ${E2E_SIZES.signature} bytes in base64url` };
  const keys = o['keys'];
  if (typeof keys !== 'object' || keys === null || Array.isArray(keys)) return { error: '"keys" must be an object of device id → wrapped key' };
  const entries = Object.entries(keys as Record<string, unknown>);
  if (entries.length === 0 || entries.length > MAX_ENVELOPE_DEVICES) return { error: `"keys" must name 1 to ${MAX_ENVELOPE_DEVICES} devices` };
  for (const [d, k] of entries) {
    if (!isId(d)) return { error: 'every key of "keys" must be a device id' };
    if (!isExactB64(k, E2E_SIZES.wrappedKey)) return { error: `every wrapped key must be ${E2E_SIZES.wrappedKey} bytes in base64url` };
  }
  return { envelope: o as unknown as Envelope };
}

const isDim = (v: unknown): boolean => v === undefined || (typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 1_000_000);

/**
 * Reads a payload's `files` strictly (the SDK, after decrypting): undefined
 * when absent, an error sentence when any entry is not of the shape above.
 * Names are checked for length only; the reader applies fileName's rules.
 */
export function parseEnvelopeFiles(v: unknown): { files: EnvelopeFile[] | undefined } | { error: string } {
  if (v === undefined) return { files: undefined };
  if (!Array.isArray(v) || v.length === 0) return { error: '"files" must be a non-empty list' };
  const ids = new Set<string>();
  for (const f of v as unknown[]) {
    if (typeof f !== 'object' || f === null || Array.isArray(f)) return { error: 'every file must be an object' };
    const o = f as Record<string, unknown>;
    if (!isId(o['id']) || ids.has(o['id'])) return { error: 'every file needs an id of its own' };
    ids.add(o['id']);
    if (!isExactB64(o['key'], 32) || !isExactB64(o['iv'], E2E_SIZES.iv) || !isExactB64(o['sha256'], 32)) return { error: 'a file key, iv or hash is not of its size' };
    if (typeof o['name'] !== 'string' || o['name'].length === 0 || o['name'].length > 2 * 255) return { error: 'a file name is missing or too long' };
    if (typeof o['type'] !== 'string' || o['type'].length === 0 || o['type'].length > MAX_FILE_TYPE_CHARS) return { error: 'a file type is missing or too long' };
    if (typeof o['size'] !== 'number' || !Number.isSafeInteger(o['size']) || o['size'] < 0) return { error: 'a file size is not a byte count' };
    if (!isDim(o['width']) || !isDim(o['height']) || (o['width'] === undefined) !== (o['height'] === undefined)) return { error: 'a file width or height is not a pixel count' };
  }
  return { files: v as EnvelopeFile[] };
}

/** Bytes of a ciphertext field (the server bounds it by the plain-text limit). */
export const ciphertextBytes = (e: Envelope): number => b64Bytes(e.ct) ?? 0;

/** Serialises an envelope with `e2e` first, as ENVELOPE_PREFIX requires. */
export function formatEnvelope(e: Omit<Envelope, 'e2e'>): string {
  return JSON.stringify({ e2e: E2E_VERSION, sd: e.sd, iv: e.iv, ct: e.ct, keys: e.keys, sig: e.sig });
}

/**
 * What an envelope is for: the message it creates (by the sender's clientId,
 * known before the server gives the message an id) or the message it edits.
 * Bound into the signature and the AEAD, so the server cannot move a body to
 * another message, conversation or sender.
 */
export type EnvelopeContext = { kind: 'send'; clientId: string } | { kind: 'edit'; messageId: Id };

const contextText = (c: EnvelopeContext): string => (c.kind === 'send' ? `send:${c.clientId}` : `edit:${c.messageId}`);

/** Where an envelope belongs: conversation, sending user and device, and context. */
export interface EnvelopeHeader {
  conversationId: Id;
  senderId: Id;
  senderDevice: Id;
  context: EnvelopeContext;
}

/** Additional authenticated data of the AES-GCM encryption. */
export function envelopeAad(h: EnvelopeHeader): string {
  return JSON.stringify(['parley-e2e/1/aad', h.conversationId, h.senderId, h.senderDevice, contextText(h.context)]);
}

/** The text the sender device signs: the header, the ciphertext and every wrapped key (by device id). */
export function envelopeSignedText(h: EnvelopeHeader, e: Pick<Envelope, 'iv' | 'ct' | 'keys'>): string {
  const keys = Object.keys(e.keys)
    .sort()
    .map((d) => [d, e.keys[d]]);
  return JSON.stringify(['parley-e2e/1/msg', h.conversationId, h.senderId, h.senderDevice, contextText(h.context), e.iv, e.ct, keys]);
}

/**
 * The text a device's identity key signs to publish its keys: binds both keys
 * to the user and the device, so the server cannot hand them out as another's.
 */
export function deviceKeysSignedText(k: Pick<DeviceKeys, 'userId' | 'deviceId' | 'identityKey' | 'agreementKey'>): string {
  return JSON.stringify(['parley-e2e/1/device', k.userId, k.deviceId, k.identityKey, k.agreementKey]);
}

/** How an app learns what the SDK made of an encrypted body (never sent by a server). */
export interface E2eStatus {
  /** True when the body was decrypted and its signature verified. */
  ok: boolean;
  /** The sending device, when known. */
  deviceId?: Id;
  /**
   * Why it could not be read: 'not-for-this-device', 'unknown-device',
   * 'bad-signature', 'malformed', 'failed', or 'wrong-attachments' (the files
   * the message carries are not those its envelope names: swapped, dropped or
   * added on the way).
   */
  reason?: E2eFailure;
}

export type E2eFailure = 'not-for-this-device' | 'unknown-device' | 'bad-signature' | 'malformed' | 'failed' | 'wrong-attachments';
