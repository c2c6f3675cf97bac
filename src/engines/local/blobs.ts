/**
 * Blobs on a local folder (contract: core/ports/blobs.ts), the embedded
 * default: `<data dir>/media` unless PARLEY_MEDIA_DIR says otherwise.
 *
 * A put writes a temp file under `tmp/`, syncs it, renames it into
 * `blobs/` and syncs that folder, so a crash at any point leaves either no
 * blob or the whole one, and a resolved put survives a power cut as well.
 * (An upload is rare next to messages: the two fsyncs cost it a few
 * milliseconds against the seconds the bytes took to arrive.) Temp files a
 * crash left behind are removed when the folder is opened again.
 *
 * A key's last segment sits in a folder named after the first two hex digits
 * of the key's SHA-256, so no folder grows past a few thousand entries for a
 * million blobs: `a/01J…` is `blobs/a/3f/01J…`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { checkBlobKey, type BlobRead, type Blobs, type ByteRange, type PutInfo } from '../../core/ports/blobs.js';

/** Temp files older than this when the folder is opened were left by a crash (no upload takes an hour to write). */
const STALE_TEMP_MS = 3600_000;

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';

export class LocalBlobs implements Blobs {
  readonly kind = 'local';
  private readonly blobsDir: string;
  private readonly tmpDir: string;

  private constructor(readonly root: string) {
    this.blobsDir = join(root, 'blobs');
    this.tmpDir = join(root, 'tmp');
  }

  static async open(root: string): Promise<LocalBlobs> {
    const b = new LocalBlobs(root);
    await mkdir(b.blobsDir, { recursive: true });
    await mkdir(b.tmpDir, { recursive: true });
    await b.removeStaleTemps();
    return b;
  }

  private pathOf(key: string): string {
    checkBlobKey(key);
    const segs = key.split('/');
    const last = segs.pop() as string;
    const shard = createHash('sha256').update(key).digest('hex').slice(0, 2);
    return join(this.blobsDir, ...segs, shard, last);
  }

  async put(key: string, body: Readable, info: PutInfo): Promise<void> {
    const final = this.pathOf(key);
    const tmp = join(this.tmpDir, `${Date.now()}-${randomBytes(8).toString('hex')}`);
    let n = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, done) {
        n += chunk.length;
        done(n > info.size ? new Error(`the blob has more than the ${info.size} bytes announced`) : null, chunk);
      },
    });
    try {
      // flush: the file's data is synced before it is closed, so the rename below never publishes a short file.
      await pipeline(body, count, createWriteStream(tmp, { flags: 'wx', mode: 0o600, flush: true }));
      if (n !== info.size) throw new Error(`the blob has ${n} bytes, not the ${info.size} announced`);
      await mkdir(dirname(final), { recursive: true });
      await rename(tmp, final);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    await syncDir(dirname(final));
  }

  async get(key: string, range?: ByteRange): Promise<BlobRead | undefined> {
    const path = this.pathOf(key);
    let fh;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    try {
      const { size } = await fh.stat();
      // The stream owns the handle from here and closes it when it ends or is destroyed.
      const body = fh.createReadStream(range ? { start: range.start, end: range.end } : {});
      return { body, size };
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async head(key: string): Promise<{ size: number } | undefined> {
    try {
      const s = await stat(this.pathOf(key));
      return { size: s.size };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }

  private async removeStaleTemps(): Promise<void> {
    const now = Date.now();
    for (const name of await readdir(this.tmpDir)) {
      const p = join(this.tmpDir, name);
      const s = await stat(p).catch(() => undefined);
      if (s && now - s.mtimeMs > STALE_TEMP_MS) await rm(p, { force: true });
    }
  }
}

/** Makes a rename in `dir` durable. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
