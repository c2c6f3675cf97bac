/**
 * Files in end-to-end encrypted conversations (R14 × R18), on WebCrypto only
 * (the browser's, or Node 20's global `crypto`), so the same code runs in both.
 *
 * - Sending: a file gets a fresh AES-256-GCM key and IV; its ciphertext is
 *   uploaded as an opaque upload (`?encrypted=1`); the key, IV, the plain
 *   file's SHA-256 and what the file is (name, type, size, pixels) go in the
 *   message's envelope (protocol/e2e.ts EnvelopeFile), encrypted and signed
 *   with the body.
 * - Reading: the envelope's entries must name exactly the encrypted uploads
 *   the message carries, in order, each upload's size the plain size plus the
 *   tag; the app then sees the envelope's name, type and size with the key
 *   (`Attachment.e2e`), and `decryptFile` checks both the GCM tag and the hash.
 *
 * A fresh key per file is what makes a swapped id fail: another upload's bytes
 * do not decrypt under this file's key. WebCrypto has no streaming AES-GCM, so
 * a file is held in memory whole while it is encrypted or decrypted (uploads
 * are bounded by the server's size limit, 25 MiB by default).
 */
import { E2E_SIZES, FILE_AAD, MAX_FILE_TYPE_CHARS, parseEnvelopeFiles, type E2eFileKey, type EnvelopeFile } from '../../protocol/e2e.js';
import { fileName } from '../../protocol/file-name.js';
import { mediaTypeOf } from '../../protocol/media-types.js';
import type { Attachment, Id } from '../../protocol/model.js';
import { b64url, unb64url } from './crypto.js';

type Bytes = Uint8Array<ArrayBuffer>;

const subtle = (): SubtleCrypto => {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error('WebCrypto is not available (a browser on http:// other than localhost, or Node before 20)');
  return s;
};

const aad = (): Bytes => new TextEncoder().encode(FILE_AAD);

/** Why an encrypted file could not be read. */
export type FileFailure = 'tampered' | 'wrong-file' | 'no-key';

export class E2eFileError extends Error {
  constructor(
    readonly reason: FileFailure,
    message: string,
  ) {
    super(message);
    this.name = 'E2eFileError';
  }
}

/** The bytes to upload and what reads them again. */
export interface SealedFile {
  ciphertext: Bytes;
  key: E2eFileKey;
}

export async function encryptFile(plain: Uint8Array): Promise<SealedFile> {
  const s = subtle();
  const bytes = new Uint8Array(plain);
  const key = await s.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt']);
  const iv = crypto.getRandomValues(new Uint8Array(E2E_SIZES.iv));
  const [ct, raw, hash] = await Promise.all([
    s.encrypt({ name: 'AES-GCM', iv, additionalData: aad() }, key, bytes),
    s.exportKey('raw', key),
    s.digest('SHA-256', bytes),
  ]);
  return { ciphertext: new Uint8Array(ct), key: { key: b64url(raw), iv: b64url(iv), sha256: b64url(hash) } };
}

/**
 * The plain bytes of a downloaded ciphertext; throws E2eFileError when the
 * GCM tag fails (the bytes were changed, or they are another file's) or the
 * hash of what decrypts is not the one the envelope gave.
 */
export async function decryptFile(ciphertext: ArrayBuffer | Uint8Array, k: E2eFileKey): Promise<Bytes> {
  const s = subtle();
  let plain: ArrayBuffer;
  try {
    const key = await s.importKey('raw', unb64url(k.key), { name: 'AES-GCM', length: 256 }, false, ['decrypt']);
    plain = await s.decrypt({ name: 'AES-GCM', iv: unb64url(k.iv), additionalData: aad() }, key, new Uint8Array(ciphertext));
  } catch {
    throw new E2eFileError('tampered', 'The file does not decrypt: its bytes were changed on the way, or they are not those of this file.');
  }
  const hash = b64url(await s.digest('SHA-256', plain));
  if (hash !== k.sha256) throw new E2eFileError('wrong-file', 'The decrypted file is not the one the message names (its SHA-256 differs).');
  return new Uint8Array(plain);
}

/** What a sender says of a file, checked and cleaned as a reader will read it. */
export interface FileFacts {
  name: string | undefined;
  type: string | undefined;
  width?: number | undefined;
  height?: number | undefined;
}

/** The type a file is told as: its media type when it has one, application/octet-stream otherwise. */
export function fileType(type: string | undefined): string {
  const t = mediaTypeOf(type);
  return t !== undefined && t.length <= MAX_FILE_TYPE_CHARS ? t : 'application/octet-stream';
}

/** The attachment the sender's app holds for an encrypted upload: what the file is, and its key. */
export function sealedAttachment(id: Id, size: number, facts: FileFacts, key: E2eFileKey): Attachment {
  const a: Attachment = { id, type: fileType(facts.type), name: fileName(facts.name), size, encrypted: true, e2e: { ...key } };
  if (isPixels(facts.width) && isPixels(facts.height)) {
    a.width = facts.width;
    a.height = facts.height;
  }
  return a;
}

const isPixels = (n: number | undefined): n is number => n !== undefined && Number.isInteger(n) && n > 0 && n <= 1_000_000;

/** The envelope entries of a message's attachments; throws when one has no key (it was not uploaded encrypted). */
export function envelopeFiles(attachments: readonly Attachment[]): EnvelopeFile[] {
  return attachments.map((a) => {
    if (!a.e2e) throw new E2eFileError('no-key', `The attachment ${a.name} was not encrypted: upload it again for this conversation.`);
    const f: EnvelopeFile = { id: a.id, key: a.e2e.key, iv: a.e2e.iv, sha256: a.e2e.sha256, name: a.name, type: a.type, size: a.size };
    if (a.width !== undefined && a.height !== undefined) {
      f.width = a.width;
      f.height = a.height;
    }
    return f;
  });
}

/**
 * The attachments of a decrypted edit, whose event does not carry the
 * message's references to match them against (the next read of the message
 * from history does, openedAttachments): undefined when it names none,
 * 'mismatch' when an entry is malformed.
 */
export function editedAttachments(files: unknown): Attachment[] | undefined | 'mismatch' {
  const parsed = parseEnvelopeFiles(files);
  if ('error' in parsed) return 'mismatch';
  return parsed.files?.map((f) => sealedAttachment(f.id, f.size, f, { key: f.key, iv: f.iv, sha256: f.sha256 }));
}

/**
 * The attachments an app sees of a decrypted message: the envelope's entries
 * (`files`, as the payload held them) when they name exactly the message's
 * references (`refs`, as the server sent them), in order, each an encrypted
 * upload of the plain size plus the tag; undefined when there are none;
 * 'mismatch' when they do not match (the server swapped, dropped or added
 * one, or an entry is malformed), which makes the message unreadable.
 */
export function openedAttachments(files: unknown, refs: readonly Attachment[] | undefined): Attachment[] | undefined | 'mismatch' {
  const parsed = parseEnvelopeFiles(files);
  if ('error' in parsed) return 'mismatch';
  const list = parsed.files ?? [];
  const server = refs ?? [];
  if (list.length !== server.length) return 'mismatch';
  for (let i = 0; i < list.length; i++) {
    const f = list[i] as EnvelopeFile;
    const r = server[i] as Attachment;
    if (f.id !== r.id || r.encrypted !== true || r.size !== f.size + E2E_SIZES.tag) return 'mismatch';
  }
  if (list.length === 0) return undefined;
  return list.map((f) => sealedAttachment(f.id, f.size, f, { key: f.key, iv: f.iv, sha256: f.sha256 }));
}
