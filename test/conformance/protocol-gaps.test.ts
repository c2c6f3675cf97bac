/**
 * Gaps between the server and shared/PROTOCOL.md found by a black-box audit: a real server on 127.0.0.1, real
 * HTTP and WebSocket clients, nothing mocked.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../helpers/server.js';
import { expectError, expectStatus } from '../helpers/http.js';
import type { Conversation, ConversationEvent, Message, User } from '../../src/protocol/model.js';
import type { FrameOf } from '../helpers/ws-client.js';

const NUL_WORDS = /U\+0000/;

describe('protocol gaps', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start();
  });
  after(async () => {
    await h?.close();
  });

  test('a missing, mistyped, empty or overlong id is described as such, not as containing U+0000 (which is kept for U+0000)', async () => {
    const [a, b] = await h.api.users(2, 'idwords');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const ws = await h.connect(a);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ type: 'send', clientId: 'k', body: 'x' }, /conversationId: Expected required property/],
      [{ type: 'send', conversationId: 42, clientId: 'k', body: 'x' }, /conversationId: Expected string\./],
      [{ type: 'send', conversationId: null, clientId: 'k', body: 'x' }, /conversationId: Expected string\./],
      [{ type: 'send', conversationId: '', clientId: 'k', body: 'x' }, /conversationId: Expected string length greater or equal to 1/],
      [{ type: 'send', conversationId: 'x'.repeat(65), clientId: 'k', body: 'x' }, /conversationId: Expected string length less or equal to 64/],
      [{ type: 'delete' }, /messageId: Expected required property/],
      [{ type: 'sync' }, /positions: Expected required property/],
      [{ type: 'sync', positions: [] }, /positions: Expected object/],
    ];
    for (const [frame, words] of cases) {
      const err = (await ws.request(frame)) as FrameOf<'error'>;
      assert.equal(err.type, 'error', JSON.stringify(frame));
      assert.equal(err.code, 'bad_request', JSON.stringify(frame));
      assert.match(err.message, words, JSON.stringify(frame));
      assert.doesNotMatch(err.message, NUL_WORDS, JSON.stringify(frame));
    }
    // U+0000 itself is still named.
    const nul = (await ws.request({ type: 'send', conversationId: `${d.id}\u0000`, clientId: 'k', body: 'x' })) as FrameOf<'error'>;
    assert.equal(nul.code, 'bad_request');
    assert.match(nul.message, /conversationId: Must not contain the character U\+0000/);
    const nulKey = (await ws.request({ type: 'sync', positions: { 'a\u0000': 0 } })) as FrameOf<'error'>;
    assert.match(nulKey.message, /Keys must not contain the character U\+0000/);
    assert.ok(ws.open, 'the socket stays open');

    // HTTP: path ids, body ids.
    const long = await h.api.req('GET', `/v1/conversations/${'x'.repeat(65)}`, { token: a.token });
    expectError(long, 400, 'bad_request', 'a 65-character path id');
    assert.doesNotMatch((long.body as { error: { message: string } }).error.message, NUL_WORDS);
    const members = await h.api.req('POST', '/v1/conversations', { token: a.token, json: { kind: 'direct', members: [7] } });
    expectError(members, 400, 'bad_request', 'a number as member id');
    assert.match((members.body as { error: { message: string } }).error.message, /members\.0: Expected string/);
    const replyTo = await h.api.req('POST', `/v1/conversations/${d.id}/messages`, { token: a.token, json: { clientId: 'k', body: 'x', replyTo: null } });
    expectError(replyTo, 400, 'bad_request', 'replyTo null');
    assert.match((replyTo.body as { error: { message: string } }).error.message, /replyTo: Expected string/);
  });

  test('empty query values, as the contract writes them (?after=&limit=), take their defaults', async () => {
    const [a, b] = await h.api.users(2, 'emptyq');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    await h.api.send(a, d.id, 'one');
    await h.api.send(b, d.id, 'two');

    const list = await h.api.req<{ conversations: Conversation[]; next: string | null }>('GET', '/v1/conversations?after=&limit=', { token: a.token });
    expectStatus(list, 200, 'conversations ?after=&limit=');
    assert.deepEqual(list.body.conversations.map((c) => c.id), [d.id]);
    assert.equal(list.body.next, null);

    const msgs = await h.api.req<{ messages: Message[]; hasMore: boolean }>('GET', `/v1/conversations/${d.id}/messages?before=&after=&limit=`, {
      token: a.token,
    });
    expectStatus(msgs, 200, 'messages ?before=&after=&limit=');
    assert.deepEqual(msgs.body.messages.map((m) => m.body), ['one', 'two']);
    assert.equal(msgs.body.hasMore, false);

    const events = await h.api.req<{ events: ConversationEvent[]; hasMore: boolean }>('GET', `/v1/conversations/${d.id}/events?after=&limit=`, {
      token: a.token,
    });
    expectStatus(events, 200, 'events ?after=&limit=');
    assert.deepEqual(events.body.events.map((e) => e.seq), [1, 2]);

    const users = await h.api.req<{ users: User[] }>('GET', `/v1/users?q=${a.username}&limit=`, { token: a.token });
    expectStatus(users, 200, 'users ?q=…&limit=');
    assert.deepEqual(users.body.users.map((u) => u.id), [a.id]);

    // A value that is there and wrong is still refused.
    expectError(await h.api.req('GET', '/v1/conversations?limit=%20', { token: a.token }), 400, 'bad_request', 'limit=" "');
    expectError(await h.api.req('GET', `/v1/conversations/${d.id}/messages?limit=0`, { token: a.token }), 400, 'bad_request', 'limit=0');
  });

  test('a group title over the limit is too_large however long it is, on create and on rename', async () => {
    const [a, b] = await h.api.users(2, 'longtitle');
    assert.ok(a && b);
    for (const n of [201, 1001, 50_000]) {
      const res = await h.api.req('POST', '/v1/conversations', { token: a.token, json: { kind: 'group', title: 't'.repeat(n), members: [b.id] } });
      expectError(res, 413, 'too_large', `create with a ${n}-character title`);
    }
    const g = await h.api.group(a, [b], 'short');
    for (const n of [201, 1001, 50_000]) {
      const res = await h.api.req('PATCH', `/v1/conversations/${g.id}`, { token: a.token, json: { title: 't'.repeat(n) } });
      expectError(res, 413, 'too_large', `rename to a ${n}-character title`);
    }
    assert.equal((await h.api.conversation(a, g.id)).title, 'short');
  });
});
