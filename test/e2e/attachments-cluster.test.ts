/**
 * Attachments (R14) on the cluster engines: two server nodes on one
 * PostgreSQL schema and one S3 store (s3rver on loopback), as a cluster runs
 * them. A file uploaded through one node is served by the other, byte for
 * byte, with its thumbnail; the sweeper of either node deletes the objects of
 * a deleted message from the bucket.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Message, UploadedAttachment } from '../../src/protocol/model.js';
import { startServer, type ParleyServer } from '../../src/server.js';
import { S3Blobs } from '../../src/engines/s3/blobs.js';
import { FAST } from '../helpers/server.js';
import { Api, expectError, expectStatus } from '../helpers/http.js';
import { POSTGRES_URL, postgresMissing } from '../helpers/services.js';
import { testSchemas } from '../helpers/postgres-schemas.js';

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
const S3rver = createRequire(import.meta.url)('s3rver') as new (opts: object) => S3rverInstance;

const skip = await postgresMissing();
const { fresh } = testSchemas(skip);
const BUCKET = 'parley-cluster';
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('attachments on PostgreSQL and S3, across two nodes', { skip }, () => {
  let dir: string;
  let s3: S3rverInstance;
  let endpoint: string;
  const nodes: ParleyServer[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'parley-att-cluster-'));
    s3 = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: join(dir, 's3'), vhostBuckets: false, configureBuckets: [{ name: BUCKET }] });
    endpoint = `http://127.0.0.1:${(await s3.run()).port}`;
    const schema = fresh('attcluster');
    for (const n of [1, 2]) {
      nodes.push(
        await startServer({
          ...FAST,
          dataDir: join(dir, `node${n}`),
          jwtSecret: 'cluster-secret-for-tests',
          databaseUrl: POSTGRES_URL,
          databaseSchema: schema,
          s3Endpoint: endpoint,
          s3Bucket: BUCKET,
          s3AccessKeyId: 'S3RVER',
          s3SecretAccessKey: 'S3RVER',
          s3Prefix: 'test/',
          attachmentSweepMs: 0,
        }),
      );
    }
  });
  after(async () => {
    for (const n of nodes) await n.close();
    await s3?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('uploaded through one node, served by the other; the sweeper empties the bucket of a deleted message', async () => {
    const [one, two] = [new Api(nodes[0]!.url), new Api(nodes[1]!.url)];
    const alice = await one.user('attc');
    const bob = await two.user('attc');
    const conv = await one.group(alice, [bob], 'cluster files');
    const img = await sharp({ create: { width: 900, height: 300, channels: 3, background: '#845ef7' } }).png().toBuffer();
    const res = await fetch(`${nodes[0]!.url}/v1/attachments?name=wide.png`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'image/png' },
      body: new Uint8Array(img),
    });
    assert.equal(res.status, 201);
    const att = ((await res.json()) as { attachment: UploadedAttachment }).attachment;
    assert.deepEqual(att.thumbnail, { width: 320, height: 107 });
    const sent = await one.req<{ message: Message }>('POST', `/v1/conversations/${conv.id}/messages`, {
      token: alice.token,
      json: { clientId: 'c1', body: 'wide', attachments: [att.id] },
    });
    expectStatus(sent, 201);

    const file = await fetch(`${nodes[1]!.url}/v1/attachments/${att.id}`, { headers: { authorization: `Bearer ${bob.token}` } });
    assert.equal(file.status, 200);
    assert.equal(sha(new Uint8Array(await file.arrayBuffer())), sha(img), 'the other node serves the exact bytes from S3');
    const part = await fetch(`${nodes[1]!.url}/v1/attachments/${att.id}`, { headers: { authorization: `Bearer ${bob.token}`, range: 'bytes=8-15' } });
    assert.equal(part.status, 206);
    assert.deepEqual(new Uint8Array(await part.arrayBuffer()), new Uint8Array(img.subarray(8, 16)));
    const thumb = await fetch(`${nodes[1]!.url}/v1/attachments/${att.id}/thumbnail`, { headers: { authorization: `Bearer ${bob.token}` } });
    assert.equal((await sharp(Buffer.from(await thumb.arrayBuffer())).metadata()).width, 320);

    const bucket = new S3Blobs({ endpoint, bucket: BUCKET, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', prefix: 'test/' });
    try {
      assert.deepEqual(await bucket.head(`a/${att.id}`), { size: img.length }, 'the object is in the bucket under the prefix');
      assert.ok(await bucket.head(`t/${att.id}`));
      expectStatus(await two.req('DELETE', `/v1/messages/${sent.body.message.id}`, { token: alice.token }), 200);
      expectError(await two.req('GET', `/v1/attachments/${att.id}`, { token: bob.token }), 404, 'not_found');
      const swept = await nodes[1]!.core.attachments.sweepOnce(Date.now() + 86_400_000 + 60_000);
      assert.ok(swept >= 1);
      assert.equal(await bucket.head(`a/${att.id}`), undefined, 'gone from the bucket');
      assert.equal(await bucket.head(`t/${att.id}`), undefined);
      assert.equal(await nodes[0]!.core.attachments.sweepOnce(Date.now() + 86_400_000 + 60_000), 0, 'the other node finds nothing left');
    } finally {
      await bucket.close();
    }
  });
});
