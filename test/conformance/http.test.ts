/**
 * HTTP API conformance, round 2: every endpoint of shared/PROTOCOL.md exercised
 * as a black-box client would (a real server on 127.0.0.1, fetch, nothing
 * mocked), checking statuses, the exact shapes of the objects, the error body,
 * and the edges of pagination and validation.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { SignJWT } from 'jose';
import { Harness } from '../helpers/server.js';
import { PASSWORD, expectError as expectErrorShape, expectStatus, uniqueName, type LoginBody, type Res, type TestUser } from '../helpers/http.js';
import type { Conversation, ConversationEvent, Message, User } from '../../src/protocol/model.js';

const JWT_SECRET = 'conformance-http-secret-0123456789abcdef';

// ---- shape checks: required fields with their JSON types, optional ones absent or typed, nothing else ----

const isId = (v: unknown): boolean => typeof v === 'string' && v.length >= 1 && v.length <= 64;
const isMs = (v: unknown): boolean => Number.isInteger(v) && (v as number) > 1_500_000_000_000;
const isSeq = (v: unknown, min = 1): boolean => Number.isInteger(v) && (v as number) >= min;

/** `nullable`: fields that may be null (only `next` of the lists, docs/protocol.md §1); no other field ever is. */
function keys(o: object, required: string[], optional: string[], what: string, nullable: string[] = []): void {
  const ks = Object.keys(o);
  for (const k of required) assert.ok(ks.includes(k), `${what}: missing ${k} in ${JSON.stringify(o)}`);
  for (const k of ks) assert.ok(required.includes(k) || optional.includes(k), `${what}: unexpected field ${k} in ${JSON.stringify(o)}`);
  for (const k of ks) if (!nullable.includes(k)) assert.notEqual((o as Record<string, unknown>)[k], null, `${what}: ${k} is null in ${JSON.stringify(o)}`);
}

function checkUser(u: unknown, what = 'user'): asserts u is User {
  assert.ok(u && typeof u === 'object', `${what}: not an object`);
  keys(u, ['id', 'username', 'displayName', 'createdAt'], [], what);
  const x = u as User;
  assert.ok(isId(x.id), `${what}.id`);
  assert.match(x.username, /^[a-z0-9_.-]{3,32}$/, `${what}.username`);
  assert.equal(typeof x.displayName, 'string', `${what}.displayName`);
  assert.ok(x.displayName.length > 0, `${what}.displayName empty`);
  assert.ok(isMs(x.createdAt), `${what}.createdAt`);
}

function checkMessage(m: unknown, what = 'message'): asserts m is Message {
  assert.ok(m && typeof m === 'object', `${what}: not an object`);
  keys(m, ['id', 'conversationId', 'seq', 'senderId', 'clientId', 'body', 'createdAt'], ['replyTo', 'editedAt', 'deletedAt', 'reactions'], what);
  const x = m as Message;
  assert.ok(isId(x.id) && isId(x.conversationId) && isId(x.senderId), `${what}: ids`);
  assert.ok(isSeq(x.seq), `${what}.seq`);
  assert.equal(typeof x.clientId, 'string', `${what}.clientId`);
  assert.equal(typeof x.body, 'string', `${what}.body`);
  assert.ok(isMs(x.createdAt), `${what}.createdAt`);
  if (x.replyTo !== undefined) assert.ok(isId(x.replyTo), `${what}.replyTo`);
  if (x.editedAt !== undefined) assert.ok(isMs(x.editedAt), `${what}.editedAt`);
  if (x.deletedAt !== undefined) {
    assert.ok(isMs(x.deletedAt), `${what}.deletedAt`);
    assert.equal(x.body, '', `${what}: a deleted message's body is ""`);
  }
  if (x.reactions !== undefined) {
    assert.equal(typeof x.reactions, 'object', `${what}.reactions`);
    assert.ok(Object.keys(x.reactions).length > 0, `${what}.reactions present but empty`);
    for (const ids of Object.values(x.reactions)) assert.ok(Array.isArray(ids) && ids.length > 0 && ids.every(isId), `${what}.reactions ids`);
  }
}

/** `member`: the conversation as the caller reads it (GET one or the list), with unreadCount and lastMessage. */
function checkConversation(c: unknown, member: boolean, what = 'conversation'): asserts c is Conversation {
  assert.ok(c && typeof c === 'object', `${what}: not an object`);
  const x = c as Conversation;
  const required = ['id', 'kind', 'members', 'lastSeq', 'createdAt', 'updatedAt'];
  if (x.kind === 'group') required.push('title');
  keys(c, member ? [...required, 'unreadCount'] : required, member ? ['lastMessage'] : [], what);
  assert.ok(isId(x.id), `${what}.id`);
  assert.ok(x.kind === 'direct' || x.kind === 'group', `${what}.kind`);
  if (x.kind === 'group') assert.equal(typeof x.title, 'string', `${what}.title`);
  assert.ok(Array.isArray(x.members), `${what}.members`);
  for (const m of x.members) {
    keys(m, ['userId', 'role', 'lastReadSeq'], [], `${what}.member`);
    assert.ok(isId(m.userId), `${what}.member.userId`);
    assert.ok(['owner', 'admin', 'member'].includes(m.role), `${what}.member.role`);
    assert.ok(isSeq(m.lastReadSeq, 0) && m.lastReadSeq <= x.lastSeq, `${what}.member.lastReadSeq`);
  }
  const ids = x.members.map((m) => m.userId);
  assert.deepEqual(ids, [...ids].sort(), `${what}: members ordered by userId`);
  assert.ok(isSeq(x.lastSeq, 0), `${what}.lastSeq`);
  assert.ok(isMs(x.createdAt) && isMs(x.updatedAt) && x.updatedAt >= x.createdAt, `${what}: times`);
  if (member) assert.ok(isSeq(x.unreadCount, 0), `${what}.unreadCount`);
  if (x.lastMessage !== undefined) checkMessage(x.lastMessage, `${what}.lastMessage`);
}

const EVENT_FIELDS: Record<string, string[]> = {
  'message.created': ['message'],
  'message.edited': ['messageId', 'body'],
  'message.deleted': ['messageId'],
  'message.reacted': ['messageId', 'reaction', 'active'],
  'member.joined': ['userId', 'role'],
  'member.left': ['userId'],
  'member.role': ['userId', 'role'],
  'conversation.updated': ['title'],
};

