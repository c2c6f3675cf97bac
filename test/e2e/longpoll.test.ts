import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../helpers/server.js';
import { expectError, expectStatus, type Res, type TestUser } from '../helpers/http.js';
import type { ServerFrame } from '../../src/protocol/frames.js';
import type { Message } from '../../src/protocol/model.js';

interface PollBody {
  frames: ServerFrame[];
  cursor: number;
  reset?: boolean;
}

interface FramesBody {
  frames: ServerFrame[];
}

function poll(h: Harness, u: TestUser, cursor?: number, timeoutMs?: number): Promise<Res<PollBody>> {
  const q = new URLSearchParams();
  if (cursor !== undefined) q.set('cursor', String(cursor));
  if (timeoutMs !== undefined) q.set('timeoutMs', String(timeoutMs));
  const qs = q.toString();
  return h.api.req<PollBody>('GET', `/v1/poll${qs ? `?${qs}` : ''}`, { token: u.token });
}

function post(h: Harness, u: TestUser, frame: unknown): Promise<Res<FramesBody>> {
  return h.api.req<FramesBody>('POST', '/v1/frames', { token: u.token, json: frame });
}

/**
 * A refused frame may come back as an HTTP error or as an error frame inside a
 * 200 (the extension does not say which); either way it must carry `code`.
 */
function expectFrameError(res: Res<FramesBody>, code: string, what: string): void {
  if (res.status === 200) {
    const err = res.body.frames.find((f) => f.type === 'error');
    assert.ok(err && err.type === 'error', `${what}: expected an error frame, got ${res.text}`);
    assert.equal(err.code, code, `${what}: ${res.text}`);
  } else {
    assert.ok(res.status >= 400, `${what}: ${res.status} ${res.text}`);
    assert.equal((res.body as unknown as { error?: { code?: string } }).error?.code, code, `${what}: ${res.text}`);
  }
}

/** Polls until frames matching `pred` arrived or the time is up; returns every frame seen and the last cursor. */
async function pollUntil(h: Harness, u: TestUser, cursor: number, pred: (fs: ServerFrame[]) => boolean, budgetMs = 5000): Promise<{ frames: ServerFrame[]; cursor: number }> {
  const frames: ServerFrame[] = [];
  const end = Date.now() + budgetMs;
  while (Date.now() < end) {
    const r = await poll(h, u, cursor, Math.min(1000, Math.max(1, end - Date.now())));
    expectStatus(r, 200, 'poll');
    assert.ok(!r.body.reset, 'unexpected reset');
    frames.push(...r.body.frames);
    cursor = r.body.cursor;
    if (pred(frames)) break;
  }
  return { frames, cursor };
}

