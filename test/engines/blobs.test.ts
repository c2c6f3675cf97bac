/**
 * The Blobs port suite against both engines: a local folder, and the S3
 * engine against s3rver (an S3 work-alike, devDependency) on loopback. Then
 * what only each engine has to show: the folder's crash leftovers and
 * durability steps, the S3 engine's signatures and refusals.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { LocalBlobs } from '../../src/engines/local/blobs.js';
import { S3Blobs } from '../../src/engines/s3/blobs.js';
import { blobsSuite } from '../ports/blobs.suite.js';

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
const S3rver = createRequire(import.meta.url)('s3rver') as new (opts: object) => S3rverInstance;

const root = await mkdtemp(join(tmpdir(), 'parley-blobs-'));
after(() => rm(root, { recursive: true, force: true }));

let n = 0;
blobsSuite(
  'local folder',
  async () => LocalBlobs.open(join(root, `local-${++n}`)),
  async (b) => b.close(),
);

const BUCKET = 'parley-test';
let s3: S3rverInstance | undefined;
let endpoint = '';
before(async () => {
  s3 = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: join(root, 's3rver'),
    vhostBuckets: false,
    configureBuckets: [{ name: BUCKET }],
  });
  const addr = await s3.run();
  endpoint = `http://127.0.0.1:${addr.port}`;
});
after(async () => {
  await s3?.close();
});

const s3Blobs = (more: Partial<ConstructorParameters<typeof S3Blobs>[0]> = {}): S3Blobs =>
  new S3Blobs({ endpoint, bucket: BUCKET, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', prefix: 'suite/', ...more });

blobsSuite(
  'S3 (s3rver)',
  async () => s3Blobs(),
  async (b) => b.close(),
  {
    keepsCutPuts: 's3rver writes a PUT body straight to its object file, so a cut upload stays there (S3 and MinIO keep nothing)',
    readsZeroEndAsOpen: "s3rver reads the range end 0 as 'to the end' (its `end || Infinity`)",
  },
);

describe('local folder blobs', () => {
  it('leaves no temp file behind when a put fails, and removes stale ones a crash left when opened', async () => {
    const dir = join(root, 'leftovers');
    const b = await LocalBlobs.open(dir);
    await assert.rejects(b.put('a/x', Readable.from([Buffer.from('abc')]), { size: 4, contentType: 'text/plain' }));
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    const stale = join(dir, 'tmp', 'crashed');
    const fresh = join(dir, 'tmp', 'in-flight');
    await writeFile(stale, 'half a blob');
    await writeFile(fresh, 'another node is writing this');
    const old = new Date(Date.now() - 2 * 3600_000);
    await utimes(stale, old, old);
    await LocalBlobs.open(dir);
    assert.deepEqual(await readdir(join(dir, 'tmp')), ['in-flight']);
  });

  it('spreads the last key segment over folders by hash', async () => {
    const dir = join(root, 'layout');
    const b = await LocalBlobs.open(dir);
    await b.put('a/01ABC', Readable.from([Buffer.from('x')]), { size: 1, contentType: 'text/plain' });
    const shards = await readdir(join(dir, 'blobs', 'a'));
    assert.equal(shards.length, 1);
    assert.match(shards[0] ?? '', /^[0-9a-f]{2}$/);
    assert.deepEqual(await readdir(join(dir, 'blobs', 'a', shards[0] ?? '')), ['01ABC']);
  });
});

describe('S3 blobs', () => {
  // s3rver checks the access key but not SigV4 signatures, so a wrong secret would pass here; an unknown key is refused.
  it('is refused with credentials the store does not know, and says so without the secret', async () => {
    const b = s3Blobs({ accessKeyId: 'NOBODY', secretAccessKey: 'not-the-secret' });
    try {
      const err = await b.put('a/denied', Readable.from([Buffer.from('x')]), { size: 1, contentType: 'text/plain' }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      assert.ok(err, 'the put was refused');
      assert.match(err.message, /403/);
      assert.doesNotMatch(err.message, /not-the-secret/);
      await assert.rejects(b.get('a/denied'), /403/);
    } finally {
      await b.close();
    }
  });

  it('keeps prefixes apart in one bucket', async () => {
    const one = s3Blobs({ prefix: 'one/' });
    const two = s3Blobs({ prefix: 'two/' });
    try {
      await one.put('a/same', Readable.from([Buffer.from('one')]), { size: 3, contentType: 'text/plain' });
      assert.equal(await two.head('a/same'), undefined);
      assert.deepEqual(await one.head('a/same'), { size: 3 });
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('fails, not hangs, when the store is unreachable', async () => {
    const b = new S3Blobs({ endpoint: 'http://127.0.0.1:1', bucket: BUCKET, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', timeoutMs: 2000 });
    try {
      await assert.rejects(b.head('a/x'), /ECONNREFUSED/);
    } finally {
      await b.close();
    }
  });

  it('refuses a bad endpoint or bucket name when opened', () => {
    assert.throws(() => s3Blobs({ endpoint: 'ftp://127.0.0.1' }), /http/);
    assert.throws(() => s3Blobs({ bucket: 'Bad_Bucket' }), /bucket/);
  });
});
