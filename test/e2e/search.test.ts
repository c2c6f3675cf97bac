/**
 * Message search (R15) against a real server: what a user finds (every word,
 * as a word prefix, newest first, a page at a time), what they never find
 * (other people's conversations, deleted text, an edited message's old text),
 * the filters, bad input, and an index that survives a restart.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Message } from '../../src/protocol/model.js';
import { Harness } from '../helpers/server.js';
import { expectError, expectStatus, type TestUser } from '../helpers/http.js';
import { newRef } from '../helpers/ws-client.js';

interface Page {
  messages: Message[];
  next: string | null;
}

/** A word nobody else's test uses. */
const unique = (): string => `w${randomBytes(5).toString('hex')}`;

describe('search', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start();
  });
  after(async () => {
    await h?.close();
  });

  const get = (u: TestUser, params: Record<string, string | number>) => {
    const qs = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)])).toString();
    return h.api.req<Page>('GET', `/v1/search?${qs}`, { token: u.token });
  };
  /** Searches once the index has everything sent so far. */
  const search = async (u: TestUser, params: Record<string, string | number>): Promise<Page> => {
    await h.core.engines.store.search.indexed();
    const res = await get(u, params);
    expectStatus(res, 200, `search ${JSON.stringify(params)}`);
    return res.body;
  };
  const bodies = (p: Page): string[] => p.messages.map((m) => m.body);

  test('finds messages with every word, as a word prefix, in any case and without accents, newest first; a message reads as in history', async () => {
    const [a, b] = await h.api.users(2, 'srch');
    assert.ok(a && b);
    const g = await h.api.group(a, [b]);
    const d = await h.api.direct(a, b);
    const k = unique();
    await h.api.send(a, g.id, `Lunch ${k} at the Café?`);
    // Sent over the socket, as clients do.
    const ws = await h.connect(b);
    ws.send({ type: 'send', ref: newRef(), conversationId: d.id, clientId: 'c1', body: `${k.toUpperCase()} lunch moved to noon` });
    await ws.next('ack');
    await h.api.send(b, g.id, `${k} dinner instead`);

    const lunch = await search(a, { q: `lunch ${k}` });
    assert.deepEqual(bodies(lunch), [`${k.toUpperCase()} lunch moved to noon`, `Lunch ${k} at the Café?`]);
    assert.equal(lunch.next, null);
    assert.deepEqual(bodies(await search(b, { q: `"${k}" CAFE` })), [`Lunch ${k} at the Café?`], 'quotes and case do not matter; no accent needed');
    assert.deepEqual(bodies(await search(a, { q: `${k} din` })), [`${k} dinner instead`], 'a word prefix');
    assert.deepEqual(bodies(await search(a, { q: `${k} inner` })), [], 'not the middle of a word');
    const history = await h.api.req<{ messages: Message[] }>('GET', `/v1/conversations/${d.id}/messages`, { token: a.token });
    assert.deepEqual(lunch.messages[0], history.body.messages[0]);
  });

  test('finds words of other scripts as written: Korean, Japanese with voiced kana, Devanagari with vowel signs, Greek, Cyrillic, Arabic', async () => {
    const [a] = await h.api.users(1, 'srchu');
    assert.ok(a);
    const g = await h.api.group(a, []);
    const k = unique();
    const lines = [`${k} 한국어 수업`, `${k} ガスの料金`, `${k} がっこう`, `${k} नमस्ते दुनिया`, `${k} ΟΔΟΣ`, `${k} Привет мир`, `${k} مرحبا بالعالم`];
    for (const line of lines) await h.api.send(a, g.id, line);
    for (const [q, line] of [
      ['한국어', 0], ['한국', 0], ['ガスの料金', 1], ['ガス', 1], ['がっ', 2], ['नमस्ते', 3], ['नम', 3], ['οδος', 4], ['привет', 5], ['مرحبا', 6],
    ] as const) {
      assert.deepEqual(bodies(await search(a, { q: `${k} ${q}` })), [lines[line]], q);
    }
  });

  test('pages with next/after: every match once, none skipped', async () => {
    const [a] = await h.api.users(1, 'srchp');
    assert.ok(a);
    const g = await h.api.group(a, []);
    const k = unique();
    for (let i = 0; i < 7; i++) await h.api.send(a, g.id, `${k} number ${i}`);
    const seen: string[] = [];
    let after: string | null = null;
    for (let i = 0; i < 5; i++) {
      const page: Page = await search(a, { q: k, limit: 3, ...(after === null ? {} : { after }) });
      seen.push(...bodies(page));
      after = page.next;
      if (after === null) break;
    }
    assert.equal(after, null);
    assert.deepEqual(seen, [6, 5, 4, 3, 2, 1, 0].map((i) => `${k} number ${i}`));
  });

  test("never finds another conversation's messages: not by text, not by naming it; leaving ends it", async () => {
    const [a, b, c] = await h.api.users(3, 'srchx');
    assert.ok(a && b && c);
    const k = unique();
    const ours = await h.api.group(a, [b]);
    const theirs = await h.api.group(b, [c]);
    await h.api.send(a, ours.id, `${k} ours`);
    await h.api.send(c, theirs.id, `${k} theirs`);
    assert.deepEqual(bodies(await search(a, { q: k })), [`${k} ours`]);
    assert.deepEqual(bodies(await search(b, { q: k })), [`${k} theirs`, `${k} ours`]);
    expectError(await get(a, { q: k, conversationId: theirs.id }), 403, 'forbidden', 'naming a conversation of others');
    expectError(await get(a, { q: k, conversationId: 'nosuchconversation' }), 404, 'not_found');
    const left = await h.api.req('DELETE', `/v1/conversations/${ours.id}/members/${a.id}`, { token: a.token });
    assert.ok(left.status === 200 || left.status === 204, `leave → ${left.status}`);
    assert.deepEqual(bodies(await search(a, { q: k })), [], 'after leaving');
  });

  test('filters by conversation, sender and time; empty filter values mean none', async () => {
    const [a, b] = await h.api.users(2, 'srchf');
    assert.ok(a && b);
    const k = unique();
    const one = await h.api.group(a, [b]);
    const two = await h.api.group(a, [b]);
    const m1 = await h.api.send(a, one.id, `${k} 1`);
    await new Promise((r) => setTimeout(r, 5));
    const m2 = await h.api.send(b, one.id, `${k} 2`);
    await new Promise((r) => setTimeout(r, 5));
    await h.api.send(a, two.id, `${k} 3`);
    assert.deepEqual(bodies(await search(a, { q: k, conversationId: one.id })), [`${k} 2`, `${k} 1`]);
    assert.deepEqual(bodies(await search(a, { q: k, senderId: b.id })), [`${k} 2`]);
    assert.deepEqual(bodies(await search(a, { q: k, since: m2.createdAt })), [`${k} 3`, `${k} 2`]);
    assert.deepEqual(bodies(await search(a, { q: k, until: m2.createdAt })), [`${k} 1`]);
    assert.deepEqual(bodies(await search(a, { q: k, since: m1.createdAt, until: m1.createdAt + 1, senderId: a.id })), [`${k} 1`]);
    assert.equal((await search(a, { q: k, conversationId: '', senderId: '', since: '', until: '', limit: '', after: '' })).messages.length, 3);
  });

  test('an edit is found by its new text only; a deleted message is not found', async () => {
    const [a] = await h.api.users(1, 'srche');
    assert.ok(a);
    const g = await h.api.group(a, []);
    const [k, before, after, doomed] = [unique(), unique(), unique(), unique()];
    const m = await h.api.send(a, g.id, `${k} ${before}`);
    const gone = await h.api.send(a, g.id, `${k} ${doomed}`);
    await h.core.engines.store.search.indexed();
    expectStatus(await h.api.req('PATCH', `/v1/messages/${m.id}`, { token: a.token, json: { body: `${k} ${after}` } }), 200, 'edit');
    expectStatus(await h.api.req('DELETE', `/v1/messages/${gone.id}`, { token: a.token }), 200, 'delete');
    assert.deepEqual(bodies(await search(a, { q: before })), []);
    const found = await search(a, { q: after });
    assert.deepEqual(bodies(found), [`${k} ${after}`]);
    assert.equal(typeof found.messages[0]?.editedAt, 'number');
    assert.deepEqual(bodies(await search(a, { q: doomed })), []);
    assert.deepEqual(bodies(await search(a, { q: k })), [`${k} ${after}`]);
  });

  test('a message is found within a second of being sent, without anyone waiting on the index', async () => {
    const [a] = await h.api.users(1, 'srchl');
    assert.ok(a);
    const g = await h.api.group(a, []);
    const k = unique();
    await h.api.send(a, g.id, `${k} fresh`);
    const t0 = Date.now();
    let found = 0;
    while (Date.now() - t0 < 3000 && found === 0) {
      const res = await get(a, { q: k });
      expectStatus(res, 200, 'poll');
      found = res.body.messages.length;
      if (found === 0) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(found, 1);
    assert.ok(Date.now() - t0 < 1500, `found after ${Date.now() - t0} ms`);
  });

  test('bad input is 400 with the reason; no token is 401; odd characters are words, never syntax', async () => {
    const [a] = await h.api.users(1, 'srchb');
    assert.ok(a);
    const g = await h.api.group(a, []);
    const k = unique();
    await h.api.send(a, g.id, `${k} NEAR and OR body`);
    for (const params of [
      {},
      { q: '' },
      { q: '   ' },
      { q: '?!… — "*"' },
      { q: 'x'.repeat(501) },
      { q: Array.from({ length: 11 }, (_, i) => `w${i}`).join(' ') },
      { q: k, limit: 0 },
      { q: k, limit: 51 },
      { q: k, limit: 'ten' },
      { q: k, since: -1 },
      { q: k, since: 'yesterday' },
      { q: k, since: 2000, until: 1000 },
      { q: k, after: 'not-a-cursor' },
      { q: 'a\u0000b' },
      { q: k, conversationId: 'x'.repeat(65) },
    ] as Record<string, string | number>[]) {
      expectError(await get(a, params), 400, 'bad_request', JSON.stringify(params));
    }
    expectError(await h.api.req('GET', `/v1/search?q=${k}`), 401, 'unauthorized');
    // FTS query syntax typed by a user is just text.
    for (const q of [`${k} NEAR(`, `${k} AND`, `"${k}" OR *`, `body:${k}`, `${k} -or`, `^${k}`, `{${k}}`]) {
      const page = await search(a, { q });
      assert.equal(page.messages.length, 1, q);
    }
  });

  test('the index survives a restart and catches up on what was sent right before it', async () => {
    const [a] = await h.api.users(1, 'srchr');
    assert.ok(a);
    const g = await h.api.group(a, []);
    const [early, late] = [unique(), unique()];
    await h.api.send(a, g.id, `${early} before`);
    await h.core.engines.store.search.indexed();
    await h.api.send(a, g.id, `${late} just before`);
    await h.restart();
    const login = await h.api.login(a.username, a.password);
    const again = { ...a, token: login.accessToken };
    assert.deepEqual(bodies(await search(again, { q: early })), [`${early} before`]);
    assert.deepEqual(bodies(await search(again, { q: late })), [`${late} just before`]);
  });
});

