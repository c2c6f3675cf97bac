/**
 * Attachments (R14): uploads into the blob store, the references messages
 * carry, who may read a file, and the sweeper that deletes what nothing
 * references any more.
 *
 * An upload is received into a temp file first (spool.ts: counted against
 * the size limit as it arrives, hashed, never held in memory), then checked
 * (the type against PARLEY_ATTACHMENT_TYPES; an image decoded whole, measured
 * and thumbnailed, and stripped of EXIF/XMP/IPTC: images.ts), then put to the
 * blob store and recorded. The temp file is what lets a plain S3 PUT carry its
 * Content-Length, lets an image be checked before anything is stored, and
 * keeps half an upload out of the blob store.
 *
 * Blob keys: `a/<id>` for the file as served, `t/<id>` for an image's
 * thumbnail (WebP).
 *
 * Encrypted uploads (R18, `encrypted` in the request): the bytes are the
 * ciphertext of a file the SDK encrypted for an end-to-end encrypted
 * conversation, so there is nothing to check but the size: no type (it is
 * application/octet-stream, whatever the server's type list says, since the
 * server cannot tell what the file is), no name, no image decoding, no
 * thumbnail. They may be attached only in encrypted conversations, and only
 * they may be attached there (forMessage).
 *
 * Sweeper: every node, every PARLEY_ATTACHMENT_SWEEP_MS, deletes the uploads
 * nothing has referenced for PARLEY_ATTACHMENT_GRACE_MS (never attached, or
 * every message that carried them deleted or cleared by retention): first the
 * record, which the store refuses if a message took it meanwhile, then the
 * blobs. A crash between the two leaves blobs no record names, which nothing
 * serves.
 */
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Attachment, Id, Millis, UploadedAttachment } from '../protocol/model.js';
import { MAX_ATTACHMENTS } from '../protocol/fields.js';
import type { AttachmentRecord, Store } from './ports/store.js';
import type { BlobRead, Blobs, ByteRange } from './ports/blobs.js';
import type { IdGenerator } from './ids.js';
import type { RateLimits } from './limits.js';
import { badRequest, notFound, ParleyError, tooLarge } from './errors.js';
import { claimsDecodedImage, mediaTypeOf, type TypePolicy } from '../protocol/media-types.js';
import { inspectImage, type ImageFacts } from './images.js';
import { spool } from './spool.js';
import { fileName } from '../protocol/file-name.js';

export interface AttachmentOptions {
  /** Largest file, in bytes. */
  maxBytes: number;
  types: TypePolicy;
  /** Folder for uploads on their way in (the node's own disk). */
  spoolDir: string;
  /** How long an upload may stay unreferenced before the sweeper deletes it. */
  graceMs: number;
  /** How often the sweeper runs; 0 never (sweepOnce still works). */
  sweepMs: number;
}

export interface UploadRequest {
  /** The Content-Type header as sent. */
  contentType: string | undefined;
  /** The file name as sent, folders and all. */
  name: string | undefined;
  /** The Content-Length header, when the client sent one. */
  length: number | undefined;
  body: Readable;
  /** Ciphertext for an end-to-end encrypted conversation: stored opaque. */
  encrypted?: boolean;
}

/** What an encrypted upload is stored and served as: nothing about the file it hides. */
export const OPAQUE_TYPE = 'application/octet-stream';
export const OPAQUE_NAME = 'file';

export const originalKey = (id: Id): string => `a/${id}`;
export const thumbnailKey = (id: Id): string => `t/${id}`;

/** Records removed per store call of a sweep. */
const SWEEP_PAGE = 100;