function checkEvent(e: unknown, what = 'event'): asserts e is ConversationEvent {
  assert.ok(e && typeof e === 'object', `${what}: not an object`);
  const x = e as ConversationEvent;
  const extra = EVENT_FIELDS[x.kind];
  assert.ok(extra, `${what}: unknown kind ${x.kind}`);
  keys(e, ['conversationId', 'seq', 'kind', 'at', 'actorId', ...extra], [], `${what} ${x.kind}`);
  assert.ok(isId(x.conversationId) && isId(x.actorId), `${what}: ids`);
  assert.ok(isSeq(x.seq), `${what}.seq`);
  assert.ok(isMs(x.at), `${what}.at`);
  switch (x.kind) {
    case 'message.created':
      checkMessage(x.message, `${what}.message`);
      assert.equal(x.message.seq, x.seq, `${what}: message.seq = seq`);
      assert.equal(x.message.conversationId, x.conversationId);
      break;
    case 'message.edited':
      assert.ok(isId(x.messageId) && typeof x.body === 'string', `${what} fields`);
      break;
    case 'message.deleted':
      assert.ok(isId(x.messageId), `${what} fields`);
      break;
    case 'message.reacted':
      assert.ok(isId(x.messageId) && typeof x.reaction === 'string' && typeof x.active === 'boolean', `${what} fields`);
      break;
    case 'member.joined':
    case 'member.role':
      assert.ok(isId(x.userId) && ['owner', 'admin', 'member'].includes(x.role), `${what} fields`);
      break;
    case 'member.left':
      assert.ok(isId(x.userId), `${what} fields`);
      break;
    case 'conversation.updated':
      assert.equal(typeof x.title, 'string', `${what} fields`);
      break;
  }
}

function checkTokens(b: unknown, what: string): asserts b is LoginBody {
  assert.ok(b && typeof b === 'object', `${what}: not an object`);
  keys(b, ['accessToken', 'refreshToken', 'expiresIn', 'deviceId', 'user'], [], what);
  const x = b as LoginBody;
  assert.ok(typeof x.accessToken === 'string' && x.accessToken.length > 0, `${what}.accessToken`);
  assert.ok(typeof x.refreshToken === 'string' && x.refreshToken.length > 0, `${what}.refreshToken`);
  assert.ok(Number.isInteger(x.expiresIn) && x.expiresIn > 0, `${what}.expiresIn`);
  assert.ok(isId(x.deviceId), `${what}.deviceId`);
  checkUser(x.user, `${what}.user`);
}

