/**
 * Attachments in end-to-end encrypted conversations (R14 × R18) against a
 * real server: an encrypted upload (`?encrypted=1`) is stored and served
 * opaque (no type, name, image facts or thumbnail, whatever the type list
 * says; the size limit as for any file); only such uploads go into an
 * encrypted conversation and none into a plain one; a member downloads the
 * ciphertext and opens it with the key from the envelope; the envelope may be
 * longer by each file's entry; and neither the file's bytes nor its name are
 * anywhere in the media folder or the database.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Conversation, Message, UploadedAttachment } from '../../src/protocol/model.js';
import { E2E_SIZES, parseEnvelope, type DeviceKeys, type EnvelopeFile } from '../../src/protocol/e2e.js';
import { MAX_ATTACHMENTS } from '../../src/protocol/fields.js';
import { importIdentityKey, openEnvelope, wrappingKey } from '../../src/client/e2e/crypto.js';
import { decryptFile, encryptFile } from '../../src/client/e2e/files.js';
import { Harness } from '../helpers/server.js';
import { expectError, expectStatus, type Res, type TestUser } from '../helpers/http.js';
import { E2eDevice } from '../helpers/e2e.js';
import { POSTGRES_URL, postgresMissing } from '../helpers/services.js';
import { testSchemas } from '../helpers/postgres-schemas.js';
import { filesUnder } from '../helpers/fs.js';

const LIMIT = 64 * 1024;
const CONFIG = { maxAttachmentBytes: LIMIT, attachmentTypes: 'image/png,text/plain', attachmentSweepMs: 0 };


/** Everything under the data dir (SQLite file and log, media folder, spool, keys) as one latin1 text. */
const dataDirText = async (h: Harness): Promise<string> => (await Promise.all((await filesUnder(h.dataDir)).map((f) => readFile(f)))).map((b) => b.toString('latin1')).join('\n');

/** What the database holds as text beyond the data dir (PostgreSQL's rows); '' for SQLite, whose file is in the data dir. */
type DatabaseText = (h: Harness) => Promise<string>;