/** 26214400 → "25 MiB". */
export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${+(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${+(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

/** What a message carries of an upload. */
export function reference(r: AttachmentRecord): Attachment {
  const a: Attachment = { id: r.id, type: r.type, name: r.name, size: r.size };
  if (r.width !== undefined && r.height !== undefined) {
    a.width = r.width;
    a.height = r.height;
  }
  if (r.thumbnail) a.thumbnail = { ...r.thumbnail };
  if (r.encrypted) a.encrypted = true;
  return a;
}

export class AttachmentService {
  private readonly timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<number> | undefined;
  private spoolReady: Promise<unknown> | undefined;

  constructor(
    private readonly store: Store,
    private readonly blobs: Blobs,
    private readonly ids: IdGenerator,
    private readonly limits: RateLimits,
    readonly opts: AttachmentOptions,
    private readonly hooks: { onError(err: unknown): void },
  ) {
    if (opts.sweepMs > 0) this.timer = setInterval(() => void this.sweepOnce().catch(hooks.onError), opts.sweepMs).unref();
  }

  /** Receives, checks and stores a file; the caller may attach it to messages by its id. */
  async upload(userId: Id, req: UploadRequest): Promise<UploadedAttachment> {
    const type = req.encrypted ? opaqueType(req) : mediaTypeOf(req.contentType);
    if (!type) throw badRequest("Send the file's media type as the Content-Type header, such as image/png.");
    if (!req.encrypted && !this.opts.types.allows(type)) throw badRequest(`Files of type ${type} cannot be attached on this server.`);
    const max = this.opts.maxBytes;
    const tooBig = `The file is larger than the ${formatBytes(max)} this server accepts.`;
    if (req.length !== undefined && req.length > max) throw tooLarge(tooBig);
    await this.limits.write(userId);
    this.spoolReady ??= prepareSpool(this.opts.spoolDir);
    await this.spoolReady;
    const file = await spool(req.body, this.opts.spoolDir, max, tooBig);
    const temps = [file.path];
    try {
      if (file.size === 0) throw badRequest('The file is empty.');
      let stored = { path: file.path, size: file.size, sha256: file.sha256, type };
      let image: ImageFacts | undefined;
      if (!req.encrypted && claimsDecodedImage(type)) {
        image = await inspectImage(file.path, type, `${file.path}.stripped`);
        if (!this.opts.types.allows(image.type)) throw badRequest(`The file is ${image.type}, which cannot be attached on this server.`);
        if (image.stripped) temps.push(image.stripped.path);
        stored = { ...(image.stripped ?? stored), type: image.type };
      }
      const record: AttachmentRecord = {
        id: this.ids.next(),
        uploaderId: userId,
        type: stored.type,
        name: req.encrypted ? OPAQUE_NAME : fileName(req.name),
        size: stored.size,
        sha256: stored.sha256,
        createdAt: Date.now(),
      };
      if (req.encrypted) record.encrypted = true;
      if (image) {
        record.width = image.width;
        record.height = image.height;
        record.thumbnail = { width: image.thumbnail.width, height: image.thumbnail.height };
      }
      await this.keep(record, stored.path, image?.thumbnail.data);
      return { ...reference(record), createdAt: record.createdAt };
    } finally {
      await Promise.all(temps.map((p) => rm(p, { force: true })));
    }
  }

  /** Blobs first, then the record; a failure leaves neither. */
  private async keep(record: AttachmentRecord, path: string, thumbnail: Buffer | undefined): Promise<void> {
    try {
      await this.blobs.put(originalKey(record.id), createReadStream(path), { size: record.size, contentType: record.type, sha256: record.sha256 });
      if (thumbnail) await this.blobs.put(thumbnailKey(record.id), Readable.from([thumbnail]), { size: thumbnail.length, contentType: 'image/webp' });
      await this.store.attachments.create(record);
    } catch (err) {
      await Promise.allSettled([this.blobs.delete(originalKey(record.id)), this.blobs.delete(thumbnailKey(record.id))]);
      throw err;
    }
  }

  /** An upload `userId` may read now; not_found otherwise, whether it exists or not. */
  async open(userId: Id, id: Id): Promise<AttachmentRecord> {
    const r = await this.store.attachments.readable(id, userId);
    if (!r) throw notFound('No attachment has that id.');
    return r;
  }

  /** The bytes of an upload opened by `open`, or a range of them. */
  async original(r: AttachmentRecord, range?: ByteRange): Promise<BlobRead> {
    return missingBlob(await this.blobs.get(originalKey(r.id), range));
  }

  async thumbnail(r: AttachmentRecord): Promise<BlobRead> {
    if (!r.thumbnail) throw notFound('This attachment has no thumbnail (only images have one).');
    return missingBlob(await this.blobs.get(thumbnailKey(r.id)));
  }

  async thumbnailSize(r: AttachmentRecord): Promise<number> {
    if (!r.thumbnail) throw notFound('This attachment has no thumbnail (only images have one).');
    const head = await this.blobs.head(thumbnailKey(r.id));
    if (!head) throw new ParleyError('unavailable', "The file is missing from this server's storage.");
    return head.size;
  }

  /**
   * The references a new message of `userId` will carry, in the order given:
   * each one of their uploads, pending or attached, none twice; encrypted
   * uploads exactly when the conversation is `encrypted` (a plain file there
   * would sit on the server in the clear; a ciphertext in a plain
   * conversation is a file no member could open).
   */
  async forMessage(userId: Id, ids: readonly Id[], encrypted = false): Promise<Attachment[]> {
    if (ids.length > MAX_ATTACHMENTS) throw badRequest(`A message may carry at most ${MAX_ATTACHMENTS} attachments.`);
    if (new Set(ids).size !== ids.length) throw badRequest('The same attachment is listed twice.');
    const found = new Map((await this.store.attachments.usable(userId, ids)).map((r) => [r.id, r]));
    return ids.map((id) => {
      const r = found.get(id);
      if (!r) throw notFound(`No upload of yours has the id ${JSON.stringify(id)} (or its message was deleted).`);
      if (encrypted && !r.encrypted) {
        throw badRequest(
          `The upload ${JSON.stringify(id)} is not encrypted: this conversation is end-to-end encrypted, so a file must be encrypted by the client and uploaded with ?encrypted=1.`,
        );
      }
      if (!encrypted && r.encrypted) {
        throw badRequest(`The upload ${JSON.stringify(id)} is encrypted (?encrypted=1): it may be attached only in an end-to-end encrypted conversation.`);
      }
      return reference(r);
    });
  }

  /** Deletes what has been unreferenced for the grace period; a second call while one runs shares it. Returns how many went. */
  sweepOnce(now: Millis = Date.now()): Promise<number> {
    this.sweeping ??= this.sweep(now - this.opts.graceMs).finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweep(before: Millis): Promise<number> {
    let removed = 0;
    for (;;) {
      const ids = await this.store.attachments.unreferenced(before, SWEEP_PAGE);
      let progress = false;
      for (const id of ids) {
        if (!(await this.store.attachments.remove(id, before))) continue;
        progress = true;
        removed++;
        // The record is gone: a blob that fails to go now is an orphan nothing serves, told and left.
        for (const key of [originalKey(id), thumbnailKey(id)]) await this.blobs.delete(key).catch(this.hooks.onError);
      }
      // A page of which nothing could go (taken by messages meanwhile, or removed by another node) ends the pass.
      if (ids.length < SWEEP_PAGE || !progress) return removed;
    }
  }

  /** Stops the sweeper and waits for a pass under way. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.sweeping?.catch(() => undefined);
  }
}

/**
 * The type of an encrypted upload; refuses a request that would tell the
 * server what the file is (a real media type, a name), which belongs inside
 * the encrypted message.
 */
function opaqueType(req: UploadRequest): string {
  const sent = mediaTypeOf(req.contentType);
  if (req.contentType !== undefined && sent !== OPAQUE_TYPE) {
    throw badRequest(`An encrypted upload is sent as ${OPAQUE_TYPE} (or with no Content-Type): its real type goes inside the encrypted message.`);
  }
  if (req.name !== undefined) throw badRequest('An encrypted upload has no name on the server: its real name goes inside the encrypted message.');
  return OPAQUE_TYPE;
}

/** Creates the temp folder, and removes what a crash left in it (no upload takes an hour). */
async function prepareSpool(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const now = Date.now();
  for (const name of await readdir(dir)) {
    const p = join(dir, name);
    const s = await stat(p).catch(() => undefined);
    if (s && now - s.mtimeMs > 3600_000) await rm(p, { force: true });
  }
}

function missingBlob(read: BlobRead | undefined): BlobRead {
  // The record says it exists: the blob store lost it, or this node looks at another folder than the uploader's.
  if (!read) throw new ParleyError('unavailable', "The file is missing from this server's storage.");
  return read;
}
