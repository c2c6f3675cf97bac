/**
 * Black-box conformance checks against shared/PROTOCOL.md and docs/protocol.md
 * that the rest of the suite did not cover: a real server on 127.0.0.1, real
 * HTTP and WebSocket clients, nothing mocked.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../helpers/server.js';
import { PASSWORD, expectError, expectStatus, uniqueName } from '../helpers/http.js';
import type { Conversation, Message, User } from '../../src/protocol/model.js';
import type { FrameOf } from '../helpers/ws-client.js';

const EMOJI = '😀'; // one code point, two UTF-16 units

describe('conformance audit', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start();
  });
  after(async () => {
    await h?.close();
  });

  test('titles, display names and passwords are counted in code points, as message bodies are', async () => {
    const reg = (json: Record<string, unknown>) => h.api.req<{ user: User }>('POST', '/v1/auth/register', { json });
    // Display name: 64 characters is the limit.
    const ok = await reg({ username: uniqueName('dn'), password: PASSWORD, displayName: EMOJI.repeat(64) });
    expectStatus(ok, 201, '64-emoji display name');
    assert.equal(ok.body.user.displayName, EMOJI.repeat(64));
    expectError(await reg({ username: uniqueName('dn'), password: PASSWORD, displayName: EMOJI.repeat(65) }), 400, 'bad_request', '65-emoji display name');
    // Password: 8–256 characters.
    expectStatus(await reg({ username: uniqueName('pw'), password: EMOJI.repeat(8) }), 201, '8-emoji password');
    expectStatus(await reg({ username: uniqueName('pw'), password: EMOJI.repeat(256) }), 201, '256-emoji password');
    expectError(await reg({ username: uniqueName('pw'), password: EMOJI.repeat(4) }), 400, 'bad_request', '4-emoji password (8 UTF-16 units)');
    expectError(await reg({ username: uniqueName('pw'), password: EMOJI.repeat(257) }), 400, 'bad_request', '257-emoji password');
    // Group title: 200 characters, over it too_large.
    const [a, b] = await h.api.users(2, 'title');
    assert.ok(a && b);
    const create = (title: string) => h.api.req<{ conversation: Conversation }>('POST', '/v1/conversations', { token: a.token, json: { kind: 'group', title, members: [b.id] } });
    const g = await create(EMOJI.repeat(200));
    expectStatus(g, 201, '200-emoji title');
    assert.equal(g.body.conversation.title, EMOJI.repeat(200));
    expectError(await create(EMOJI.repeat(201)), 413, 'too_large', '201-emoji title');
    const retitle = (title: string) => h.api.req('PATCH', `/v1/conversations/${g.body.conversation.id}`, { token: a.token, json: { title } });
    expectStatus(await retitle(`${EMOJI.repeat(199)}!`), 200, 'retitle with 200 characters');
    expectError(await retitle(EMOJI.repeat(201)), 413, 'too_large', 'retitle with 201 emoji');
    // Body: 4,000 emoji are fine, 4,001 are too_large (the SDK and the server agree with §1).
    const d = await h.api.direct(a, b);
    const ws = await h.connect(a);
    const ack = await ws.ack({ type: 'send', conversationId: d.id, clientId: 'emoji-4000', body: EMOJI.repeat(4000) });
    assert.equal((ack as FrameOf<'ack'> & { message: Message }).message.body, EMOJI.repeat(4000));
    const err = await ws.request({ type: 'send', conversationId: d.id, clientId: 'emoji-4001', body: EMOJI.repeat(4001) });
    assert.equal(err.type, 'error');
    assert.equal((err as FrameOf<'error'>).code, 'too_large');
  });

  test('a DELETE or logout that declares JSON but sends no body still succeeds; a route that needs a body is bad_request', async () => {
    const [a, b, c] = await h.api.users(3, 'emptyjson');
    assert.ok(a && b && c);
    const g = await h.api.group(a, [b, c], 'empty body');
    const json = { 'content-type': 'application/json' };
    expectStatus(await h.api.req('DELETE', `/v1/conversations/${g.id}/members/${c.id}`, { token: a.token, headers: json }), 204, 'remove a member');
    const conv = await h.api.conversation(a, g.id);
    assert.deepEqual(conv.members.map((m) => m.userId).sort(), [a.id, b.id].sort());
    expectError(await h.api.req('POST', '/v1/conversations', { token: a.token, headers: json }), 400, 'bad_request', 'create with no body');
    expectError(await h.api.req('POST', '/v1/auth/login', { headers: json }), 400, 'bad_request', 'login with no body');
    expectError(await h.api.req('POST', '/v1/auth/login', { raw: '{"username":' }), 400, 'bad_request', 'truncated JSON');
    expectStatus(await h.api.req('POST', '/v1/auth/logout', { token: b.token, headers: json }), 204, 'logout');
    expectError(await h.api.req('GET', '/v1/me', { token: b.token }), 401, 'unauthorized', 'me after logout');
  });

  test('the Bearer scheme of the Authorization header is case-insensitive; anything else is 401', async () => {
    const a = await h.api.user('bearer');
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const res = await h.api.req<{ user: User }>('GET', '/v1/me', { headers: { authorization: `${scheme} ${a.token}` } });
      expectStatus(res, 200, `scheme ${scheme}`);
      assert.equal(res.body.user.id, a.id);
    }
    for (const header of [`Basic ${a.token}`, 'Bearer', 'Bearer ', `Bearer ${a.token} extra`, `Bearer${a.token}`, a.token]) {
      expectError(await h.api.req('GET', '/v1/me', { headers: { authorization: header } }), 401, 'unauthorized', `Authorization: ${header.slice(0, 20)}`);
    }
  });

  test('an unpaired surrogate in a body, title, reaction, display name or device name is bad_request, never stored altered', async () => {
    const [a, b] = await h.api.users(2, 'surrogate');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    // JSON.stringify writes a lone surrogate as the escape "\ud800", which is valid JSON.
    const lone = 'x\ud800y';
    expectError(
      await h.api.req('POST', `/v1/conversations/${d.id}/messages`, { token: a.token, json: { clientId: 'lone-http', body: lone } }),
      400,
      'bad_request',
      'HTTP send',
    );
    expectError(
      await h.api.req('POST', '/v1/conversations', { token: a.token, json: { kind: 'group', title: `t\udc00`, members: [b.id] } }),
      400,
      'bad_request',
      'group title',
    );
    expectError(
      await h.api.req('POST', '/v1/auth/register', { json: { username: uniqueName('lone'), password: PASSWORD, displayName: lone } }),
      400,
      'bad_request',
      'display name',
    );
    for (const deviceName of [lone, 'a\u0000b']) {
      expectError(
        await h.api.req('POST', '/v1/auth/login', { json: { username: a.username, password: PASSWORD, deviceName } }),
        400,
        'bad_request',
        `device name ${JSON.stringify(deviceName)}`,
      );
    }
    // A long device name is cut at 100 characters, never inside one.
    const long = await h.api.req<{ deviceId: string; accessToken: string }>('POST', '/v1/auth/login', {
      json: { username: a.username, password: PASSWORD, deviceName: `${'d'.repeat(99)}${EMOJI}${EMOJI}` },
    });
    expectStatus(long, 200, 'long device name');
    const sessions = await h.api.req<{ sessions: { deviceId: string; deviceName: string }[] }>('GET', '/v1/sessions', { token: long.body.accessToken });
    expectStatus(sessions, 200, 'sessions');
    assert.equal(sessions.body.sessions.find((x) => x.deviceId === long.body.deviceId)?.deviceName, `${'d'.repeat(99)}${EMOJI}`);
    const ws = await h.connect(a);
    const err = await ws.request({ type: 'send', conversationId: d.id, clientId: 'lone-ws', body: lone });
    assert.equal(err.type, 'error', JSON.stringify(err));
    assert.equal((err as FrameOf<'error'>).code, 'bad_request');
    const ok = (await ws.ack({ type: 'send', conversationId: d.id, clientId: 'pair', body: `ok ${EMOJI}` })) as FrameOf<'ack'> & { message: Message };
    const rerr = await ws.request({ type: 'react', messageId: ok.message.id, reaction: '\ud83d' });
    assert.equal(rerr.type, 'error', JSON.stringify(rerr));
    assert.equal((rerr as FrameOf<'error'>).code, 'bad_request');
    assert.ok(ws.open, 'the socket stays open');
    const page = await h.api.history(a, d.id);
    assert.deepEqual(page.messages.map((m) => m.body), [`ok ${EMOJI}`], 'only the valid message is stored, as sent');
  });
});
