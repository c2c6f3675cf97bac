/**
 * Attachments (R14) against a real server over HTTP and WebSocket: upload,
 * send, another member sees the reference and downloads the exact bytes, the
 * thumbnail, ranges and caching headers, EXIF removed from what is served;
 * who may not read (a non-member, anyone once the message is deleted), and
 * every refusal: too large (from Content-Length, and while streaming, without
 * the server reading the rest), a type not allowed, a fake or broken image,
 * unknown or someone else's ids; and the sweeper.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Message, UploadedAttachment } from '../../src/protocol/model.js';
import { Harness } from '../helpers/server.js';
import { expectError, expectStatus, type TestUser } from '../helpers/http.js';
import { newRef } from '../helpers/ws-client.js';
import { filesUnder } from '../helpers/fs.js';

const LIMIT = 2 * 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A PNG of the given size: a gradient with a little noise, so every one is different. */
async function png(width: number, height: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  const noise = randomBytes(raw.length);
  for (let i = 0; i < raw.length; i++) raw[i] = ((i % (width * 3)) * 255) / (width * 3) + (i % 61 === 0 ? (noise[i] ?? 0) & 15 : 0);
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

interface Got {
  status: number;
  headers: Headers;
  bytes: Buffer;
}


describe('attachments', () => {
  let h: Harness;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let conv: string;
  before(async () => {
    h = await Harness.start({ maxAttachmentBytes: LIMIT, attachmentTypes: 'image/*,application/pdf,text/plain,text/html,video/mp4', attachmentSweepMs: 0 });
    [alice, bob, carol] = (await h.api.users(3, 'att')) as [TestUser, TestUser, TestUser];
    conv = (await h.api.group(alice, [bob], 'files')).id;
  });
  after(async () => {
    await h?.close();
  });

  async function upload(u: TestUser, bytes: Buffer, type: string | undefined, name?: string): Promise<{ status: number; body: { attachment: UploadedAttachment }; text: string }> {
    const headers: Record<string, string> = { authorization: `Bearer ${u.token}` };
    if (type !== undefined) headers['content-type'] = type;
    const res = await fetch(`${h.url}/v1/attachments${name === undefined ? '' : `?name=${encodeURIComponent(name)}`}`, { method: 'POST', headers, body: new Uint8Array(bytes) });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as { attachment: UploadedAttachment }) : (undefined as never), text };
  }
  async function uploaded(u: TestUser, bytes: Buffer, type: string, name = 'file'): Promise<UploadedAttachment> {
    const res = await upload(u, bytes, type, name);
    assert.equal(res.status, 201, res.text);
    return res.body.attachment;
  }
  async function get(u: TestUser | undefined, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Got> {
    const res = await fetch(`${h.url}${path}`, { method, headers: { ...headers, ...(u ? { authorization: `Bearer ${u.token}` } : {}) } });
    return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
  }
  const asError = (g: Got) => ({ status: g.status, headers: g.headers, body: JSON.parse(g.bytes.toString() || 'null') as unknown, text: g.bytes.toString() });
  async function sendWith(u: TestUser, ids: string[], body = ''): Promise<Message> {
    const res = await h.api.req<{ message: Message }>('POST', `/v1/conversations/${conv}/messages`, {
      token: u.token,
      json: { clientId: `c-${randomBytes(6).toString('hex')}`, body, attachments: ids },
    });
    expectStatus(res, 201, 'send with attachments');
    return res.body.message;
  }

  test('an image goes up, a message carries it over the socket, and another member gets the reference, the exact bytes and a thumbnail', async () => {
    const bytes = await png(1200, 800);
    const att = await uploaded(alice, bytes, 'image/png', 'holiday.png');
    assert.deepEqual({ ...att, id: '', createdAt: 0 }, {
      id: '', createdAt: 0, type: 'image/png', name: 'holiday.png', size: bytes.length, width: 1200, height: 800, thumbnail: { width: 320, height: 213 },
    });
    const bws = await h.connect(bob);
    const aws = await h.connect(alice);
    const ref = newRef();
    aws.send({ type: 'send', ref, conversationId: conv, clientId: 'img-1', body: '', attachments: [att.id] });
    const ack = await aws.next('ack', (f) => f.ref === ref);
    assert.ok('message' in ack);
    const { createdAt: _c, ...reference } = att;
    assert.deepEqual(ack.message.attachments, [reference], 'the ack carries the reference');
    assert.equal(ack.message.body, '', 'an empty body is fine with an attachment');
    const ev = await bws.next('event', (f) => f.event.kind === 'message.created' && f.event.message.id === ack.message.id);
    assert.ok(ev.event.kind === 'message.created');
    assert.deepEqual(ev.event.message.attachments, [reference], 'the other member sees only the reference');

    const file = await get(bob, `/v1/attachments/${att.id}`);
    assert.equal(file.status, 200);
    assert.equal(sha(file.bytes), sha(bytes), 'the exact bytes');
    assert.equal(file.headers.get('content-type'), 'image/png');
    assert.equal(file.headers.get('content-length'), String(bytes.length));
    assert.equal(file.headers.get('etag'), `"${sha(bytes)}"`);
    assert.equal(file.headers.get('cache-control'), 'private, max-age=31536000, immutable');
    assert.equal(file.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(file.headers.get('accept-ranges'), 'bytes');
    assert.equal(file.headers.get('content-disposition'), `inline; filename="holiday.png"; filename*=UTF-8''holiday.png`);
    assert.match(file.headers.get('content-security-policy') ?? '', /sandbox/);

    const thumb = await get(bob, `/v1/attachments/${att.id}/thumbnail`);
    assert.equal(thumb.status, 200);
    assert.equal(thumb.headers.get('content-type'), 'image/webp');
    const meta = await sharp(thumb.bytes).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['webp', 320, 213]);

    const hist = await h.api.history(bob, conv);
    assert.deepEqual(hist.messages.find((m) => m.id === ack.message.id)?.attachments, [reference], 'history carries it too');

    // A device that was away gets it in the sync.
    const later = await h.connect(bob, 'bob-2');
    const sref = newRef();
    later.send({ type: 'sync', ref: sref, positions: { [conv]: 0 } });
    const synced = await later.next('event', (f) => f.event.kind === 'message.created' && f.event.message.id === ack.message.id);
    assert.ok(synced.event.kind === 'message.created');
    assert.deepEqual(synced.event.message.attachments, [reference]);
  });

  test('a document: ranges, conditional requests and HEAD', async () => {
    const bytes = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(100_000)]);
    const att = await uploaded(alice, bytes, 'application/pdf', 'Quarterly report.pdf');
    assert.equal(att.width, undefined);
    assert.equal(att.thumbnail, undefined);
    await sendWith(alice, [att.id], 'the report');
    const path = `/v1/attachments/${att.id}`;
    const part = await get(bob, path, { range: 'bytes=100-199' });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 100-199/${bytes.length}`);
    assert.equal(part.headers.get('content-length'), '100');
    assert.ok(part.bytes.equals(bytes.subarray(100, 200)));
    const open = await get(bob, path, { range: 'bytes=99000-' });
    assert.equal(open.status, 206);
    assert.ok(open.bytes.equals(bytes.subarray(99_000)));
    const suffix = await get(bob, path, { range: 'bytes=-10' });
    assert.ok(suffix.bytes.equals(bytes.subarray(bytes.length - 10)));
    const beyond = await get(bob, path, { range: `bytes=${bytes.length}-` });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers.get('content-range'), `bytes */${bytes.length}`);
    expectError(asError(beyond), 416, 'bad_request', 'a range past the end');
    const several = await get(bob, path, { range: 'bytes=0-1,5-6' });
    assert.equal(several.status, 200, 'several ranges: the whole file');
    assert.equal(several.bytes.length, bytes.length);
    const stale = await get(bob, path, { range: 'bytes=0-9', 'if-range': '"something-else"' });
    assert.equal(stale.status, 200, 'If-Range that does not match: the whole file');
    const etag = (await get(bob, path, { range: 'bytes=0-0' })).headers.get('etag') ?? '';
    const cached = await get(bob, path, { 'if-none-match': etag });
    assert.equal(cached.status, 304);
    assert.equal(cached.bytes.length, 0);
    const head = await get(bob, path, {}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(bytes.length));
    assert.equal(head.bytes.length, 0);
    assert.equal(head.headers.get('content-disposition'), `inline; filename="Quarterly report.pdf"; filename*=UTF-8''Quarterly%20report.pdf`);
    expectError(asError(await get(bob, `${path}/thumbnail`)), 404, 'not_found', 'a PDF has no thumbnail');
  });

  test('no one else may read: not a stranger, not without a token, and a pending upload only by its uploader', async () => {
    const att = await uploaded(alice, await png(50, 40), 'image/png');
    const own = await get(alice, `/v1/attachments/${att.id}`);
    assert.equal(own.status, 200, 'the uploader reads a pending upload');
    expectError(asError(await get(bob, `/v1/attachments/${att.id}`)), 404, 'not_found', 'pending: a future member');
    await sendWith(alice, [att.id]);
    assert.equal((await get(bob, `/v1/attachments/${att.id}`)).status, 200, 'now a member reads it');
    for (const p of [`/v1/attachments/${att.id}`, `/v1/attachments/${att.id}/thumbnail`]) {
      const stranger = asError(await get(carol, p));
      expectError(stranger, 404, 'not_found', `stranger ${p}`);
      assert.deepEqual(stranger.body, asError(await get(carol, '/v1/attachments/NOSUCHID')).body, 'the same answer as an id that does not exist');
      expectError(asError(await get(undefined, p)), 401, 'unauthorized', `no token ${p}`);
    }
    const res = await upload(carol, Buffer.from('x'), 'text/plain');
    assert.equal(res.status, 201);
    expectError({ ...asError(await get(undefined, '/v1/attachments')), status: 404 }, 404, 'not_found');
  });

  test('a member who leaves loses access; the deleted message takes its files with it, for everyone', async () => {
    const dave = await h.api.user('att');
    const g = await h.api.group(alice, [bob, dave], 'leaving');
    const att = await uploaded(alice, Buffer.from('hello, file'), 'text/plain', 'note.txt');
    const res = await h.api.req<{ message: Message }>('POST', `/v1/conversations/${g.id}/messages`, {
      token: alice.token,
      json: { clientId: 'note', body: 'a note', attachments: [att.id] },
    });
    expectStatus(res, 201);
    const text = await get(dave, `/v1/attachments/${att.id}`);
    assert.equal(text.bytes.toString(), 'hello, file');
    assert.equal(text.headers.get('content-type'), 'text/plain; charset=utf-8');
    expectStatus(await h.api.req('DELETE', `/v1/conversations/${g.id}/members/${dave.id}`, { token: dave.token }), 204);
    expectError(asError(await get(dave, `/v1/attachments/${att.id}`)), 404, 'not_found', 'after leaving');

    const del = await h.api.req('DELETE', `/v1/messages/${res.body.message.id}`, { token: alice.token });
    expectStatus(del, 200);
    for (const u of [bob, alice]) expectError(asError(await get(u, `/v1/attachments/${att.id}`)), 404, 'not_found', 'after the delete');
    const hist = await h.api.history(bob, g.id);
    assert.equal(hist.messages[0]?.attachments, undefined, 'the deleted message carries none');
    const again = await h.api.req('POST', `/v1/conversations/${g.id}/messages`, { token: alice.token, json: { clientId: 'again', body: 'x', attachments: [att.id] } });
    expectError(again, 404, 'not_found', 'a released upload cannot be attached again');
  });

  test('edits keep the attachments; a message with attachments may be edited to an empty body', async () => {
    const att = await uploaded(alice, Buffer.from('v1'), 'text/plain');
    const m = await sendWith(alice, [att.id], 'caption');
    const edit = await h.api.req('PATCH', `/v1/messages/${m.id}`, { token: alice.token, json: { body: '' } });
    expectStatus(edit, 200, 'empty edit with attachments');
    const now = (await h.api.history(bob, conv)).messages.find((x) => x.id === m.id);
    assert.equal(now?.body, '');
    assert.equal(now?.attachments?.[0]?.id, att.id);
    const plain = await h.api.send(alice, conv, 'no files');
    expectError(await h.api.req('PATCH', `/v1/messages/${plain.id}`, { token: alice.token, json: { body: ' ' } }), 400, 'bad_request', 'empty edit without');
  });

  test('an encrypted upload (?encrypted=1) cannot go into a plain conversation: no member could open it', async () => {
    // Encrypted uploads in encrypted conversations: test/e2e/encrypted-attachments.test.ts.
    const res = await fetch(`${h.url}/v1/attachments?encrypted=1`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/octet-stream' },
      body: new Uint8Array(randomBytes(64)),
    });
    assert.equal(res.status, 201);
    const att = ((await res.json()) as { attachment: UploadedAttachment }).attachment;
    const sent = await h.api.req('POST', `/v1/conversations/${conv}/messages`, {
      token: alice.token,
      json: { clientId: `c-${randomBytes(6).toString('hex')}`, body: '', attachments: [att.id] },
    });
    expectError(sent, 400, 'bad_request', 'an encrypted upload in a plain conversation');
    assert.match(sent.text, /encrypted \(\?encrypted=1\): it may be attached only in an end-to-end encrypted conversation/);
    assert.equal((await get(alice, `/v1/attachments/${att.id}`)).status, 200, "the upload is still its uploader's, pending");
  });

  test('removes EXIF (camera, GPS) from what is served, applying its rotation', async () => {
    const jpeg = await sharp(await png(400, 300))
      .jpeg({ quality: 90 })
      .withExif({ IFD0: { Make: 'PhoneCo', Model: 'Spy 3000' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 24/1' } })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    assert.ok((await sharp(jpeg).metadata()).exif, 'the upload has EXIF');
    const att = await uploaded(alice, jpeg, 'image/jpeg', 'IMG_0001.jpg');
    assert.deepEqual([att.width, att.height], [300, 400], 'measured as shown: rotated');
    assert.deepEqual(att.thumbnail, { width: 240, height: 320 });
    const served = await get(alice, `/v1/attachments/${att.id}`);
    assert.equal(served.bytes.length, att.size, 'the size told is that of what is served');
    const meta = await sharp(served.bytes).metadata();
    assert.equal(meta.exif, undefined, 'no EXIF left');
    assert.equal(served.bytes.includes(Buffer.from('PhoneCo')), false, 'not a trace of the camera');
    assert.deepEqual([meta.format, meta.width, meta.height, meta.orientation ?? 1], ['jpeg', 300, 400, 1], 'upright, no orientation flag needed');
  });

  test('refuses a file over the limit from its Content-Length, before any of it is sent', async () => {
    const { status, body, bodyBytesSent } = await rawUpload(LIMIT + 1, 0);
    assert.equal(status, 413);
    assert.equal(bodyBytesSent, 0);
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message']);
    assert.equal(body.error.code, 'too_large');
    assert.match(body.error.message, /larger than the 2 MiB/);
  });

  test('refuses a streamed file as soon as it passes the limit, without reading the rest, and keeps nothing of it', async () => {
    const blobsBefore = await filesUnder(join(h.dataDir, 'media'));
    const { status, body, bodyBytesSent } = await rawUpload(undefined, 40 * 1024 * 1024);
    assert.equal(status, 413);
    assert.equal(body.error.code, 'too_large');
    assert.ok(bodyBytesSent < 12 * 1024 * 1024, `the answer came after ${bodyBytesSent} bytes of 40 MiB (the limit is 2 MiB)`);
    assert.deepEqual(await filesUnder(join(h.dataDir, 'uploads')), [], 'no temp file left');
    assert.deepEqual(await filesUnder(join(h.dataDir, 'media')), blobsBefore, 'no blob stored');
    // The server is fine afterwards.
    assert.equal((await upload(alice, Buffer.from('ok'), 'text/plain')).status, 201);
  });

  /**
   * Sends headers for an upload, then (unless `declared` refuses it at once) up to `stream` bytes in
   * 64 KiB chunks, chunked, stopping when the answer comes; returns the answer and the body bytes sent.
   */
  function rawUpload(declared: number | undefined, stream: number): Promise<{ status: number; body: { error: { code: string; message: string } }; bodyBytesSent: number }> {
    const u = new URL(h.url);
    return new Promise((resolve, reject) => {
      let sent = 0;
      let answered = false;
      const headers: Record<string, string> = { authorization: `Bearer ${alice.token}`, 'content-type': 'video/mp4' };
      if (declared !== undefined) headers['content-length'] = String(declared);
      const req = http.request({ host: u.hostname, port: u.port, method: 'POST', path: '/v1/attachments?name=big.mp4', headers }, (res) => {
        answered = true;
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as never, bodyBytesSent: sent }));
      });
      req.on('error', (err) => {
        // The server closes the connection after its answer: a write may fail then.
        if (!answered) reject(err);
      });
      req.flushHeaders();
      const chunk = randomBytes(64 * 1024);
      const pump = (): void => {
        while (!answered && sent < stream) {
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        if (!answered && stream > 0) req.end();
      };
      if (stream > 0) setImmediate(pump);
    });
  }

  test('tells what it accepts', async () => {
    const res = await h.api.req<{ limits: unknown }>('GET', '/v1/attachments/limits', { token: bob.token });
    expectStatus(res, 200);
    assert.deepEqual(res.body.limits, { maxBytes: LIMIT, types: ['image/*', 'application/pdf', 'text/plain', 'text/html', 'video/mp4'], maxPerMessage: 10 });
    expectError(await h.api.req('GET', '/v1/attachments/limits'), 401, 'unauthorized');
  });

  test('refuses a type not allowed, no type, a malformed type, and an empty file', async () => {
    const exe = await upload(alice, Buffer.from('MZ...'), 'application/x-msdownload', 'setup.exe');
    expectError({ ...exe, headers: new Headers(), body: exe.body as unknown }, 400, 'bad_request', 'exe');
    assert.match(exe.text, /application\/x-msdownload cannot be attached/);
    for (const [type, what] of [[undefined, 'none'], ['nonsense', 'malformed'], ['image/png; x', 'an empty file']] as const) {
      const res = await fetch(`${h.url}/v1/attachments`, {
        method: 'POST',
        headers: { authorization: `Bearer ${alice.token}`, ...(type === undefined ? {} : { 'content-type': type }) },
        body: type === 'image/png; x' ? new Uint8Array(0) : new TextEncoder().encode('data'),
      });
      const text = await res.text();
      expectError({ status: res.status, headers: res.headers, body: JSON.parse(text) as unknown, text }, 400, 'bad_request', what);
    }
  });

  test('refuses a file that claims to be an image and is not, or is cut short', async () => {
    const fake = await upload(alice, Buffer.from('<html><script>alert(1)</script></html>'), 'image/png', 'cat.png');
    assert.equal(fake.status, 400);
    assert.match(fake.text, /not a valid PNG image/);
    const jpeg = await sharp(await png(300, 300)).jpeg().toBuffer();
    const cut = await upload(alice, jpeg.subarray(0, Math.floor(jpeg.length / 2)), 'image/jpeg');
    assert.equal(cut.status, 400, cut.text);
    assert.match(cut.text, /not a valid JPEG image/);
    // A real image sent under another image type is kept as what it is.
    const mislabelled = await uploaded(alice, jpeg, 'image/png', 'really-a.jpg');
    assert.equal(mislabelled.type, 'image/jpeg');
  });

  test('serves what a browser could run as a download in a sandbox, and cleans up file names', async () => {
    const att = await uploaded(alice, Buffer.from('<script>alert(document.cookie)</script>'), 'text/html', '../../\u202Egnp.html');
    assert.equal(att.name, 'gnp.html', 'no folders, no direction override');
    const g = await get(alice, `/v1/attachments/${att.id}`);
    assert.equal(g.headers.get('content-disposition'), `attachment; filename="gnp.html"; filename*=UTF-8''gnp.html`);
    assert.match(g.headers.get('content-security-policy') ?? '', /sandbox/);
    assert.equal(g.headers.get('x-content-type-options'), 'nosniff');
    const intl = await uploaded(alice, Buffer.from('x'), 'text/plain', 'Ünïcödé 報告 "q".txt');
    const d = (await get(alice, `/v1/attachments/${intl.id}`)).headers.get('content-disposition') ?? '';
    assert.equal(d, `inline; filename="_n_c_d_ __ _q_.txt"; filename*=UTF-8''${encodeURIComponent('Ünïcödé 報告 "q".txt')}`);
    assert.equal((await uploaded(alice, Buffer.from('x'), 'text/plain')).name, 'file', 'no name given');
  });

  test("refuses unknown ids, someone else's upload, the same one twice and more than ten, over HTTP and the socket", async () => {
    const mine = await uploaded(alice, Buffer.from('mine'), 'text/plain');
    const bobs = await uploaded(bob, Buffer.from('bobs'), 'text/plain');
    const post = (ids: unknown, body = 'x') =>
      h.api.req('POST', `/v1/conversations/${conv}/messages`, { token: alice.token, json: { clientId: `c-${randomBytes(4).toString('hex')}`, body, attachments: ids } });
    const unknown = await post([mine.id, 'NOSUCHUPLOAD']);
    expectError(unknown, 404, 'not_found', 'unknown');
    assert.match(unknown.text, /NOSUCHUPLOAD/);
    expectError(await post([bobs.id]), 404, 'not_found', "Bob's upload");
    expectError(await post([mine.id, mine.id]), 400, 'bad_request', 'twice');
    expectError(await post(Array.from({ length: 11 }, (_, i) => `id${i}`)), 400, 'bad_request', 'eleven');
    expectError(await post('not-a-list'), 400, 'bad_request', 'not a list');
    expectError(await post([], ''), 400, 'bad_request', 'an empty body needs attachments');
    const ws = await h.connect(alice, 'alice-refusals');
    for (const [ids, code] of [[['NOSUCHUPLOAD'], 'not_found'], [[bobs.id], 'not_found'], [[mine.id, mine.id], 'bad_request']] as const) {
      const ref = newRef();
      ws.send({ type: 'send', ref, conversationId: conv, clientId: `w-${ref}`, body: '', attachments: ids });
      const err = await ws.next('error', (f) => f.ref === ref);
      assert.equal(err.code, code, JSON.stringify(ids));
    }
    // None of that attached anything: Bob still cannot read Alice's upload.
    expectError(asError(await get(bob, `/v1/attachments/${mine.id}`)), 404, 'not_found');
  });

  test('the sweeper deletes uploads never attached and files of deleted messages after the grace period, and nothing else', async () => {
    const pending = await uploaded(alice, await png(30, 30), 'image/png');
    const gone = await uploaded(alice, Buffer.from('to be deleted'), 'text/plain');
    const kept = await uploaded(alice, Buffer.from('kept'), 'text/plain');
    const m = await sendWith(alice, [gone.id]);
    await sendWith(alice, [kept.id]);
    expectStatus(await h.api.req('DELETE', `/v1/messages/${m.id}`, { token: alice.token }), 200);
    const before = (await filesUnder(join(h.dataDir, 'media'))).length;
    assert.equal(await h.core.attachments.sweepOnce(Date.now()), 0, 'nothing is past a day yet');
    const removed = await h.core.attachments.sweepOnce(Date.now() + 86_400_000 + 1000);
    assert.ok(removed >= 2, `removed ${removed}`);
    const after = (await filesUnder(join(h.dataDir, 'media'))).length;
    assert.ok(before - after >= 3, `the image, its thumbnail and the text file are gone from the folder (${before} → ${after})`);
    expectError(asError(await get(alice, `/v1/attachments/${pending.id}`)), 404, 'not_found', 'pending, swept');
    expectError(asError(await get(alice, `/v1/attachments/${gone.id}`)), 404, 'not_found', 'released, swept');
    assert.equal((await get(bob, `/v1/attachments/${kept.id}`)).bytes.toString(), 'kept', 'attached: kept');
    expectError(
      await h.api.req('POST', `/v1/conversations/${conv}/messages`, { token: alice.token, json: { clientId: 'late', body: 'x', attachments: [pending.id] } }),
      404,
      'not_found',
      'a swept upload cannot be attached',
    );
  });
});
