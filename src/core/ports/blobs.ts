/**
 * Blobs port (R14): immutable files by key, for attachments and their
 * thumbnails. The metadata (who uploaded what, its type, who may read it) is
 * the store's; a blob store only keeps bytes.
 *
 * Contract shared by every engine:
 * - `put` is all or nothing: a reader sees the whole blob or none, never a
 *   part, even when the writer crashes or the stream fails midway. Resolving
 *   means durable. A put over an existing key replaces it (callers never do:
 *   keys are ids, and blobs are immutable).
 * - `get` and `head` of a key never put (or deleted) give `undefined`.
 * - `delete` of a missing key succeeds.
 * - Keys are 1–512 characters of `A-Z a-z 0-9 . _ -` in segments separated by
 *   `/`; no segment is `.` or `..`. Anything else is refused (`BlobKeyError`).
 * - Any other failure (disk, network, the remote store's refusal) rejects
 *   with a plain Error, which the core reports as `unavailable`.
 */
import type { Readable } from 'node:stream';

/** Bytes `start` to `end` of a blob, both included (as in an HTTP Range). */
export interface ByteRange {
  start: number;
  end: number;
}

export interface BlobRead {
  /** The bytes asked for: the whole blob, or the range. */
  body: Readable;
  /** Size of the whole blob, whatever was asked. */
  size: number;
}

export interface PutInfo {
  /** Exactly how many bytes `body` yields; a different count fails the put and stores nothing. */
  size: number;
  contentType: string;
  /** SHA-256 of the bytes, lower-case hex, when the caller knows it: an engine that can have it checked does. */
  sha256?: string;
}

export interface Blobs {
  /** Which engine, for logs: `local` or `s3`. */
  readonly kind: string;
  put(key: string, body: Readable, info: PutInfo): Promise<void>;
  /** With `range`, only those bytes; the caller keeps it within the blob (0 ≤ start ≤ end < size). */
  get(key: string, range?: ByteRange): Promise<BlobRead | undefined>;
  head(key: string): Promise<{ size: number } | undefined>;
  delete(key: string): Promise<void>;
  /** Releases connections and handles; in-flight calls may fail afterwards. */
  close(): Promise<void>;
}

export class BlobKeyError extends Error {
  constructor(key: string) {
    super(`not a valid blob key: ${JSON.stringify(key.slice(0, 80))}`);
    this.name = 'BlobKeyError';
  }
}

const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Throws BlobKeyError unless `key` follows the port's rules; engines call it first. */
export function checkBlobKey(key: string): void {
  if (key.length === 0 || key.length > 512) throw new BlobKeyError(key);
  for (const seg of key.split('/')) {
    if (!SEGMENT.test(seg) || seg === '.' || seg === '..') throw new BlobKeyError(key);
  }
}
