/**
 * Files in end-to-end encrypted conversations through the SDK (R14 × R18),
 * against a real server: a file is encrypted before it goes, the other user
 * sees its real name, type and size and reads it back byte-identical, the
 * server holds and sends only ciphertext and opaque references; a device
 * signed in later reads the file once the message is edited, live and after
 * a restart (an edit carries the keys again); tampered bytes, a swapped id, and references the server
 * swapped under a message are refused; a plain upload is not sent there.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createNodeClient } from '../../src/client/node.js';
import { E2eFileError, ParleyError, type Attachment, type ConversationState, type Message, type ParleyClient } from '../../src/client/index.js';
import { SuiteClients, TestServer, keysPublished, until, untilRead } from './_helpers.js';
import { filesUnder } from '../helpers/fs.js';

const bytesOf = async (b: Blob): Promise<Uint8Array> => new Uint8Array(await b.arrayBuffer());

describe('SDK: files in end-to-end encrypted conversations', () => {
  let server: TestServer;
  const clients = new SuiteClients(() => server.url);
  const user = (prefix: string): Promise<{ client: ParleyClient; username: string }> => clients.user(prefix);
  const device = (username: string, storagePath?: string): Promise<ParleyClient> => clients.device(username, storagePath);
  before(async () => {
    server = await TestServer.start({ maxAttachmentBytes: 512 * 1024, attachmentTypes: 'image/*,application/pdf,text/plain', attachmentSweepMs: 0 });
  });
  after(async () => {
    await clients.close();
    await server.cleanup();
  });

  /** Two users with published keys and their encrypted direct conversation, seen by both. */
  async function pair(tag: string): Promise<{ alice: ParleyClient; bob: ParleyClient; bobName: string; conv: ConversationState }> {
    const a = await user(`${tag}a`);
    const b = await user(`${tag}b`);
    await keysPublished(a.client, 1);
    await keysPublished(b.client, 1);
    const conv = await a.client.startDirect(b.client.user?.id as string, { encrypted: true });
    await until(() => !!b.client.conversation(conv.id), 5000, 'bob sees the conversation');
    return { alice: a.client, bob: b.client, bobName: b.username, conv };
  }
  async function received(c: ParleyClient, conversationId: string, body: string): Promise<Message> {
    await untilRead(c, conversationId, () => c.messages(conversationId).some((m) => m.body === body), 8000, `"${body}" read`);
    return c.messages(conversationId).find((m) => m.body === body) as Message;
  }
  /** The path of an upload's bytes in the server's local media folder. */
  async function blobPath(id: string): Promise<string> {
    const found = (await filesUnder(server.dataDir)).filter((p) => p.endsWith(`/${id}`) && p.includes('/a/'));
    assert.equal(found.length, 1, `one blob for ${id}: ${found.join(', ')}`);
    return found[0] as string;
  }

  it('two users: files sent encrypted arrive with their real name, type and size and read back byte-identical; the server has only ciphertext', async () => {
    const { alice, bob, conv } = await pair('f');
    const doc = new Uint8Array(randomBytes(200_000));
    const note = new TextEncoder().encode(`meet at the mill ${randomBytes(6).toString('hex')}`);
    const pdf = await alice.upload(doc, { conversationId: conv.id, type: 'application/pdf', name: 'plans/Q3 plan.pdf' });
    assert.deepEqual(
      { ...pdf, id: '', createdAt: 0, e2e: undefined },
      { id: '', type: 'application/pdf', name: 'Q3 plan.pdf', size: doc.length, encrypted: true, createdAt: 0, e2e: undefined },
      'the real facts, the name without folders',
    );
    assert.ok(pdf.e2e && pdf.e2e.key.length === 43 && pdf.e2e.iv.length === 16 && pdf.e2e.sha256.length === 43, 'and the key');
    const txt = await alice.upload(new Blob([note], { type: 'text/plain' }), { conversationId: conv.id, name: 'note.txt' });
    await alice.send(conv.id, 'two files', { attachments: [pdf, txt] });

    const got = await received(bob, conv.id, 'two files');
    assert.equal(got.e2e?.ok, true);
    assert.deepEqual(got.attachments?.map((a) => [a.id, a.name, a.type, a.size, a.encrypted]), [
      [pdf.id, 'Q3 plan.pdf', 'application/pdf', doc.length, true],
      [txt.id, 'note.txt', 'text/plain', note.length, true],
    ]);
    const [gotPdf, gotTxt] = got.attachments as [Attachment, Attachment];
    const blob = await bob.openAttachment(gotPdf);
    assert.equal(blob.type, 'application/pdf');
    assert.deepEqual(await bytesOf(blob), doc, 'byte-identical');
    assert.deepEqual(await bytesOf(await bob.openAttachment(gotTxt)), note);
    // The sender's own copy, as acknowledged and read back from its envelope.
    const own = await received(alice, conv.id, 'two files');
    assert.deepEqual(await bytesOf(await alice.openAttachment(own.attachments?.[0] as Attachment)), doc);

    // The server: opaque references, ciphertext bytes, and an envelope without the names in the clear.
    const [raw] = (await bob.api.messages(conv.id, { limit: 1 })).messages;
    assert.deepEqual(raw?.attachments?.map((a) => [a.type, a.name, a.size, a.encrypted]), [
      ['application/octet-stream', 'file', doc.length + 16, true],
      ['application/octet-stream', 'file', note.length + 16, true],
    ]);
    assert.ok(raw && !raw.body.includes('Q3 plan') && !raw.body.includes('note.txt'));
    const stored = await readFile(await blobPath(txt.id));
    assert.equal(stored.length, note.length + 16);
    assert.equal(stored.includes(Buffer.from(note)), false, 'the media folder holds ciphertext');
  });

  it('a device signed in after the file was sent cannot read it, and reads it once the sender edits the message, live and after a restart', async () => {
    const { alice, bobName, conv } = await pair('late');
    const photo = new Uint8Array(randomBytes(3000));
    const img = await alice.upload(photo, { conversationId: conv.id, type: 'image/png', name: 'p.png', width: 40, height: 30 });
    await alice.send(conv.id, 'a photo', { attachments: [img] });
    const sent = await received(alice, conv.id, 'a photo');
    const later = await device(bobName);
    await until(() => !!later.conversation(conv.id), 5000, 'the new device has the conversation');
    await keysPublished(later, 2);
    await untilRead(later, conv.id, () => later.messages(conv.id).some((m) => m.id === sent.id), 8000, 'the new device has the message');
    const before = later.messages(conv.id).find((m) => m.id === sent.id);
    assert.equal(before?.e2e?.reason, 'not-for-this-device');
    assert.equal(before?.attachments, undefined, 'no opaque references shown');

    // The edit's envelope carries the file's key again: the device reads both, live.
    await alice.edit(sent.id, 'a photo (from the garden)');
    const live = await received(later, conv.id, 'a photo (from the garden)');
    assert.deepEqual(live.attachments?.map((a) => [a.name, a.type, a.size, a.width, a.height]), [['p.png', 'image/png', photo.length, 40, 30]]);
    assert.deepEqual(await bytesOf(await later.openAttachment(live.attachments?.[0] as Attachment)), photo);

    // A device signed in now, offline while the message is edited again, reads the text and the file once back.
    const path = join(server.dataDir, `${bobName}-offline.json`);
    const offline = await device(bobName, path);
    await keysPublished(offline, 3);
    await offline.close();
    await alice.edit(sent.id, 'a photo (from the garden, 2)');
    const back = clients.track(createNodeClient({ url: server.url, storagePath: path, backoffMinMs: 50 }));
    assert.equal(await back.restore(), true);
    const m = await received(back, conv.id, 'a photo (from the garden, 2)');
    assert.deepEqual(m.attachments?.map((a) => [a.name, a.type, a.size, a.width, a.height]), [['p.png', 'image/png', photo.length, 40, 30]]);
    assert.deepEqual(await bytesOf(await back.openAttachment(m.attachments?.[0] as Attachment)), photo);
  });

  it('tampered bytes and a swapped id are refused; references the server swapped under a message make it unreadable', async () => {
    const { alice, bob, conv } = await pair('t');
    const one = new Uint8Array(randomBytes(1000));
    const two = new Uint8Array(randomBytes(1000));
    const a1 = await alice.upload(one, { conversationId: conv.id, type: 'text/plain', name: 'one.txt' });
    const a2 = await alice.upload(two, { conversationId: conv.id, type: 'text/plain', name: 'two.txt' });
    await alice.send(conv.id, 'first', { attachments: [a1] });
    await alice.send(conv.id, 'second', { attachments: [a2] });
    const m1 = await received(bob, conv.id, 'first');
    const m2 = await received(bob, conv.id, 'second');
    const f1 = m1.attachments?.[0] as Attachment;
    const f2 = m2.attachments?.[0] as Attachment;
    assert.deepEqual(await bytesOf(await bob.openAttachment(f1)), one, 'untouched, it reads');

    // A swapped id: the other file's bytes under this file's key.
    await assert.rejects(bob.openAttachment({ ...f1, id: f2.id }), (e: unknown) => e instanceof E2eFileError && e.reason === 'tampered');
    // The right key with another file's hash: decrypts, but is not the file the message names.
    await assert.rejects(
      bob.openAttachment({ ...f1, e2e: { ...(f1.e2e as NonNullable<Attachment['e2e']>), sha256: (f2.e2e as NonNullable<Attachment['e2e']>).sha256 } }),
      (e: unknown) => e instanceof E2eFileError && e.reason === 'wrong-file',
    );
    // Tampered ciphertext on the server's disk: one bit of the stored file flipped.
    const path = await blobPath(f1.id);
    const stored = await readFile(path);
    stored[100] = (stored[100] as number) ^ 1;
    await writeFile(path, stored);
    await assert.rejects(bob.openAttachment(f1), (e: unknown) => e instanceof E2eFileError && e.reason === 'tampered');

    // The server hands out the second message with the first one's upload (the same size) in its references.
    const [raw] = (await bob.api.messages(conv.id, { limit: 1 })).messages;
    assert.ok(raw && raw.id === m2.id);
    const seq = (bob.conversation(conv.id)?.position ?? 0) + 1;
    const forged: Message = { ...raw, id: 'forged-1', seq, attachments: [{ ...(raw.attachments?.[0] as Attachment), id: f1.id }] };
    bob.handleFrame({ type: 'event', event: { conversationId: conv.id, seq, kind: 'message.created', at: raw.createdAt, actorId: raw.senderId, message: forged } });
    await until(() => !!bob.messageById(conv.id, 'forged-1'), 5000, 'forged message applied');
    const seen = bob.messageById(conv.id, 'forged-1');
    assert.deepEqual([seen?.body, seen?.e2e?.ok, seen?.e2e?.reason, seen?.attachments], ['', false, 'wrong-attachments', undefined]);
  });

  it('a plain upload is not sent to an encrypted conversation: the message fails with the reason, never goes in the clear', async () => {
    const { alice, conv } = await pair('p');
    const plain = await alice.upload(new TextEncoder().encode('in the clear'), { type: 'text/plain', name: 'clear.txt' });
    assert.equal(plain.encrypted, undefined);
    const item = await alice.send(conv.id, 'with a plain file', { attachments: [plain] });
    await until(() => alice.outbox(conv.id)[0]?.state === 'failed', 5000, 'refused');
    assert.match(alice.outbox(conv.id)[0]?.error ?? '', /was not encrypted/);
    await alice.discard(item.clientId);
    // And what the server cannot check, the SDK does: the size limit and the type list, before anything goes.
    await assert.rejects(
      alice.upload(new Uint8Array(512 * 1024), { conversationId: conv.id, type: 'text/plain', name: 'big.txt' }),
      (e: unknown) => e instanceof ParleyError && e.code === 'too_large',
    );
    await assert.rejects(
      alice.upload(new Uint8Array(10), { conversationId: conv.id, type: 'application/zip', name: 'x.zip' }),
      (e: unknown) => e instanceof ParleyError && e.code === 'bad_request' && /application\/zip/.test(e.message),
    );
  });
});
