import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../helpers/server.js';
import { expectError, expectStatus, type Res } from '../helpers/http.js';
import type { Conversation, ConversationEvent, Member } from '../../src/protocol/model.js';

const roleOf = (c: Conversation, userId: string): Member['role'] | undefined => c.members.find((m) => m.userId === userId)?.role;
const memberIds = (c: Conversation): string[] => c.members.map((m) => m.userId).sort();

function expectClientError(res: Res<unknown>, what: string): void {
  assert.ok(res.status >= 400 && res.status < 500, `${what}: expected a 4xx, got ${res.status} ${res.text}`);
  assert.equal(typeof (res.body as { error?: { code?: unknown } }).error?.code, 'string', `${what}: error body ${res.text}`);
}

describe('conversations', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start();
  });
  after(async () => {
    await h?.close();
  });

  test('direct: one per pair, idempotent from either side', async () => {
    const [a, b] = await h.api.users(2, 'dir');
    assert.ok(a && b);
    const r1 = await h.api.req<{ conversation: Conversation }>('POST', '/v1/conversations', { token: a.token, json: { kind: 'direct', members: [b.id] } });
    expectStatus(r1, 201, 'first create');
    const c = r1.body.conversation;
    assert.equal(c.kind, 'direct');
    assert.deepEqual(memberIds(c), [a.id, b.id].sort());
    assert.equal(c.lastSeq, 0, 'creation appends no events');
    assert.equal(typeof c.createdAt, 'number');
    assert.equal(typeof c.updatedAt, 'number');
    for (const m of c.members) assert.equal(m.lastReadSeq, 0);

    const r2 = await h.api.req<{ conversation: Conversation }>('POST', '/v1/conversations', { token: a.token, json: { kind: 'direct', members: [b.id] } });
    expectStatus(r2, 200, 'repeat');
    assert.equal(r2.body.conversation.id, c.id);
    const r3 = await h.api.req<{ conversation: Conversation }>('POST', '/v1/conversations', { token: b.token, json: { kind: 'direct', members: [a.id] } });
    expectStatus(r3, 200, 'from the other side');
    assert.equal(r3.body.conversation.id, c.id);
  });

  test('direct: concurrent creates of the same pair give one conversation', async () => {
    const [a, b] = await h.api.users(2, 'dirrace');
    assert.ok(a && b);
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        h.api.req<{ conversation: Conversation }>('POST', '/v1/conversations', {
          token: i % 2 ? a.token : b.token,
          json: { kind: 'direct', members: [i % 2 ? b.id : a.id] },
        }),
      ),
    );
    const ids = new Set(results.map((r) => r.body.conversation.id));
    assert.equal(ids.size, 1, 'one conversation');
    assert.equal(results.filter((r) => r.status === 201).length, 1, `exactly one 201: ${results.map((r) => r.status).join(',')}`);
  });

  test('bad creates: unknown member, wrong kind, wrong types', async () => {
    const a = await h.api.user('badcreate');
    expectError(await h.api.req('POST', '/v1/conversations', { token: a.token, json: { kind: 'direct', members: ['no-such-user'] } }), 404, 'not_found', 'unknown direct peer');
    expectError(await h.api.req('POST', '/v1/conversations', { token: a.token, json: { kind: 'group', title: 'g', members: ['no-such-user'] } }), 404, 'not_found', 'unknown group member');
    expectError(await h.api.req('POST', '/v1/conversations', { token: a.token, json: { kind: 'channel', members: [] } }), 400, 'bad_request', 'unknown kind');
    expectError(await h.api.req('POST', '/v1/conversations', { token: a.token, json: { kind: 'group', title: 'g', members: 'x' } }), 400, 'bad_request', 'members not an array');
    expectError(await h.api.req('POST', '/v1/conversations', { token: a.token, json: { kind: 'direct' } }), 400, 'bad_request', 'missing members');
    expectError(await h.api.req('POST', '/v1/conversations', { json: { kind: 'direct', members: [a.id] } }), 401, 'unauthorized', 'no token');
  });

  test('group: creator is owner, online members get a conversation frame, no log events', async () => {
    const [a, b, c] = await h.api.users(3, 'grp');
    assert.ok(a && b && c);
    const wsB = await h.connect(b);
    const wsA = await h.connect(a);
    const res = await h.api.req<{ conversation: Conversation }>('POST', '/v1/conversations', {
      token: a.token,
      json: { kind: 'group', title: 'Team', members: [b.id, c.id] },
    });
    expectStatus(res, 201);
    const g = res.body.conversation;
    assert.equal(g.kind, 'group');
    assert.equal(g.title, 'Team');
    assert.equal(g.lastSeq, 0);
    assert.equal(roleOf(g, a.id), 'owner');
    assert.equal(roleOf(g, b.id), 'member');
    assert.equal(roleOf(g, c.id), 'member');
    const frame = await wsB.next('conversation', (f) => f.conversation.id === g.id);
    assert.equal(frame.conversation.title, 'Team');
    assert.deepEqual(memberIds(frame.conversation), memberIds(g));
    await wsA.next('conversation', (f) => f.conversation.id === g.id);
    await wsB.nothing('event', (f) => f.event.conversationId === g.id, 100);
  });

  test('get: members only; unknown id is not_found, a foreign one forbidden', async () => {
    const [a, b, x] = await h.api.users(3, 'get');
    assert.ok(a && b && x);
    const g = await h.api.group(a, [b]);
    const got = await h.api.conversation(b, g.id);
    assert.equal(got.id, g.id);
    expectError(await h.api.req('GET', `/v1/conversations/${g.id}`, { token: x.token }), 403, 'forbidden', 'stranger');
    expectError(await h.api.req('GET', '/v1/conversations/no-such-conv', { token: a.token }), 404, 'not_found', 'unknown');
    expectError(await h.api.req('GET', `/v1/conversations/${g.id}/messages`, { token: x.token }), 403, 'forbidden', 'stranger history');
    expectError(await h.api.req('GET', `/v1/conversations/${g.id}/events`, { token: x.token }), 403, 'forbidden', 'stranger events');
    expectError(await h.api.req('POST', `/v1/conversations/${g.id}/messages`, { token: x.token, json: { clientId: 'c1', body: 'hi' } }), 403, 'forbidden', 'stranger send');
  });

  test('list: only mine, most recently active first, keyset pages without repeats', async () => {
    const [a, b, x] = await h.api.users(3, 'list');
    assert.ok(a && b && x);
    const c1 = await h.api.group(a, [b], 'one');
    const c2 = await h.api.group(a, [b], 'two');
    const c3 = await h.api.direct(a, b);
    await h.api.group(b, [x], 'not mine');
    await h.api.send(b, c1.id, 'bump one');
    const res = await h.api.req<{ conversations: Conversation[]; next?: string | null }>('GET', '/v1/conversations', { token: a.token });
    expectStatus(res, 200);
    const ids = res.body.conversations.map((c) => c.id);
    assert.deepEqual(new Set(ids), new Set([c1.id, c2.id, c3.id]), 'exactly my conversations');
    assert.equal(ids[0], c1.id, 'the one with the newest message first');

    const seen: string[] = [];
    let after: string | undefined;
    for (let i = 0; i < 10; i++) {
      const q = after === undefined ? '?limit=1' : `?limit=1&after=${encodeURIComponent(after)}`;
      const page = await h.api.req<{ conversations: Conversation[]; next?: string | null }>('GET', `/v1/conversations${q}`, { token: a.token });
      expectStatus(page, 200, `page ${i}`);
      assert.ok(page.body.conversations.length <= 1);
      seen.push(...page.body.conversations.map((c) => c.id));
      if (!page.body.next) break;
      after = page.body.next;
    }
    assert.deepEqual(seen, ids, 'paging yields the same order, each once');
  });

  test('list and get carry unreadCount and lastMessage for the caller', async () => {
    const [a, b] = await h.api.users(2, 'unread');
    assert.ok(a && b);
    const g = await h.api.group(a, [b], 'unread');
    await h.api.send(a, g.id, 'mine does not count');
    const m1 = await h.api.send(b, g.id, 'one');
    await h.api.send(b, g.id, 'two');
    const m3 = await h.api.send(b, g.id, 'three');
    let conv = await h.api.conversation(a, g.id);
    assert.equal(conv.unreadCount, 3);
    assert.equal(conv.lastMessage?.id, m3.id);
    assert.equal(conv.lastMessage?.body, 'three');
    const bView = await h.api.conversation(b, g.id);
    assert.equal(bView.unreadCount, 1, "b's view: a's one message");
    const list = await h.api.req<{ conversations: Conversation[] }>('GET', '/v1/conversations', { token: a.token });
    const inList = list.body.conversations.find((c) => c.id === g.id);
    assert.equal(inList?.unreadCount, 3);
    assert.equal(inList?.lastMessage?.id, m3.id);

    const read = await h.api.req<{ lastReadSeq: number }>('POST', `/v1/conversations/${g.id}/read`, { token: a.token, json: { seq: m1.seq } });
    expectStatus(read, 200);
    assert.equal(read.body.lastReadSeq, m1.seq);
    conv = await h.api.conversation(a, g.id);
    assert.equal(conv.unreadCount, 2);
    assert.equal(conv.members.find((m) => m.userId === a.id)?.lastReadSeq, m1.seq);

    // Deleting the newest message: it no longer counts, and the preview falls back.
    expectStatus(await h.api.req('DELETE', `/v1/messages/${m3.id}`, { token: b.token }), 200, 'delete');
    conv = await h.api.conversation(a, g.id);
    assert.equal(conv.unreadCount, 1);
    assert.notEqual(conv.lastMessage?.id, m3.id, 'a deleted message is not the preview');

    // Read only moves forward.
    const back = await h.api.req<{ lastReadSeq: number }>('POST', `/v1/conversations/${g.id}/read`, { token: a.token, json: { seq: 1 } });
    expectStatus(back, 200);
    assert.equal(back.body.lastReadSeq, m1.seq, 'read does not move back');
    expectError(await h.api.req('POST', `/v1/conversations/${g.id}/read`, { token: a.token, json: { seq: 'x' } }), 400, 'bad_request', 'seq not a number');
  });

  test('add members: owner/admin only; one member.joined each; the added user gets a conversation frame live', async () => {
    const [owner, m, c, d] = await h.api.users(4, 'add');
    assert.ok(owner && m && c && d);
    const g = await h.api.group(owner, [m], 'adders');
    const wsM = await h.connect(m);
    const wsC = await h.connect(c);
    expectError(await h.api.req('POST', `/v1/conversations/${g.id}/members`, { token: m.token, json: { userIds: [c.id] } }), 403, 'forbidden', 'plain member adds');

    const res = await h.api.req<{ conversation: Conversation }>('POST', `/v1/conversations/${g.id}/members`, { token: owner.token, json: { userIds: [c.id, d.id] } });
    expectStatus(res, 200);
    assert.deepEqual(memberIds(res.body.conversation), [owner.id, m.id, c.id, d.id].sort());
    assert.equal(res.body.conversation.lastSeq, 2, 'two member.joined events');
    assert.equal(roleOf(res.body.conversation, c.id), 'member');

    const joined = await wsM.collect('event', 2, (f) => f.event.conversationId === g.id && f.event.kind === 'member.joined');
    assert.deepEqual(joined.map((f) => (f.event as Extract<ConversationEvent, { kind: 'member.joined' }>).userId).sort(), [c.id, d.id].sort());
    for (const f of joined) {
      assert.equal(f.event.actorId, owner.id);
      assert.equal((f.event as Extract<ConversationEvent, { kind: 'member.joined' }>).role, 'member');
    }
    const conv = await wsC.next('conversation', (f) => f.conversation.id === g.id);
    assert.ok(memberIds(conv.conversation).includes(c.id));

    // Adding someone already in: nothing new in the log.
    const again = await h.api.req<{ conversation: Conversation }>('POST', `/v1/conversations/${g.id}/members`, { token: owner.token, json: { userIds: [c.id] } });
    expectStatus(again, 200);
    assert.equal(again.body.conversation.lastSeq, 2);
    expectError(await h.api.req('POST', `/v1/conversations/${g.id}/members`, { token: owner.token, json: { userIds: ['no-such-user'] } }), 404, 'not_found', 'unknown user');
    expectError(await h.api.req('POST', `/v1/conversations/${g.id}/members`, { token: owner.token, json: { userIds: 'x' } }), 400, 'bad_request', 'userIds not an array');

    // The new member now gets live events of the conversation.
    const msg = await h.api.send(owner, g.id, 'welcome');
    const ev = await wsC.next('event', (f) => f.event.kind === 'message.created' && f.event.message.id === msg.id);
    assert.equal(ev.event.seq, 3);
  });

  test('roles: owner promotes; admins add, retitle and cannot change roles; members cannot', async () => {
    const [owner, adm, m, n] = await h.api.users(4, 'role');
    assert.ok(owner && adm && m && n);
    const g = await h.api.group(owner, [adm, m], 'roles');
    const wsM = await h.connect(m);

    const promote = await h.api.req<{ conversation: Conversation }>('PATCH', `/v1/conversations/${g.id}/members/${adm.id}`, { token: owner.token, json: { role: 'admin' } });
    expectStatus(promote, 200);
    assert.equal(roleOf(promote.body.conversation, adm.id), 'admin');
    const roleEv = await wsM.next('event', (f) => f.event.conversationId === g.id && f.event.kind === 'member.role');
    assert.deepEqual({ userId: (roleEv.event as { userId: string }).userId, role: (roleEv.event as { role: string }).role }, { userId: adm.id, role: 'admin' });

    expectError(await h.api.req('PATCH', `/v1/conversations/${g.id}/members/${m.id}`, { token: adm.token, json: { role: 'admin' } }), 403, 'forbidden', 'admin changes a role');
    expectError(await h.api.req('PATCH', `/v1/conversations/${g.id}/members/${m.id}`, { token: owner.token, json: { role: 'king' } }), 400, 'bad_request', 'unknown role');
    expectError(await h.api.req('PATCH', `/v1/conversations/${g.id}/members/${n.id}`, { token: owner.token, json: { role: 'admin' } }), 404, 'not_found', 'role of a non-member');

    expectStatus(await h.api.req('POST', `/v1/conversations/${g.id}/members`, { token: adm.token, json: { userIds: [n.id] } }), 200, 'admin adds');

    const retitle = await h.api.req<{ conversation: Conversation }>('PATCH', `/v1/conversations/${g.id}`, { token: adm.token, json: { title: 'Renamed' } });
    expectStatus(retitle, 200);
    assert.equal(retitle.body.conversation.title, 'Renamed');
    const upd = await wsM.next('event', (f) => f.event.conversationId === g.id && f.event.kind === 'conversation.updated');
    assert.equal((upd.event as { title: string }).title, 'Renamed');
    expectError(await h.api.req('PATCH', `/v1/conversations/${g.id}`, { token: m.token, json: { title: 'Mine now' } }), 403, 'forbidden', 'member retitles');
    expectError(await h.api.req('PATCH', `/v1/conversations/${g.id}`, { token: owner.token, json: { title: 42 } }), 400, 'bad_request', 'title not a string');
    assert.equal((await h.api.conversation(owner, g.id)).title, 'Renamed');

    const events = await h.api.req<{ events: ConversationEvent[]; hasMore: boolean }>('GET', `/v1/conversations/${g.id}/events?after=0`, { token: m.token });
    expectStatus(events, 200);
    assert.deepEqual(
      events.body.events.map((e) => [e.seq, e.kind]),
      [
        [1, 'member.role'],
        [2, 'member.joined'],
        [3, 'conversation.updated'],
      ],
    );
    assert.equal(events.body.hasMore, false);
  });

  test('direct conversations take no title and no extra members', async () => {
    const [a, b, c] = await h.api.users(3, 'dirnot');
    assert.ok(a && b && c);
    const d = await h.api.direct(a, b);
    // The extension says "group only" without naming the code; any 4xx error is accepted.
    expectClientError(await h.api.req('PATCH', `/v1/conversations/${d.id}`, { token: a.token, json: { title: 'x' } }), 'retitle a direct');
    expectClientError(await h.api.req('POST', `/v1/conversations/${d.id}/members`, { token: a.token, json: { userIds: [c.id] } }), 'add to a direct');
    const after = await h.api.conversation(a, d.id);
    assert.deepEqual(memberIds(after), [a.id, b.id].sort());
    assert.equal(after.lastSeq, 0);
  });

  test('remove and leave: member.left, and the removed user stops getting events', async () => {
    const [owner, m, c, x] = await h.api.users(4, 'rm');
    assert.ok(owner && m && c && x);
    const g = await h.api.group(owner, [m, c, x], 'removal');
    const wsC = await h.connect(c);
    const wsM = await h.connect(m);

    expectError(await h.api.req('DELETE', `/v1/conversations/${g.id}/members/${c.id}`, { token: m.token }), 403, 'forbidden', 'member removes another');
    expectStatus(await h.api.req('DELETE', `/v1/conversations/${g.id}/members/${c.id}`, { token: owner.token }), 204, 'owner removes');
    const left = await wsM.next('event', (f) => f.event.conversationId === g.id && f.event.kind === 'member.left');
    assert.equal((left.event as { userId: string }).userId, c.id);
    assert.equal(left.event.actorId, owner.id);

    const msg = await h.api.send(owner, g.id, 'after removal');
    await wsM.next('event', (f) => f.event.kind === 'message.created' && f.event.message.id === msg.id);
    await wsC.nothing('event', (f) => f.event.conversationId === g.id && f.event.kind === 'message.created', 300);
    // Ephemeral frames of the conversation stop too.
    const wsO = await h.connect(owner, 'owner');
    wsO.send({ type: 'typing', conversationId: g.id, active: true });
    wsO.send({ type: 'receipt', conversationId: g.id, seq: msg.seq, kind: 'read' });
    await wsM.next('typing', (f) => f.conversationId === g.id);
    await wsM.next('receipt', (f) => f.conversationId === g.id);
    await wsC.nothing('typing', (f) => f.conversationId === g.id, 100);
    await wsC.nothing('receipt', (f) => f.conversationId === g.id, 0);
    expectError(await h.api.req('GET', `/v1/conversations/${g.id}`, { token: c.token }), 403, 'forbidden', 'removed user reads');
    const send = await wsC.request({ type: 'send', conversationId: g.id, clientId: 'after-removed', body: 'hi' });
    assert.equal(send.type, 'error');
    assert.equal((send as { code: string }).code, 'forbidden');
    expectError(await h.api.req('DELETE', `/v1/conversations/${g.id}/members/${c.id}`, { token: owner.token }), 404, 'not_found', 'remove a non-member');

    expectStatus(await h.api.req('DELETE', `/v1/conversations/${g.id}/members/${x.id}`, { token: x.token }), 204, 'leave');
    const left2 = await wsM.next('event', (f) => f.event.conversationId === g.id && f.event.kind === 'member.left');
    assert.equal((left2.event as { userId: string }).userId, x.id);
    assert.equal(left2.event.actorId, x.id);
    const conv = await h.api.conversation(owner, g.id);
    assert.deepEqual(memberIds(conv), [owner.id, m.id].sort());

    const list = await h.api.req<{ conversations: Conversation[] }>('GET', '/v1/conversations', { token: c.token });
    assert.ok(!list.body.conversations.some((cv) => cv.id === g.id), 'removed conversation no longer listed');
  });

  test('title, role and member changes push a conversation frame to the members who stay, after the event', async () => {
    const [owner, m, c, d] = await h.api.users(4, 'chg');
    assert.ok(owner && m && c && d);
    const g = await h.api.group(owner, [m, c], 'before');
    const wsM = await h.connect(m);
    const wsM2 = await h.connect(m, 'm-second-device');
    const wsC = await h.connect(c);
    const wsD = await h.connect(d);
    const snapshot = (ws: typeof wsM, what: string, pred: (cv: Conversation) => boolean) =>
      ws.next('conversation', (f) => f.conversation.id === g.id && pred(f.conversation)).then((f) => {
        // The frame follows the event that made the change: the snapshot's lastSeq is already in the log seen.
        const seen = ws.all('event', (e) => e.event.conversationId === g.id).map((e) => e.event.seq);
        assert.ok(seen.includes(f.conversation.lastSeq), `${ws.label} ${what}: event ${f.conversation.lastSeq} before the snapshot; saw ${seen.join(',')}`);
        assert.equal((f.conversation as { unreadCount?: number }).unreadCount, undefined, 'contract fields only');
        return f.conversation;
      });

    expectStatus(await h.api.req('PATCH', `/v1/conversations/${g.id}`, { token: owner.token, json: { title: 'after' } }), 200);
    for (const ws of [wsM, wsM2, wsC]) assert.equal((await snapshot(ws, 'rename', (cv) => cv.title === 'after')).lastSeq, 1);

    expectStatus(await h.api.req('PATCH', `/v1/conversations/${g.id}/members/${m.id}`, { token: owner.token, json: { role: 'admin' } }), 200);
    for (const ws of [wsM, wsM2, wsC]) assert.equal(roleOf(await snapshot(ws, 'role', (cv) => roleOf(cv, m.id) === 'admin'), m.id), 'admin');
    // Setting the role a member already has changes nothing and tells no one.
    expectStatus(await h.api.req('PATCH', `/v1/conversations/${g.id}/members/${m.id}`, { token: owner.token, json: { role: 'admin' } }), 200);

    expectStatus(await h.api.req('POST', `/v1/conversations/${g.id}/members`, { token: m.token, json: { userIds: [d.id] } }), 200);
    for (const ws of [wsM, wsC]) assert.ok(memberIds(await snapshot(ws, 'add', (cv) => memberIds(cv).includes(d.id))).includes(d.id));
    await wsD.next('conversation', (f) => f.conversation.id === g.id);

    expectStatus(await h.api.req('DELETE', `/v1/conversations/${g.id}/members/${c.id}`, { token: owner.token }), 204);
    for (const ws of [wsM, wsD]) assert.deepEqual(memberIds(await snapshot(ws, 'remove', (cv) => !memberIds(cv).includes(c.id))), [owner.id, m.id, d.id].sort());
    await wsC.next('conversation', (f) => f.conversation.id === g.id && !memberIds(f.conversation).includes(c.id));

    // Each change is told once per device: the added and the removed member get their own frame only.
    await wsM.nothing('conversation', (f) => f.conversation.id === g.id, 200);
    await wsD.nothing('conversation', (f) => f.conversation.id === g.id, 0);
    await wsC.nothing('conversation', (f) => f.conversation.id === g.id, 0);
  });

  test('events endpoint pages the log by seq', async () => {
    const [a, b] = await h.api.users(2, 'evp');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    for (let i = 1; i <= 7; i++) await h.api.send(i % 2 ? a : b, d.id, `m${i}`);
    const p1 = await h.api.req<{ events: ConversationEvent[]; hasMore: boolean }>('GET', `/v1/conversations/${d.id}/events?after=0&limit=3`, { token: b.token });
    expectStatus(p1, 200);
    assert.deepEqual(p1.body.events.map((e) => e.seq), [1, 2, 3]);
    assert.equal(p1.body.hasMore, true);
    for (const e of p1.body.events) {
      assert.equal(e.kind, 'message.created');
      assert.equal(e.conversationId, d.id);
      assert.equal(typeof e.at, 'number');
    }
    const p2 = await h.api.req<{ events: ConversationEvent[]; hasMore: boolean }>('GET', `/v1/conversations/${d.id}/events?after=3&limit=3`, { token: b.token });
    assert.deepEqual(p2.body.events.map((e) => e.seq), [4, 5, 6]);
    assert.equal(p2.body.hasMore, true);
    const p3 = await h.api.req<{ events: ConversationEvent[]; hasMore: boolean }>('GET', `/v1/conversations/${d.id}/events?after=6&limit=3`, { token: b.token });
    assert.deepEqual(p3.body.events.map((e) => e.seq), [7]);
    assert.equal(p3.body.hasMore, false);
    const first = p1.body.events[0];
    assert.ok(first && first.kind === 'message.created');
    assert.equal(first.message.body, 'm1');
    expectError(await h.api.req('GET', `/v1/conversations/${d.id}/events?after=-1`, { token: b.token }), 400, 'bad_request', 'negative after');
    expectError(await h.api.req('GET', `/v1/conversations/${d.id}/events?after=abc`, { token: b.token }), 400, 'bad_request', 'after not a number');
    expectError(await h.api.req('GET', `/v1/conversations/${d.id}/events?limit=0`, { token: b.token }), 400, 'bad_request', 'limit 0');
  });
});
