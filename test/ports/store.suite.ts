/**
 * The Store port's shared test suite: every engine (SQLite, PostgreSQL) runs it
 * through `storeSuite`. It uses only the Store interface, and it never assumes
 * an empty database: every id, username and token is fresh, so engines whose
 * `open` returns a connection to a shared database can run it too.
 *
 * `open` is called before each test and `dispose` after it; `dispose` may get a
 * store that the test already closed.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { StoreError, type AppendInput, type AppendResult, type SearchPage, type SearchQuery, type Store } from '../../src/core/ports/store.js';
import type { ConversationEvent, Id, Message, Role } from '../../src/protocol/model.js';
import { IdGenerator } from '../../src/core/ids.js';

const T0 = 1_700_000_000_000;

const uid = (tag: string): Id => `${tag}-${randomUUID()}`;
/** Message ids as the core makes them: they sort by creation time, which search engines may rely on (SearchStore). */
const messageIds = new IdGenerator(`suite-${randomUUID()}`);
const word = (): string => randomBytes(6).toString('hex');

function isStoreError(code: StoreError['code']): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected StoreError('${code}'), got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

function appended(r: AppendResult): Extract<AppendResult, { status: 'appended' }> {
  assert.equal(r.status, 'appended');
  return r as Extract<AppendResult, { status: 'appended' }>;
}

function messageOf(r: AppendResult): Message {
  assert.ok(r.message, 'the result carries the message');
  return r.message;
}

const byUserId = <T extends { userId: Id }>(xs: T[]): T[] => [...xs].sort((a, b) => (a.userId < b.userId ? -1 : 1));

