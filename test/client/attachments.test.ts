/**
 * Attachments (R14) through the SDK against a real server: upload from Node
 * (bytes, a Blob, and a stream), send with attachments through the outbox,
 * the other side gets the references and fetches the exact bytes and the
 * thumbnail with the token in a header; refusals come back as ParleyError;
 * a deleted message's attachments leave the other side's cache.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import sharp from 'sharp';
import type { ParleyClient } from '../../src/client/index.js';
import { ParleyError } from '../../src/client/index.js';
import { TestServer, signedIn, until } from './_helpers.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

let server: TestServer;
before(async () => {
  server = await TestServer.start({ maxAttachmentBytes: 1024 * 1024 });
});
after(async () => {
  await server.cleanup();
});

async function pair(): Promise<{ a: ParleyClient; b: ParleyClient; id: string; stop: () => void }> {
  const a = (await signedIn(server.url)).client;
  const b = (await signedIn(server.url)).client;
  await until(() => a.state === 'online' && b.state === 'online', 5000, 'both online');
  const conv = await a.startDirect(b.user!.id);
  await until(() => !!b.conversation(conv.id), 5000, 'b sees the conversation');
  return { a, b, id: conv.id, stop: () => (a.stop(), b.stop()) };
}

describe('attachments through the SDK', () => {
  test('uploads from bytes, a Blob and a stream; sends them; the other side fetches the exact bytes and the thumbnail', async () => {
    const { a, b, id, stop } = await pair();
    try {
      const photo = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#3a7' } }).jpeg().toBuffer();
      const doc = randomBytes(200_000);
      const img = await a.upload(new Uint8Array(photo), { type: 'image/jpeg', name: 'garden.jpg' });
      assert.deepEqual([img.type, img.width, img.height, img.thumbnail?.width, img.thumbnail?.height], ['image/jpeg', 640, 480, 320, 240]);
      const blob = await a.upload(new Blob([new Uint8Array(doc)], { type: 'application/pdf' }), { name: 'spec.pdf' });
      assert.deepEqual([blob.type, blob.name, blob.size], ['application/pdf', 'spec.pdf', doc.length], "a Blob's own type");
      const streamed = await a.upload(Readable.toWeb(Readable.from([Buffer.from('line 1\n'), Buffer.from('line 2\n')])) as ReadableStream<Uint8Array>, {
        type: 'text/plain',
        name: 'notes.txt',
      });
      assert.equal(streamed.size, 14, 'a stream, sent chunked');

      const item = await a.send(id, 'three files', { attachments: [img, blob, streamed] });
      assert.deepEqual(item.attachments?.map((x) => x.id), [img.id, blob.id, streamed.id], 'the outbox keeps them');
      await until(() => b.messages(id).some((m) => m.body === 'three files'), 5000, 'b has the message');
      await until(() => a.outbox().length === 0, 5000, 'acked');
      const got = b.messages(id).find((m) => m.body === 'three files');
      assert.deepEqual(got?.attachments?.map((x) => [x.id, x.name, x.size]), [
        [img.id, 'garden.jpg', photo.length],
        [blob.id, 'spec.pdf', doc.length],
        [streamed.id, 'notes.txt', 14],
      ]);
      const bytes = new Uint8Array(await (await b.fetchAttachment(blob.id)).arrayBuffer());
      assert.equal(sha(bytes), sha(doc), 'the exact bytes');
      const part = new Uint8Array(await (await b.fetchAttachment(blob.id, { range: { start: 10, end: 19 } })).arrayBuffer());
      assert.deepEqual([...part], [...doc.subarray(10, 20)]);
      const thumb = await b.fetchAttachment(img.id, { thumbnail: true });
      assert.equal(thumb.type, 'image/webp');
      const meta = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata();
      assert.deepEqual([meta.width, meta.height], [320, 240]);
    } finally {
      stop();
    }
  });

  test('refusals are ParleyErrors with the code and sentence; a message with only attachments and no text is sent', async () => {
    const { a, b, id, stop } = await pair();
    try {
      const limits = await a.attachmentLimits();
      assert.equal(limits.maxBytes, 1024 * 1024);
      assert.equal(limits.maxPerMessage, 10);
      assert.ok(limits.types.includes('image/png'));
      const big = a.upload(new Uint8Array(1024 * 1024 + 1), { type: 'video/mp4' });
      await assert.rejects(big, (e: unknown) => e instanceof ParleyError && e.code === 'too_large' && e.status === 413 && /1 MiB/.test(e.message));
      await assert.rejects(a.upload(new Uint8Array([1, 2, 3]), { type: 'application/x-msdownload' }), (e: unknown) => e instanceof ParleyError && e.code === 'bad_request');
      await assert.rejects(a.upload(new TextEncoder().encode('not a png'), { type: 'image/png' }), (e: unknown) => e instanceof ParleyError && /not a valid PNG/.test(e.message));
      await assert.rejects(b.fetchAttachment('NOSUCH'), (e: unknown) => e instanceof ParleyError && e.code === 'not_found');

      const only = await a.upload(new TextEncoder().encode('just the file'), { type: 'text/plain', name: 'f.txt' });
      await a.send(id, '', { attachments: [only] });
      await until(() => b.messages(id).some((m) => m.attachments?.[0]?.id === only.id), 5000, 'b has the file-only message');
      const msg = b.messages(id).find((m) => m.attachments?.[0]?.id === only.id);
      assert.equal(msg?.body, '');
      assert.equal(await (await b.fetchAttachment(only.id)).text(), 'just the file');

      // Deleted: the attachments leave b's cache, and the server no longer serves the file.
      await a.deleteMessage(msg!.id);
      await until(() => b.messages(id).find((m) => m.id === msg!.id)?.deletedAt !== undefined, 5000, 'b sees the delete');
      assert.equal(b.messages(id).find((m) => m.id === msg!.id)?.attachments, undefined);
      await assert.rejects(b.fetchAttachment(only.id), (e: unknown) => e instanceof ParleyError && e.code === 'not_found');

      // Someone else's upload: the outbox marks the message failed with the server's sentence.
      const bobs = await b.upload(new TextEncoder().encode('bob'), { type: 'text/plain' });
      const bad = await a.send(id, 'not mine', { attachments: [bobs] });
      await until(() => a.outbox().find((i) => i.clientId === bad.clientId)?.state === 'failed', 5000, 'refused');
      assert.match(a.outbox().find((i) => i.clientId === bad.clientId)?.error ?? '', /No upload of yours/);
    } finally {
      stop();
    }
  });
});