/** One raw HTTP/1.1 exchange on its own connection: what a client with a broken HTTP stack would get. */
function rawHttp(base: string, request: string): Promise<{ status: number; headers: string; body: string }> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), '127.0.0.1', () => s.write(request));
    let out = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer in 5 s; got ${JSON.stringify(out)}`));
    }, 5000);
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      const [head = '', body = ''] = out.split('\r\n\r\n', 2);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), headers: head, body });
    });
  });
}

/** The error shape, and a message that is one readable sentence: one line, ending in a full stop, no internals. */
function expectError(res: Res<unknown>, status: number, code: Parameters<typeof expectErrorShape>[2], what = ''): void {
  expectErrorShape(res, status, code, what);
  const message = (res.body as { error: { message: string } }).error.message;
  assert.match(message, /^[A-Z"][^\n]*[.]$/, `${what}: not one sentence: ${JSON.stringify(message)}`);
  assert.ok(message.length <= 300, `${what}: message of ${message.length} characters`);
  assert.doesNotMatch(message, /FST_|ERR_|SQLITE|Error:|undefined|\[object/, `${what}: internals in ${JSON.stringify(message)}`);
}

function isJson(res: Res<unknown>, what: string): void {
  assert.match(res.headers.get('content-type') ?? '', /^application\/json; charset=utf-8$/i, `${what}: content type`);
}

describe('HTTP conformance, round 2', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ jwtSecret: JWT_SECRET });
  });
  after(async () => {
    await h?.close();
  });

  const get = <T>(u: TestUser | undefined, path: string): Promise<Res<T>> => h.api.req<T>('GET', path, u ? { token: u.token } : {});
  const post = <T>(u: TestUser | undefined, path: string, json?: unknown): Promise<Res<T>> =>
    h.api.req<T>('POST', path, { ...(u ? { token: u.token } : {}), ...(json === undefined ? {} : { json }) });

  test('accounts: register, login, refresh and me answer the contract shapes', async () => {
    const username = uniqueName('shape');
    const reg = await post<{ user: User }>(undefined, '/v1/auth/register', { username, password: PASSWORD });
    expectStatus(reg, 201, 'register');
    isJson(reg, 'register');
    keys(reg.body, ['user'], [], 'register answer');
    checkUser(reg.body.user, 'register.user');
    assert.equal(reg.body.user.displayName, username, 'displayName defaults to the username');

    const login = await post<LoginBody>(undefined, '/v1/auth/login', { username: username.toUpperCase(), password: PASSWORD });
    expectStatus(login, 200, 'login');
    checkTokens(login.body, 'login');
    assert.deepEqual(login.body.user, reg.body.user);

    const me = await h.api.req<{ user: User }>('GET', '/v1/me', { token: login.body.accessToken });
    expectStatus(me, 200, 'me');
    keys(me.body, ['user'], [], 'me answer');
    assert.deepEqual(me.body.user, reg.body.user);

    const byId = await h.api.req<{ user: User }>('GET', `/v1/users/${reg.body.user.id}`, { token: login.body.accessToken });
    expectStatus(byId, 200, 'users/:id');
    keys(byId.body, ['user'], [], 'users/:id answer');
    assert.deepEqual(byId.body.user, reg.body.user);
    expectError(await h.api.req('GET', '/v1/users/nobody-has-this-id', { token: login.body.accessToken }), 404, 'not_found', 'unknown user id');

    const r1 = await post<LoginBody>(undefined, '/v1/auth/refresh', { refreshToken: login.body.refreshToken });
    expectStatus(r1, 200, 'refresh');
    checkTokens(r1.body, 'refresh');
    assert.equal(r1.body.deviceId, login.body.deviceId, 'refresh keeps the device');
    assert.notEqual(r1.body.refreshToken, login.body.refreshToken, 'refresh tokens rotate');
    expectStatus(await h.api.req('GET', '/v1/me', { token: r1.body.accessToken }), 200, 'me with the refreshed token');

    expectError(await post(undefined, '/v1/auth/login', { username, password: 'wrong password!' }), 401, 'unauthorized', 'wrong password');
    expectError(await post(undefined, '/v1/auth/login', { username: uniqueName('nobody'), password: PASSWORD }), 401, 'unauthorized', 'unknown user');
    expectError(await post(undefined, '/v1/auth/register', { username, password: PASSWORD }), 409, 'conflict', 'taken');
  });

  test('reusing a spent refresh token revokes the device: its access tokens, its newest refresh token; other devices live on', async () => {
    const a = await h.api.user('reuse');
    const other = await h.api.device(a, 'other');
    const r1 = await post<LoginBody>(undefined, '/v1/auth/refresh', { refreshToken: a.refreshToken });
    expectStatus(r1, 200, 'first refresh');
    const reuse = await post(undefined, '/v1/auth/refresh', { refreshToken: a.refreshToken });
    expectError(reuse, 401, 'unauthorized', 'spent refresh token');
    expectError(await h.api.req('GET', '/v1/me', { token: r1.body.accessToken }), 401, 'unauthorized', 'access token issued by the refresh');
    expectError(await h.api.req('GET', '/v1/me', { token: a.token }), 401, 'unauthorized', 'access token of the login');
    expectError(await post(undefined, '/v1/auth/refresh', { refreshToken: r1.body.refreshToken }), 401, 'unauthorized', 'newest refresh token');
    expectStatus(await h.api.req('GET', '/v1/me', { token: other.token }), 200, 'another device of the same user');
  });

  test('logout answers 204 and kills both tokens of that device; garbage, tampered and expired tokens are 401', async () => {
    const a = await h.api.user('logout');
    const lo = await post(a, '/v1/auth/logout');
    expectStatus(lo, 204, 'logout');
    assert.equal(lo.text, '', 'a 204 has no body');
    expectError(await h.api.req('GET', '/v1/me', { token: a.token }), 401, 'unauthorized', 'me after logout');
    expectError(await post(undefined, '/v1/auth/refresh', { refreshToken: a.refreshToken }), 401, 'unauthorized', 'refresh after logout');
    expectError(await post(a, '/v1/auth/logout'), 401, 'unauthorized', 'second logout');

    const b = await h.api.user('tokens');
    expectError(await post(undefined, '/v1/auth/refresh', { refreshToken: 'not-a-token' }), 401, 'unauthorized', 'garbage refresh token');
    expectError(await post(undefined, '/v1/auth/refresh', { refreshToken: '' }), 400, 'bad_request', 'empty refresh token');
    expectError(await post(undefined, '/v1/auth/refresh', {}), 400, 'bad_request', 'no refresh token');
    for (const token of ['garbage', 'a.b.c', `${b.token}x`, b.token.replace(/\.[^.]+$/, '.AAAA')]) {
      expectError(await h.api.req('GET', '/v1/me', { token }), 401, 'unauthorized', `token ${token.slice(0, 12)}`);
    }
    const key = new TextEncoder().encode(JWT_SECRET);
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ did: b.deviceId }).setProtectedHeader({ alg: 'HS256' }).setSubject(b.id).setIssuedAt(now - 1000).setExpirationTime(now - 10).sign(key);
    expectError(await h.api.req('GET', '/v1/me', { token: expired }), 401, 'unauthorized', 'expired token');
    const valid = await new SignJWT({ did: b.deviceId }).setProtectedHeader({ alg: 'HS256' }).setSubject(b.id).setIssuedAt(now).setExpirationTime(now + 60).sign(key);
    expectStatus(await h.api.req('GET', '/v1/me', { token: valid }), 200, 'a token signed the same way is accepted (the forging check is sound)');
    const otherUser = await new SignJWT({ did: b.deviceId }).setProtectedHeader({ alg: 'HS256' }).setSubject('someone-else').setIssuedAt(now).setExpirationTime(now + 60).sign(key);
    expectError(await h.api.req('GET', '/v1/me', { token: otherUser }), 401, 'unauthorized', 'device of another user');
  });

  test('users: prefix search, limit bounds, and a keyset walk that ends with next null', async () => {
    const prefix = `pw${Math.random().toString(36).slice(2, 7)}`;
    const names: string[] = [];
    for (let i = 0; i < 7; i++) {
      const name = `${prefix}_${i}`;
      await h.api.register(name);
      names.push(name);
    }
    const a = await h.api.user('searcher');
    for (const limit of ['0', '101', '201', '-1', 'abc', '1.5', '0x10', '1e1', '5abc', 'Infinity', ' 5']) {
      expectError(await get(a, `/v1/users?q=${prefix}&limit=${limit}`), 400, 'bad_request', `limit=${limit}`);
    }
    // An empty value is an absent one (shared/PROTOCOL.md writes its queries as `?after=&limit=`): the default.
    const empty = await get<{ users: User[] }>(a, `/v1/users?q=${prefix}&limit=`);
    expectStatus(empty, 200, 'limit= (empty)');
    assert.equal(empty.body.users.length, 7);
    expectError(await get(a, `/v1/users?q=${'x'.repeat(65)}`), 400, 'bad_request', 'q of 65 characters');
    const all = await get<{ users: User[]; next: string | null }>(a, `/v1/users?q=${prefix.toUpperCase()}&limit=100`);
    expectStatus(all, 200, 'search');
    keys(all.body, ['users', 'next'], [], 'users answer', ['next']);
    assert.deepEqual(all.body.users.map((u) => u.username), names);
    all.body.users.forEach((u, i) => checkUser(u, `users[${i}]`));
    assert.equal(all.body.next, null);

    const seen: string[] = [];
    let after = '';
    for (let page = 0; page < 10; page++) {
      const r = await get<{ users: User[]; next: string | null }>(a, `/v1/users?q=${prefix}&limit=3${after ? `&after=${after}` : ''}`);
      expectStatus(r, 200, `page ${page}`);
      assert.ok(r.body.users.length > 0, 'a page is never followed by an empty one');
      seen.push(...r.body.users.map((u) => u.username));
      if (r.body.next === null) break;
      after = r.body.next;
    }
    assert.deepEqual(seen, names, 'the walk sees every user once, in order');
    const exact = await get<{ users: User[]; next: string | null }>(a, `/v1/users?q=${prefix}&limit=7`);
    assert.equal(exact.body.users.length, 7);
    assert.equal(exact.body.next, null, 'a page that ends exactly at the last user has next null');
  });

  test('conversations: direct with self, unknown or missing users, duplicates, titles', async () => {
    const [a, b, c] = await h.api.users(3, 'conv');
    assert.ok(a && b && c);
    const create = (u: TestUser, json: unknown) => post<{ conversation: Conversation }>(u, '/v1/conversations', json);

    expectError(await create(a, { kind: 'direct', members: [a.id] }), 400, 'bad_request', 'direct with self');
    expectError(await create(a, { kind: 'direct', members: ['no-such-user'] }), 404, 'not_found', 'direct with unknown user');
    expectError(await create(a, { kind: 'direct', members: [] }), 400, 'bad_request', 'direct without member');
    expectError(await create(a, { kind: 'direct', members: [b.id, c.id] }), 400, 'bad_request', 'direct with two others');
    expectError(await create(a, { kind: 'direct' }), 400, 'bad_request', 'direct without members');
    expectError(await create(a, { kind: 'channel', members: [b.id] }), 400, 'bad_request', 'unknown kind');

    const d = await create(a, { kind: 'direct', members: [b.id] });
    expectStatus(d, 201, 'direct');
    keys(d.body, ['conversation'], [], 'create answer');
    checkConversation(d.body.conversation, false, 'direct');
    assert.equal(d.body.conversation.lastSeq, 0);
    assert.ok(d.body.conversation.members.every((m) => m.role === 'member'));
    const again = await create(b, { kind: 'direct', members: [a.id] });
    expectStatus(again, 200, 'direct from the other side');
    checkConversation(again.body.conversation, false, 'existing direct');
    assert.equal(again.body.conversation.id, d.body.conversation.id);

    expectError(await create(a, { kind: 'group', members: [b.id] }), 400, 'bad_request', 'group without title');
    expectError(await create(a, { kind: 'group', title: '   ', members: [b.id] }), 400, 'bad_request', 'blank title');
    expectError(await create(a, { kind: 'group', title: 'x'.repeat(201), members: [b.id] }), 413, 'too_large', 'title of 201');
    expectError(await create(a, { kind: 'group', title: 't', members: [b.id, 'no-such-user'] }), 404, 'not_found', 'group with unknown user');
    expectError(await create(a, { kind: 'group', title: 't', members: 'x' }), 400, 'bad_request', 'members not an array');

    const g = await create(a, { kind: 'group', title: '  Trip  ', members: [b.id, b.id, a.id, c.id, c.id] });
    expectStatus(g, 201, 'group with duplicates');
    checkConversation(g.body.conversation, false, 'group');
    assert.equal(g.body.conversation.title, 'Trip', 'the title is trimmed');
    assert.equal(g.body.conversation.members.length, 3, 'duplicates and the creator ignored');
    assert.equal(g.body.conversation.members.find((m) => m.userId === a.id)?.role, 'owner');
    const solo = await create(a, { kind: 'group', title: 'alone', members: [] });
    expectStatus(solo, 201, 'group of one');
    assert.deepEqual(solo.body.conversation.members, [{ userId: a.id, role: 'owner', lastReadSeq: 0 }]);

    const one = await get<{ conversation: Conversation }>(a, `/v1/conversations/${g.body.conversation.id}`);
    expectStatus(one, 200, 'get');
    keys(one.body, ['conversation'], [], 'get answer');
    checkConversation(one.body.conversation, true, 'get group');
    assert.equal(one.body.conversation.lastMessage, undefined, 'no lastMessage without messages');
    const dOne = await get<{ conversation: Conversation }>(a, `/v1/conversations/${d.body.conversation.id}`);
    checkConversation(dOne.body.conversation, true, 'get direct');
    assert.equal('title' in dOne.body.conversation, false, 'a direct conversation has no title');
  });

  test('a body that matches no variant of the create union names the field at fault, not "Expected union value"', async () => {
    const [a, b] = await h.api.users(2, 'union');
    assert.ok(a && b);
    const cases: [unknown, RegExp][] = [
      [{ kind: 'group', members: [b.id] }, /field title: Expected required property/],
      [{ kind: 'group', title: 5, members: [] }, /field title: Expected string/],
      [{ kind: 'group', title: 'x' }, /field members: Expected required property/],
      [{ kind: 'direct', members: [] }, /field members: Expected array length to be greater or equal to 1/],
      [{ kind: 'direct', members: [b.id, b.id] }, /field members: Expected array length to be less or equal to 1/],
      [{ kind: 'dm', members: [b.id] }, /field kind: Expected "direct" or "group"/],
      [{ members: [b.id] }, /field kind: Expected "direct" or "group"/],
    ];
    for (const [json, message] of cases) {
      const r = await post<{ error: { message: string } }>(a, '/v1/conversations', json);
      expectError(r, 400, 'bad_request', JSON.stringify(json));
      assert.match(r.body.error.message, message, JSON.stringify(json));
      assert.match(r.body.error.message, /^Invalid body field [a-z]+: .+\.$/, 'one sentence');
    }
  });

  test('conversations: non-members get 403 and unknown ids 404 on every conversation route', async () => {
    const [a, b, out] = await h.api.users(3, 'acl');
    assert.ok(a && b && out);
    const g = await h.api.group(a, [b], 'acl');
    const m = await h.api.send(a, g.id, 'hello');
    const routes: [string, string, unknown?][] = [
      ['GET', `/v1/conversations/:id`],
      ['GET', `/v1/conversations/:id/messages`],
      ['GET', `/v1/conversations/:id/events`],
      ['GET', `/v1/conversations/:id/presence`],
      ['POST', `/v1/conversations/:id/messages`, { clientId: 'x', body: 'x' }],
      ['POST', `/v1/conversations/:id/members`, { userIds: [out.id] }],
      ['DELETE', `/v1/conversations/:id/members/${b.id}`],
      ['PATCH', `/v1/conversations/:id`, { title: 'x' }],
      ['PATCH', `/v1/conversations/:id/members/${b.id}`, { role: 'admin' }],
      ['POST', `/v1/conversations/:id/read`, { seq: 1 }],
    ];
    for (const [method, path, json] of routes) {
      const opts = { token: out.token, ...(json === undefined ? {} : { json }) };
      expectError(await h.api.req(method, path.replace(':id', g.id), opts), 403, 'forbidden', `${method} ${path} as a non-member`);
      expectError(await h.api.req(method, path.replace(':id', 'no-such-conversation'), opts), 404, 'not_found', `${method} ${path} unknown`);
    }
    for (const [method, path, json] of [
      ['PATCH', `/v1/messages/${m.id}`, { body: 'x' }],
      ['DELETE', `/v1/messages/${m.id}`],
      ['POST', `/v1/messages/${m.id}/reactions`, { reaction: '👍' }],
      ['DELETE', `/v1/messages/${m.id}/reactions/x`],
    ] as [string, string, unknown?][]) {
      const opts = { token: out.token, ...(json === undefined ? {} : { json }) };
      expectError(await h.api.req(method, path, opts), 403, 'forbidden', `${method} ${path} as a non-member`);
      expectError(await h.api.req(method, path.replace(m.id, 'no-such-message'), opts), 404, 'not_found', `${method} ${path} unknown`);
    }
  });

  test('members: roles, removing the owner, leave, re-add, and the log records each', async () => {
    const [a, b, c, d] = await h.api.users(4, 'mem');
    assert.ok(a && b && c && d);
    const g = await h.api.group(a, [b, c], 'members');
    const add = (u: TestUser, userIds: string[]) => post<{ conversation: Conversation }>(u, `/v1/conversations/${g.id}/members`, { userIds });
    const del = (u: TestUser, target: string) => h.api.req('DELETE', `/v1/conversations/${g.id}/members/${target}`, { token: u.token });

    expectError(await add(b, [d.id]), 403, 'forbidden', 'a member adds');
    expectError(await add(a, []), 400, 'bad_request', 'no ids');
    expectError(await add(a, ['no-such-user']), 404, 'not_found', 'unknown user');
    const added = await add(a, [d.id, d.id, b.id]);
    expectStatus(added, 200, 'add');
    keys(added.body, ['conversation'], [], 'add answer');
    checkConversation(added.body.conversation, false, 'after add');
    assert.equal(added.body.conversation.members.length, 4);
    assert.equal(added.body.conversation.lastSeq, 1, 'one member.joined for one new member');
    assert.equal(added.body.conversation.members.find((m) => m.userId === d.id)?.lastReadSeq, 1);

    for (const role of ['owner', 'boss', 5]) {
      const r: Res<{ error: { message: string } }> = await h.api.req('PATCH', `/v1/conversations/${g.id}/members/${b.id}`, { token: a.token, json: { role } });
      expectError(r, 400, 'bad_request', `role ${role}`);
      assert.equal(r.body.error.message, 'Invalid body field role: Expected "admin" or "member".', `role ${role}`);
    }
    const promote = await h.api.req<{ conversation: Conversation }>('PATCH', `/v1/conversations/${g.id}/members/${b.id}`, { token: a.token, json: { role: 'admin' } });
    expectStatus(promote, 200, 'promote');
    checkConversation(promote.body.conversation, false, 'after promote');
    expectError(await del(b, a.id), 403, 'forbidden', 'an admin removes the owner');
    expectError(await del(c, d.id), 403, 'forbidden', 'a member removes a member');
    expectError(await del(a, 'no-such-user'), 404, 'not_found', 'remove a non-member');
    const rm = await del(b, c.id);
    expectStatus(rm, 204, 'admin removes a member');
    assert.equal(rm.text, '');
    expectError(await get(c, `/v1/conversations/${g.id}`), 403, 'forbidden', 'removed member reads');
    expectStatus(await del(d, d.id), 204, 'leave');
    expectError(await del(d, d.id), 403, 'forbidden', 'leave twice');
    expectStatus(await add(b, [c.id, d.id]), 200, 're-add');
    const back = await get<{ conversation: Conversation }>(c, `/v1/conversations/${g.id}`);
    expectStatus(back, 200, 're-added member reads');
    checkConversation(back.body.conversation, true, 're-added');
    expectStatus(await del(a, a.id), 204, 'the owner leaves');
    const after = await get<{ conversation: Conversation }>(b, `/v1/conversations/${g.id}`);
    assert.equal(after.body.conversation.members.find((m) => m.userId === b.id)?.role, 'owner', 'ownership passed to the admin');
    assert.ok(!after.body.conversation.members.some((m) => m.userId === a.id));

    const log = await get<{ events: ConversationEvent[]; hasMore: boolean }>(b, `/v1/conversations/${g.id}/events`);
    expectStatus(log, 200, 'events');
    log.body.events.forEach((e, i) => checkEvent(e, `events[${i}]`));
    assert.deepEqual(
      log.body.events.map((e) => e.kind),
      ['member.joined', 'member.role', 'member.left', 'member.left', 'member.joined', 'member.joined', 'member.role', 'member.left'],
    );
    assert.deepEqual(
      log.body.events.map((e) => e.seq),
      log.body.events.map((_, i) => i + 1),
    );
    const dm = await h.api.direct(a, b);
    expectError(await post(a, `/v1/conversations/${dm.id}/members`, { userIds: [c.id] }), 400, 'bad_request', 'add to a direct');
    expectError(await h.api.req('DELETE', `/v1/conversations/${dm.id}/members/${b.id}`, { token: a.token }), 400, 'bad_request', 'remove from a direct');
  });

  test('conversations list: a keyset walk sees every conversation once while others become active', async () => {
    const [a, b] = await h.api.users(2, 'walk');
    assert.ok(a && b);
    const ids: string[] = [];
    for (let i = 0; i < 9; i++) ids.push((await h.api.group(a, [b], `walk ${i}`)).id);
    for (const limit of ['0', '201', '-1', 'abc', '1.5']) {
      expectError(await get(a, `/v1/conversations?limit=${limit}`), 400, 'bad_request', `limit=${limit}`);
    }
    expectError(await get(a, '/v1/conversations?after=not-a-cursor'), 400, 'bad_request', 'forged cursor');

    const seen: string[] = [];
    let after: string | null = '';
    let page = 0;
    const touched = new Set<string>();
    while (after !== null && page < 20) {
      const r: Res<{ conversations: Conversation[]; next: string | null }> = await get(a, `/v1/conversations?limit=2${after ? `&after=${encodeURIComponent(after)}` : ''}`);
      expectStatus(r, 200, `page ${page}`);
      keys(r.body, ['conversations', 'next'], [], 'list answer', ['next']);
      assert.ok(r.body.next === null || typeof r.body.next === 'string', 'next: string or null');
      r.body.conversations.forEach((c, i) => checkConversation(c, true, `page ${page}[${i}]`));
      seen.push(...r.body.conversations.map((c) => c.id));
      // Activity while paging: a conversation already seen becomes the newest, and so does one not yet reached.
      const done = seen[0];
      if (done !== undefined) await h.api.send(b, done, `bump ${page}`);
      const ahead = ids.find((id) => !seen.includes(id) && !touched.has(id));
      if (page === 1 && ahead !== undefined) {
        touched.add(ahead);
        await h.api.send(b, ahead, 'moved to the front');
      }
      after = r.body.next;
      page++;
    }
    assert.equal(new Set(seen).size, seen.length, `no conversation twice: ${seen.join(',')}`);
    for (const id of ids) if (!touched.has(id)) assert.ok(seen.includes(id), `conversation ${id} not active during the walk is seen`);
    const first = await get<{ conversations: Conversation[]; next: string | null }>(a, '/v1/conversations?limit=200');
    assert.equal(first.body.next, null);
    assert.equal(first.body.conversations.length, 9);
    const times = first.body.conversations.map((c) => c.updatedAt);
    assert.deepEqual(times, [...times].sort((x, y) => y - x), 'most recently active first');
  });

  test('messages: send shape, clientId retry, too long, replies, history bounds and hasMore', async () => {
    const [a, b] = await h.api.users(2, 'msg');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const other = await h.api.group(a, [b], 'other');
    const send = (json: unknown) => post<{ message: Message }>(a, `/v1/conversations/${d.id}/messages`, json);

    const first = await send({ clientId: 'm-1', body: 'one' });
    expectStatus(first, 201, 'send');
    keys(first.body, ['message'], [], 'send answer');
    checkMessage(first.body.message);
    assert.equal(first.body.message.seq, 1);
    const retry = await send({ clientId: 'm-1', body: 'one, again' });
    expectStatus(retry, 200, 'retry');
    assert.deepEqual(retry.body.message, first.body.message, 'the original, not a second message');
    expectError(await send({ clientId: 'm-1', body: '  ' }), 400, 'bad_request', 'a retry is checked like a send (docs/protocol.md)');
    const conv = await h.api.conversation(a, d.id);
    assert.equal(conv.lastSeq, 1, 'no second event');

    const long = 'y'.repeat(4001);
    expectError(await send({ clientId: 'm-long', body: long }), 413, 'too_large', 'body of 4,001');
    expectError(await send({ clientId: 'm-empty', body: ' \n ' }), 400, 'bad_request', 'blank body');
    expectError(await send({ clientId: '', body: 'x' }), 400, 'bad_request', 'empty clientId');
    expectError(await send({ clientId: 'c'.repeat(129), body: 'x' }), 400, 'bad_request', 'clientId of 129');
    expectError(await send({ body: 'x' }), 400, 'bad_request', 'no clientId');
    expectError(await send({ clientId: 'm-num', body: 42 }), 400, 'bad_request', 'body a number');
    const max = await send({ clientId: 'm-max', body: 'z'.repeat(4000) });
    expectStatus(max, 201, 'body of 4,000');
    assert.equal(max.body.message.body.length, 4000, 'never truncated');

    expectError(await send({ clientId: 'r-unknown', body: 'x', replyTo: 'no-such-message' }), 404, 'not_found', 'reply to unknown');
    const elsewhere = await h.api.send(a, other.id, 'elsewhere');
    expectError(await send({ clientId: 'r-other', body: 'x', replyTo: elsewhere.id }), 409, 'conflict', 'reply to another conversation');
    const reply = await send({ clientId: 'r-ok', body: 'reply', replyTo: first.body.message.id });
    expectStatus(reply, 201, 'reply');
    checkMessage(reply.body.message);
    assert.equal(reply.body.message.replyTo, first.body.message.id);

    // 1 (m-1), 2 (m-max), 3 (r-ok); then 4 and 5.
    await h.api.send(a, d.id, 'four');
    await h.api.send(b, d.id, 'five');
    const hist = (q: string) => get<{ messages: Message[]; hasMore: boolean }>(a, `/v1/conversations/${d.id}/messages${q}`);
    for (const q of ['?limit=0', '?limit=201', '?limit=1.5', '?limit=abc', '?before=0', '?before=-1', '?after=-1', '?after=1.5', '?before=x', '?after=0x2', '?before=1e1', '?after=99999999999999999999']) {
      expectError(await hist(q), 400, 'bad_request', q);
    }
    const all = await hist('');
    expectStatus(all, 200, 'history');
    keys(all.body, ['messages', 'hasMore'], [], 'history answer');
    all.body.messages.forEach((m, i) => checkMessage(m, `messages[${i}]`));
    assert.deepEqual(all.body.messages.map((m) => m.seq), [1, 2, 3, 4, 5]);
    assert.equal(all.body.hasMore, false);
    const seqs = async (q: string) => {
      const r = await hist(q);
      expectStatus(r, 200, q);
      return [r.body.messages.map((m) => m.seq), r.body.hasMore];
    };
    assert.deepEqual(await seqs('?limit=5'), [[1, 2, 3, 4, 5], false], 'exactly all');
    assert.deepEqual(await seqs('?limit=4'), [[2, 3, 4, 5], true]);
    assert.deepEqual(await seqs('?before=2&limit=1'), [[1], false], 'before at the start');
    assert.deepEqual(await seqs('?before=1'), [[], false], 'nothing before 1');
    assert.deepEqual(await seqs('?before=3&limit=1'), [[2], true]);
    assert.deepEqual(await seqs('?after=0&limit=5'), [[1, 2, 3, 4, 5], false]);
    assert.deepEqual(await seqs('?after=0&limit=4'), [[1, 2, 3, 4], true]);
    assert.deepEqual(await seqs('?after=4&limit=1'), [[5], false], 'after at the end');
    assert.deepEqual(await seqs('?after=5'), [[], false]);
    assert.deepEqual(await seqs('?after=99'), [[], false]);
    assert.deepEqual(await seqs('?before=99&limit=2'), [[4, 5], true]);
    assert.deepEqual(await seqs('?after=1&before=5&limit=2'), [[2, 3], true]);
    assert.deepEqual(await seqs('?after=1&before=5&limit=3'), [[2, 3, 4], false]);
  });

  test('events: every kind with its fields, contiguous seqs, hasMore and limit bounds', async () => {
    const [a, b, c] = await h.api.users(3, 'ev');
    assert.ok(a && b && c);
    const g = await h.api.group(a, [b], 'events');
    const m = await h.api.send(a, g.id, 'hi');
    expectStatus(await h.api.req('PATCH', `/v1/messages/${m.id}`, { token: a.token, json: { body: 'hi!' } }), 200, 'edit');
    expectStatus(await post(b, `/v1/messages/${m.id}/reactions`, { reaction: '👍' }), 200, 'react');
    expectStatus(await h.api.req('DELETE', `/v1/messages/${m.id}`, { token: a.token }), 200, 'delete');
    expectStatus(await post(a, `/v1/conversations/${g.id}/members`, { userIds: [c.id] }), 200, 'add');
    expectStatus(await h.api.req('PATCH', `/v1/conversations/${g.id}/members/${b.id}`, { token: a.token, json: { role: 'admin' } }), 200, 'role');
    expectStatus(await h.api.req('PATCH', `/v1/conversations/${g.id}`, { token: a.token, json: { title: 'renamed' } }), 200, 'rename');
    expectStatus(await h.api.req('DELETE', `/v1/conversations/${g.id}/members/${c.id}`, { token: c.token }), 204, 'leave');

    const renamed = await h.api.req<{ conversation: Conversation }>('PATCH', `/v1/conversations/${g.id}`, { token: a.token, json: { title: 'renamed' } });
    expectStatus(renamed, 200, 'rename again');
    keys(renamed.body, ['conversation'], [], 'rename answer');
    checkConversation(renamed.body.conversation, false, 'after rename');
    expectStatus(await h.api.req('PATCH', `/v1/conversations/${g.id}`, { token: a.token, json: { title: 'renamed' } }), 200, 'rename to the same title');
    const ev = (q: string) => get<{ events: ConversationEvent[]; hasMore: boolean }>(b, `/v1/conversations/${g.id}/events${q}`);
    for (const q of ['?limit=0', '?limit=1001', '?limit=x', '?after=-1', '?after=1.5']) expectError(await ev(q), 400, 'bad_request', q);
    const all = await ev('');
    expectStatus(all, 200, 'events');
    keys(all.body, ['events', 'hasMore'], [], 'events answer');
    all.body.events.forEach((e, i) => checkEvent(e, `events[${i}]`));
    assert.deepEqual(
      all.body.events.map((e) => e.kind),
      ['message.created', 'message.edited', 'message.reacted', 'message.deleted', 'member.joined', 'member.role', 'conversation.updated', 'member.left', 'conversation.updated', 'conversation.updated'],
    );
    assert.deepEqual(all.body.events.map((e) => e.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(all.body.hasMore, false);
    const created = all.body.events[0];
    assert.ok(created?.kind === 'message.created');
    assert.equal(created.message.body, '', 'a deleted message leaves the log');
    const page = await ev('?after=2&limit=3');
    assert.deepEqual([page.body.events.map((e) => e.seq), page.body.hasMore], [[3, 4, 5], true]);
    const end = await ev('?after=7&limit=3');
    assert.deepEqual([end.body.events.map((e) => e.seq), end.body.hasMore], [[8, 9, 10], false], 'a page that ends at the last event');
    const none = await ev('?after=10');
    assert.deepEqual([none.body.events, none.body.hasMore], [[], false]);

    const history = await get<{ messages: Message[] }>(b, `/v1/conversations/${g.id}/messages`);
    const gone = history.body.messages[0];
    checkMessage(gone, 'deleted message');
    assert.ok(gone.deletedAt !== undefined && gone.body === '' && gone.reactions === undefined, JSON.stringify(gone));
  });

  test('events: concurrent sends from several users and devices get contiguous seqs, each message once', async () => {
    const [a, b, c] = await h.api.users(3, 'race');
    assert.ok(a && b && c);
    const a2 = await h.api.device(a, 'second');
    const g = await h.api.group(a, [b, c], 'race');
    const senders = [a, a2, b, c];
    const sends = Array.from({ length: 40 }, (_, i) => {
      const u = senders[i % senders.length] as TestUser;
      // Every fifth is a retry of the one before from the same device: it must not make a second message.
      const clientId = `race-${i % 5 === 4 ? i - 4 : i}`;
      return post<{ message: Message }>(u, `/v1/conversations/${g.id}/messages`, { clientId, body: `m${i}` });
    });
    const res = await Promise.all(sends);
    for (const r of res) assert.ok(r.status === 201 || r.status === 200, `${r.status} ${r.text}`);
    const log = await get<{ events: ConversationEvent[]; hasMore: boolean }>(a, `/v1/conversations/${g.id}/events?limit=1000`);
    const seqs = log.body.events.map((e) => e.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'gap-free, ascending');
    const ids = log.body.events.map((e) => (e.kind === 'message.created' ? e.message.id : ''));
    assert.equal(new Set(ids).size, ids.length, 'each message once');
    const created = new Set(res.filter((r) => r.status === 201).map((r) => r.body.message.id));
    assert.equal(created.size, log.body.events.length, 'one event per 201');
    for (const r of res) assert.ok(ids.includes(r.body.message.id), 'every answer names a message of the log');
  });

  test('errors: unknown routes and methods, bad JSON, wrong content type, oversized bodies, all in the error shape', async () => {
    const a = await h.api.user('err');
    const unknown = await get(undefined, '/v1/nothing');
    expectError(unknown, 404, 'not_found', 'unknown route');
    isJson(unknown, 'unknown route');
    expectError(await get(a, '/v1/nothing'), 404, 'not_found', 'unknown route with a token');
    expectError(await get(undefined, '/nothing/at/all'), 404, 'not_found', 'unknown route outside /v1');
    for (const [method, path] of [
      ['PUT', '/v1/me'],
      ['DELETE', '/v1/me'],
      ['GET', '/v1/auth/login'],
      ['PATCH', '/v1/users'],
      ['PUT', '/v1/conversations'],
    ]) {
      const r = await h.api.req(method as string, path as string, { token: a.token });
      assert.ok(r.status === 404 || r.status === 405, `${method} ${path} → ${r.status}`);
      expectError(r, r.status, r.status === 404 ? 'not_found' : 'bad_request', `${method} ${path}`);
    }
    expectError(await h.api.req('POST', '/v1/auth/login', { raw: '{"username":"x",' }), 400, 'bad_request', 'invalid JSON');
    expectError(await h.api.req('POST', '/v1/auth/login', { raw: '[1,2]' }), 400, 'bad_request', 'a JSON array');
    expectError(await h.api.req('POST', '/v1/auth/login', { raw: '"x"' }), 400, 'bad_request', 'a JSON string');
    expectError(await h.api.req('POST', '/v1/auth/login', { raw: 'null' }), 400, 'bad_request', 'JSON null');
    expectError(
      await h.api.req('POST', '/v1/auth/login', { raw: JSON.stringify({ username: a.username, password: PASSWORD }), headers: { 'content-type': 'text/plain' } }),
      400,
      'bad_request',
      'text/plain',
    );
    expectError(
      await h.api.req('POST', '/v1/auth/login', { raw: 'username=x&password=y', headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
      400,
      'bad_request',
      'form body',
    );
    const ok = await h.api.req('POST', '/v1/auth/login', {
      raw: JSON.stringify({ username: a.username, password: PASSWORD }),
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    expectStatus(ok, 200, 'JSON with a charset');
    const big = JSON.stringify({ username: a.username, password: PASSWORD, deviceName: 'x'.repeat(1024 * 1024) });
    expectError(await h.api.req('POST', '/v1/auth/login', { raw: big }), 413, 'too_large', 'body over 1 MiB');
    const d = await h.api.direct(a, await h.api.user('err2'));
    expectError(
      await h.api.req('POST', `/v1/conversations/${d.id}/messages`, { token: a.token, raw: JSON.stringify({ clientId: 'big', body: 'b'.repeat(1024 * 1024) }) }),
      413,
      'too_large',
      'send over 1 MiB',
    );
    const unauth = await h.api.req('POST', '/v1/conversations', { raw: '{not json' });
    expectError(unauth, 401, 'unauthorized', 'bad JSON without a token: the token is checked first');
    expectError(await get(undefined, '/v1/users?limit=abc'), 401, 'unauthorized', 'bad query without a token');
    expectError(await get(undefined, `/v1/users/${'x'.repeat(65)}`), 401, 'unauthorized', 'bad path without a token');
    expectError(await get(undefined, '/v1/nothing?limit=abc'), 404, 'not_found', 'unknown route without a token: the route is checked first');
  });

  test('every 401 carries a Bearer challenge in WWW-Authenticate (RFC 9110 §15.5.2, RFC 6750 §3)', async () => {
    const a = await h.api.user('challenge');
    const none = await get(undefined, '/v1/me');
    expectError(none, 401, 'unauthorized', 'no token');
    assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="parley"', 'no token: a bare challenge');
    for (const token of ['garbage', `${a.token}x`]) {
      const r = await h.api.req('GET', '/v1/conversations', { token });
      expectError(r, 401, 'unauthorized', 'bad token');
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="parley", error="invalid_token"', 'a refused token');
    }
    expectStatus(await post(a, '/v1/auth/logout'), 204, 'logout');
    const revoked = await get(a, '/v1/me');
    expectError(revoked, 401, 'unauthorized', 'revoked');
    assert.equal(revoked.headers.get('www-authenticate'), 'Bearer realm="parley", error="invalid_token"', 'a revoked session');
    const login = await post(undefined, '/v1/auth/login', { username: a.username, password: 'not the password' });
    expectError(login, 401, 'unauthorized', 'wrong password');
    assert.equal(login.headers.get('www-authenticate'), 'Bearer realm="parley"', 'wrong password: a bare challenge');
    const ok = await get(a, '/healthz');
    assert.equal(ok.headers.get('www-authenticate'), null, 'only on 401');
  });

  test('requests the framework or the HTTP parser refuse still get the protocol error body', async () => {
    const a = await h.api.user('framework');
    // Malformed percent-encoding in the path: the router cannot decode it.
    for (const path of ['/v1/users/%zz', '/v1/users/%E0%A4%A', '/v1/conversations/%']) {
      const r = await h.api.req('GET', path, { token: a.token });
      expectError(r, 400, 'bad_request', `GET ${path}`);
      isJson(r, `GET ${path}`);
    }
    // An id longer than the router's default parameter limit is an id out of bounds (bad_request), as a 65-character one is.
    expectError(await get(a, `/v1/users/${'x'.repeat(65)}`), 400, 'bad_request', 'id of 65');
    expectError(await get(a, `/v1/users/${'x'.repeat(101)}`), 400, 'bad_request', 'id of 101');
    expectError(await get(a, `/v1/conversations/${'x'.repeat(500)}/messages`), 400, 'bad_request', 'conversation id of 500');
    expectError(await get(a, `/v1/conversations/${'x'.repeat(10_000)}`), 400, 'bad_request', 'conversation id of 10,000');
    // Broken HTTP: the parser refuses it before any route runs.
    for (const req of [
      'POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}',
      'GET /v1/me HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
    ]) {
      const r = await rawHttp(h.url, req);
      assert.equal(r.status, 400, `${JSON.stringify(req.slice(0, 60))} → ${r.headers}`);
      assert.match(r.headers, /\r\ncontent-type: application\/json; charset=utf-8\r\n/i, r.headers);
      const body = JSON.parse(r.body) as { error: { code: string; message: string } };
      keys(body, ['error'], [], 'parser error body');
      keys(body.error, ['code', 'message'], [], 'parser error');
      assert.equal(body.error.code, 'bad_request');
    }
    const big = await rawHttp(h.url, `GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`);
    assert.equal(big.status, 413, big.headers);
    assert.equal((JSON.parse(big.body) as { error: { code: string } }).error.code, 'too_large');
  });

  test('operations: healthz, readyz and Prometheus metrics', async () => {
    const hz = await get<{ status: string }>(undefined, '/healthz');
    expectStatus(hz, 200, 'healthz');
    isJson(hz, 'healthz');
    assert.deepEqual(hz.body, { status: 'ok' });
    const rz = await get<{ status: string; checks: Record<string, boolean> }>(undefined, '/readyz');
    expectStatus(rz, 200, 'readyz');
    assert.deepEqual(rz.body, { status: 'ready', checks: { draining: false, store: true, bus: true } });
    const m = await get(undefined, '/metrics');
    expectStatus(m, 200, 'metrics');
    assert.match(m.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/, 'Prometheus text content type');
    assert.match(m.text, /^# HELP parley_connections /m);
    assert.match(m.text, /^parley_connections \d+$/m);
    assert.match(m.text, /^process_resident_memory_bytes /m);
  });
});

describe('HTTP conformance, round 2: rate limits', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ rateUserPerSec: 1, rateUserBurst: 2 });
  });
  after(async () => {
    await h?.close();
  });

  test('429 carries retryAfterMs and a Retry-After header in whole seconds, rounded up', async () => {
    const [a, b] = await h.api.users(2, 'rl');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    let limited: Res<{ error: { code: string; message: string; retryAfterMs: number } }> | undefined;
    for (let i = 0; i < 5 && !limited; i++) {
      const r = await h.api.req<{ error: { code: string; message: string; retryAfterMs: number } }>('POST', `/v1/conversations/${d.id}/messages`, {
        token: a.token,
        json: { clientId: `rl-${i}`, body: 'x' },
      });
      if (r.status === 429) limited = r;
      else expectStatus(r, 201, `send ${i}`);
    }
    assert.ok(limited, 'a burst of 5 sends meets the limit of 2');
    expectError(limited, 429, 'rate_limited', 'over the limit');
    keys(limited.body.error, ['code', 'message', 'retryAfterMs'], [], 'rate_limited error');
    const ms = limited.body.error.retryAfterMs;
    assert.ok(Number.isInteger(ms) && ms > 0 && ms <= 1000, `retryAfterMs ${ms}`);
    assert.equal(limited.headers.get('retry-after'), String(Math.ceil(ms / 1000)));
  });
});
