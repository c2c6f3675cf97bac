/**
 * The Store port's attachment part (R14), shared by every engine through
 * `attachmentStoreSuite`: uploads, messages that carry them, who may read
 * them, and what the sweeper may delete. Like the main store suite it uses
 * only the port and fresh ids, so engines on a shared database run it too.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { StoreError, type AppendResult, type AttachmentRecord, type Store } from '../../src/core/ports/store.js';
import type { Attachment, Id, Message } from '../../src/protocol/model.js';
import { IdGenerator } from '../../src/core/ids.js';

const T0 = 1_700_000_000_000;
const uid = (tag: string): Id => `${tag}-${randomUUID()}`;
const ids = new IdGenerator(`att-${randomUUID()}`);

const isNotFound = (err: unknown): boolean => {
  assert.ok(err instanceof StoreError, `expected StoreError('not_found'), got ${String(err)}`);
  assert.equal(err.code, 'not_found');
  return true;
};

/** What a message carries of an upload (as the core builds it). */
const ref = (a: AttachmentRecord): Attachment => {
  const r: Attachment = { id: a.id, type: a.type, name: a.name, size: a.size };
  if (a.width !== undefined && a.height !== undefined) {
    r.width = a.width;
    r.height = a.height;
  }
  if (a.thumbnail) r.thumbnail = { ...a.thumbnail };
  if (a.encrypted) r.encrypted = true;
  return r;
};

