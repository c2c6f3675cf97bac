/** Behaviour settled after the first review of docs/protocol.md against the server. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../helpers/server.js';
import { expectError, expectStatus, http } from '../helpers/http.js';

let h: Harness;
before(async () => {
  h = await Harness.start();
});
after(async () => {
  await h?.close();
});

test('an owner who leaves hands the group to an admin, else to a member, so it is never unmanaged', async () => {
  const [owner, admin, member] = await h.api.users(3, 'heir');
  assert.ok(owner && admin && member);
  const g = await h.api.group(owner, [admin, member], 'heirs');
  expectStatus(await http(h.url, 'PATCH', `/v1/conversations/${g.id}/members/${admin.id}`, { token: owner.token, json: { role: 'admin' } }), 200);
  expectStatus(await http(h.url, 'DELETE', `/v1/conversations/${g.id}/members/${owner.id}`, { token: owner.token }), 204);
  let conv = await h.api.conversation(admin, g.id);
  assert.deepEqual(conv.members.map((m) => [m.userId, m.role]).sort(), [[admin.id, 'owner'], [member.id, 'member']].sort());
  // With no admin left, the role passes to a member.
  expectStatus(await http(h.url, 'DELETE', `/v1/conversations/${g.id}/members/${admin.id}`, { token: admin.token }), 204);
  conv = await h.api.conversation(member, g.id);
  assert.deepEqual(conv.members.map((m) => [m.userId, m.role]), [[member.id, 'owner']]);
});

test('history with both before and after answers the oldest page between them', async () => {
  const [a, b] = await h.api.users(2, 'between');
  assert.ok(a && b);
  const d = await h.api.direct(a, b);
  for (let i = 1; i <= 10; i++) await h.api.send(a, d.id, `m${i}`);
  const page = await h.api.history(a, d.id, '?after=3&before=9&limit=3');
  assert.deepEqual(page.messages.map((m) => m.seq), [4, 5, 6]);
  assert.equal(page.hasMore, true);
});

test('a conversation-list cursor the server never gave out is 400 bad_request', async () => {
  const a = await h.api.user('cursor');
  expectError(await http(h.url, 'GET', '/v1/conversations?after=not-a-cursor', { token: a.token }), 400, 'bad_request');
});

test('store errors reach clients as readable sentences', async () => {
  const a = await h.api.user('sentence');
  const res = await http<{ error: { message: string } }>(h.url, 'POST', '/v1/auth/register', { json: { username: a.username, password: 'another password' } });
  expectError(res, 409, 'conflict');
  assert.match(res.body.error.message, /^[A-Z].*\.$/);
});

test('while draining, API requests get 503 unavailable in the protocol shape', async () => {
  const local = await Harness.start();
  try {
    const a = await local.api.user('drain');
    // A socket that does not answer the 4010 keeps the drain open for its grace period.
    const ws = await local.connect(a);
    ws.pause();
    const closing = local.stop();
    await new Promise((r) => setTimeout(r, 200));
    expectError(await http(local.url, 'GET', '/v1/me', { token: a.token }), 503, 'unavailable');
    expectStatus(await http(local.url, 'GET', '/readyz'), 503);
    ws.resume();
    await closing;
  } finally {
    await local.close();
  }
});

test('a message sent over HTTP ends the sender typing indicator at once, as a send frame does', async () => {
  const [a, b] = await h.api.users(2, 'typehttp');
  assert.ok(a && b);
  const d = await h.api.direct(a, b);
  const wsA = await h.connect(a);
  const wsB = await h.connect(b);
  wsA.send({ type: 'typing', conversationId: d.id, active: true });
  await wsB.next('typing', (f) => f.active === true);
  const t0 = Date.now();
  await h.api.send(a, d.id, 'sent over http');
  await wsB.next('typing', (f) => f.active === false, 2000);
  // The default typing lapse is 6 s: getting active:false this soon means the send ended it.
  assert.ok(Date.now() - t0 < 2000);
});
