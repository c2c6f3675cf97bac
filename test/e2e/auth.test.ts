import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../helpers/server.js';
import { expectError, expectStatus, uniqueName, PASSWORD, sleep, type LoginBody } from '../helpers/http.js';
import type { Session, User } from '../../src/protocol/model.js';

describe('accounts and sessions over HTTP and WebSocket', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start();
  });
  after(async () => {
    await h?.close();
  });

  test('register answers 201 with the user, and no secret in it', async () => {
    const username = uniqueName('reg');
    const res = await h.api.req<{ user: User }>('POST', '/v1/auth/register', {
      json: { username, password: PASSWORD, displayName: 'Reg Istered' },
    });
    expectStatus(res, 201);
    const u = res.body.user;
    assert.equal(typeof u.id, 'string');
    assert.ok(u.id.length > 0);
    assert.equal(u.username, username);
    assert.equal(u.displayName, 'Reg Istered');
    assert.equal(typeof u.createdAt, 'number');
    assert.ok(Math.abs(u.createdAt - Date.now()) < 60_000, 'createdAt is ms since epoch');
    assert.ok(!/password|hash/i.test(res.text), `no password material in ${res.text}`);
  });

  test('username rules: 3–32 of a-z 0-9 _ . -', async () => {
    // The data dir is fresh per run, so fixed names are free.
    for (const name of ['abc', 'a'.repeat(32), 'a.b-c_9', '0_9.-z']) {
      const res = await h.api.req('POST', '/v1/auth/register', { json: { username: name, password: PASSWORD } });
      expectStatus(res, 201, `register ${name}`);
    }
    const bad: unknown[] = ['ab', 'a'.repeat(33), 'has space', 'bang!', 'émile', 'semi;colon', '', 'slash/x'];
    for (const name of bad) {
      const res = await h.api.req('POST', '/v1/auth/register', { json: { username: name, password: PASSWORD } });
      expectError(res, 400, 'bad_request', `username ${JSON.stringify(name)}`);
    }
  });

  test('password rules: 8–256 characters', async () => {
    expectStatus(await h.api.req('POST', '/v1/auth/register', { json: { username: uniqueName('pw'), password: 'x'.repeat(8) } }), 201);
    expectStatus(await h.api.req('POST', '/v1/auth/register', { json: { username: uniqueName('pw'), password: 'x'.repeat(256) } }), 201);
    expectError(await h.api.req('POST', '/v1/auth/register', { json: { username: uniqueName('pw'), password: 'x'.repeat(7) } }), 400, 'bad_request', '7 chars');
    expectError(await h.api.req('POST', '/v1/auth/register', { json: { username: uniqueName('pw'), password: 'x'.repeat(257) } }), 400, 'bad_request', '257 chars');
  });

  test('register with missing fields, wrong types or malformed JSON is bad_request', async () => {
    const cases: { json?: unknown; raw?: string }[] = [
      { json: {} },
      { json: { username: uniqueName('m') } },
      { json: { password: PASSWORD } },
      { json: { username: 12345, password: PASSWORD } },
      { json: { username: uniqueName('m'), password: 12345678 } },
      { json: { username: uniqueName('m'), password: PASSWORD, displayName: 42 } },
      { json: [uniqueName('m'), PASSWORD] },
      { raw: '{"username": "abc", "password": ' },
      { raw: 'not json at all' },
    ];
    for (const c of cases) {
      const res = await h.api.req('POST', '/v1/auth/register', c);
      expectError(res, 400, 'bad_request', JSON.stringify(c));
    }
  });

  test('a taken username is 409 conflict', async () => {
    const username = uniqueName('taken');
    await h.api.register(username);
    const res = await h.api.req('POST', '/v1/auth/register', { json: { username, password: 'another password' } });
    expectError(res, 409, 'conflict');
  });

  test('login answers tokens, expiry, device and user; wrong password or unknown user is 401', async () => {
    const username = uniqueName('login');
    const user = await h.api.register(username);
    const res = await h.api.req<LoginBody>('POST', '/v1/auth/login', { json: { username, password: PASSWORD, deviceName: 'laptop' } });
    expectStatus(res, 200);
    assert.equal(typeof res.body.accessToken, 'string');
    assert.equal(typeof res.body.refreshToken, 'string');
    assert.notEqual(res.body.accessToken, res.body.refreshToken);
    assert.equal(typeof res.body.expiresIn, 'number');
    assert.ok(res.body.expiresIn > 0);
    assert.equal(typeof res.body.deviceId, 'string');
    assert.deepEqual(res.body.user, user);

    expectError(await h.api.req('POST', '/v1/auth/login', { json: { username, password: 'wrong password' } }), 401, 'unauthorized', 'wrong password');
    expectError(await h.api.req('POST', '/v1/auth/login', { json: { username: uniqueName('nobody'), password: PASSWORD } }), 401, 'unauthorized', 'unknown user');
    expectError(await h.api.req('POST', '/v1/auth/login', { json: { username } }), 400, 'bad_request', 'missing password');
  });

  test('GET /v1/me needs a valid bearer token', async () => {
    const u = await h.api.user('me');
    const me = await h.api.req<{ user: User }>('GET', '/v1/me', { token: u.token });
    expectStatus(me, 200);
    assert.deepEqual(me.body.user, u.user);
    expectError(await h.api.req('GET', '/v1/me'), 401, 'unauthorized', 'no token');
    expectError(await h.api.req('GET', '/v1/me', { token: 'garbage.token.here' }), 401, 'unauthorized', 'garbage token');
    expectError(await h.api.req('GET', '/v1/me', { token: u.token.slice(0, -3) + 'AAA' }), 401, 'unauthorized', 'bad signature');
    expectError(await h.api.req('GET', '/v1/me', { headers: { authorization: `Basic ${u.token}` } }), 401, 'unauthorized', 'wrong scheme');
  });

  test('refresh rotates both tokens on the same device', async () => {
    const u = await h.api.user('rot');
    const r1 = await h.api.req<LoginBody>('POST', '/v1/auth/refresh', { json: { refreshToken: u.refreshToken } });
    expectStatus(r1, 200);
    assert.notEqual(r1.body.refreshToken, u.refreshToken);
    assert.equal(r1.body.deviceId, u.deviceId);
    assert.equal(r1.body.user.id, u.id);
    assert.ok(r1.body.expiresIn > 0);
    expectStatus(await h.api.req('GET', '/v1/me', { token: r1.body.accessToken }), 200, 'new access token works');
    const r2 = await h.api.req<LoginBody>('POST', '/v1/auth/refresh', { json: { refreshToken: r1.body.refreshToken } });
    expectStatus(r2, 200, 'second rotation');
    assert.notEqual(r2.body.refreshToken, r1.body.refreshToken);
    expectError(await h.api.req('POST', '/v1/auth/refresh', { json: { refreshToken: 'nope' } }), 401, 'unauthorized', 'unknown refresh token');
    expectError(await h.api.req('POST', '/v1/auth/refresh', { json: {} }), 400, 'bad_request', 'missing refresh token');
  });

  test('concurrent refreshes with one token: at most one succeeds', async () => {
    const u = await h.api.user('refrace');
    const results = await Promise.all(Array.from({ length: 4 }, () => h.api.req<LoginBody>('POST', '/v1/auth/refresh', { json: { refreshToken: u.refreshToken } })));
    const ok = results.filter((r) => r.status === 200);
    assert.ok(ok.length <= 1, `${ok.length} refreshes succeeded with the same token`);
    for (const r of results) if (r.status !== 200) expectError(r, 401, 'unauthorized', 'the losers');
  });

  test('reusing a spent refresh token revokes the device: every token of it dies, its socket closes 4001', async () => {
    const u = await h.api.user('reuse');
    const other = await h.api.device(u, 'other-device');
    const r1 = await h.api.req<LoginBody>('POST', '/v1/auth/refresh', { json: { refreshToken: u.refreshToken } });
    expectStatus(r1, 200);
    const ws = await h.connect({ ...u, token: r1.body.accessToken }, 'reuse-ws');

    const replay = await h.api.req('POST', '/v1/auth/refresh', { json: { refreshToken: u.refreshToken } });
    expectError(replay, 401, 'unauthorized', 'replayed refresh token');

    expectError(await h.api.req('POST', '/v1/auth/refresh', { json: { refreshToken: r1.body.refreshToken } }), 401, 'unauthorized', 'rotated token of revoked device');
    expectError(await h.api.req('GET', '/v1/me', { token: r1.body.accessToken }), 401, 'unauthorized', 'access token of revoked device');
    assert.equal((await ws.closed(3000)).code, 4001, 'open socket of the revoked device');
    // The user's other device is untouched.
    expectStatus(await h.api.req('GET', '/v1/me', { token: other.token }), 200, 'other device');
    expectStatus(await h.api.req('POST', '/v1/auth/refresh', { json: { refreshToken: other.refreshToken } }), 200, 'other device refresh');
  });

  test('logout: 204, the access token stops working at once, on HTTP and WebSocket', async () => {
    const u = await h.api.user('logout');
    const other = await h.api.device(u, 'phone');
    const ws = await h.connect(u, 'logout-ws');
    const otherWs = await h.connect(other, 'logout-other-ws');
    const res = await h.api.req('POST', '/v1/auth/logout', { token: u.token });
    expectStatus(res, 204);
    expectError(await h.api.req('GET', '/v1/me', { token: u.token }), 401, 'unauthorized', 'after logout');
    expectError(await h.api.req('POST', '/v1/auth/refresh', { json: { refreshToken: u.refreshToken } }), 401, 'unauthorized', 'refresh after logout');
    assert.equal((await ws.closed(3000)).code, 4001, 'socket of the logged-out device');

    const late = await h.raw('late-auth');
    late.send({ type: 'auth', ref: 'a1', token: u.token });
    assert.equal((await late.closed(3000)).code, 4001, 'auth with a logged-out token');

    expectStatus(await h.api.req('GET', '/v1/me', { token: other.token }), 200, 'other device still works');
    assert.ok(otherWs.open, 'socket of the other device stays open');
    const pong = await otherWs.request({ type: 'ping' });
    assert.equal(pong.type, 'pong');
    expectError(await h.api.req('POST', '/v1/auth/logout'), 401, 'unauthorized', 'logout without token');
  });

  test('sessions: list marks the current one; deleting one kills its tokens and closes its sockets with 4001', async () => {
    const a = await h.api.user('sess', 'laptop');
    const b = await h.api.device(a, 'phone');
    const list = await h.api.req<{ sessions: Session[] }>('GET', '/v1/sessions', { token: a.token });
    expectStatus(list, 200);
    const byId = new Map(list.body.sessions.map((s) => [s.deviceId, s]));
    assert.equal(list.body.sessions.length, 2, JSON.stringify(list.body));
    const sa = byId.get(a.deviceId);
    const sb = byId.get(b.deviceId);
    assert.ok(sa && sb, 'both devices listed');
    assert.equal(sa.current, true);
    assert.equal(sb.current, false);
    assert.equal(sa.deviceName, 'laptop');
    assert.equal(sb.deviceName, 'phone');
    assert.equal(typeof sa.createdAt, 'number');
    assert.equal(typeof sa.lastActiveAt, 'number');

    const wsB = await h.connect(b, 'sess-b');
    const wsA = await h.connect(a, 'sess-a');
    expectStatus(await h.api.req('DELETE', `/v1/sessions/${b.deviceId}`, { token: a.token }), 204);
    assert.equal((await wsB.closed(3000)).code, 4001, 'revoked device socket');
    expectError(await h.api.req('GET', '/v1/me', { token: b.token }), 401, 'unauthorized', 'revoked access token');
    expectError(await h.api.req('POST', '/v1/auth/refresh', { json: { refreshToken: b.refreshToken } }), 401, 'unauthorized', 'revoked refresh token');
    const after = await h.api.req<{ sessions: Session[] }>('GET', '/v1/sessions', { token: a.token });
    assert.deepEqual(
      after.body.sessions.map((s) => s.deviceId),
      [a.deviceId],
    );
    assert.ok(wsA.open, 'the current device socket stays open');

    expectError(await h.api.req('DELETE', '/v1/sessions/no-such-device', { token: a.token }), 404, 'not_found', 'unknown device');
    // Someone else's device: refused, and that device keeps working.
    const stranger = await h.api.user('sess_str');
    const res = await h.api.req('DELETE', `/v1/sessions/${stranger.deviceId}`, { token: a.token });
    assert.ok(res.status === 404 || res.status === 403, `deleting another user's device → ${res.status}`);
    expectStatus(await h.api.req('GET', '/v1/me', { token: stranger.token }), 200, 'stranger unaffected');
  });

  test('users: search by prefix and get by id', async () => {
    const prefix = `srch${Date.now() % 100000}`;
    const u1 = await h.api.register(`${prefix}_one`);
    const u2 = await h.api.register(`${prefix}_two`);
    await h.api.register(uniqueName('other'));
    const me = await h.api.user('searcher');
    const res = await h.api.req<{ users: User[] }>('GET', `/v1/users?q=${prefix}&limit=10`, { token: me.token });
    expectStatus(res, 200);
    assert.deepEqual(
      res.body.users.map((u) => u.id).sort(),
      [u1.id, u2.id].sort(),
    );
    const one = await h.api.req<{ users: User[] }>('GET', `/v1/users?q=${prefix}&limit=1`, { token: me.token });
    assert.equal(one.body.users.length, 1);
    const got = await h.api.req<{ user: User }>('GET', `/v1/users/${u1.id}`, { token: me.token });
    expectStatus(got, 200);
    assert.deepEqual(got.body.user, u1);
    expectError(await h.api.req('GET', '/v1/users/nope-not-an-id', { token: me.token }), 404, 'not_found');
    expectError(await h.api.req('GET', `/v1/users/${u1.id}`), 401, 'unauthorized', 'users without token');
  });

  test('WebSocket auth: ready carries user, device and heartbeatMs ≤ 30000', async () => {
    const u = await h.api.user('wsauth');
    const { ready } = await h.connectWithReady(u);
    assert.deepEqual(ready.user, u.user);
    assert.equal(ready.deviceId, u.deviceId);
    assert.equal(typeof ready.heartbeatMs, 'number');
    assert.ok(ready.heartbeatMs > 0 && ready.heartbeatMs <= 30000, `heartbeatMs ${ready.heartbeatMs}`);
  });

  test('WebSocket: a bad token, a non-auth first frame, or a garbage first frame closes 4001', async () => {
    const u = await h.api.user('ws4001');
    const bad = await h.raw('bad-token');
    bad.send({ type: 'auth', ref: 1, token: 'not-a-token' });
    assert.equal((await bad.closed()).code, 4001, 'bad token');

    const forged = await h.raw('forged');
    forged.send({ type: 'auth', ref: 1, token: u.token.slice(0, -4) + 'abcd' });
    assert.equal((await forged.closed()).code, 4001, 'forged signature');

    const early = await h.raw('early');
    early.send({ type: 'ping', ref: 'p' });
    assert.equal((await early.closed()).code, 4001, 'ping before auth');

    const bin = await h.raw('binary-first');
    bin.sendRaw(Buffer.from(JSON.stringify({ type: 'auth', ref: 1, token: u.token })), true);
    assert.equal((await bin.closed()).code, 4001, 'binary first frame');

    const early2 = await h.raw('early2');
    early2.send({ type: 'send', ref: 's', conversationId: 'x', clientId: 'c', body: 'hi' });
    assert.equal((await early2.closed()).code, 4001, 'send before auth');
    assert.equal(early2.all('ack').length + early2.all('error', (e) => e.code !== 'unauthorized').length, 0);
  });
});

describe('expired access tokens', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ accessTokenTtlSec: 1 });
  });
  after(async () => {
    await h?.close();
  });

  test('an expired access token is 401 on HTTP and closes 4001 on WebSocket; refresh still works', async () => {
    const u = await h.api.user('exp');
    expectStatus(await h.api.req('GET', '/v1/me', { token: u.token }), 200);
    await sleep(2100);
    expectError(await h.api.req('GET', '/v1/me', { token: u.token }), 401, 'unauthorized', 'expired');
    const ws = await h.raw('expired');
    ws.send({ type: 'auth', ref: 'x', token: u.token });
    assert.equal((await ws.closed()).code, 4001, 'expired token on WebSocket');
    const r = await h.api.req<LoginBody>('POST', '/v1/auth/refresh', { json: { refreshToken: u.refreshToken } });
    expectStatus(r, 200, 'refresh after access expiry');
    expectStatus(await h.api.req('GET', '/v1/me', { token: r.body.accessToken }), 200);
  });
});