export function storeSuite(name: string, open: () => Promise<Store>, dispose: (s: Store) => Promise<void>): void {
  describe(`Store port: ${name}`, () => {
    let s: Store;
    beforeEach(async () => {
      s = await open();
    });
    afterEach(async () => {
      await dispose(s);
    });

    async function user(prefix = 'u'): Promise<Id> {
      const id = uid('user');
      await s.users.create({ id, username: `${prefix}${word()}`, displayName: 'Someone', createdAt: T0, passwordHash: 'hash' });
      return id;
    }

    async function users(n: number): Promise<Id[]> {
      const out: Id[] = [];
      for (let i = 0; i < n; i++) out.push(await user());
      return out;
    }

    async function group(members: Id[], at = T0, title = 'Group'): Promise<Id> {
      const id = uid('conv');
      const roles = members.map((userId, i): { userId: Id; role: Role } => ({ userId, role: i === 0 ? 'owner' : 'member' }));
      const { created } = await s.conversations.create({ id, kind: 'group', title, members: roles, at });
      assert.equal(created, true);
      return id;
    }

    function send(conversationId: Id, actorId: Id, body: string, at = T0 + 1, more: { clientId?: string; replyTo?: Id } = {}): Promise<AppendResult> {
      const message: { id: Id; clientId: string; body: string; replyTo?: Id } = { id: messageIds.next(), clientId: more.clientId ?? uid('c'), body };
      if (more.replyTo !== undefined) message.replyTo = more.replyTo;
      return s.events.append({ kind: 'message.created', conversationId, actorId, at, message });
    }

    async function sent(conversationId: Id, actorId: Id, body: string, at?: number): Promise<Message> {
      return messageOf(appended(await send(conversationId, actorId, body, at)));
    }

    async function lastSeq(conversationId: Id): Promise<number> {
      const c = await s.conversations.get(conversationId);
      assert.ok(c);
      return c.lastSeq;
    }

    describe('users', () => {
      it('stores the username lower-case and finds it by username in any case, with the password hash', async () => {
        const id = uid('user');
        const name = `MiXeD${word()}`;
        const u = await s.users.create({ id, username: name, displayName: 'Mixed Case', createdAt: T0, passwordHash: 'h1' });
        assert.deepEqual(u, { id, username: name.toLowerCase(), displayName: 'Mixed Case', createdAt: T0 });
        assert.deepEqual(await s.users.byUsername(name.toUpperCase()), { ...u, passwordHash: 'h1' });
        assert.equal(await s.users.byUsername(`nobody${word()}`), undefined);
      });

      it('rejects a taken username with conflict, whatever its case', async () => {
        const name = `taken${word()}`;
        await s.users.create({ id: uid('user'), username: name, displayName: 'A', createdAt: T0, passwordHash: 'h' });
        await assert.rejects(
          s.users.create({ id: uid('user'), username: name.toUpperCase(), displayName: 'B', createdAt: T0, passwordHash: 'h' }),
          isStoreError('conflict'),
        );
      });

      it('finds public users by id and by ids, leaving unknown ids out', async () => {
        const [a, b] = await users(2);
        assert.ok(a && b);
        const ua = await s.users.byId(a);
        assert.ok(ua);
        assert.deepEqual(Object.keys(ua).sort(), ['createdAt', 'displayName', 'id', 'username']);
        assert.equal(await s.users.byId(uid('nobody')), undefined);
        const found = await s.users.byIds([b, uid('nobody'), a]);
        assert.deepEqual(found.map((u) => u.id).sort(), [a, b].sort());
        assert.deepEqual(await s.users.byIds([]), []);
      });

      it('searches usernames by prefix in ascending order, paged by a keyset on the username', async () => {
        const prefix = `s${word()}`;
        for (const suffix of ['e', 'a', 'd', 'b', 'c']) {
          await s.users.create({ id: uid('user'), username: `${prefix}${suffix}`, displayName: suffix, createdAt: T0, passwordHash: 'h' });
        }
        await user(`t${word()}`);
        const p1 = await s.users.search(prefix, 2);
        assert.deepEqual(p1.map((u) => u.username), [`${prefix}a`, `${prefix}b`]);
        const p2 = await s.users.search(prefix, 2, p1[1]?.username);
        assert.deepEqual(p2.map((u) => u.username), [`${prefix}c`, `${prefix}d`]);
        const p3 = await s.users.search(prefix, 2, p2[1]?.username);
        assert.deepEqual(p3.map((u) => u.username), [`${prefix}e`]);
        assert.equal('passwordHash' in (p3[0] ?? {}), false);
        assert.deepEqual(await s.users.search(`${prefix}z`, 10), []);
      });
    });

    describe('devices and refresh tokens', () => {
      it('returns a device as created, and touch and revoke change it', async () => {
        const userId = await user();
        const id = uid('dev');
        await s.devices.create({ id, userId, name: 'Laptop', createdAt: T0, lastActiveAt: T0 });
        assert.deepEqual(await s.devices.get(id), { id, userId, name: 'Laptop', createdAt: T0, lastActiveAt: T0 });
        await s.devices.touch(id, T0 + 50);
        assert.equal((await s.devices.get(id))?.lastActiveAt, T0 + 50);
        await s.devices.revoke(id, T0 + 60);
        assert.equal((await s.devices.get(id))?.revokedAt, T0 + 60);
        assert.equal(await s.devices.get(uid('dev')), undefined);
      });

      it('lists the active devices of a user newest first, without revoked ones or other users', async () => {
        const [u, other] = await users(2);
        assert.ok(u && other);
        const ids = [uid('dev'), uid('dev'), uid('dev')];
        for (const [i, id] of ids.entries()) {
          await s.devices.create({ id, userId: u, name: `d${i}`, createdAt: T0 + i, lastActiveAt: T0 + i });
        }
        await s.devices.create({ id: uid('dev'), userId: other, name: 'x', createdAt: T0 + 9, lastActiveAt: T0 + 9 });
        await s.devices.revoke(ids[1] as Id, T0 + 10);
        assert.deepEqual((await s.devices.listActive(u)).map((d) => d.id), [ids[2], ids[0]]);
      });

      it('spends a refresh token once: ok, then reused, for the same device', async () => {
        const userId = await user();
        const deviceId = uid('dev');
        await s.devices.create({ id: deviceId, userId, name: 'Phone', createdAt: T0, lastActiveAt: T0 });
        const token = word() + word();
        await s.devices.addRefreshToken(token, deviceId, T0 + 1000);
        assert.deepEqual(await s.devices.spendRefreshToken(token, T0 + 10), { outcome: 'ok', deviceId });
        assert.deepEqual(await s.devices.spendRefreshToken(token, T0 + 20), { outcome: 'reused', deviceId });
        // A replay stays a replay after expiry, so it is always detected.
        assert.deepEqual(await s.devices.spendRefreshToken(token, T0 + 5000), { outcome: 'reused', deviceId });
      });

      it('reports a refresh token past expiresAt as expired, and an unknown one as undefined', async () => {
        const userId = await user();
        const deviceId = uid('dev');
        await s.devices.create({ id: deviceId, userId, name: 'Phone', createdAt: T0, lastActiveAt: T0 });
        const token = word() + word();
        await s.devices.addRefreshToken(token, deviceId, T0 + 1000);
        assert.deepEqual(await s.devices.spendRefreshToken(token, T0 + 1001), { outcome: 'expired', deviceId });
        assert.equal(await s.devices.spendRefreshToken(word() + word(), T0), undefined);
      });

      it('gives ok to exactly one of many concurrent spends of the same token', async () => {
        const userId = await user();
        const deviceId = uid('dev');
        await s.devices.create({ id: deviceId, userId, name: 'Phone', createdAt: T0, lastActiveAt: T0 });
        const token = word() + word();
        await s.devices.addRefreshToken(token, deviceId, T0 + 1000);
        const outcomes = await Promise.all(Array.from({ length: 50 }, () => s.devices.spendRefreshToken(token, T0 + 1)));
        assert.equal(outcomes.filter((o) => o?.outcome === 'ok').length, 1);
        assert.equal(outcomes.filter((o) => o?.outcome === 'reused').length, 49);
      });
    });

    describe('conversations', () => {
      it('creates a group with its title, members and roles, lastSeq 0, and reads it back', async () => {
        const [a, b, c] = await users(3);
        assert.ok(a && b && c);
        const id = uid('conv');
        const members = [
          { userId: a, role: 'owner' as const },
          { userId: b, role: 'admin' as const },
          { userId: c, role: 'member' as const },
        ];
        const { conversation, created } = await s.conversations.create({ id, kind: 'group', title: 'Team', members, at: T0 });
        assert.equal(created, true);
        const expected = byUserId(members.map((m) => ({ ...m, lastReadSeq: 0 })));
        assert.deepEqual({ ...conversation, members: byUserId(conversation.members) }, {
          id, kind: 'group', title: 'Team', members: expected, lastSeq: 0, createdAt: T0, updatedAt: T0,
        });
        const got = await s.conversations.get(id);
        assert.ok(got);
        assert.deepEqual({ ...got, members: byUserId(got.members) }, { ...conversation, members: expected });
        assert.deepEqual(byUserId(await s.conversations.members(id)), expected);
        assert.equal(await s.conversations.get(uid('conv')), undefined);
      });

      it('rejects a conversation id that is taken with conflict', async () => {
        const [a] = await users(1);
        assert.ok(a);
        const id = await group([a]);
        await assert.rejects(
          s.conversations.create({ id, kind: 'group', title: 'again', members: [{ userId: a, role: 'owner' }], at: T0 }),
          isStoreError('conflict'),
        );
      });

      it('creates a direct pair once: a second create, in either order, returns the first with created=false', async () => {
        const [a, b] = await users(2);
        assert.ok(a && b);
        const first = await s.conversations.create({
          id: uid('conv'), kind: 'direct', members: [{ userId: a, role: 'member' }, { userId: b, role: 'member' }], at: T0,
        });
        assert.equal(first.created, true);
        const again = await s.conversations.create({
          id: uid('conv'), kind: 'direct', members: [{ userId: b, role: 'member' }, { userId: a, role: 'member' }], at: T0 + 5,
        });
        assert.equal(again.created, false);
        assert.equal(again.conversation.id, first.conversation.id);
        assert.equal(again.conversation.createdAt, T0);
      });

      it('makes one direct conversation for a pair under concurrent creates', async () => {
        const [a, b] = await users(2);
        assert.ok(a && b);
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            s.conversations.create({
              id: uid('conv'),
              kind: 'direct',
              members: i % 2 ? [{ userId: a, role: 'member' }, { userId: b, role: 'member' }] : [{ userId: b, role: 'member' }, { userId: a, role: 'member' }],
              at: T0 + i,
            }),
          ),
        );
        assert.equal(results.filter((r) => r.created).length, 1);
        assert.equal(new Set(results.map((r) => r.conversation.id)).size, 1);
        assert.equal((await s.conversations.idsForUser(a)).length, 1);
      });

      it('finds the direct conversation of a pair in either order, and nothing for another pair', async () => {
        const [a, b, c] = await users(3);
        assert.ok(a && b && c);
        const { conversation } = await s.conversations.create({
          id: uid('conv'), kind: 'direct', members: [{ userId: a, role: 'member' }, { userId: b, role: 'member' }], at: T0,
        });
        assert.equal((await s.conversations.findDirect(a, b))?.id, conversation.id);
        assert.equal((await s.conversations.findDirect(b, a))?.id, conversation.id);
        assert.equal(await s.conversations.findDirect(a, c), undefined);
        await group([a, c]);
        assert.equal(await s.conversations.findDirect(a, c), undefined);
      });

      it('lists the ids of every conversation a user belongs to', async () => {
        const [a, b, c] = await users(3);
        assert.ok(a && b && c);
        const g1 = await group([a, b]);
        const g2 = await group([c, a]);
        await group([b, c]);
        assert.deepEqual((await s.conversations.idsForUser(a)).sort(), [g1, g2].sort());
        assert.deepEqual(await s.conversations.idsForUser(uid('nobody')), []);
      });

      it('lists a user’s conversations by updatedAt desc, id desc, in keyset pages without duplicates or omissions', async () => {
        const [a, b] = await users(2);
        assert.ok(a && b);
        const made: Id[] = [];
        // Pairs share an updatedAt, so the id must break the tie.
        for (let i = 0; i < 7; i++) made.push(await group([a, b], T0 + Math.floor(i / 2) * 10));
        await group([b]);
        // A message moves the oldest conversation to the front.
        await sent(made[0] as Id, b, 'bump', T0 + 1000);
        const seen: Id[] = [];
        let after: string | undefined;
        let pages = 0;
        do {
          const page = await s.conversations.listForUser(a, 3, after);
          assert.ok(page.conversations.length <= 3);
          seen.push(...page.conversations.map((c) => c.id));
          after = page.next;
          pages++;
        } while (after !== undefined && pages < 10);
        assert.equal(pages, 3);
        const all = await Promise.all(made.map((id) => s.conversations.get(id)));
        const expected = all
          .map((c) => {
            assert.ok(c);
            return c;
          })
          .sort((x, y) => y.updatedAt - x.updatedAt || (y.id < x.id ? -1 : y.id > x.id ? 1 : 0))
          .map((c) => c.id);
        assert.equal(expected[0], made[0]);
        assert.deepEqual(seen, expected);
        const exact = await s.conversations.listForUser(a, 7);
        assert.equal(exact.conversations.length, 7);
        assert.equal(exact.next, undefined, 'no next cursor when the page reaches the end');
      });

      it('gives each listed conversation the user’s unreadCount and the newest non-deleted lastMessage', async () => {
        const [a, b] = await users(2);
        assert.ok(a && b);
        const conv = await group([a, b]);
        const quiet = await group([a, b], T0 - 10);
        await sent(conv, b, 'one', T0 + 1);
        await sent(conv, b, 'two', T0 + 2);
        const mine = await sent(conv, a, 'three', T0 + 3);
        const four = await sent(conv, b, 'four', T0 + 4);
        appended(await s.events.append({ kind: 'message.deleted', conversationId: conv, actorId: b, at: T0 + 5, messageId: four.id }));

        const forA = (await s.conversations.listForUser(a, 10)).conversations;
        assert.deepEqual(forA.map((c) => c.id), [conv, quiet]);
        assert.equal(forA[0]?.unreadCount, 2, "b's two live messages; a's own and the deleted one do not count");
        assert.deepEqual(forA[0]?.lastMessage, mine);
        assert.equal(forA[1]?.unreadCount, 0);
        assert.equal(forA[1]?.lastMessage, undefined);
        assert.equal(forA[0]?.lastSeq, 5);

        const forB = (await s.conversations.listForUser(b, 10)).conversations;
        assert.equal(forB[0]?.unreadCount, 1);

        await s.conversations.markRead(conv, a, 2);
        assert.equal((await s.conversations.listForUser(a, 1)).conversations[0]?.unreadCount, 0);
      });

      it('moves lastReadSeq forward only, capped at lastSeq, and not for a non-member', async () => {
        const [a, b, c] = await users(3);
        assert.ok(a && b && c);
        const conv = await group([a, b]);
        for (let i = 0; i < 3; i++) await sent(conv, b, `m${i}`);
        assert.equal(await s.conversations.markRead(conv, a, 2), 2);
        assert.equal(await s.conversations.markRead(conv, a, 1), undefined);
        assert.equal(await s.conversations.markRead(conv, a, 2), undefined);
        assert.equal(await s.conversations.markRead(conv, a, 100), 3);
        assert.equal(await s.conversations.markRead(conv, a, 101), undefined);
        const members = await s.conversations.members(conv);
        assert.equal(members.find((m) => m.userId === a)?.lastReadSeq, 3);
        assert.equal(members.find((m) => m.userId === b)?.lastReadSeq, 0);
        assert.equal(await s.conversations.markRead(conv, c, 1), undefined);
        assert.equal(await s.conversations.markRead(uid('conv'), a, 1), undefined);
      });
    });

    describe('event log', () => {
      it('gives the first message seq 1 and moves lastSeq and updatedAt to the event', async () => {
        const [a] = await users(1);
        assert.ok(a);
        const conv = await group([a]);
        const r = appended(await send(conv, a, 'hello', T0 + 42));
        assert.equal(r.event.seq, 1);
        assert.equal(r.event.kind, 'message.created');
        const m = messageOf(r);
        assert.equal(m.seq, 1);
        assert.equal(m.body, 'hello');
        assert.equal(m.senderId, a);
        assert.equal(m.createdAt, T0 + 42);
        assert.equal(m.reactions, undefined);
        const c = await s.conversations.get(conv);
        assert.equal(c?.lastSeq, 1);
        assert.equal(c?.updatedAt, T0 + 42);
      });

      it('reads back with after() every kind of event exactly as append returned it', async () => {
        const [a, b, c] = await users(3);
        assert.ok(a && b && c);
        const conv = await group([a, b]);
        const events: ConversationEvent[] = [];
        const push = async (input: AppendInput): Promise<AppendResult> => {
          const r = appended(await s.events.append(input));
          events.push(r.event);
          return r;
        };
        const base = { conversationId: conv, actorId: a };
        const m1 = messageOf(await push({ ...base, kind: 'message.created', at: T0 + 1, message: { id: uid('msg'), clientId: 'c1', body: 'first' } }));
        await push({ ...base, kind: 'message.created', at: T0 + 2, message: { id: uid('msg'), clientId: 'c2', body: 'reply', replyTo: m1.id } });
        await push({ ...base, kind: 'message.edited', at: T0 + 3, messageId: m1.id, body: 'first!' });
        await push({ ...base, kind: 'message.reacted', at: T0 + 4, messageId: m1.id, reaction: '👍', active: true });
        await push({ ...base, kind: 'member.joined', at: T0 + 5, userId: c, role: 'member' });
        await push({ ...base, kind: 'member.role', at: T0 + 6, userId: c, role: 'admin' });
        await push({ ...base, kind: 'member.left', at: T0 + 7, userId: c });
        await push({ ...base, kind: 'conversation.updated', at: T0 + 8, title: 'Renamed' });
        await push({ ...base, kind: 'message.deleted', at: T0 + 9, messageId: m1.id });

        assert.deepEqual(events.map((e) => e.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        // Deleting m1 scrubbed its text from the log: the created and edited events read back with empty bodies.
        const scrubbed = events.map((e) =>
          e.kind === 'message.created' && e.message.id === m1.id
            ? { ...e, message: { ...e.message, body: '' } }
            : e.kind === 'message.edited' && e.messageId === m1.id
              ? { ...e, body: '' }
              : e,
        );
        assert.deepEqual(await s.events.after(conv, 0, 100), scrubbed);
        assert.deepEqual(await s.events.after(conv, 2, 3), scrubbed.slice(2, 5));
        assert.deepEqual(await s.events.after(conv, 9, 10), []);
        const created = events[0];
        assert.ok(created?.kind === 'message.created');
        assert.equal(created.message.body, 'first', 'message.created carries the message as created (as appended)');
        const reply = events[1];
        assert.ok(reply?.kind === 'message.created');
        assert.equal(reply.message.replyTo, m1.id);
        assert.deepEqual(await s.events.after(uid('conv'), 0, 10), []);
      });

      it('returns the original message in its current state for a repeated clientId, without a new seq', async () => {
        const [a] = await users(1);
        assert.ok(a);
        const conv = await group([a]);
        const original = await messageOf(appended(await send(conv, a, 'hi', T0 + 1, { clientId: 'same' })));
        appended(await s.events.append({ kind: 'message.edited', conversationId: conv, actorId: a, at: T0 + 2, messageId: original.id, body: 'hi!' }));
        const retryId = uid('msg');
        const retry = await s.events.append({
          kind: 'message.created', conversationId: conv, actorId: a, at: T0 + 3, message: { id: retryId, clientId: 'same', body: 'hi' },
        });
        assert.equal(retry.status, 'unchanged');
        assert.deepEqual(retry.message, { ...original, body: 'hi!', editedAt: T0 + 2 });
        assert.equal(await lastSeq(conv), 2);
        assert.equal(await s.events.message(retryId), undefined);
        assert.equal((await s.events.messages(conv, { limit: 10 })).messages.length, 1);
      });

      it('treats the same clientId from another sender or in another conversation as a new message', async () => {
        const [a, b] = await users(2);
        assert.ok(a && b);
        const c1 = await group([a, b]);
        const c2 = await group([a, b]);
        appended(await send(c1, a, 'x', T0 + 1, { clientId: 'k' }));
        appended(await send(c1, b, 'x', T0 + 1, { clientId: 'k' }));
        appended(await send(c2, a, 'x', T0 + 1, { clientId: 'k' }));
        assert.equal(await lastSeq(c1), 2);
        assert.equal(await lastSeq(c2), 1);
      });

      it('gives 2,000 concurrent appends into one conversation from many actors the seqs 1..2000 exactly', async () => {
        const actors = await users(20);
        const conv = await group(actors);
        const results = await Promise.all(
          Array.from({ length: 2000 }, (_, i) => send(conv, actors[i % actors.length] as Id, `m${i}`, T0 + i)),
        );
        const seqs = results.map((r) => appended(r).event.seq).sort((x, y) => x - y);
        assert.deepEqual(seqs, Array.from({ length: 2000 }, (_, i) => i + 1));
        for (const r of results) assert.equal(messageOf(r).seq, appended(r).event.seq);
        assert.equal(await lastSeq(conv), 2000);
        const logged: number[] = [];
        for (let after = 0; logged.length < 2000 && after < 4000; after += 500) {
          logged.push(...(await s.events.after(conv, after, 500)).map((e) => e.seq));
        }
        assert.deepEqual(logged, Array.from({ length: 2000 }, (_, i) => i + 1));
      });

      it('keeps each conversation gap-free when concurrent appends into several conversations interleave', async () => {
        const actors = await users(3);
        const convs: Id[] = [];
        for (let i = 0; i < 5; i++) convs.push(await group(actors));
        const results = await Promise.all(
          Array.from({ length: 1000 }, (_, i) => send(convs[i % 5] as Id, actors[i % 3] as Id, `m${i}`, T0 + i)),
        );
        for (const conv of convs) {
          const seqs = results
            .map((r) => appended(r).event)
            .filter((e) => e.conversationId === conv)
            .map((e) => e.seq)
            .sort((x, y) => x - y);
          assert.deepEqual(seqs, Array.from({ length: 200 }, (_, i) => i + 1));
          assert.equal(await lastSeq(conv), 200);
        }
      });

      it('lets the other appends of a concurrent batch succeed when one of them fails', async () => {
        const [a] = await users(1);
        assert.ok(a);
        const conv = await group([a]);
        const other = await group([a]);
        const elsewhere = await sent(other, a, 'elsewhere');
        const settled = await Promise.allSettled([
          send(conv, a, 'ok 1'),
          send(uid('conv'), a, 'no such conversation'),
          send(conv, a, 'ok 2'),
          s.events.append({ kind: 'message.edited', conversationId: conv, actorId: a, at: T0, messageId: uid('msg'), body: 'x' }),
          send(conv, a, 'bad reply', T0, { replyTo: elsewhere.id }),
          send(conv, a, 'ok 3'),
        ]);
        const [ok1, bad1, ok2, bad2, bad3, ok3] = settled;
        for (const [r, seq] of [[ok1, 1], [ok2, 2], [ok3, 3]] as const) {
          assert.equal(r?.status, 'fulfilled');
          if (r?.status === 'fulfilled') assert.equal(appended(r.value).event.seq, seq);
        }
        for (const [r, code] of [[bad1, 'not_found'], [bad2, 'not_found'], [bad3, 'conflict']] as const) {
          assert.equal(r?.status, 'rejected');
          if (r?.status === 'rejected') isStoreError(code)(r.reason);
        }
        assert.equal(await lastSeq(conv), 3);
        assert.deepEqual((await s.events.after(conv, 0, 10)).map((e) => e.seq), [1, 2, 3]);
      });

      it('rejects with not_found an unknown conversation, an unknown message and a message of another conversation', async () => {
        const [a] = await users(1);
        assert.ok(a);
        const conv = await group([a]);
        const other = await group([a]);
        const foreign = await sent(other, a, 'there');
        await assert.rejects(send(uid('conv'), a, 'x'), isStoreError('not_found'));
        for (const messageId of [uid('msg'), foreign.id]) {
          await assert.rejects(
            s.events.append({ kind: 'message.edited', conversationId: conv, actorId: a, at: T0, messageId, body: 'x' }),
            isStoreError('not_found'),
          );
          await assert.rejects(
            s.events.append({ kind: 'message.deleted', conversationId: conv, actorId: a, at: T0, messageId }),
            isStoreError('not_found'),
          );
          await assert.rejects(
            s.events.append({ kind: 'message.reacted', conversationId: conv, actorId: a, at: T0, messageId, reaction: '🎉', active: true }),
            isStoreError('not_found'),
          );
        }
        assert.equal(await lastSeq(conv), 0);
        assert.equal((await s.events.message(foreign.id))?.body, 'there');
      });

      it('accepts a reply to a message of the same conversation only: another conversation is conflict, unknown is not_found', async () => {
        const [a] = await users(1);
        assert.ok(a);
        const conv = await group([a]);
        const other = await group([a]);
        const target = await sent(conv, a, 'target');
        const foreign = await sent(other, a, 'foreign');
        const reply = messageOf(appended(await send(conv, a, 'reply', T0 + 2, { replyTo: target.id })));
        assert.equal(reply.replyTo, target.id);
        assert.deepEqual(await s.events.message(reply.id), reply);
        await assert.rejects(send(conv, a, 'x', T0 + 3, { replyTo: foreign.id }), isStoreError('conflict'));
        await assert.rejects(send(conv, a, 'x', T0 + 3, { replyTo: uid('msg') }), isStoreError('not_found'));
        assert.equal(await lastSeq(conv), 2);
      });

      it('edits set body and editedAt, delete empties the body and sets deletedAt, and a deleted message cannot change', async () => {
        const [a] = await users(1);
        assert.ok(a);
        const conv = await group([a]);
        const m = await sent(conv, a, 'draft', T0 + 1);
        const edited = appended(await s.events.append({ kind: 'message.edited', conversationId: conv, actorId: a, at: T0 + 2, messageId: m.id, body: 'final' }));
        assert.deepEqual(edited.message, { ...m, body: 'final', editedAt: T0 + 2 });
        assert.deepEqual(edited.event, { conversationId: conv, seq: 2, kind: 'message.edited', at: T0 + 2, actorId: a, messageId: m.id, body: 'final' });
        const deleted = appended(await s.events.append({ kind: 'message.deleted', conversationId: conv, actorId: a, at: T0 + 3, messageId: m.id }));
        assert.deepEqual(deleted.message, { ...m, body: '', editedAt: T0 + 2, deletedAt: T0 + 3 });
        assert.deepEqual(await s.events.message(m.id), deleted.message);
        const at = T0 + 4;
        await assert.rejects(s.events.append({ kind: 'message.edited', conversationId: conv, actorId: a, at, messageId: m.id, body: 'zombie' }), isStoreError('conflict'));
        await assert.rejects(s.events.append({ kind: 'message.deleted', conversationId: conv, actorId: a, at, messageId: m.id }), isStoreError('conflict'));
        await assert.rejects(
          s.events.append({ kind: 'message.reacted', conversationId: conv, actorId: a, at, messageId: m.id, reaction: '👍', active: true }),
          isStoreError('conflict'),
        );
        assert.equal(await lastSeq(conv), 3);
        const page = await s.events.messages(conv, { limit: 10 });
        assert.deepEqual(page.messages, [deleted.message], 'a deleted message keeps its place in the history');
      });

      it('records reactions per emoji in order, leaves repeats unchanged, and drops them when none are left', async () => {
        const [a, b] = await users(2);
        assert.ok(a && b);
        const conv = await group([a, b]);
        const m = await sent(conv, a, 'react to me');
        const react = (actorId: Id, reaction: string, active: boolean): Promise<AppendResult> =>
          s.events.append({ kind: 'message.reacted', conversationId: conv, actorId, at: T0 + 9, messageId: m.id, reaction, active });

        const r1 = appended(await react(a, '👍', true));
        assert.deepEqual(r1.message?.reactions, { '👍': [a] });
        assert.deepEqual(r1.event, { conversationId: conv, seq: 2, kind: 'message.reacted', at: T0 + 9, actorId: a, messageId: m.id, reaction: '👍', active: true });
        const again = await react(a, '👍', true);
        assert.equal(again.status, 'unchanged');
        assert.deepEqual(again.message?.reactions, { '👍': [a] });
        assert.deepEqual(appended(await react(b, '👍', true)).message?.reactions, { '👍': [a, b] });
        assert.deepEqual(appended(await react(b, '🎉', true)).message?.reactions, { '👍': [a, b], '🎉': [b] });
        assert.deepEqual(appended(await react(a, '👍', false)).message?.reactions, { '👍': [b], '🎉': [b] });
        assert.equal((await react(a, '👍', false)).status, 'unchanged');
        assert.equal((await react(a, '❤️', false)).status, 'unchanged');
        appended(await react(b, '👍', false));
        const last = appended(await react(b, '🎉', false)).message;
        assert.ok(last);
        assert.equal('reactions' in last, false, 'no reactions field once nobody reacts');
        assert.deepEqual(await s.events.message(m.id), last);
        assert.equal(await lastSeq(conv), 7);
      });

      it('adds a member on member.joined, and a join of an existing member is unchanged', async () => {
        const [a, b] = await users(2);
        assert.ok(a && b);
        const conv = await group([a]);
        const r = appended(await s.events.append({ kind: 'member.joined', conversationId: conv, actorId: a, at: T0 + 1, userId: b, role: 'member' }));
        assert.deepEqual(r.event, { conversationId: conv, seq: 1, kind: 'member.joined', at: T0 + 1, actorId: a, userId: b, role: 'member' });
        assert.equal(r.message, undefined);
        assert.equal((await s.conversations.members(conv)).find((m) => m.userId === b)?.role, 'member');
        assert.deepEqual((await s.conversations.idsForUser(b)), [conv]);
        const again = await s.events.append({ kind: 'member.joined', conversationId: conv, actorId: a, at: T0 + 2, userId: b, role: 'admin' });
        assert.equal(again.status, 'unchanged');
        assert.equal(await lastSeq(conv), 1);
        assert.equal((await s.conversations.members(conv)).find((m) => m.userId === b)?.role, 'member');
      });

      it('changes a role on member.role and removes a member on member.left; both are not_found for a non-member', async () => {
        const [a, b, c] = await users(3);
        assert.ok(a && b && c);
        const conv = await group([a, b]);
        appended(await s.events.append({ kind: 'member.role', conversationId: conv, actorId: a, at: T0 + 1, userId: b, role: 'admin' }));
        assert.equal((await s.conversations.members(conv)).find((m) => m.userId === b)?.role, 'admin');
        appended(await s.events.append({ kind: 'member.left', conversationId: conv, actorId: b, at: T0 + 2, userId: b }));
        assert.deepEqual((await s.conversations.members(conv)).map((m) => m.userId), [a]);
        assert.deepEqual(await s.conversations.idsForUser(b), []);
        for (const userId of [b, c]) {
          await assert.rejects(s.events.append({ kind: 'member.left', conversationId: conv, actorId: a, at: T0 + 3, userId }), isStoreError('not_found'));
          await assert.rejects(
            s.events.append({ kind: 'member.role', conversationId: conv, actorId: a, at: T0 + 3, userId, role: 'admin' }),
            isStoreError('not_found'),
          );
        }
        assert.equal(await lastSeq(conv), 2);
      });

      it('changes the title on conversation.updated', async () => {
        const [a] = await users(1);
        assert.ok(a);
        const conv = await group([a], T0, 'Old');
        const r = appended(await s.events.append({ kind: 'conversation.updated', conversationId: conv, actorId: a, at: T0 + 7, title: 'New' }));
        assert.deepEqual(r.event, { conversationId: conv, seq: 1, kind: 'conversation.updated', at: T0 + 7, actorId: a, title: 'New' });
        const c = await s.conversations.get(conv);
        assert.equal(c?.title, 'New');
        assert.equal(c?.updatedAt, T0 + 7);
      });

      it('pages messages ascending: newest by default, then before and after, with hasMore in both directions', async () => {
        const [a, b] = await users(2);
        assert.ok(a && b);
        const conv = await group([a]);
        for (let i = 1; i <= 5; i++) await sent(conv, a, `m${i}`, T0 + i);
        // Non-message events take seqs too: message seqs have gaps.
        appended(await s.events.append({ kind: 'member.joined', conversationId: conv, actorId: a, at: T0 + 6, userId: b, role: 'member' }));
        for (let i = 7; i <= 11; i++) await sent(conv, a, `m${i}`, T0 + i);
        const seqs = async (opts: { before?: number; after?: number; limit: number }): Promise<[number[], boolean]> => {
          const page = await s.events.messages(conv, opts);
          return [page.messages.map((m) => m.seq), page.hasMore];
        };
        assert.deepEqual(await seqs({ limit: 4 }), [[8, 9, 10, 11], true]);
        assert.deepEqual(await seqs({ limit: 4, before: 8 }), [[3, 4, 5, 7], true]);
        assert.deepEqual(await seqs({ limit: 4, before: 3 }), [[1, 2], false]);
        assert.deepEqual(await seqs({ limit: 2, before: 3 }), [[1, 2], false]);
        assert.deepEqual(await seqs({ limit: 4, after: 0 }), [[1, 2, 3, 4], true]);
        assert.deepEqual(await seqs({ limit: 4, after: 4 }), [[5, 7, 8, 9], true]);
        assert.deepEqual(await seqs({ limit: 4, after: 7 }), [[8, 9, 10, 11], false]);
        assert.deepEqual(await seqs({ limit: 4, after: 11 }), [[], false]);
        assert.deepEqual(await seqs({ limit: 20 }), [[1, 2, 3, 4, 5, 7, 8, 9, 10, 11], false]);
        const page = await s.events.messages(conv, { limit: 1 });
        assert.equal(page.messages[0]?.body, 'm11');
        assert.deepEqual(await s.events.messages(uid('conv'), { limit: 5 }), { messages: [], hasMore: false });
      });

      it('returns a message by id in its current state, and undefined for an unknown id', async () => {
        const [a] = await users(1);
        assert.ok(a);
        const conv = await group([a]);
        const m = await sent(conv, a, 'v1', T0 + 1);
        assert.deepEqual(await s.events.message(m.id), m);
        await s.events.append({ kind: 'message.edited', conversationId: conv, actorId: a, at: T0 + 2, messageId: m.id, body: 'v2' });
        assert.deepEqual(await s.events.message(m.id), { ...m, body: 'v2', editedAt: T0 + 2 });
        assert.equal(await s.events.message(uid('msg')), undefined);
      });

      it('hands the caller objects it owns: changing a result does not change the store', async () => {
        const [a] = await users(1);
        assert.ok(a);
        const conv = await group([a]);
        const r = appended(await send(conv, a, 'mine', T0 + 1));
        const m = messageOf(r);
        m.body = 'changed';
        if (r.event.kind === 'message.created') r.event.message.body = 'changed too';
        const [e] = await s.events.after(conv, 0, 1);
        assert.ok(e?.kind === 'message.created');
        assert.equal(e.message.body, 'mine');
        assert.equal((await s.events.message(m.id))?.body, 'mine');
      });
    });

    describe('blocks', () => {
      it('adds a block once: a repeat keeps the first createdAt and says it created nothing', async () => {
        const [a, b] = await users(2);
        assert.ok(a && b);
        const first = await s.blocks.add(a, b, T0);
        assert.deepEqual(first, { block: { blockerId: a, blockedId: b, createdAt: T0 }, created: true });
        const again = await s.blocks.add(a, b, T0 + 5);
        assert.deepEqual(again, { block: { blockerId: a, blockedId: b, createdAt: T0 }, created: false });
        assert.deepEqual(await s.blocks.list(a, 10), [{ blockerId: a, blockedId: b, createdAt: T0 }]);
      });

      it('is one-way in the table: the blocked user blocks nobody', async () => {
        const [a, b] = await users(2);
        assert.ok(a && b);
        await s.blocks.add(a, b, T0);
        assert.deepEqual(await s.blocks.list(b, 10), []);
        assert.equal(await s.blocks.remove(b, a), false, 'b never blocked a');
        assert.equal((await s.blocks.list(a, 10)).length, 1, 'and a still blocks b');
      });

      it('refuses a block of or by a user that does not exist, and writes nothing', async () => {
        const [a] = await users(1);
        assert.ok(a);
        await assert.rejects(s.blocks.add(a, uid('nobody'), T0), isStoreError('not_found'));
        await assert.rejects(s.blocks.add(uid('nobody'), a, T0), isStoreError('not_found'));
        assert.deepEqual(await s.blocks.list(a, 10), []);
        assert.deepEqual(await s.blocks.related(a), { blocks: [], blockedBy: [] });
      });

      it('removes a block, and says false for one that is not there', async () => {
        const [a, b] = await users(2);
        assert.ok(a && b);
        await s.blocks.add(a, b, T0);
        assert.equal(await s.blocks.remove(a, b), true);
        assert.equal(await s.blocks.remove(a, b), false);
        assert.deepEqual(await s.blocks.list(a, 10), []);
        assert.deepEqual(await s.blocks.related(b), { blocks: [], blockedBy: [] });
      });

      it('pages a list by blocked id, keyset, with nothing repeated or skipped', async () => {
        const [a, ...others] = await users(5);
        assert.ok(a);
        for (const [i, o] of others.entries()) await s.blocks.add(a, o, T0 + i);
        const seen: Id[] = [];
        let after: Id | undefined;
        for (;;) {
          const page = await s.blocks.list(a, 2, after);
          assert.ok(page.length <= 2);
          if (page.length === 0) break;
          seen.push(...page.map((p) => p.blockedId));
          after = page[page.length - 1]?.blockedId;
        }
        assert.deepEqual(seen, [...others].sort());
      });

      it('tells whom a user blocks and who blocks them', async () => {
        const [a, b, c, d] = await users(4);
        assert.ok(a && b && c && d);
        await s.blocks.add(a, b, T0);
        await s.blocks.add(c, a, T0);
        await s.blocks.add(a, d, T0);
        await s.blocks.add(d, a, T0);
        const ofA = await s.blocks.related(a);
        assert.deepEqual([...ofA.blocks].sort(), [b, d].sort());
        assert.deepEqual([...ofA.blockedBy].sort(), [c, d].sort());
        assert.deepEqual(await s.blocks.related(b), { blocks: [], blockedBy: [a] });
        assert.deepEqual(await s.blocks.related(c), { blocks: [a], blockedBy: [] });
      });
    });

    describe('retention', () => {
      const DAY = 86_400_000;
      /** What scan() says of one conversation: an id just below it as the cursor (ids are random; nothing else sorts between). */
      async function scanned(id: Id) {
        const [t] = await s.retention.scan(1, id.slice(0, -1));
        return t?.id === id ? t : undefined;
      }

      it('sets and drops a conversation\'s own policy without touching its activity time', async () => {
        const [a] = await users(1);
        assert.ok(a);
        const conv = await group([a]);
        const before = await s.conversations.get(conv);
        assert.equal(before?.retentionDays, undefined);
        assert.equal(await s.retention.setPolicy(conv, 30), true);
        const set = await s.conversations.get(conv);
        assert.equal(set?.retentionDays, 30);
        assert.equal(set?.updatedAt, before?.updatedAt);
        assert.equal((await s.conversations.getFor(conv, a))?.retentionDays, 30);
        assert.equal((await s.conversations.listForUser(a, 10)).conversations[0]?.retentionDays, 30);
        assert.equal(await s.retention.setPolicy(conv, null), true);
        assert.equal('retentionDays' in ((await s.conversations.get(conv)) ?? {}), false);
        assert.equal(await s.retention.setPolicy(uid('nope'), 5), false);
      });

      it('clears the oldest events, messages and others alike, up to the first one at or after the cutoff; the rest stays gap-free', async () => {
        const [a, b] = await users(2);
        assert.ok(a && b);
        const conv = await group([a]);
        const old1 = await sent(conv, a, 'old one', T0);
        await s.events.append({ kind: 'member.joined', conversationId: conv, actorId: a, at: T0 + 1, userId: b, role: 'member' });
        const old2 = await sent(conv, b, 'old two', T0 + 2);
        await s.events.append({ kind: 'message.edited', conversationId: conv, actorId: a, at: T0 + 3, messageId: old1.id, body: 'old one, edited' });
        const fresh = await sent(conv, a, 'fresh', T0 + 10 * DAY);
        // Older than the cutoff but after a newer one: a prefix is cleared, never a hole.
        await sent(conv, b, 'late clock', T0 + 5);
        assert.equal(await lastSeq(conv), 6);

        const through = await s.retention.clear(conv, T0 + 5 * DAY, 1000);
        assert.equal(through, 4);
        const c = await s.conversations.get(conv);
        assert.equal(c?.clearedThroughSeq, 4);
        assert.equal(c?.lastSeq, 6, 'seqs are never reused');
        assert.deepEqual(
          (await s.events.after(conv, 0, 100)).map((e) => e.seq),
          [5, 6],
        );
        assert.deepEqual((await s.events.messages(conv, { limit: 50 })).messages.map((m) => m.body), ['fresh', 'late clock']);
        assert.equal(await s.events.message(old1.id), undefined);
        assert.equal(await s.events.message(old2.id), undefined);
        assert.equal((await s.events.message(fresh.id))?.body, 'fresh');
        assert.deepEqual(byUserId(c?.members ?? []).map((m) => m.userId), [a, b].sort(), 'the read models of other events stay');

        // Nothing more is old enough; the log goes on where it was.
        assert.equal(await s.retention.clear(conv, T0 + 5 * DAY, 1000), undefined);
        const next = appended(await send(conv, a, 'after', T0 + 11 * DAY));
        assert.equal(next.event.seq, 7);
        assert.equal(await s.retention.clear(conv, T0 + 20 * DAY, 1000), 7);
        assert.deepEqual(await s.events.after(conv, 0, 100), []);
        assert.equal(await scanned(conv), undefined, 'a fully cleared conversation is not scanned');
      });

      it('clears at most maxEvents at a time, and the cursor moves on', async () => {
        const [a] = await users(1);
        assert.ok(a);
        const conv = await group([a]);
        for (let i = 0; i < 7; i++) await sent(conv, a, `m${i}`, T0 + i);
        assert.equal(await s.retention.clear(conv, T0 + DAY, 3), 3);
        assert.equal(await s.retention.clear(conv, T0 + DAY, 3), 6);
        assert.deepEqual((await s.events.after(conv, 0, 100)).map((e) => e.seq), [7]);
        assert.equal(await s.retention.clear(conv, T0 + DAY, 3), 7);
        assert.equal(await s.retention.clear(conv, T0 + DAY, 3), undefined);
        assert.equal(await s.retention.clear(uid('nope'), T0 + DAY, 3), undefined);
      });

      it('scans conversations that still have events to clear, with their policy', async () => {
        const [a] = await users(1);
        assert.ok(a);
        const empty = await group([a]);
        const busy = await group([a]);
        await sent(busy, a, 'hello', T0);
        await s.retention.setPolicy(busy, 7);
        const noPolicy = await group([a]);
        await sent(noPolicy, a, 'kept by default', T0);
        assert.equal(await scanned(empty), undefined, 'nothing to clear in an empty log');
        assert.deepEqual(await scanned(busy), { id: busy, retentionDays: 7, clearedThroughSeq: 0, lastSeq: 1 });
        assert.deepEqual(await scanned(noPolicy), { id: noPolicy, retentionDays: null, clearedThroughSeq: 0, lastSeq: 1 });
        const withPolicy = async (id: Id) => (await s.retention.scan(1, id.slice(0, -1), { withPolicyOnly: true }))[0]?.id === id;
        assert.equal(await withPolicy(busy), true);
        assert.equal(await withPolicy(noPolicy), false, 'withPolicyOnly leaves out conversations without their own policy');
        const page = await s.retention.scan(2);
        assert.ok(page.length <= 2);
        if (page.length === 2) assert.ok((page[0]?.id ?? '') < (page[1]?.id ?? ''), 'ascending by id');
      });

      it('lets a clear and appends to the same conversation run concurrently without losing or reusing a seq', async () => {
        const [a] = await users(1);
        assert.ok(a);
        const conv = await group([a]);
        const first = await sent(conv, a, 'old0', T0);
        for (let i = 1; i < 20; i++) await sent(conv, a, `old${i}`, T0 + i);
        // A reacted message goes with its reactions (an engine may keep them in a table of their own).
        await s.events.append({ kind: 'message.reacted', conversationId: conv, actorId: a, at: T0 + 20, messageId: first.id, reaction: '👍', active: true });
        const [cleared, ...results] = await Promise.all([
          s.retention.clear(conv, T0 + DAY, 1000),
          ...Array.from({ length: 20 }, (_, i) => send(conv, a, `new${i}`, T0 + 2 * DAY + i)),
        ]);
        assert.equal(cleared, 21);
        const seqs = results.map((r) => appended(r as AppendResult).event.seq).sort((x, y) => x - y);
        assert.deepEqual(seqs, Array.from({ length: 20 }, (_, i) => 22 + i));
        assert.deepEqual((await s.events.after(conv, 0, 100)).map((e) => e.seq), seqs);
      });
    });

    describe('search', () => {
      /** A word no other test uses (the PostgreSQL suite shares one database). */
      const unique = (): string => `k${word()}`;
      const find = async (q: Partial<SearchQuery> & { userId: Id; terms: string[] }): Promise<SearchPage> => {
        await s.search.indexed();
        return s.search.search({ limit: 20, ...q });
      };
      const bodies = (p: SearchPage): string[] => p.messages.map((m) => m.body);

      it('finds a message when every term starts one of its words, in any case, newest first, as it is stored', async () => {
        const [a, b] = await users(2);
        assert.ok(a && b);
        const conv = await group([a, b]);
        const k = unique();
        const m1 = await sent(conv, a, `Meeting ${k} at NOON, bring snacks`, T0 + 1);
        await sent(conv, b, `the ${k} was unmet`, T0 + 2);
        const m3 = await sent(conv, b, `${k.toUpperCase()}: meetings moved`, T0 + 3);
        assert.deepEqual(bodies(await find({ userId: a, terms: [k, 'meet'] })), [m3.body, m1.body]);
        assert.deepEqual(bodies(await find({ userId: b, terms: ['noon', k] })), [m1.body]);
        assert.deepEqual(bodies(await find({ userId: a, terms: [k, 'eting'] })), [], 'a term matches the start of a word only');
        assert.deepEqual(bodies(await find({ userId: a, terms: [k, 'snacks', 'moved'] })), [], 'every term must match');
        const [hit] = (await find({ userId: a, terms: [k, 'bring'] })).messages;
        assert.deepEqual(hit, await s.events.message(m1.id));
      });

      it('ignores diacritics: a term without them finds the word with them', async () => {
        const [a] = await users(1);
        assert.ok(a);
        const conv = await group([a]);
        const k = unique();
        await sent(conv, a, `Café ${k} Müller über`, T0 + 1);
        assert.equal((await find({ userId: a, terms: ['cafe', k] })).messages.length, 1);
        assert.equal((await find({ userId: a, terms: ['muller', 'uber', k] })).messages.length, 1);
      });

      it("never returns messages of a conversation the user is not a member of now", async () => {
        const [a, b, c] = await users(3);
        assert.ok(a && b && c);
        const k = unique();
        const mine = await group([a, b]);
        const theirs = await group([b, c]);
        await sent(mine, a, `${k} ours`, T0 + 1);
        await sent(theirs, c, `${k} theirs`, T0 + 2);
        assert.deepEqual(bodies(await find({ userId: a, terms: [k] })), [`${k} ours`]);
        assert.deepEqual(bodies(await find({ userId: b, terms: [k] })), [`${k} theirs`, `${k} ours`]);
        assert.deepEqual(bodies(await find({ userId: a, terms: [k], conversationId: theirs })), []);
        await s.events.append({ kind: 'member.left', conversationId: mine, actorId: a, at: T0 + 3, userId: a });
        assert.deepEqual(bodies(await find({ userId: a, terms: [k] })), [], 'after leaving, nothing of it');
      });

      it('filters by conversation, sender and time (since inclusive, until exclusive)', async () => {
        const [a, b] = await users(2);
        assert.ok(a && b);
        const k = unique();
        const one = await group([a, b]);
        const two = await group([a, b]);
        await sent(one, a, `${k} 1`, T0 + 10);
        await sent(one, b, `${k} 2`, T0 + 20);
        await sent(two, a, `${k} 3`, T0 + 30);
        await sent(two, b, `${k} 4`, T0 + 40);
        assert.deepEqual(bodies(await find({ userId: a, terms: [k], conversationId: one })), [`${k} 2`, `${k} 1`]);
        assert.deepEqual(bodies(await find({ userId: a, terms: [k], senderId: b })), [`${k} 4`, `${k} 2`]);
        assert.deepEqual(bodies(await find({ userId: a, terms: [k], since: T0 + 20, until: T0 + 40 })), [`${k} 3`, `${k} 2`]);
        assert.deepEqual(bodies(await find({ userId: a, terms: [k], conversationId: two, senderId: a, since: T0 + 30 })), [`${k} 3`]);
        assert.deepEqual(bodies(await find({ userId: a, terms: [k], senderId: uid('nobody') })), []);
      });

      it('follows edits, deletes and retention: found by the new text only, never once deleted or cleared', async () => {
        const [a] = await users(1);
        assert.ok(a);
        const conv = await group([a]);
        const [k, old, fresh, late] = [unique(), unique(), unique(), unique()];
        const indexedFirst = await sent(conv, a, `${k} ${old}`, T0 + 1);
        const gone = await sent(conv, a, `${k} doomed`, T0 + 2);
        await s.search.indexed();
        await s.events.append({ kind: 'message.edited', conversationId: conv, actorId: a, at: T0 + 3, messageId: indexedFirst.id, body: `${k} ${fresh}` });
        await s.events.append({ kind: 'message.deleted', conversationId: conv, actorId: a, at: T0 + 4, messageId: gone.id });
        assert.deepEqual(bodies(await find({ userId: a, terms: [old] })), []);
        assert.deepEqual(bodies(await find({ userId: a, terms: [fresh] })), [`${k} ${fresh}`]);
        assert.deepEqual(bodies(await find({ userId: a, terms: [k, 'doomed'] })), []);
        // Changed before the indexer got to it: indexed as it is by then.
        const quick = await sent(conv, a, `${k} ${late}a`, T0 + 10);
        await s.events.append({ kind: 'message.edited', conversationId: conv, actorId: a, at: T0 + 11, messageId: quick.id, body: `${k} ${late}b` });
        assert.deepEqual(bodies(await find({ userId: a, terms: [`${late}b`] })), [`${k} ${late}b`]);
        assert.deepEqual(bodies(await find({ userId: a, terms: [`${late}a`] })), []);
        assert.equal((await find({ userId: a, terms: [k] })).messages.length, 2);
        assert.ok((await s.retention.clear(conv, T0 + 10, 100)) !== undefined);
        assert.deepEqual(bodies(await find({ userId: a, terms: [k] })), [`${k} ${late}b`], 'what retention cleared is not found');
      });

      it('indexes what comes after a quiet spell, by itself and when asked', async () => {
        const [a] = await users(1);
        assert.ok(a);
        const conv = await group([a]);
        // Long enough for an engine that indexes in the background to look, find nothing new, and look again later.
        await new Promise((r) => setTimeout(r, 600));
        const k = unique();
        await sent(conv, a, `${k} after the quiet`, T0 + 1);
        const deadline = Date.now() + 5000;
        let found = 0;
        while (found === 0 && Date.now() < deadline) {
          found = (await s.search.search({ userId: a, terms: [k], limit: 5 })).messages.length;
          if (found === 0) await new Promise((r) => setTimeout(r, 50));
        }
        assert.equal(found, 1, 'indexed by itself');
        await sent(conv, a, `${k} and one more`, T0 + 2);
        const asked = await Promise.race([
          s.search.indexed().then(() => 'indexed'),
          new Promise((r) => setTimeout(() => r('timed out'), 5000)),
        ]);
        assert.equal(asked, 'indexed');
        assert.equal((await s.search.search({ userId: a, terms: [k], limit: 5 })).messages.length, 2);
      });

      it('pages newest first with an opaque cursor: no message twice, none skipped; a cursor it did not give out is not_found', async () => {
        const [a] = await users(1);
        assert.ok(a);
        const conv = await group([a]);
        const k = unique();
        for (let i = 0; i < 25; i++) await sent(conv, a, `${k} n${i}`, T0 + i);
        const seen: string[] = [];
        let after: string | undefined;
        for (let page = 0; page < 10; page++) {
          const p = await find({ userId: a, terms: [k], limit: 7, ...(after === undefined ? {} : { after }) });
          seen.push(...bodies(p));
          after = p.next;
          if (after === undefined) break;
          assert.equal(typeof after, 'string');
        }
        assert.equal(after, undefined, 'the last page says so');
        assert.deepEqual(seen, Array.from({ length: 25 }, (_, i) => `${k} n${24 - i}`));
        for (const bad of ['nope', '-1', '1.5', '']) {
          await assert.rejects(s.search.search({ userId: a, terms: [k], limit: 5, after: bad }), isStoreError('not_found'), bad);
        }
      });
    });

    describe('end-to-end encryption', () => {
      const keysOf = (userId: Id, deviceId: Id, n = word()) => ({
        userId,
        deviceId,
        identityKey: `id-${n}`,
        agreementKey: `ag-${n}`,
        signature: `sig-${n}`,
        createdAt: T0,
      });
      async function device(userId: Id, at = T0): Promise<Id> {
        const id = uid('dev');
        await s.devices.create({ id, userId, name: 'd', createdAt: at, lastActiveAt: at });
        return id;
      }

      it('keeps the encrypted flag; a pair has one plain and one encrypted direct conversation', async () => {
        const [a, b] = await users(2);
        assert.ok(a && b);
        const members = [
          { userId: a, role: 'member' as Role },
          { userId: b, role: 'member' as Role },
        ];
        const plain = await s.conversations.create({ id: uid('conv'), kind: 'direct', members, at: T0 });
        const enc = await s.conversations.create({ id: uid('conv'), kind: 'direct', members, at: T0, encrypted: true });
        assert.equal(enc.created, true);
        assert.equal(enc.conversation.encrypted, true);
        assert.equal(plain.conversation.encrypted, undefined);
        const again = await s.conversations.create({ id: uid('conv'), kind: 'direct', members: [...members].reverse(), at: T0, encrypted: true });
        assert.deepEqual([again.created, again.conversation.id], [false, enc.conversation.id]);
        assert.equal((await s.conversations.findDirect(b, a, true))?.id, enc.conversation.id);
        assert.equal((await s.conversations.findDirect(b, a))?.id, plain.conversation.id);
        const g = uid('conv');
        await s.conversations.create({ id: g, kind: 'group', title: 'G', members: [{ userId: a, role: 'owner' }], at: T0 + 1, encrypted: true });
        assert.equal((await s.conversations.get(g))?.encrypted, true);
        assert.equal((await s.conversations.getFor(g, a))?.encrypted, true);
        const list = await s.conversations.listForUser(a, 10);
        assert.deepEqual(
          list.conversations.map((c) => `${c.id} ${c.encrypted === true}`).sort(),
          [`${g} true`, `${enc.conversation.id} true`, `${plain.conversation.id} false`].sort(),
        );
      });

      it('publishes device keys once; lists those of devices not revoked, by user and by conversation', async () => {
        const [a, b, c] = await users(3);
        assert.ok(a && b && c);
        const [a1, a2, b1, c1] = [await device(a, T0), await device(a, T0 + 1), await device(b), await device(c)];
        const k = keysOf(a, a1);
        assert.equal(await s.keys.put(k), 'created');
        assert.equal(await s.keys.put({ ...k, signature: 'another signature' }), 'same');
        assert.equal(await s.keys.put({ ...k, agreementKey: 'other' }), 'different');
        assert.equal(await s.keys.put({ ...keysOf(b, a1) }), 'different', "another user's keys for that device");
        await assert.rejects(s.keys.put(keysOf(a, uid('dev'))), isStoreError('not_found'));
        const k2 = { ...keysOf(a, a2), createdAt: T0 + 1 };
        const kb = keysOf(b, b1);
        for (const x of [k2, kb, keysOf(c, c1)]) assert.equal(await s.keys.put(x), 'created');
        assert.deepEqual(await s.keys.forUsers([a]), [k, k2], 'the first signature kept, oldest device first');
        assert.deepEqual(await s.keys.forUsers([]), []);
        const conv = await group([a, b]);
        assert.deepEqual(await s.keys.forConversation(conv), byUserId([k, k2, kb]).sort((x, y) => (x.userId === y.userId ? x.createdAt - y.createdAt : 0)));
        await s.devices.revoke(a1, T0 + 5);
        assert.deepEqual(await s.keys.forUsers([a, b]), byUserId([k2, kb]));
        await s.events.append({ kind: 'member.left', conversationId: conv, actorId: b, at: T0 + 6, userId: b });
        assert.deepEqual(await s.keys.forConversation(conv), [k2]);
      });

      it('never finds the messages of an encrypted conversation, nor their edits; an envelope-like text in a plain one is found', async () => {
        const [a] = await users(1);
        assert.ok(a);
        const k = `k${word()}`;
        const enc = uid('conv');
        await s.conversations.create({ id: enc, kind: 'group', title: 'E', members: [{ userId: a, role: 'owner' }], at: T0, encrypted: true });
        const plain = await group([a]);
        // Bodies there are envelopes (the core refuses anything else), which start so.
        const m = await sent(enc, a, `{"e2e":1,"ct":"${k}"}`, T0 + 1);
        await s.events.append({ kind: 'message.edited', conversationId: enc, actorId: a, at: T0 + 2, messageId: m.id, body: `{"e2e":1,"ct":"${k} again"}` });
        await sent(plain, a, `{"e2e":1,"ct":"${k} plain"}`, T0 + 3);
        await s.search.indexed();
        const found = await s.search.search({ userId: a, terms: [k], limit: 20 });
        assert.deepEqual(found.messages.map((x) => x.conversationId), [plain]);
      });
    });

    describe('lifecycle', () => {
      it('commits every append accepted before close() when close resolves', async () => {
        const [a] = await users(1);
        assert.ok(a);
        const conv = await group([a]);
        const pending = Array.from({ length: 50 }, (_, i) => send(conv, a, `m${i}`, T0 + i));
        await s.close();
        const settled = await Promise.allSettled(pending);
        const seqs = settled.map((r) => (r.status === 'fulfilled' ? appended(r.value).event.seq : -1)).sort((x, y) => x - y);
        assert.deepEqual(seqs, Array.from({ length: 50 }, (_, i) => i + 1));
      });

      it('answers ping with true while open', async () => {
        assert.equal(await s.ping(), true);
      });
    });
  });
}
