/**
 * Blocking (R17) against a real server over real sockets: the HTTP API and its
 * bad input, and what a block stops (direct messages both ways, new direct
 * conversations, being added to groups, presence, typing and receipts) and what
 * it leaves alone (group messages, deleting one's own messages, the sockets).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Block, Conversation, Message } from '../../src/protocol/model.js';
import type { PresenceSnapshot } from '../../src/core/ports/presence.js';
import { Harness } from '../helpers/server.js';
import { expectError, expectStatus, type TestUser } from '../helpers/http.js';
import { newRef } from '../helpers/ws-client.js';

const BATCH = 50;

describe('blocking', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ presenceBatchMs: BATCH, typingTtlMs: 5000 });
  });
  after(async () => {
    await h?.close();
  });

  const block = (u: TestUser, userId: unknown) => h.api.req<{ block: Block }>('POST', '/v1/blocks', { token: u.token, json: { userId } });
  const unblock = (u: TestUser, userId: string) => h.api.req('DELETE', `/v1/blocks/${encodeURIComponent(userId)}`, { token: u.token });
  const list = (u: TestUser, query = '') => h.api.req<{ blocks: Block[]; next: string | null }>('GET', `/v1/blocks${query}`, { token: u.token });
  const createDirect = (u: TestUser, other: { id: string }) =>
    h.api.req<{ conversation: Conversation }>('POST', '/v1/conversations', { token: u.token, json: { kind: 'direct', members: [other.id] } });

  test('a block is made once, listed with the user, and lifted; a repeat answers 200 with the first one', async () => {
    const [a, b] = await h.api.users(2, 'blk');
    assert.ok(a && b);
    const made = await block(a, b.id);
    expectStatus(made, 201, 'block');
    assert.equal(made.body.block.user.id, b.id);
    assert.equal(made.body.block.user.username, b.username);
    assert.equal(typeof made.body.block.createdAt, 'number');
    const again = await block(a, b.id);
    expectStatus(again, 200, 'block again');
    assert.deepEqual(again.body.block, made.body.block, 'the standing block, unchanged');

    const mine = await list(a);
    expectStatus(mine, 200, 'list');
    assert.deepEqual(mine.body, { blocks: [made.body.block], next: null });
    assert.deepEqual((await list(b)).body, { blocks: [], next: null }, 'the blocked user blocks nobody');

    expectStatus(await unblock(a, b.id), 204, 'unblock');
    assert.deepEqual((await list(a)).body, { blocks: [], next: null });
    expectError(await unblock(a, b.id), 404, 'not_found', 'unblock twice');
  });

  test('the list pages by keyset with nothing repeated or skipped', async () => {
    const [a, ...others] = await h.api.users(6, 'blkpage');
    assert.ok(a);
    for (const o of others) expectStatus(await block(a, o.id), 201, 'block');
    const seen: string[] = [];
    let query = '?limit=2';
    for (let i = 0; i < 10; i++) {
      const page = await list(a, query);
      expectStatus(page, 200, 'page');
      assert.ok(page.body.blocks.length <= 2);
      seen.push(...page.body.blocks.map((b) => b.user.id));
      if (page.body.next === null) break;
      query = `?limit=2&after=${encodeURIComponent(page.body.next)}`;
    }
    assert.deepEqual(seen, others.map((o) => o.id).sort());
  });

  test('bad input is a clear error and changes nothing', async () => {
    const [a, b] = await h.api.users(2, 'blkbad');
    assert.ok(a && b);
    expectError(await block(a, a.id), 400, 'bad_request', 'block oneself');
    expectError(await block(a, 'no-such-user'), 404, 'not_found', 'unknown user');
    expectError(await block(a, 42), 400, 'bad_request', 'a number');
    expectError(await block(a, ''), 400, 'bad_request', 'empty');
    expectError(await block(a, 'x'.repeat(65)), 400, 'bad_request', 'too long');
    expectError(await h.api.req('POST', '/v1/blocks', { token: a.token, json: {} }), 400, 'bad_request', 'no userId');
    expectError(await h.api.req('POST', '/v1/blocks', { token: a.token, raw: '{"userId":' }), 400, 'bad_request', 'malformed JSON');
    expectError(await h.api.req('POST', '/v1/blocks', { json: { userId: b.id } }), 401, 'unauthorized', 'no token');
    expectError(await h.api.req('GET', '/v1/blocks'), 401, 'unauthorized', 'list without a token');
    expectError(await list(a, '?limit=0'), 400, 'bad_request', 'limit 0');
    expectError(await list(a, '?limit=201'), 400, 'bad_request', 'limit 201');
    expectError(await list(a, `?after=${'x'.repeat(65)}`), 400, 'bad_request', 'an after that is not an id');
    expectError(await unblock(a, 'y'.repeat(65)), 400, 'bad_request', 'unblock an id that is not one');
    expectError(await unblock(a, b.id), 404, 'not_found', 'unblock a user never blocked');
    assert.deepEqual((await list(a)).body, { blocks: [], next: null }, 'nothing was blocked');
    // Still a working account.
    expectStatus(await createDirect(a, b), 201, 'direct after the bad requests');
  });

  test('a block stops direct messages both ways over WebSocket and HTTP; the sockets stay open; unblocking restores them', async () => {
    const [a, b] = await h.api.users(2, 'blkdm');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const first = await h.api.send(b, d.id, 'before the block');
    const wsA = await h.connect(a);
    const wsB = await h.connect(b);
    expectStatus(await block(a, b.id), 201, 'block');

    const fromB = await wsB.error({ type: 'send', conversationId: d.id, clientId: 'blocked-1', body: 'hello?' }, 'forbidden');
    assert.match(fromB.message, /does not accept messages from you/);
    const fromA = await wsA.error({ type: 'send', conversationId: d.id, clientId: 'blocked-2', body: 'hi' }, 'forbidden');
    assert.match(fromA.message, /You block this user/);
    const overHttp = await h.api.req('POST', `/v1/conversations/${d.id}/messages`, { token: b.token, json: { clientId: 'blocked-3', body: 'hello?' } });
    expectError(overHttp, 403, 'forbidden', 'HTTP send');
    await wsB.error({ type: 'edit', messageId: first.id, body: 'edited' }, 'forbidden');
    expectError(await h.api.req('POST', `/v1/messages/${first.id}/reactions`, { token: a.token, json: { reaction: '👍' } }), 403, 'forbidden', 'react');
    await wsA.nothing('event', (e) => e.event.conversationId === d.id, 100);
    const hist = await h.api.history(a, d.id);
    assert.deepEqual(hist.messages.map((m: Message) => m.body), ['before the block'], 'nothing new was stored');

    // Deleting one's own message is still allowed: it takes text away, it sends none.
    const del = await wsB.ack({ type: 'delete', messageId: first.id });
    assert.ok('event' in del && del.event.kind === 'message.deleted');
    assert.equal((await wsB.request({ type: 'ping', ref: newRef() })).type, 'pong', 'the socket survived');

    expectStatus(await unblock(a, b.id), 204, 'unblock');
    const ack = await wsB.ack({ type: 'send', conversationId: d.id, clientId: 'after-unblock', body: 'hello again' });
    assert.ok('message' in ack);
    const got = await wsA.next('event', (e) => e.event.kind === 'message.created' && e.event.seq === ack.message.seq);
    assert.equal(got.event.kind === 'message.created' && got.event.message.body, 'hello again');
  });

  test('no new direct conversation across a block, either way; an existing one is still returned', async () => {
    const [a, b, c] = await h.api.users(3, 'blknew');
    assert.ok(a && b && c);
    const existing = await h.api.direct(a, c);
    expectStatus(await block(a, b.id), 201, 'block b');
    expectStatus(await block(a, c.id), 201, 'block c');
    expectError(await createDirect(b, a), 403, 'forbidden', 'the blocked user starts one');
    expectError(await createDirect(a, b), 403, 'forbidden', 'the blocker starts one');
    const again = await createDirect(c, a);
    expectStatus(again, 200, 'the existing conversation');
    assert.equal(again.body.conversation.id, existing.id);
    expectStatus(await unblock(a, b.id), 204, 'unblock');
    expectStatus(await createDirect(b, a), 201, 'after the unblock');
  });

  test('nobody is added to a group by someone they block; the blocker may add them; group messages reach both', async () => {
    const [a, b, c] = await h.api.users(3, 'blkgrp');
    assert.ok(a && b && c);
    expectStatus(await block(a, b.id), 201, 'block');
    const create = await h.api.req('POST', '/v1/conversations', { token: b.token, json: { kind: 'group', title: 'with a', members: [a.id, c.id] } });
    expectError(create, 403, 'forbidden', 'b creates a group with a');
    const gb = await h.api.group(b, [c], 'b\'s group');
    const add = await h.api.req<{ conversation: Conversation }>('POST', `/v1/conversations/${gb.id}/members`, { token: b.token, json: { userIds: [a.id] } });
    expectError(add, 403, 'forbidden', 'b adds a');
    assert.deepEqual((await h.api.conversation(b, gb.id)).members.map((m) => m.userId).sort(), [b.id, c.id].sort(), 'a was not added');

    const ga = await h.api.group(a, [b, c], 'a\'s group');
    const wsA = await h.connect(a);
    const wsB = await h.connect(b);
    const fromB = await wsB.ack({ type: 'send', conversationId: ga.id, clientId: 'grp-1', body: 'hi all' });
    assert.ok('message' in fromB);
    await wsA.next('event', (e) => e.event.conversationId === ga.id && e.event.seq === fromB.message.seq);
    const fromA = await wsA.ack({ type: 'send', conversationId: ga.id, clientId: 'grp-2', body: 'hello' });
    assert.ok('message' in fromA);
    await wsB.next('event', (e) => e.event.conversationId === ga.id && e.event.seq === fromA.message.seq);
  });

  test('presence, typing and receipts do not cross a block in a shared group; the third member still gets them', async () => {
    const [a, b, c] = await h.api.users(3, 'blkeph');
    assert.ok(a && b && c);
    const g = await h.api.group(c, [a, b], 'shared');
    const wsA = await h.connect(a);
    const wsC = await h.connect(c);
    expectStatus(await block(a, b.id), 201, 'block');
    const wsB = await h.connect(b);
    await wsC.next('presence', (p) => p.userId === b.id && p.status === 'online', 2000);
    await wsA.nothing('presence', (p) => p.userId === b.id, BATCH * 4);

    wsB.send({ type: 'presence', status: 'busy' });
    await wsC.next('presence', (p) => p.userId === b.id && p.status === 'busy', 2000);
    wsA.send({ type: 'presence', status: 'away' });
    await wsC.next('presence', (p) => p.userId === a.id && p.status === 'away', 2000);
    await wsA.nothing('presence', (p) => p.userId === b.id, BATCH * 2);
    await wsB.nothing('presence', (p) => p.userId === a.id, 0);

    wsB.send({ type: 'typing', conversationId: g.id, active: true });
    await wsC.next('typing', (t) => t.userId === b.id && t.active);
    wsA.send({ type: 'typing', conversationId: g.id, active: true });
    await wsC.next('typing', (t) => t.userId === a.id && t.active);
    await wsA.nothing('typing', (t) => t.userId === b.id, 100);
    await wsB.nothing('typing', (t) => t.userId === a.id, 0);

    const sent = await wsC.ack({ type: 'send', conversationId: g.id, clientId: 'eph-1', body: 'read me' });
    assert.ok('message' in sent);
    wsB.send({ type: 'receipt', conversationId: g.id, seq: sent.message.seq, kind: 'read' });
    await wsC.next('receipt', (r) => r.userId === b.id && r.kind === 'read');
    await wsA.nothing('receipt', (r) => r.userId === b.id, 100);

    // HTTP presence reads the blocked user as offline, while the third member sees them.
    const seenByA = await h.api.req<{ presence: PresenceSnapshot[] }>('GET', `/v1/presence?userIds=${b.id}`, { token: a.token });
    assert.equal(seenByA.body.presence[0]?.status, 'offline');
    const seenByC = await h.api.req<{ presence: PresenceSnapshot[] }>('GET', `/v1/presence?userIds=${b.id}`, { token: c.token });
    assert.equal(seenByC.body.presence[0]?.status, 'busy');

    // Lifted: presence flows again.
    expectStatus(await unblock(a, b.id), 204, 'unblock');
    wsB.send({ type: 'presence', status: 'online' });
    await wsA.next('presence', (p) => p.userId === b.id && p.status === 'online', 2000);
  });

  test('a block shows each side as offline to the other at once; the unblock shows their status again', async () => {
    const [a, b] = await h.api.users(2, 'blkpres');
    assert.ok(a && b);
    expectStatus(await createDirect(a, b), 201, 'direct');
    const wsA = await h.connect(a);
    const wsB = await h.connect(b);
    await wsA.next('presence', (p) => p.userId === b.id && p.status === 'online', 2000);
    wsB.send({ type: 'presence', status: 'busy' });
    const busy = await wsA.next('presence', (p) => p.userId === b.id && p.status === 'busy', 2000);

    expectStatus(await block(a, b.id), 201, 'block');
    // Each client is told, without waiting for a change that will never come through.
    const hiddenB = await wsA.next('presence', (p) => p.userId === b.id && p.status === 'offline', 2000);
    assert.ok(hiddenB.lastActiveAt <= Date.now() && hiddenB.lastActiveAt >= busy.lastActiveAt - 60_000);
    await wsB.next('presence', (p) => p.userId === a.id && p.status === 'offline', 2000);

    // A repeated block changes nothing and says nothing again.
    expectStatus(await block(a, b.id), 200, 'block again');
    await wsA.nothing('presence', (p) => p.userId === b.id, BATCH * 3);

    expectStatus(await unblock(a, b.id), 204, 'unblock');
    await wsA.next('presence', (p) => p.userId === b.id && p.status === 'busy', 2000);
    await wsB.next('presence', (p) => p.userId === a.id && p.status === 'online', 2000);
  });

  test('a block between users who share no conversation sends no presence', async () => {
    const [a, b] = await h.api.users(2, 'blknone');
    assert.ok(a && b);
    const wsA = await h.connect(a);
    const wsB = await h.connect(b);
    expectStatus(await block(a, b.id), 201, 'block');
    expectStatus(await unblock(a, b.id), 204, 'unblock');
    await wsA.nothing('presence', (p) => p.userId === b.id, BATCH * 3);
    await wsB.nothing('presence', (p) => p.userId === a.id, 0);
  });
});
