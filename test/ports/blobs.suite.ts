/**
 * The Blobs port's shared test suite: every engine (local folder, S3) runs it
 * through `blobsSuite`. It uses only the Blobs interface and fresh keys, so an
 * engine whose `open` returns a handle on a shared bucket can run it too.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { BlobKeyError, type Blobs } from '../../src/core/ports/blobs.js';

const key = (tag = 'k'): string => `t/${tag}-${randomBytes(8).toString('hex')}`;

async function bytes(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** A stream of `data` in chunks of `chunk` bytes, failing after `failAfter` chunks when given. */
function chunked(data: Buffer, chunk = 64 * 1024, failAfter?: number): Readable {
  let i = 0;
  let sent = 0;
  return new Readable({
    read() {
      if (failAfter !== undefined && sent === failAfter) {
        this.destroy(new Error('the source failed'));
        return;
      }
      if (i >= data.length) {
        this.push(null);
        return;
      }
      this.push(data.subarray(i, i + chunk));
      i += chunk;
      sent++;
    },
  });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * Where the engine under test is known to fall short of the contract because
 * of what it runs against, not of its own code (a test double such as
 * s3rver): each is the reason printed for skipping that one check.
 */
export interface BlobsSuiteQuirks {
  /** The store keeps what arrived of a PUT whose connection was cut (real S3 answers IncompleteBody and keeps nothing). */
  keepsCutPuts?: string;
  /** The store reads `bytes=0-0` as `bytes=0-`. */
  readsZeroEndAsOpen?: string;
}

export function blobsSuite(name: string, open: () => Promise<Blobs>, dispose: (b: Blobs) => Promise<void>, quirks: BlobsSuiteQuirks = {}): void {
  /** An assertion the engine's backing store cannot pass, skipped with the reason printed once. */
  const unless = (reason: string | undefined, check: () => void | Promise<void>): void | Promise<void> => {
    if (reason === undefined) return check();
    console.log(`# ${name}: skipped one check: ${reason}`);
  };

  describe(`Blobs port: ${name}`, () => {
    let b: Blobs;
    beforeEach(async () => {
      b = await open();
    });
    afterEach(async () => {
      await dispose(b);
    });

    const put = (k: string, data: Buffer, contentType = 'application/octet-stream'): Promise<void> =>
      b.put(k, chunked(data), { size: data.length, contentType, sha256: sha(data) });

    it('gives back exactly the bytes put, and their size', async () => {
      const k = key();
      const data = randomBytes(200_000);
      await put(k, data, 'image/png');
      const r = await b.get(k);
      assert.ok(r);
      assert.equal(r.size, data.length);
      assert.ok((await bytes(r.body)).equals(data));
      assert.deepEqual(await b.head(k), { size: data.length });
    });

    it('streams a blob of several megabytes both ways', async () => {
      const k = key('big');
      const data = randomBytes(6 * 1024 * 1024 + 17);
      await put(k, data);
      const r = await b.get(k);
      assert.ok(r);
      assert.equal(sha(await bytes(r.body)), sha(data));
    });

    it('stores an empty blob', async () => {
      const k = key('empty');
      await put(k, Buffer.alloc(0), 'text/plain');
      const r = await b.get(k);
      assert.ok(r);
      assert.equal(r.size, 0);
      assert.equal((await bytes(r.body)).length, 0);
    });

    it('reads a byte range, telling the whole size', async () => {
      const k = key('range');
      const data = randomBytes(100_000);
      await put(k, data);
      const ranges: [number, number][] = [[10, 99], [99_990, 99_999], [0, 99_999], [5000, 70_000], [1, 1]];
      if (quirks.readsZeroEndAsOpen === undefined) ranges.push([0, 0]);
      else await unless(quirks.readsZeroEndAsOpen, () => undefined);
      for (const [start, end] of ranges) {
        const r = await b.get(k, { start, end });
        assert.ok(r);
        assert.equal(r.size, data.length, `size with range ${start}-${end}`);
        assert.ok((await bytes(r.body)).equals(data.subarray(start, end + 1)), `bytes ${start}-${end}`);
      }
    });

    it('knows nothing of a key never put', async () => {
      const k = key('none');
      assert.equal(await b.get(k), undefined);
      assert.equal(await b.get(k, { start: 0, end: 10 }), undefined);
      assert.equal(await b.head(k), undefined);
    });

    it('deletes, and deleting what is not there succeeds', async () => {
      const k = key('del');
      await put(k, Buffer.from('bye'));
      await b.delete(k);
      assert.equal(await b.get(k), undefined);
      assert.equal(await b.head(k), undefined);
      await b.delete(k);
      await b.delete(key('never'));
    });

    it('keeps keys apart, nested ones included', async () => {
      const id = randomBytes(6).toString('hex');
      const keys = [`a/${id}`, `b/${id}`, `a/x/${id}`, `${id}`];
      await Promise.all(keys.map((k, i) => put(k, Buffer.from(`blob ${i}`))));
      for (const [i, k] of keys.entries()) {
        const r = await b.get(k);
        assert.ok(r, k);
        assert.equal((await bytes(r.body)).toString(), `blob ${i}`, k);
      }
      // One at a time: s3rver removes the folders a delete empties, and two deletes under a/ at once race
      // there (500 InternalError, seen under load); S3 itself has no folders to race on.
      for (const k of keys) await b.delete(k);
    });

    it('stores nothing when the source fails midway, and leaves other blobs alone', async () => {
      const other = key('other');
      await put(other, Buffer.from('still here'));
      const k = key('fail');
      const data = randomBytes(512 * 1024);
      await assert.rejects(b.put(k, chunked(data, 64 * 1024, 3), { size: data.length, contentType: 'video/mp4' }));
      await unless(quirks.keepsCutPuts, async () => {
        assert.equal(await b.head(k), undefined);
        assert.equal(await b.get(k), undefined);
      });
      const r = await b.get(other);
      assert.ok(r);
      assert.equal((await bytes(r.body)).toString(), 'still here');
    });

    it('stores nothing when the source has fewer or more bytes than announced', async () => {
      const data = randomBytes(10_000);
      const short = key('short');
      await assert.rejects(b.put(short, chunked(data), { size: data.length + 1, contentType: 'text/plain' }));
      const long = key('long');
      await assert.rejects(b.put(long, chunked(data), { size: data.length - 1, contentType: 'text/plain' }));
      await unless(quirks.keepsCutPuts, async () => {
        assert.equal(await b.head(short), undefined);
        assert.equal(await b.head(long), undefined);
      });
    });

    it('refuses keys outside its rules', async () => {
      for (const bad of ['', '../x', 'a/../b', 'a//b', '/a', 'a/', 'with space', 'a/./b', 'ü', 'x'.repeat(513)]) {
        await assert.rejects(b.get(bad), BlobKeyError, JSON.stringify(bad));
        await assert.rejects(b.put(bad, Readable.from([Buffer.from('x')]), { size: 1, contentType: 'text/plain' }), BlobKeyError, JSON.stringify(bad));
        await assert.rejects(b.delete(bad), BlobKeyError, JSON.stringify(bad));
      }
    });

    it('takes many puts at once', async () => {
      const items = Array.from({ length: 24 }, (_, i) => ({ k: key(`many${i}`), data: randomBytes(1000 + i * 997) }));
      await Promise.all(items.map(({ k, data }) => put(k, data)));
      for (const { k, data } of items) {
        const r = await b.get(k);
        assert.ok(r);
        assert.ok((await bytes(r.body)).equals(data));
      }
    });
  });
}
