/**
 * Retention (R8) against a real server: a conversation's own policy over HTTP
 * (who may set it, bad input), the operator's default, and what a sweep leaves
 * (history, the event log, sync, the next seq) and tells members online.
 * A sweep is driven with a clock moved forward, as waiting for days is not an
 * option; everything else is the real server over real sockets.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Conversation, ConversationEvent } from '../../src/protocol/model.js';
import { DAY_MS } from '../../src/core/retention.js';
import { Harness } from '../helpers/server.js';
import { expectError, expectStatus, type TestUser } from '../helpers/http.js';
import { newRef } from '../helpers/ws-client.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('retention', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ retentionSweepMs: 0 });
  });
  after(async () => {
    await h?.close();
  });

  const patch = (u: TestUser, id: string, json: unknown) =>
    h.api.req<{ conversation: Conversation }>('PATCH', `/v1/conversations/${encodeURIComponent(id)}`, { token: u.token, json });

  test('owners and admins set a group\'s policy, members may not; null goes back to the default; bad input is 400 and changes nothing', async () => {
    const [owner, member, stranger] = await h.api.users(3, 'ret');
    assert.ok(owner && member && stranger);
    const g = await h.api.group(owner, [member]);
    const set = await patch(owner, g.id, { retentionDays: 30 });
    expectStatus(set, 200, 'set');
    assert.equal(set.body.conversation.retentionDays, 30);
    assert.equal(set.body.conversation.title, 'group');
    assert.equal((await h.api.conversation(member, g.id)).retentionDays, 30);

    expectError(await patch(member, g.id, { retentionDays: 1 }), 403, 'forbidden');
    expectError(await patch(stranger, g.id, { retentionDays: 1 }), 403, 'forbidden');
    expectError(await patch(owner, 'nosuchconversation', { retentionDays: 1 }), 404, 'not_found');
    for (const bad of [0, -1, 1.5, 36_501, '30', true, {}, [7]]) {
      expectError(await patch(owner, g.id, { retentionDays: bad }), 400, 'bad_request');
    }
    expectError(await patch(owner, g.id, {}), 400, 'bad_request');
    assert.equal((await h.api.conversation(owner, g.id)).retentionDays, 30, 'no bad request changed it');

    // Title and policy in one request.
    const both = await patch(owner, g.id, { title: 'kept a week', retentionDays: 7 });
    expectStatus(both, 200, 'both');
    assert.equal(both.body.conversation.title, 'kept a week');
    assert.equal(both.body.conversation.retentionDays, 7);

    const reset = await patch(owner, g.id, { retentionDays: null });
    expectStatus(reset, 200, 'reset');
    assert.equal('retentionDays' in reset.body.conversation, false);
  });

  test('either member of a direct conversation sets its policy; a direct conversation still has no title', async () => {
    const [a, b] = await h.api.users(2, 'retd');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const wsA = await h.connect(a);
    expectStatus(await patch(b, d.id, { retentionDays: 1 }), 200, 'b sets it');
    // The other member's devices hear of it.
    await wsA.next('conversation', (f) => f.conversation.id === d.id && f.conversation.retentionDays === 1);
    expectError(await patch(a, d.id, { title: 'no' }), 400, 'bad_request');
  });

  test('a sweep deletes what the policy lets go, oldest first; the rest of the log stays gap-free; members online are told; sync and history follow', async () => {
    const [a, b] = await h.api.users(2, 'rets');
    assert.ok(a && b);
    const g = await h.api.group(a, [b]);
    const firstOld = await h.api.send(a, g.id, 'old 1');
    for (let i = 2; i <= 3; i++) await h.api.send(a, g.id, `old ${i}`);
    await sleep(20);
    const cut = Date.now();
    await sleep(20);
    for (let i = 4; i <= 5; i++) await h.api.send(b, g.id, `new ${i}`);
    expectStatus(await patch(a, g.id, { retentionDays: 30 }), 200, 'policy');
    const wsB = await h.connect(b);

    // Nothing is 30 days old yet.
    assert.deepEqual(await h.core.retention.sweepOnce(), { conversations: 0, events: 0 });
    // Thirty days after the cut: the three old messages go.
    const swept = await h.core.retention.sweepOnce(cut + 30 * DAY_MS);
    assert.equal(swept.events, 3);
    const told = await wsB.next('conversation', (f) => f.conversation.id === g.id && f.conversation.clearedThroughSeq !== undefined);
    assert.equal(told.conversation.clearedThroughSeq, 3);
    assert.equal(told.conversation.lastSeq, 5);

    const conv = await h.api.conversation(a, g.id);
    assert.equal(conv.clearedThroughSeq, 3);
    assert.deepEqual((await h.api.history(a, g.id)).messages.map((m) => m.body), ['new 4', 'new 5']);
    const log = await h.api.req<{ events: ConversationEvent[] }>('GET', `/v1/conversations/${g.id}/events?after=0`, { token: b.token });
    expectStatus(log, 200, 'events');
    assert.deepEqual(log.body.events.map((e) => e.seq), [4, 5]);

    // A device syncing from the start gets what is left, then synced.
    const ref = newRef();
    wsB.send({ type: 'sync', ref, positions: { [g.id]: 0 } });
    const first = await wsB.next('event', (e) => e.event.conversationId === g.id);
    assert.equal(first.event.seq, 4);
    await wsB.next('synced', (s) => s.ref === ref);

    // A deleted message is unknown from now on: an edit or a reply naming it is 404, and nothing is appended.
    expectError(await h.api.req('PATCH', `/v1/messages/${firstOld.id}`, { token: a.token, json: { body: 'too late' } }), 404, 'not_found');
    const reply = await h.api.req('POST', `/v1/conversations/${g.id}/messages`, {
      token: a.token,
      json: { clientId: 'reply-to-gone', body: 'replying', replyTo: firstOld.id },
    });
    expectError(reply, 404, 'not_found');

    // The log goes on: the next seq is 6, never a reused one.
    const next = await h.api.send(a, g.id, 'after the sweep');
    assert.equal(next.seq, 6);
    // A second sweep at the same time finds nothing more.
    assert.deepEqual(await h.core.retention.sweepOnce(cut + 30 * DAY_MS), { conversations: 0, events: 0 });
  });

  test('without a policy, history is kept however old it is', async () => {
    const [a] = await h.api.users(1, 'retk');
    assert.ok(a);
    const g = await h.api.group(a, []);
    await h.api.send(a, g.id, 'forever');
    await h.core.retention.sweepOnce(Date.now() + 10_000 * DAY_MS);
    assert.deepEqual((await h.api.history(a, g.id)).messages.map((m) => m.body), ['forever']);
    assert.equal((await h.api.conversation(a, g.id)).clearedThroughSeq, undefined);
  });
});

describe('retention: the operator\'s default', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ retentionDays: 7, retentionSweepMs: 0 });
  });
  after(async () => {
    await h?.close();
  });

  test('applies to conversations without a policy of their own; a conversation\'s own policy wins', async () => {
    const [a] = await h.api.users(1, 'retg');
    assert.ok(a);
    const byDefault = await h.api.group(a, [], 'default');
    const ownLonger = await h.api.group(a, [], 'own');
    await h.api.send(a, byDefault.id, 'goes after 7 days');
    await h.api.send(a, ownLonger.id, 'stays 30 days');
    const res = await h.api.req('PATCH', `/v1/conversations/${ownLonger.id}`, { token: a.token, json: { retentionDays: 30 } });
    expectStatus(res, 200, 'own policy');
    await h.core.retention.sweepOnce(Date.now() + 8 * DAY_MS);
    assert.deepEqual((await h.api.history(a, byDefault.id)).messages, []);
    assert.deepEqual((await h.api.history(a, ownLonger.id)).messages.map((m) => m.body), ['stays 30 days']);
    await h.core.retention.sweepOnce(Date.now() + 31 * DAY_MS);
    assert.deepEqual((await h.api.history(a, ownLonger.id)).messages, []);
    assert.equal((await h.api.conversation(a, ownLonger.id)).lastSeq, 1);
  });
});