export function attachmentStoreSuite(name: string, open: () => Promise<Store>, dispose: (s: Store) => Promise<void>): void {
  describe(`Store port, attachments: ${name}`, () => {
    let s: Store;
    beforeEach(async () => {
      s = await open();
    });
    afterEach(async () => {
      await dispose(s);
    });

    async function user(): Promise<Id> {
      const id = uid('user');
      await s.users.create({ id, username: `a${randomBytes(6).toString('hex')}`, displayName: 'A', createdAt: T0, passwordHash: 'h' });
      return id;
    }
    async function group(members: Id[]): Promise<Id> {
      const id = uid('conv');
      await s.conversations.create({ id, kind: 'group', title: 'G', members: members.map((userId, i) => ({ userId, role: i === 0 ? 'owner' : 'member' })), at: T0 });
      return id;
    }
    async function upload(uploaderId: Id, more: Partial<AttachmentRecord> = {}): Promise<AttachmentRecord> {
      const a: AttachmentRecord = {
        id: ids.next(),
        uploaderId,
        type: 'image/png',
        name: 'photo.png',
        size: 12345,
        sha256: randomBytes(32).toString('hex'),
        width: 640,
        height: 480,
        thumbnail: { width: 320, height: 240 },
        createdAt: T0 + 10,
        ...more,
      };
      for (const k of Object.keys(a) as (keyof AttachmentRecord)[]) if (a[k] === undefined) delete a[k];
      await s.attachments.create(a);
      return a;
    }
    function send(conversationId: Id, actorId: Id, attachments?: Attachment[], opts: { body?: string; clientId?: string; at?: number } = {}): Promise<AppendResult> {
      const message = { id: ids.next(), clientId: opts.clientId ?? uid('c'), body: opts.body ?? '', ...(attachments ? { attachments } : {}) };
      return s.events.append({ kind: 'message.created', conversationId, actorId, at: opts.at ?? T0 + 100, message });
    }
    async function sent(conversationId: Id, actorId: Id, attachments?: Attachment[]): Promise<Message> {
      const r = await send(conversationId, actorId, attachments);
      assert.equal(r.status, 'appended');
      assert.ok(r.message);
      return r.message;
    }
    const lastSeq = async (conv: Id): Promise<number> => (await s.conversations.get(conv))?.lastSeq ?? -1;
    const readable = async (id: Id, userId: Id): Promise<boolean> => (await s.attachments.readable(id, userId)) !== undefined;
    const FUTURE = Date.now() + 3600_000;

    it('keeps an upload as recorded; only its uploader may read or attach it while pending', async () => {
      const [a, b] = [await user(), await user()];
      const doc = await upload(a, { type: 'application/pdf', name: 'report.pdf', width: undefined, height: undefined, thumbnail: undefined });
      const img = await upload(a);
      assert.deepEqual(await s.attachments.readable(doc.id, a), doc);
      assert.deepEqual(await s.attachments.readable(img.id, a), img);
      assert.equal(await s.attachments.readable(doc.id, b), undefined, 'someone else');
      assert.equal(await s.attachments.readable(uid('nothing'), a), undefined, 'unknown');
      const usable = await s.attachments.usable(a, [img.id, uid('nothing'), doc.id]);
      assert.deepEqual(usable.sort((x, y) => (x.id < y.id ? -1 : 1)), [doc, img].sort((x, y) => (x.id < y.id ? -1 : 1)));
      assert.deepEqual(await s.attachments.usable(b, [img.id, doc.id]), [], "not another user's");
      assert.deepEqual(await s.attachments.usable(a, []), []);
    });

    it('keeps an encrypted upload (R18) as recorded, told apart from a plain one everywhere it is read, and carries its reference as given', async () => {
      const [a, b] = [await user(), await user()];
      const conv = await group([a, b]);
      const opaque = { type: 'application/octet-stream', name: 'file', width: undefined, height: undefined, thumbnail: undefined } as const;
      const enc = await upload(a, { ...opaque, size: 4116, encrypted: true });
      const plain = await upload(a, opaque);
      assert.equal('encrypted' in plain, false, 'a plain upload has no field');
      assert.deepEqual(await s.attachments.readable(enc.id, a), enc, 'read back encrypted');
      assert.deepEqual(await s.attachments.readable(plain.id, a), plain, 'read back plain');
      const usable = new Map((await s.attachments.usable(a, [enc.id, plain.id])).map((r) => [r.id, r]));
      assert.deepEqual(usable.get(enc.id), enc);
      assert.deepEqual(usable.get(plain.id), plain);
      const m = await sent(conv, a, [ref(enc)]);
      assert.deepEqual(m.attachments, [{ id: enc.id, type: 'application/octet-stream', name: 'file', size: 4116, encrypted: true }]);
      assert.deepEqual((await s.events.messages(conv, { limit: 10 })).messages.at(-1)?.attachments, [ref(enc)], 'as history reads it');
      assert.deepEqual(await s.attachments.readable(enc.id, b), enc, 'a member reads the record, still encrypted');
    });

    it('refuses an upload by a user who does not exist', async () => {
      await assert.rejects(upload(uid('ghost')), isNotFound);
    });

    it('gives a message its attachments everywhere it is read, and lets members read them', async () => {
      const [a, b, stranger] = [await user(), await user(), await user()];
      const conv = await group([a, b]);
      const img = await upload(a);
      const doc = await upload(a, { type: 'text/plain', name: 'notes.txt', size: 9, width: undefined, height: undefined, thumbnail: undefined });
      const plain = await sent(conv, b);
      assert.equal('attachments' in plain, false, 'a message without attachments has no field');
      const r = await send(conv, a, [ref(img), ref(doc)], { body: '' });
      assert.equal(r.status, 'appended');
      const m = r.message;
      assert.ok(m && r.status === 'appended');
      assert.deepEqual(m.attachments, [ref(img), ref(doc)], 'in order, as given');
      assert.equal(m.body, '');
      assert.ok(r.event.kind === 'message.created');
      assert.deepEqual(r.event.message.attachments, [ref(img), ref(doc)], 'the event too');
      assert.deepEqual((await s.events.message(m.id))?.attachments, [ref(img), ref(doc)]);
      const page = await s.events.messages(conv, { limit: 10 });
      assert.deepEqual(page.messages.map((x) => x.attachments), [undefined, [ref(img), ref(doc)]]);
      const log = await s.events.after(conv, 0, 10);
      const created = log.find((e) => e.kind === 'message.created' && e.message.id === m.id);
      assert.ok(created?.kind === 'message.created');
      assert.deepEqual(created.message.attachments, [ref(img), ref(doc)], 'the log as replayed by sync');
      assert.deepEqual((await s.conversations.getFor(conv, b))?.lastMessage?.attachments, [ref(img), ref(doc)], 'the list preview');
      for (const who of [a, b]) {
        assert.ok(await readable(img.id, who), 'member or uploader reads the image');
        assert.ok(await readable(doc.id, who), 'member or uploader reads the document');
      }
      assert.equal(await readable(img.id, stranger), false, 'a stranger does not');
      assert.deepEqual((await s.attachments.usable(a, [img.id])).map((x) => x.id), [img.id], 'an attached upload may go into another message');
      assert.deepEqual(await s.attachments.unreferenced(FUTURE, 100).then((xs) => xs.filter((x) => x === img.id || x === doc.id)), [], 'not for the sweeper');
      assert.equal(await s.attachments.remove(img.id, FUTURE), false);
    });

    it("refuses a message with another user's upload, an unknown one, or one twice, and writes nothing", async () => {
      const [a, b] = [await user(), await user()];
      const conv = await group([a, b]);
      const bobs = await upload(b);
      const mine = await upload(a);
      const before = await lastSeq(conv);
      await assert.rejects(send(conv, a, [ref(mine), ref(bobs)]), isNotFound);
      await assert.rejects(send(conv, a, [{ ...ref(mine), id: uid('nothing') }]), isNotFound);
      await assert.rejects(send(conv, a, [ref(mine), ref(mine)]), isNotFound);
      assert.equal(await lastSeq(conv), before, 'no seq used');
      assert.equal(await readable(mine.id, b), false, 'nothing referenced');
      assert.deepEqual((await s.attachments.usable(a, [mine.id])).map((x) => x.id), [mine.id], 'still pending');
      const ok = await sent(conv, a, [ref(mine)]);
      assert.equal(ok.seq, before + 1);
    });

    it('answers a retried clientId with the original message and references nothing twice', async () => {
      const a = await user();
      const conv = await group([a]);
      const img = await upload(a);
      const first = await send(conv, a, [ref(img)], { clientId: 'same' });
      const again = await send(conv, a, [ref(img)], { clientId: 'same' });
      assert.equal(again.status, 'unchanged');
      assert.equal(again.message?.id, first.message?.id);
      assert.deepEqual(again.message?.attachments, [ref(img)]);
      assert.equal(await lastSeq(conv), 1);
    });

    it('drops the attachments of a deleted message: no one may read them, the uploader included, and the sweeper may take them', async () => {
      const [a, b] = [await user(), await user()];
      const conv = await group([a, b]);
      const img = await upload(a);
      const m = await sent(conv, a, [ref(img)]);
      const del = await s.events.append({ kind: 'message.deleted', conversationId: conv, actorId: a, at: T0 + 200, messageId: m.id });
      assert.equal(del.status, 'appended');
      assert.equal(del.message?.attachments, undefined, 'the deleted message carries none');
      assert.equal((await s.events.message(m.id))?.attachments, undefined);
      const created = (await s.events.after(conv, 0, 10)).find((e) => e.kind === 'message.created');
      assert.ok(created?.kind === 'message.created');
      assert.equal(created.message.attachments, undefined, 'nor its created event as replayed');
      assert.equal(await readable(img.id, b), false, 'member');
      assert.equal(await readable(img.id, a), false, 'uploader');
      assert.deepEqual(await s.attachments.usable(a, [img.id]), [], 'released: not attachable again');
      await assert.rejects(send(conv, a, [ref(img)]), isNotFound);
      assert.ok((await s.attachments.unreferenced(FUTURE, 1000)).includes(img.id), 'for the sweeper');
      assert.equal(await s.attachments.remove(img.id, FUTURE), true);
      assert.equal(await s.attachments.remove(img.id, FUTURE), false, 'once');
      assert.equal(await s.attachments.readable(img.id, a), undefined);
    });

    it('keeps an upload readable while another message still carries it', async () => {
      const [a, b, c] = [await user(), await user(), await user()];
      const one = await group([a, b]);
      const two = await group([a, c]);
      const img = await upload(a);
      const m1 = await sent(one, a, [ref(img)]);
      await sent(two, a, [ref(img)]);
      assert.ok(await readable(img.id, b));
      assert.ok(await readable(img.id, c));
      await s.events.append({ kind: 'message.deleted', conversationId: one, actorId: a, at: T0 + 300, messageId: m1.id });
      assert.equal(await readable(img.id, b), false, 'not through the deleted message');
      assert.ok(await readable(img.id, c), 'still through the other');
      assert.ok(await readable(img.id, a), 'and its uploader');
      assert.equal((await s.attachments.unreferenced(FUTURE, 1000)).includes(img.id), false);
    });

    it('lets members read only while they are members', async () => {
      const [a, b] = [await user(), await user()];
      const conv = await group([a, b]);
      const img = await upload(a);
      await sent(conv, a, [ref(img)]);
      assert.ok(await readable(img.id, b));
      await s.events.append({ kind: 'member.left', conversationId: conv, actorId: b, at: T0 + 400, userId: b });
      assert.equal(await readable(img.id, b), false);
    });

    it('releases the attachments of messages retention clears', async () => {
      const [a, b] = [await user(), await user()];
      const conv = await group([a, b]);
      const img = await upload(a);
      await send(conv, a, [ref(img)], { at: T0 + 100 });
      await send(conv, a, undefined, { at: T0 + 10_000, body: 'later' });
      const through = await s.retention.clear(conv, T0 + 5000, 100);
      assert.equal(through, 1);
      assert.equal(await readable(img.id, b), false);
      assert.equal(await readable(img.id, a), false);
      assert.ok((await s.attachments.unreferenced(FUTURE, 1000)).includes(img.id));
    });

    it('lists pending uploads for the sweeper only once they are older than the cutoff, oldest first, and removes only those', async () => {
      const a = await user();
      const conv = await group([a]);
      const t = Date.now();
      const old1 = await upload(a, { createdAt: t - 5000 });
      const old2 = await upload(a, { createdAt: t - 4000 });
      const recent = await upload(a, { createdAt: t });
      const attached = await upload(a, { createdAt: t - 6000 });
      await sent(conv, a, [ref(attached)]);
      const listed = (await s.attachments.unreferenced(t - 1000, 1000)).filter((id) => [old1.id, old2.id, recent.id, attached.id].includes(id));
      assert.deepEqual(listed, [old1.id, old2.id]);
      assert.deepEqual(
        (await s.attachments.unreferenced(t - 4500, 1000)).filter((id) => [old1.id, old2.id].includes(id)),
        [old1.id],
        'strictly before the cutoff',
      );
      assert.equal(await s.attachments.remove(recent.id, t - 1000), false, 'too recent');
      assert.equal(await s.attachments.remove(attached.id, FUTURE), false, 'attached');
      assert.equal(await s.attachments.remove(old1.id, t - 1000), true);
      assert.equal(await s.attachments.readable(old1.id, a), undefined);
      assert.ok(await readable(recent.id, a));
      assert.ok(await readable(attached.id, a));
    });
  });
}