describe('search rate limit', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ rateSearchPerSec: 2, rateSearchBurst: 4 });
  });
  after(async () => {
    await h?.close();
  });

  test('a user gets the burst, then 429 with the wait; malformed searches and other users spend none of it', async () => {
    const [a, b] = await h.api.users(2, 'srl');
    assert.ok(a && b);
    const get = (u: TestUser, q: string) => h.api.req<Page>('GET', `/v1/search?q=${encodeURIComponent(q)}`, { token: u.token });
    for (let i = 0; i < 6; i++) expectError(await get(a, '!!!'), 400, 'bad_request', 'no word in it');
    for (let i = 0; i < 4; i++) expectStatus(await get(a, 'hello'), 200, `search ${i + 1}`);
    const refused = await get(a, 'hello');
    expectError(refused, 429, 'rate_limited');
    const body = refused.body as unknown as { error: { message: string; retryAfterMs: number } };
    assert.match(body.error.message, /searches/);
    assert.ok(body.error.retryAfterMs > 0 && body.error.retryAfterMs <= 500, `retryAfterMs ${body.error.retryAfterMs}`);
    assert.equal(refused.headers.get('retry-after'), '1');
    expectStatus(await get(b, 'hello'), 200, 'another user has their own budget');
    await new Promise((r) => setTimeout(r, body.error.retryAfterMs + 20));
    expectStatus(await get(a, 'hello'), 200, 'after the wait');
  });
});
