/**
 * Failed-login budgets (R16, R19) over real HTTP: guessing is refused with
 * rate_limited once an account's budget from one address is spent, right
 * passwords never spend it, other addresses and accounts keep theirs, and
 * X-Forwarded-For counts only from a trusted proxy. Client addresses differ by
 * binding the socket to another 127.x source address.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { Harness } from '../helpers/server.js';
import { PASSWORD, uniqueName } from '../helpers/http.js';

interface Answer {
  status: number;
  retryAfter: string | undefined;
  body: { error?: { code: string; message: string; retryAfterMs?: number }; accessToken?: string };
}

/** POST /v1/auth/login from `from` (a loopback source address), with extra headers. */
function login(base: string, username: string, password: string, from = '127.0.0.1', headers: Record<string, string> = {}): Promise<Answer> {
  const url = new URL('/v1/auth/login', base);
  const data = JSON.stringify({ username, password });
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', localAddress: from, agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body: JSON.parse(text) as Answer['body'] }));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

async function register(h: Harness): Promise<string> {
  const username = uniqueName('lt');
  const res = await h.api.req('POST', '/v1/auth/register', { json: { username, password: PASSWORD } });
  assert.equal(res.status, 201);
  return username;
}

function assertThrottled(a: Answer, what: string): void {
  assert.equal(a.status, 429, `${what}: ${JSON.stringify(a.body)}`);
  assert.equal(a.body.error?.code, 'rate_limited');
  assert.match(a.body.error?.message ?? '', /failed logins/);
  const ms = a.body.error?.retryAfterMs ?? 0;
  assert.ok(ms > 0 && ms <= 60_000, `retryAfterMs ${ms}`);
  assert.equal(a.retryAfter, String(Math.ceil(ms / 1000)));
}

describe('failed-login budgets', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ loginFailures: 5, loginFailuresPerAddress: 12 });
  });
  after(async () => {
    await h?.close();
  });

  test('wrong passwords are refused with 401 until the budget is spent, then 429 even for the right one', async () => {
    const name = await register(h);
    for (let i = 0; i < 5; i++) assert.equal((await login(h.srv.url, name, 'wrong password', '127.0.0.2')).status, 401, `guess ${i + 1}`);
    assertThrottled(await login(h.srv.url, name, 'wrong password', '127.0.0.2'), 'sixth guess');
    // The right password is not even verified now: the answer must not tell a guesser it was right.
    assertThrottled(await login(h.srv.url, name, PASSWORD, '127.0.0.2'), 'right password while throttled');
    // The name as login looks it up: case and spaces do not make a fresh budget.
    assertThrottled(await login(h.srv.url, ` ${name.toUpperCase()}`, 'wrong password', '127.0.0.2'), 'same account, other spelling');
  });

  test('the owner logs in from another address, and other accounts are untouched', async () => {
    const name = await register(h);
    const other = await register(h);
    for (let i = 0; i < 5; i++) await login(h.srv.url, name, 'wrong password', '127.0.0.3');
    assertThrottled(await login(h.srv.url, name, 'wrong password', '127.0.0.3'), 'guesser');
    const owner = await login(h.srv.url, name, PASSWORD, '127.0.0.4');
    assert.equal(owner.status, 200, JSON.stringify(owner.body));
    assert.ok(owner.body.accessToken);
    assert.equal((await login(h.srv.url, other, PASSWORD, '127.0.0.3')).status, 200, 'another account from the guessing address');
  });

  test('right passwords never spend the budget', async () => {
    const name = await register(h);
    for (let i = 0; i < 8; i++) assert.equal((await login(h.srv.url, name, PASSWORD, '127.0.0.5')).status, 200, `login ${i + 1}`);
    for (let i = 0; i < 4; i++) assert.equal((await login(h.srv.url, name, 'wrong password', '127.0.0.5')).status, 401);
    assert.equal((await login(h.srv.url, name, PASSWORD, '127.0.0.5')).status, 200, 'four failures leave one');
  });

  test('one address trying a few guesses on many accounts runs out of its own budget', async () => {
    const names = await Promise.all(Array.from({ length: 5 }, () => register(h)));
    const statuses: number[] = [];
    for (const name of names) for (let i = 0; i < 3; i++) statuses.push((await login(h.srv.url, name, 'wrong password', '127.0.0.6')).status);
    assert.deepEqual(statuses.slice(0, 12), Array(12).fill(401));
    assert.deepEqual(statuses.slice(12), [429, 429, 429]);
    assert.equal((await login(h.srv.url, names[0]!, 'wrong password', '127.0.0.7')).status, 401, 'other addresses keep theirs');
  });

  test('X-Forwarded-For is ignored when no proxy is trusted', async () => {
    const name = await register(h);
    for (let i = 0; i < 5; i++) await login(h.srv.url, name, 'wrong password', '127.0.0.8', { 'x-forwarded-for': `10.0.0.${i}` });
    assertThrottled(await login(h.srv.url, name, 'wrong password', '127.0.0.8', { 'x-forwarded-for': '10.0.0.99' }), 'a forged header is no new address');
  });
});

describe('failed-login budgets behind a trusted proxy', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ loginFailures: 3, loginFailuresPerAddress: 0, trustProxy: 'loopback' });
  });
  after(async () => {
    await h?.close();
  });

  test("the budget follows the client's address that the proxy names", async () => {
    const name = await register(h);
    const via = (client: string, password = 'wrong password'): Promise<Answer> => login(h.srv.url, name, password, '127.0.0.1', { 'x-forwarded-for': client });
    for (let i = 0; i < 3; i++) assert.equal((await via('203.0.113.7')).status, 401);
    assertThrottled(await via('203.0.113.7'), 'the guessing client');
    assert.equal((await via('198.51.100.2', PASSWORD)).status, 200, 'another client through the same proxy');
  });

  test('0 turns a budget off', async () => {
    const names = await Promise.all(Array.from({ length: 4 }, () => register(h)));
    for (const name of names) for (let i = 0; i < 3; i++) assert.equal((await login(h.srv.url, name, 'wrong password', '127.0.0.9')).status, 401);
  });
});