function encryptedAttachments(engine: string, start: () => Promise<Harness>, databaseText: DatabaseText, skip?: string): void {
  describe(`encrypted attachments on ${engine}`, { skip }, () => {
    let h: Harness;
    let a: TestUser, b: TestUser, c: TestUser;
    let da: E2eDevice, db: E2eDevice;
    let conv: Conversation;
    let plainConv: Conversation;
    let keys: DeviceKeys[];
    before(async () => {
      h = await start();
      [a, b, c] = (await h.api.users(3, 'encatt')) as [TestUser, TestUser, TestUser];
      [da, db] = (await Promise.all([a, b].map((u) => E2eDevice.of(u)))) as [E2eDevice, E2eDevice];
      for (const d of [da, db]) await d.publish(h.api);
      const created = await h.api.req<{ conversation: Conversation }>('POST', '/v1/conversations', {
        token: a.token,
        json: { kind: 'direct', members: [b.id], encrypted: true },
      });
      assert.ok(created.status === 201 || created.status === 200, created.text);
      conv = created.body.conversation;
      plainConv = await h.api.direct(a, b);
      keys = await E2eDevice.conversationKeys(h.api, a, conv.id);
      assert.equal(keys.length, 2);
    });
    after(async () => {
      await h?.close();
    });

    async function upload(u: TestUser, bytes: Uint8Array, opts: { query?: string; type?: string | null } = {}): Promise<Res<{ attachment: UploadedAttachment }>> {
      const headers: Record<string, string> = { authorization: `Bearer ${u.token}` };
      if (opts.type !== null) headers['content-type'] = opts.type ?? 'application/octet-stream';
      const res = await fetch(`${h.url}/v1/attachments${opts.query ?? '?encrypted=1'}`, { method: 'POST', headers, body: new Uint8Array(bytes) });
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as { attachment: UploadedAttachment }) : (undefined as never), text };
    }
    /** A file encrypted as the SDK does, uploaded encrypted; its envelope entry. */
    async function sealedUpload(u: TestUser, plain: Uint8Array, name = 'notes.txt', type = 'text/plain'): Promise<{ att: UploadedAttachment; entry: EnvelopeFile; ciphertext: Uint8Array }> {
      const sealed = await encryptFile(plain);
      const res = await upload(u, sealed.ciphertext);
      expectStatus(res, 201, 'encrypted upload');
      const att = res.body.attachment;
      return { att, entry: { id: att.id, ...sealed.key, name, type, size: plain.length }, ciphertext: sealed.ciphertext };
    }
    const send = (u: TestUser, conversationId: string, body: string, attachments: unknown[], clientId: string): Promise<Res<{ message: Message }>> =>
      h.api.req<{ message: Message }>('POST', `/v1/conversations/${conversationId}/messages`, { token: u.token, json: { clientId, body, attachments } });
    const envelope = (clientId: string, text: string, entries: EnvelopeFile[]): Promise<string> =>
      da.seal(conv.id, { kind: 'send', clientId }, entries.length > 0 ? { body: text, files: entries } : text, keys);
    const get = async (u: TestUser, path: string): Promise<{ status: number; headers: Headers; bytes: Buffer; text: string }> => {
      const res = await fetch(`${h.url}${path}`, { headers: { authorization: `Bearer ${u.token}` } });
      const bytes = Buffer.from(await res.arrayBuffer());
      return { status: res.status, headers: res.headers, bytes, text: bytes.toString('utf8') };
    };

    test('an encrypted upload is stored and served opaque: no type, name, pixels or thumbnail, whatever the type list says', async () => {
      // A real PNG's ciphertext: the server must not try to read it as an image.
      const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex');
      const sealed = await encryptFile(png);
      const res = await upload(a, sealed.ciphertext);
      expectStatus(res, 201, 'encrypted upload');
      const att = res.body.attachment;
      assert.deepEqual(
        { ...att, id: '', createdAt: 0 },
        { id: '', type: 'application/octet-stream', name: 'file', size: png.length + E2E_SIZES.tag, encrypted: true, createdAt: 0 },
        'nothing about the file; octet-stream is not on the type list, and it is taken anyway',
      );
      // With no Content-Type at all, too.
      expectStatus(await upload(a, sealed.ciphertext, { type: null }), 201, 'no content-type');

      const served = await get(a, `/v1/attachments/${att.id}`);
      assert.equal(served.status, 200);
      assert.deepEqual(new Uint8Array(served.bytes), sealed.ciphertext, 'the ciphertext, as uploaded');
      assert.equal(served.headers.get('content-type'), 'application/octet-stream');
      assert.match(served.headers.get('content-disposition') ?? '', /^attachment; filename="file"/);
      const thumb = await get(a, `/v1/attachments/${att.id}/thumbnail`);
      assert.equal(thumb.status, 404, 'no thumbnail');
      assert.match(thumb.text, /no thumbnail/);
    });

    test('an encrypted upload that tells the server what the file is, or is too large or empty, is refused', async () => {
      const ct = new Uint8Array(randomBytes(100));
      let res = await upload(a, ct, { type: 'image/png' });
      expectError(res, 400, 'bad_request', 'a real media type');
      assert.match(res.text, /sent as application\/octet-stream/);
      res = await upload(a, ct, { query: '?encrypted=1&name=secret.pdf' });
      expectError(res, 400, 'bad_request', 'a name');
      assert.match(res.text, /no name on the server/);
      expectError(await upload(a, ct, { query: '?encrypted=yes' }), 400, 'bad_request', 'encrypted=yes');
      expectError(await upload(a, new Uint8Array(LIMIT + 1)), 413, 'too_large', 'over the size limit');
      expectStatus(await upload(a, new Uint8Array(LIMIT)), 201, 'at the size limit');
      expectError(await upload(a, new Uint8Array(0)), 400, 'bad_request', 'empty');
      // encrypted=0 is a plain upload, held to the type list.
      expectError(await upload(a, ct, { query: '?encrypted=0' }), 400, 'bad_request', 'octet-stream, plain');
    });

    test('a member opens the file with the key from the envelope, byte for byte; a non-member cannot fetch it', async () => {
      const plain = new Uint8Array(randomBytes(5000));
      const { att, entry } = await sealedUpload(a, plain, 'report.bin', 'application/octet-stream');
      const clientId = 'f-1';
      const sent = await send(a, conv.id, await envelope(clientId, 'the report', [entry]), [att.id], clientId);
      expectStatus(sent, 201, 'send with an encrypted file');
      assert.deepEqual(sent.body.message.attachments, [{ id: att.id, type: 'application/octet-stream', name: 'file', size: att.size, encrypted: true }]);

      const [m] = (await h.api.history(b, conv.id, '?limit=1')).messages;
      assert.equal(m?.id, sent.body.message.id);
      const env = parseEnvelope(m?.body ?? '');
      assert.ok('envelope' in env);
      const kek = await wrappingKey(db.keys.agreement.privateKey, b.deviceId, da.published.agreementKey, a.deviceId);
      const header = { conversationId: conv.id, senderId: a.id, senderDevice: a.deviceId, context: { kind: 'send' as const, clientId } };
      const payload = await openEnvelope(header, env.envelope, b.deviceId, await importIdentityKey(da.published.identityKey), kek);
      assert.equal(payload.body, 'the report');
      const [file] = payload.files ?? [];
      assert.ok(file && file.id === m?.attachments?.[0]?.id, "the envelope names the message's upload");
      const got = await get(b, `/v1/attachments/${file.id}`);
      assert.equal(got.status, 200);
      assert.deepEqual(await decryptFile(got.bytes, file), plain, 'byte-identical');
      expectError(
        await h.api.req('GET', `/v1/attachments/${att.id}`, { token: c.token }),
        404,
        'not_found',
        'a non-member',
      );
    });

    test('only encrypted uploads go into an encrypted conversation, and none into a plain one; wrong ids are the documented errors', async () => {
      const plainUpload = await upload(a, new TextEncoder().encode('in the clear'), { query: '', type: 'text/plain' });
      expectStatus(plainUpload, 201, 'plain upload');
      const plainId = plainUpload.body.attachment.id;
      const { att, entry } = await sealedUpload(a, new Uint8Array(randomBytes(300)));

      let res = await send(a, conv.id, await envelope('r-1', 'x', [{ ...entry, id: plainId }]), [plainId], 'r-1');
      expectError(res, 400, 'bad_request', 'a plain upload in an encrypted conversation');
      assert.match(res.text, /is not encrypted: this conversation is end-to-end encrypted/);
      res = await send(a, plainConv.id, 'x', [att.id], 'r-2');
      expectError(res, 400, 'bad_request', 'an encrypted upload in a plain conversation');
      assert.match(res.text, /may be attached only in an end-to-end encrypted conversation/);

      // Unknown, someone else's, an id of another kind (a message's), and not an id at all.
      res = await send(a, conv.id, await envelope('r-3', 'x', [{ ...entry, id: 'nosuchupload' }]), ['nosuchupload'], 'r-3');
      expectError(res, 404, 'not_found', 'unknown id');
      assert.match(res.text, /No upload of yours has the id/);
      const theirs = await sealedUpload(b, new Uint8Array(randomBytes(300)));
      res = await send(a, conv.id, await envelope('r-4', 'x', [theirs.entry]), [theirs.att.id], 'r-4');
      expectError(res, 404, 'not_found', "someone else's upload");
      const other = await send(a, conv.id, await envelope('r-5', 'just text', []), [], 'r-5');
      expectStatus(other, 201, 'a message');
      res = await send(a, conv.id, await envelope('r-6', 'x', [{ ...entry, id: other.body.message.id }]), [other.body.message.id], 'r-6');
      expectError(res, 404, 'not_found', "a message's id");
      res = await send(a, conv.id, await envelope('r-7', 'x', [entry]), [42], 'r-7');
      expectError(res, 400, 'bad_request', 'a number');
      res = await send(a, conv.id, await envelope('r-8', 'x', [entry, entry]), [att.id, att.id], 'r-8');
      expectError(res, 400, 'bad_request', 'twice');
      // Still pending and usable.
      expectStatus(await send(a, conv.id, await envelope('r-9', 'x', [entry]), [att.id], 'r-9'), 201, 'the upload, rightly');
    });

    test(`an envelope may be longer by each file's entry: ${MAX_ATTACHMENTS} files with the longest names and the longest body`, async () => {
      const entries: EnvelopeFile[] = [];
      for (let i = 0; i < MAX_ATTACHMENTS; i++) {
        const { entry } = await sealedUpload(a, new Uint8Array(randomBytes(20)), `${i}${'😀'.repeat(254)}`, 'application/vnd.openxmlformats-officedocument.wordprocessingml.document');
        entries.push(entry);
      }
      // The longest body the plain-text limit allows, of characters JSON writes as \u00XX.
      const body = '\u0001'.repeat(4000);
      const res = await send(a, conv.id, await envelope('long-1', body, entries), entries.map((e) => e.id), 'long-1');
      expectStatus(res, 201, 'the longest message with the most files');
      // The allowance comes with the files: the same envelope for a message that carries none is too long.
      const none = await send(a, conv.id, await envelope('long-2', body, entries), [], 'long-2');
      expectError(none, 413, 'too_large', 'an envelope longer than its files allow');
    });

    test("neither the file's bytes nor its name are in the media folder or the database; a plain file's are (the check can see them)", async () => {
      const marker = `TOPSECRET-${randomBytes(8).toString('hex')}`;
      const name = `plans-${randomBytes(6).toString('hex')}.txt`;
      const plain = new TextEncoder().encode(`${marker}\n`.repeat(50));
      const { att, entry } = await sealedUpload(a, plain, name);
      expectStatus(await send(a, conv.id, await envelope('s-1', 'see file', [entry]), [att.id], 's-1'), 201, 'send');
      const control = `CLEARTEXT-${randomBytes(8).toString('hex')}`;
      const controlName = `open-${randomBytes(6).toString('hex')}.txt`;
      const up = await upload(a, new TextEncoder().encode(control), { query: `?name=${controlName}`, type: 'text/plain' });
      expectStatus(up, 201, 'plain upload');
      expectStatus(await send(a, plainConv.id, 'plain file', [up.body.attachment.id], 's-2'), 201, 'plain send');

      const text = (await dataDirText(h)) + (await databaseText(h));
      assert.ok(text.includes(control), "a plain file's bytes are in the media folder");
      assert.ok(text.includes(controlName), "a plain file's name is in the database");
      assert.equal(text.includes(marker), false, "the encrypted file's bytes are nowhere in the clear");
      assert.equal(text.includes(name), false, "the encrypted file's name is nowhere");
    });
  });
}

encryptedAttachments('SQLite', () => Harness.start(CONFIG), async () => '');

const pgSkip = await postgresMissing();
const schemas = testSchemas(pgSkip);
const pgSchema = schemas.fresh('e2eatt');
encryptedAttachments(
  'PostgreSQL',
  () => Harness.start({ ...CONFIG, databaseUrl: POSTGRES_URL, databaseSchema: pgSchema }),
  () => schemas.allRowsText(pgSchema),
  pgSkip,
);