describe('long polling fallback', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ typingTtlMs: 400 });
  });
  after(async () => {
    await h?.close();
  });

  test('the first poll opens a mailbox and answers at once with cursor 0', async () => {
    const u = await h.api.user('lp0');
    const t0 = Date.now();
    const r = await poll(h, u);
    expectStatus(r, 200);
    assert.deepEqual(r.body.frames, []);
    assert.equal(r.body.cursor, 0);
    assert.ok(Date.now() - t0 < 1500, 'answered at once');
    expectError(await h.api.req('GET', '/v1/poll'), 401, 'unauthorized', 'poll without token');
    expectError(await h.api.req('GET', '/v1/poll?cursor=0&timeoutMs=30001', { token: u.token }), 400, 'bad_request', 'timeoutMs over 30000');
    expectError(await h.api.req('GET', '/v1/poll?cursor=abc', { token: u.token }), 400, 'bad_request', 'cursor not a number');
  });

  test('an idle poll holds for timeoutMs, then answers empty', async () => {
    const u = await h.api.user('lpidle');
    await poll(h, u);
    const t0 = Date.now();
    const r = await poll(h, u, 0, 400);
    const took = Date.now() - t0;
    expectStatus(r, 200);
    assert.deepEqual(r.body.frames, []);
    assert.equal(r.body.cursor, 0);
    assert.ok(took >= 300, `held only ${took} ms`);
    assert.ok(took < 2500, `held ${took} ms for a 400 ms timeout`);
  });

  test('a waiting poll is answered as soon as an event commits; frames are not sent twice', async () => {
    const [a, b] = await h.api.users(2, 'lpev');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const first = await poll(h, a);
    const pending = poll(h, a, first.body.cursor, 10000);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    const wsB = await h.connect(b);
    const ack = await wsB.ack({ type: 'send', conversationId: d.id, clientId: 'lp-1', body: 'to the poller' });
    const r = await pending;
    expectStatus(r, 200);
    // b's connecting may reach a's mailbox first (a presence frame) and answer the waiting poll;
    // then the event is in the next poll, still within the same short time.
    const seen = r.body.frames.some((f) => f.type === 'event')
      ? { frames: r.body.frames, cursor: r.body.cursor }
      : await (async () => {
          const rest = await pollUntil(h, a, r.body.cursor, (fs) => fs.some((f) => f.type === 'event'), 2000);
          return { frames: [...r.body.frames, ...rest.frames], cursor: rest.cursor };
        })();
    assert.ok(Date.now() - t0 < 2000, 'the poll returned promptly');
    const events = seen.frames.filter((f) => f.type === 'event');
    assert.equal(events.length, 1, `one event frame: ${JSON.stringify(seen.frames)}`);
    const ev = events[0];
    assert.ok(ev && ev.type === 'event' && ev.event.kind === 'message.created', `event frame: ${JSON.stringify(seen.frames)}`);
    assert.ok('message' in ack);
    assert.equal(ev.event.message.id, ack.message.id);
    assert.ok(seen.cursor > 0);
    // The next poll with that cursor does not repeat it.
    const again = await poll(h, a, seen.cursor, 300);
    expectStatus(again, 200);
    assert.ok(!again.body.frames.some((f) => f.type === 'event'), `repeated: ${again.text}`);
    // Other frames (b's presence) may follow; the cursor never goes back.
    assert.ok(again.body.cursor >= seen.cursor);
  });

  test('a lost answer: polling again with the old cursor returns the same frames again', async () => {
    const [a, b] = await h.api.users(2, 'lplost');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const c0 = (await poll(h, a)).body.cursor;
    const m = await h.api.send(b, d.id, 'may be lost');
    const got = await pollUntil(h, a, c0, (fs) => fs.some((f) => f.type === 'event'));
    assert.ok(got.frames.some((f) => f.type === 'event' && f.event.kind === 'message.created' && f.event.message.id === m.id));
    const retry = await poll(h, a, c0, 300);
    expectStatus(retry, 200);
    assert.ok(
      retry.body.frames.some((f) => f.type === 'event' && f.event.kind === 'message.created' && f.event.message.id === m.id),
      `frames after the cursor the client passed back must still be there: ${retry.text}`,
    );
  });

  test('POST /v1/frames: send acks, repeats return the original, and WebSocket users get the event', async () => {
    const [a, b] = await h.api.users(2, 'lpsend');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const wsB = await h.connect(b);
    const r = await post(h, a, { type: 'send', ref: 'p1', conversationId: d.id, clientId: 'lp-send-1', body: 'from a poller' });
    expectStatus(r, 200);
    const ack = r.body.frames.find((f) => f.type === 'ack');
    assert.ok(ack && ack.type === 'ack' && 'message' in ack, r.text);
    assert.equal(ack.ref, 'p1');
    const msg: Message = ack.message;
    assert.equal(msg.seq, 1);
    const ev = await wsB.next('event', (f) => f.event.kind === 'message.created' && f.event.message.id === msg.id);
    assert.equal(ev.event.seq, 1);
    const r2 = await post(h, a, { type: 'send', ref: 'p2', conversationId: d.id, clientId: 'lp-send-1', body: 'from a poller' });
    const ack2 = r2.body.frames.find((f) => f.type === 'ack');
    assert.ok(ack2 && 'message' in ack2);
    assert.deepEqual(ack2.message, msg);
    assert.equal((await h.api.conversation(a, d.id)).lastSeq, 1);
  });

  test('POST /v1/frames: ping, sync, edit, react, typing', async () => {
    const [a, b] = await h.api.users(2, 'lpframes');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const m1 = await h.api.send(b, d.id, 'one');
    await h.api.send(b, d.id, 'two');
    const pong = await post(h, a, { type: 'ping', ref: 'pp' });
    expectStatus(pong, 200);
    assert.deepEqual(pong.body.frames, [{ type: 'pong', ref: 'pp' }]);

    const sync = await post(h, a, { type: 'sync', ref: 's1', positions: { [d.id]: 0 } });
    expectStatus(sync, 200);
    const types = sync.body.frames.map((f) => f.type);
    assert.equal(types[types.length - 1], 'synced', `synced last: ${types.join(',')}`);
    assert.deepEqual(
      sync.body.frames.filter((f) => f.type === 'event').map((f) => (f.type === 'event' ? f.event.seq : 0)),
      [1, 2],
    );

    const wsB = await h.connect(b);
    const react = await post(h, a, { type: 'react', ref: 'r1', messageId: m1.id, reaction: '👍' });
    const rack = react.body.frames.find((f) => f.type === 'ack');
    assert.ok(rack && 'event' in rack && rack.event.kind === 'message.reacted', react.text);
    await wsB.next('event', (f) => f.event.kind === 'message.reacted');

    const typing = await post(h, a, { type: 'typing', conversationId: d.id, active: true });
    expectStatus(typing, 200);
    const t = await wsB.next('typing', (f) => f.userId === a.id);
    assert.equal(t.active, true);

    const edit = await post(h, a, { type: 'edit', ref: 'e1', messageId: m1.id, body: 'not mine' });
    expectFrameError(edit, 'forbidden', 'edit of another user\'s message');
  });

  test('POST /v1/frames refuses auth, unknown types, bad fields and bad JSON', async () => {
    const [a, b, x] = await h.api.users(3, 'lpbad');
    assert.ok(a && b && x);
    const foreign = await h.api.direct(b, x);
    expectFrameError(await post(h, a, { type: 'auth', ref: 'x', token: a.token }), 'bad_request', 'auth over /v1/frames');
    expectFrameError(await post(h, a, { type: 'explode', ref: 'x' }), 'bad_request', 'unknown type');
    expectFrameError(await post(h, a, { type: 'send', ref: 'x', conversationId: foreign.id, clientId: 'c', body: 42 }), 'bad_request', 'body not a string');
    expectFrameError(await post(h, a, { type: 'send', ref: 'x', conversationId: foreign.id, clientId: 'c', body: 'hi' }), 'forbidden', 'foreign conversation');
    expectError(await h.api.req('POST', '/v1/frames', { token: a.token, raw: '{"type":' }), 400, 'bad_request', 'malformed JSON');
    expectError(await h.api.req('POST', '/v1/frames', { json: { type: 'ping' } }), 401, 'unauthorized', 'no token');
  });

  test('live typing, receipts and new conversations reach a long-poll client', async () => {
    const [a, b, c] = await h.api.users(3, 'lplive');
    assert.ok(a && b && c);
    const d = await h.api.direct(a, b);
    await h.api.send(a, d.id, 'hello');
    let cursor = (await poll(h, a)).body.cursor;
    const wsB = await h.connect(b);
    wsB.send({ type: 'typing', conversationId: d.id, active: true });
    wsB.send({ type: 'receipt', conversationId: d.id, seq: 1, kind: 'read' });
    const g = await h.api.group(c, [a], 'found by poll');
    const got = await pollUntil(
      h,
      a,
      cursor,
      (fs) =>
        fs.some((f) => f.type === 'typing' && f.userId === b.id && f.active) &&
        fs.some((f) => f.type === 'receipt' && f.userId === b.id) &&
        fs.some((f) => f.type === 'conversation' && f.conversation.id === g.id),
    );
    cursor = got.cursor;
    assert.ok(got.frames.some((f) => f.type === 'typing' && f.userId === b.id && f.active), 'typing');
    const rc = got.frames.find((f) => f.type === 'receipt');
    assert.deepEqual(rc, { type: 'receipt', conversationId: d.id, userId: b.id, seq: 1, kind: 'read' });
    assert.ok(got.frames.some((f) => f.type === 'conversation' && f.conversation.id === g.id), 'conversation');
    // Typing lapses for the poller too.
    const lapse = await pollUntil(h, a, cursor, (fs) => fs.some((f) => f.type === 'typing' && !f.active), 3000);
    assert.ok(lapse.frames.some((f) => f.type === 'typing' && f.userId === b.id && !f.active), 'typing lapse');
  });

  test('a cursor for a mailbox this server does not know answers reset', async () => {
    const u = await h.api.user('lpreset');
    const r = await poll(h, u, 42, 1000);
    expectStatus(r, 200);
    assert.deepEqual(r.body, { frames: [], cursor: 0, reset: true });
  });
});
