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
    const bad: unknown[] = ['ab', 'a'.repeat(33), 'has space', 'bang!', 'émile', 'semi;colon', '', 'slash/x', 'Alice', 'ALICE', ' alice', 'alice\n'];
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
    // Register takes only lower case; login forgives how a user types it (a phone capitalises the first letter).
    const typed = await h.api.req<LoginBody>('POST', '/v1/auth/login', { json: { username: ` ${username.toUpperCase()} `, password: PASSWORD } });
    expectStatus(typed, 200);
    assert.deepEqual(typed.body.user, user);
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

  test('a session\'s lastActiveAt moves on use (an HTTP request, a WebSocket frame), at most once a minute', async () => {
    const a = await h.api.user('active', 'laptop');
    const other = await h.api.device(a, 'phone');
    const sessionOf = async (deviceId: string): Promise<Session> => {
      const res = await h.api.req<{ sessions: Session[] }>('GET', '/v1/sessions', { token: other.token });
      const s = res.body.sessions.find((x) => x.deviceId === deviceId);
      assert.ok(s, `session ${deviceId} listed`);
      return s;
    };
    const atLogin = await sessionOf(a.deviceId);
    assert.equal(atLogin.lastActiveAt, atLogin.createdAt, 'a fresh session was last active at its login');

    await sleep(30);
    const t0 = Date.now();
    expectStatus(await h.api.req('GET', '/v1/me', { token: a.token }), 200);
    // The write is not awaited by the request; give it a moment.
    const deadline = Date.now() + 2000;
    let used = await sessionOf(a.deviceId);
    while (used.lastActiveAt === atLogin.lastActiveAt && Date.now() < deadline) {
      await sleep(20);
      used = await sessionOf(a.deviceId);
    }
    assert.ok(used.lastActiveAt >= t0, `lastActiveAt ${used.lastActiveAt} moved to the request (>= ${t0})`);

    // Within the minute, more use (HTTP, and frames on a socket) does not write again.
    await sleep(30);
    expectStatus(await h.api.req('GET', '/v1/me', { token: a.token }), 200);
    const ws = await h.connect(a, 'active-ws');
    assert.equal((await ws.request({ type: 'ping' })).type, 'pong');
    await sleep(100);
    assert.equal((await sessionOf(a.deviceId)).lastActiveAt, used.lastActiveAt, 'throttled to once a minute');
  });

  test('authentication comes before validation: no token is 401 whatever the body, query or params', async () => {
    const a = await h.api.user('authfirst');
    const d = await h.api.direct(a, await h.api.user('authfirst2'));
    const cases: [string, string, { json?: unknown; raw?: string }][] = [
      ['POST', '/v1/conversations', { json: { kind: 'channel' } }],
      ['POST', '/v1/conversations', { raw: '{not json' }],
      ['POST', `/v1/conversations/${d.id}/messages`, { json: { body: 42 } }],
      ['GET', `/v1/conversations/${d.id}/messages?limit=0`, {}],
      ['GET', '/v1/conversations?limit=abc', {}],
      ['GET', '/v1/sessions?after=not-a-cursor', {}],
      ['PATCH', `/v1/conversations/${d.id}/members/${a.id}`, { json: { role: 'king' } }],
    ];
    for (const [method, path, body] of cases) {
      expectError(await h.api.req(method, path, body), 401, 'unauthorized', `${method} ${path} without a token`);
      expectError(await h.api.req(method, path, { ...body, token: 'not-a-token' }), 401, 'unauthorized', `${method} ${path} with a bad token`);
      expectError(await h.api.req(method, path, { ...body, token: a.token }), 400, 'bad_request', `${method} ${path} with a token`);
    }
    // Routes that take no token still validate, and an unknown route is still 404.
    expectError(await h.api.req('POST', '/v1/auth/login', { json: { username: 5 } }), 400, 'bad_request', 'login with a bad body');
    expectError(await h.api.req('POST', '/v1/auth/register', { raw: '{not json' }), 400, 'bad_request', 'register with bad JSON');
    expectError(await h.api.req('GET', '/v1/no-such-route'), 404, 'not_found', 'unknown route');
  });

  test('sessions: keyset pages newest first, next null at the end, a revoked session between pages hides nothing', async () => {
    const a = await h.api.user('sesspg', 'd0');
    const devices = [a];
    for (let i = 1; i < 5; i++) devices.push(await h.api.device(a, `d${i}`));
    type Page = { sessions: Session[]; next: string | null };
    const page = (q: string) => h.api.req<Page>('GET', `/v1/sessions${q}`, { token: a.token });
    const p1 = await page('?limit=2');
    expectStatus(p1, 200);
    assert.deepEqual(p1.body.sessions.map((s) => s.deviceName), ['d4', 'd3']);
    assert.equal(typeof p1.body.next, 'string');
    // The last session of page 1 is revoked before page 2 is read: the cursor is a position, not an id to find.
    expectStatus(await h.api.req('DELETE', `/v1/sessions/${devices[3]?.deviceId}`, { token: a.token }), 204);
    const p2 = await page(`?limit=2&after=${encodeURIComponent(p1.body.next ?? '')}`);
    expectStatus(p2, 200);
    assert.deepEqual(p2.body.sessions.map((s) => s.deviceName), ['d2', 'd1']);
    const p3 = await page(`?limit=2&after=${encodeURIComponent(p2.body.next ?? '')}`);
    assert.deepEqual(p3.body.sessions.map((s) => [s.deviceName, s.current]), [['d0', true]]);
    assert.ok('next' in p3.body && p3.body.next === null, `next null at the end: ${p3.text}`);
    const all = await page('');
    assert.equal(all.body.sessions.length, 4);
    assert.equal(all.body.next, null);
    expectError(await page('?after=not-a-cursor'), 400, 'bad_request', 'forged cursor');
    expectError(await page('?limit=0'), 400, 'bad_request', 'limit 0');
    expectError(await page('?limit=101'), 400, 'bad_request', 'limit 101');
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
    const one = await h.api.req<{ users: User[]; next: string | null }>('GET', `/v1/users?q=${prefix}&limit=1`, { token: me.token });
    assert.equal(one.body.users.length, 1);
    // Keyset pages: `next` while more follow, `"next": null` at the end (as GET /v1/conversations), no empty last page.
    assert.equal(one.body.next, `${prefix}_one`);
    const two = await h.api.req<{ users: User[]; next: string | null }>('GET', `/v1/users?q=${prefix}&limit=1&after=${one.body.next}`, { token: me.token });
    assert.deepEqual(two.body.users.map((u) => u.id), [u2.id]);
    assert.ok('next' in two.body && two.body.next === null, `next is null at the end: ${two.text}`);
    const all = await h.api.req<{ users: User[]; next: string | null }>('GET', `/v1/users?q=${prefix}&limit=2`, { token: me.token });
    assert.equal(all.body.users.length, 2);
    assert.ok('next' in all.body && all.body.next === null, `a full last page ends with next null: ${all.text}`);
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
    // Times are whole seconds in a JWT: a token of TTL n is valid for n-1 to n seconds after it is made,
    // so 1 s left the first request below racing an expiry that could come within milliseconds.
    h = await Harness.start({ accessTokenTtlSec: 3 });
  });
  after(async () => {
    await h?.close();
  });

  test('an expired access token is 401 on HTTP and closes 4001 on WebSocket; refresh still works', async () => {
    const u = await h.api.user('exp');
    expectStatus(await h.api.req('GET', '/v1/me', { token: u.token }), 200);
    await sleep(3100);
    expectError(await h.api.req('GET', '/v1/me', { token: u.token }), 401, 'unauthorized', 'expired');
    const ws = await h.raw('expired');
    ws.send({ type: 'auth', ref: 'x', token: u.token });
    assert.equal((await ws.closed()).code, 4001, 'expired token on WebSocket');
    const r = await h.api.req<LoginBody>('POST', '/v1/auth/refresh', { json: { refreshToken: u.refreshToken } });
    expectStatus(r, 200, 'refresh after access expiry');
    expectStatus(await h.api.req('GET', '/v1/me', { token: r.body.accessToken }), 200);
  });
});
