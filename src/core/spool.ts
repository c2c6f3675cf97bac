/**
 * Receives an upload into a temp file: counted, hashed, and stopped as soon
 * as it passes the limit, never held in memory. The caller owns the file.
 *
 * On a refusal (too large) the source is paused and left open, not
 * destroyed: for HTTP the request's socket must stay writable so the 413 can
 * still be sent (the transport then closes the connection).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ParleyError } from './errors.js';

export interface Spooled {
  path: string;
  size: number;
  /** SHA-256 of the bytes, lower-case hex. */
  sha256: string;
}

/** Writes `source` to a new file in `dir`; rejects with too_large past `maxBytes` (the file is removed). */
export function spool(source: Readable, dir: string, maxBytes: number, tooLargeMessage: string): Promise<Spooled> {
  const path = join(dir, `${Date.now()}-${randomBytes(8).toString('hex')}`);
  const out = createWriteStream(path, { flags: 'wx', mode: 0o600 });
  const hash = createHash('sha256');
  let size = 0;
  return new Promise<Spooled>((resolve, reject) => {
    let settled = false;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      source.off('data', onData);
      source.unpipe();
      source.pause();
      out.destroy();
      void rm(path, { force: true }).finally(() => reject(err instanceof Error ? err : new Error(String(err))));
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        fail(new ParleyError('too_large', tooLargeMessage));
        return;
      }
      hash.update(chunk);
      // Backpressure: a slow disk pauses the upload instead of filling memory.
      if (!out.write(chunk)) {
        source.pause();
        out.once('drain', () => {
          if (!settled) source.resume();
        });
      }
    };
    source.on('data', onData);
    source.once('end', () => {
      if (settled) return;
      out.end(() => {
        if (settled) return;
        settled = true;
        resolve({ path, size, sha256: hash.digest('hex') });
      });
    });
    // A client that goes away midway: the request is aborted, and what arrived is thrown away.
    source.once('error', fail);
    source.once('aborted', () => fail(new ParleyError('bad_request', 'The upload was cut off before it ended.')));
    source.once('close', () => {
      if (!source.readableEnded) fail(new ParleyError('bad_request', 'The upload was cut off before it ended.'));
    });
    out.once('error', fail);
    source.resume();
  });
}
