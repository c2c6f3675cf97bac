import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../helpers/server.js';
import { expectError, expectStatus, sleep, uniqueName, type TestUser } from '../helpers/http.js';
import type { TestWs, FrameOf } from '../helpers/ws-client.js';
import type { Conversation, ConversationEvent, Message } from '../../src/protocol/model.js';

type Ev<K extends ConversationEvent['kind']> = Extract<ConversationEvent, { kind: K }>;

let cid = 0;
const clientId = (): string => `cid-${process.pid}-${++cid}`;

async function sendWs(ws: TestWs, conversationId: string, body: string, id = clientId(), extra: Record<string, unknown> = {}): Promise<Message> {
  const ack = await ws.ack({ type: 'send', conversationId, clientId: id, body, ...extra });
  assert.ok('message' in ack, `send ack carries a message: ${JSON.stringify(ack)}`);
  return ack.message;
}

function eventAck(ack: FrameOf<'ack'>): ConversationEvent {
  assert.ok('event' in ack, `ack carries an event: ${JSON.stringify(ack)}`);
  return ack.event;
}

const createdFor = (id: string) => (f: FrameOf<'event'>): boolean => f.event.kind === 'message.created' && f.event.message.id === id;

describe('messaging', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start();
  });
  after(async () => {
    await h?.close();
  });

  test('1:1: the ack has the message; each other device (the sender\'s too) gets the event once', async () => {
    const a = await h.api.user('one');
    const b = await h.api.user('two');
    const a2 = await h.api.device(a);
    const b2 = await h.api.device(b);
    const d = await h.api.direct(a, b);
    const [wsA, wsA2, wsB, wsB2] = await Promise.all([h.connect(a, 'a1'), h.connect(a2, 'a2'), h.connect(b, 'b1'), h.connect(b2, 'b2')]);

    const t0 = performance.now();
    const msg = await sendWs(wsA, d.id, 'hello there', 'hello-1');
    assert.equal(msg.conversationId, d.id);
    assert.equal(msg.seq, 1);
    assert.equal(msg.senderId, a.id);
    assert.equal(msg.clientId, 'hello-1');
    assert.equal(msg.body, 'hello there');
    assert.equal(typeof msg.id, 'string');
    assert.ok(Math.abs(msg.createdAt - Date.now()) < 60_000);
    assert.equal(msg.editedAt, undefined);
    assert.equal(msg.deletedAt, undefined);

    for (const ws of [wsA2, wsB, wsB2]) {
      const f = await ws.next('event', createdFor(msg.id), 2000);
      assert.equal(f.event.seq, 1);
      assert.equal(f.event.conversationId, d.id);
      assert.equal(f.event.actorId, a.id);
      assert.equal(typeof f.event.at, 'number');
      assert.deepEqual((f.event as Ev<'message.created'>).message, msg);
    }
    const latency = Math.max(...[wsA2, wsB, wsB2].map((ws) => (ws.times[ws.log.findIndex((f) => f.type === 'event')] ?? Infinity) - t0));
    assert.ok(latency < 500, `delivery took ${latency.toFixed(1)} ms`);
    await sleep(150);
    for (const ws of [wsA2, wsB, wsB2]) assert.equal(ws.all('event', createdFor(msg.id)).length, 1, `${ws.label} got it once`);
    assert.ok(wsA.all('event', createdFor(msg.id)).length <= 1, 'the sending socket gets it at most once');
  });

  test('group of 100 with 10 online: every online device gets the message exactly once', async () => {
    const owner = await h.api.user('g100own');
    const ownerPhone = await h.api.device(owner, 'phone');
    const online: TestUser[] = [];
    for (let i = 0; i < 9; i++) online.push(await h.api.user('g100on'));
    const offlineIds: string[] = [];
    for (let i = 0; i < 90; i++) offlineIds.push((await h.api.register(uniqueName('g100off'))).id);
    const res = await h.api.req<{ conversation: Conversation }>('POST', '/v1/conversations', {
      token: owner.token,
      json: { kind: 'group', title: 'hundred', members: [...online.map((u) => u.id), ...offlineIds] },
    });
    expectStatus(res, 201);
    const g = res.body.conversation;
    assert.equal(g.members.length, 100);

    const sockets = await Promise.all([...online.map((u) => h.connect(u)), h.connect(ownerPhone, 'owner-phone')]);
    const wsOwner = await h.connect(owner, 'owner');
    const msgs: Message[] = [];
    for (let i = 0; i < 5; i++) msgs.push(await sendWs(wsOwner, g.id, `broadcast ${i}`));
    assert.deepEqual(msgs.map((m) => m.seq), [1, 2, 3, 4, 5]);
    for (const ws of sockets) {
      const got = await ws.collect('event', 5, (f) => f.event.conversationId === g.id, 3000);
      assert.deepEqual(got.map((f) => f.event.seq), [1, 2, 3, 4, 5], `${ws.label} in order`);
    }
    await sleep(150);
    for (const ws of sockets) assert.equal(ws.all('event', (f) => f.event.conversationId === g.id).length, 5, `${ws.label}: each once`);
  });

  test('5 concurrent senders × 100 sends: acks hold seqs 1..500 exactly, receivers see all of them in order', async () => {
    const senders = await h.api.users(5, 'conc');
    const watcher = await h.api.user('concw');
    const first = senders[0];
    assert.ok(first);
    const g = await h.api.group(first, [...senders.slice(1), watcher], 'concurrency');
    const sws = await Promise.all(senders.map((u) => h.connect(u)));
    const wsW = await h.connect(watcher, 'watcher');
    const N = 100;
    const all = await Promise.all(
      sws.map(async (ws, si) => {
        const ps: Promise<FrameOf<'ack'>>[] = [];
        for (let i = 0; i < N; i++) ps.push(ws.ack({ type: 'send', conversationId: g.id, clientId: `s${si}-${i}`, body: `from ${si} #${i}` }, 15000));
        return Promise.all(ps);
      }),
    );
    const seqs = all.flat().map((a) => ('message' in a ? a.message.seq : -1));
    assert.deepEqual([...seqs].sort((x, y) => x - y), Array.from({ length: 5 * N }, (_, i) => i + 1), 'acks hold 1..500, no gap, no repeat');
    // One socket's sends are acked in the order they were sent.
    for (const acks of all) {
      const s = acks.map((a) => ('message' in a ? a.message.seq : -1));
      assert.deepEqual(s, [...s].sort((x, y) => x - y), 'a socket sees its own acks in seq order');
    }
    const got = await wsW.collect('event', 5 * N, (f) => f.event.conversationId === g.id, 10000);
    assert.deepEqual(got.map((f) => f.event.seq), Array.from({ length: 5 * N }, (_, i) => i + 1), 'watcher sees every seq in order');
    for (const ws of sws) {
      const ev = ws.all('event', (f) => f.event.conversationId === g.id).map((f) => f.event.seq);
      for (let i = 1; i < ev.length; i++) assert.ok((ev[i] as number) > (ev[i - 1] as number), `${ws.label}: events in seq order`);
    }
    const conv = await h.api.conversation(watcher, g.id);
    assert.equal(conv.lastSeq, 5 * N);
    // Ids are unique and sort like seq (time-sortable ids from one node).
    const bySeq = all.flat().map((a) => ('message' in a ? a.message : undefined)).filter((m): m is Message => !!m).sort((x, y) => x.seq - y.seq);
    assert.equal(new Set(bySeq.map((m) => m.id)).size, 5 * N);
  });

  test('message ids are time-sortable: later messages sort after earlier ones', async () => {
    const [a, b] = await h.api.users(2, 'ids');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const ws = await h.connect(a);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      ids.push((await sendWs(ws, d.id, `m${i}`)).id);
      if (i % 5 === 0) await sleep(2);
    }
    assert.deepEqual([...ids].sort(), ids);
  });

  test('idempotent send: same clientId on the same socket, another device, over HTTP → the original, lastSeq unchanged', async () => {
    const a = await h.api.user('idem');
    const b = await h.api.user('idemb');
    const a2 = await h.api.device(a);
    const d = await h.api.direct(a, b);
    const wsA = await h.connect(a, 'a1');
    const wsA2 = await h.connect(a2, 'a2');
    const wsB = await h.connect(b, 'b');
    const orig = await sendWs(wsA, d.id, 'only once', 'retry-me');
    const again = await sendWs(wsA, d.id, 'only once', 'retry-me');
    assert.deepEqual(again, orig);
    const other = await sendWs(wsA2, d.id, 'a different body even', 'retry-me');
    assert.deepEqual(other, orig, 'another device of the same user gets the original');
    const http = await h.api.req<{ message: Message }>('POST', `/v1/conversations/${d.id}/messages`, { token: a.token, json: { clientId: 'retry-me', body: 'only once' } });
    expectStatus(http, 200, 'HTTP retry answers 200 with the original');
    assert.deepEqual(http.body.message, orig);
    assert.equal((await h.api.conversation(a, d.id)).lastSeq, 1);
    await sleep(150);
    assert.equal(wsB.all('event', (f) => f.event.conversationId === d.id).length, 1, 'the receiver got one event');
    // The key includes the sender: b may use the same clientId.
    const bs = await sendWs(wsB, d.id, 'mine', 'retry-me');
    assert.notEqual(bs.id, orig.id);
    assert.equal(bs.seq, 2);
    // Concurrent duplicates collapse to one too.
    const dup = await Promise.all(Array.from({ length: 5 }, () => wsA.ack({ type: 'send', conversationId: d.id, clientId: 'burst-dup', body: 'x' })));
    const ids = new Set(dup.map((x) => ('message' in x ? x.message.id : '')));
    assert.equal(ids.size, 1, 'concurrent repeats give one message');
    assert.equal((await h.api.conversation(a, d.id)).lastSeq, 3);
    // And over HTTP: one 201, the rest 200 with the same message.
    const posts = await Promise.all(
      Array.from({ length: 5 }, () => h.api.req<{ message: Message }>('POST', `/v1/conversations/${d.id}/messages`, { token: a.token, json: { clientId: 'http-dup', body: 'y' } })),
    );
    assert.deepEqual(posts.map((p) => p.status).sort(), [200, 200, 200, 200, 201]);
    assert.equal(new Set(posts.map((p) => p.body.message.id)).size, 1);
    assert.equal((await h.api.conversation(a, d.id)).lastSeq, 4);
  });

  test('HTTP send: 201 and live delivery', async () => {
    const [a, b] = await h.api.users(2, 'hsend');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const wsB = await h.connect(b);
    const m = await h.api.send(a, d.id, 'over http', 'h-1');
    assert.equal(m.seq, 1);
    assert.equal(m.clientId, 'h-1');
    const ev = await wsB.next('event', createdFor(m.id));
    assert.deepEqual((ev.event as Ev<'message.created'>).message, m);
  });

  test('send errors: unknown conversation, foreign conversation, empty body, bad replyTo', async () => {
    const [a, b, x] = await h.api.users(3, 'serr');
    assert.ok(a && b && x);
    const d = await h.api.direct(a, b);
    const other = await h.api.direct(x, b);
    const ws = await h.connect(a);
    await ws.error({ type: 'send', conversationId: 'no-such-conv', clientId: clientId(), body: 'hi' }, 'not_found');
    await ws.error({ type: 'send', conversationId: other.id, clientId: clientId(), body: 'hi' }, 'forbidden');
    await ws.error({ type: 'send', conversationId: d.id, clientId: clientId(), body: '' }, 'bad_request');
    await ws.error({ type: 'send', conversationId: d.id, clientId: clientId(), body: '   \n\t ' }, 'bad_request');
    await ws.error({ type: 'send', conversationId: d.id, clientId: clientId(), body: 'hi', replyTo: 'no-such-message' }, 'not_found');
    const foreignMsg = await h.api.send(x, other.id, 'not yours');
    const r = await ws.request({ type: 'send', conversationId: d.id, clientId: clientId(), body: 'hi', replyTo: foreignMsg.id });
    assert.equal(r.type, 'error', `a reply to a message of another conversation is refused: ${JSON.stringify(r)}`);
    assert.equal((await h.api.conversation(a, d.id)).lastSeq, 0, 'nothing was appended');
    expectError(await h.api.req('POST', `/v1/conversations/${d.id}/messages`, { token: a.token, json: { clientId: 'e1', body: ' ' } }), 400, 'bad_request', 'blank HTTP');
    expectError(await h.api.req('POST', `/v1/conversations/${d.id}/messages`, { token: a.token, json: { body: 'no client id' } }), 400, 'bad_request', 'missing clientId');
    expectError(await h.api.req('POST', '/v1/conversations/no-such-conv/messages', { token: a.token, json: { clientId: 'e2', body: 'x' } }), 404, 'not_found', 'unknown conv HTTP');
    assert.ok(ws.open);
  });

  test('replies carry replyTo', async () => {
    const [a, b] = await h.api.users(2, 'reply');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const wsA = await h.connect(a);
    const wsB = await h.connect(b);
    const first = await sendWs(wsA, d.id, 'question?');
    const answer = await sendWs(wsB, d.id, 'answer!', clientId(), { replyTo: first.id });
    assert.equal(answer.replyTo, first.id);
    const ev = await wsA.next('event', createdFor(answer.id));
    assert.equal((ev.event as Ev<'message.created'>).message.replyTo, first.id);
    const hist = await h.api.history(a, d.id);
    assert.equal(hist.messages.find((m) => m.id === answer.id)?.replyTo, first.id);
  });

  test('history pages by seq: newest by default, before/after/limit, hasMore; limit outside 1..200 is 400', async () => {
    const [a, b] = await h.api.users(2, 'hist');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const ws = await h.connect(a);
    for (let i = 1; i <= 25; i++) await sendWs(ws, d.id, `n${i}`);
    const seqs = (ms: Message[]): number[] => ms.map((m) => m.seq);
    const range = (lo: number, hi: number): number[] => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

    let p = await h.api.history(b, d.id);
    assert.deepEqual(seqs(p.messages), range(1, 25));
    assert.equal(p.hasMore, false);
    assert.equal(p.messages[0]?.body, 'n1');
    p = await h.api.history(b, d.id, '?limit=10');
    assert.deepEqual(seqs(p.messages), range(16, 25), 'newest ten, ascending');
    assert.equal(p.hasMore, true);
    p = await h.api.history(b, d.id, '?before=16&limit=10');
    assert.deepEqual(seqs(p.messages), range(6, 15));
    assert.equal(p.hasMore, true);
    p = await h.api.history(b, d.id, '?before=6&limit=10');
    assert.deepEqual(seqs(p.messages), range(1, 5));
    assert.equal(p.hasMore, false);
    p = await h.api.history(b, d.id, '?after=0&limit=10');
    assert.deepEqual(seqs(p.messages), range(1, 10));
    assert.equal(p.hasMore, true);
    p = await h.api.history(b, d.id, '?after=20&limit=10');
    assert.deepEqual(seqs(p.messages), range(21, 25));
    assert.equal(p.hasMore, false);
    p = await h.api.history(b, d.id, '?after=25');
    assert.deepEqual(p.messages, []);
    assert.equal(p.hasMore, false);
    p = await h.api.history(b, d.id, '?limit=1');
    assert.deepEqual(seqs(p.messages), [25]);
    p = await h.api.history(b, d.id, '?limit=200');
    assert.equal(p.messages.length, 25);
    for (const bad of ['0', '201', '-1', 'abc', '1.5']) {
      expectError(await h.api.req('GET', `/v1/conversations/${d.id}/messages?limit=${bad}`, { token: b.token }), 400, 'bad_request', `limit=${bad}`);
    }
    expectError(await h.api.req('GET', `/v1/conversations/${d.id}/messages?before=x`, { token: b.token }), 400, 'bad_request', 'before=x');
  });

  test('history skips non-message events: seqs of messages keep their gaps', async () => {
    const [owner, m, n] = await h.api.users(3, 'hgap');
    assert.ok(owner && m && n);
    const g = await h.api.group(owner, [m], 'gaps');
    const m1 = await h.api.send(owner, g.id, 'before join');
    expectStatus(await h.api.req('POST', `/v1/conversations/${g.id}/members`, { token: owner.token, json: { userIds: [n.id] } }), 200);
    const m3 = await h.api.send(owner, g.id, 'after join');
    assert.deepEqual([m1.seq, m3.seq], [1, 3]);
    const p = await h.api.history(n, g.id);
    assert.deepEqual(p.messages.map((x) => x.seq), [1, 3]);
  });

  test('edit: own messages only; the ack and every other device get message.edited; history shows editedAt', async () => {
    const [owner, m] = await h.api.users(2, 'edit');
    assert.ok(owner && m);
    const m2 = await h.api.device(m);
    const g = await h.api.group(owner, [m], 'edits');
    const wsM = await h.connect(m, 'm1');
    const wsM2 = await h.connect(m2, 'm2');
    const wsO = await h.connect(owner, 'owner');
    const msg = await sendWs(wsM, g.id, 'tpyo');
    const ev = eventAck(await wsM.ack({ type: 'edit', messageId: msg.id, body: 'typo fixed' }));
    assert.equal(ev.kind, 'message.edited');
    assert.equal(ev.seq, 2);
    assert.equal((ev as Ev<'message.edited'>).messageId, msg.id);
    assert.equal((ev as Ev<'message.edited'>).body, 'typo fixed');
    for (const ws of [wsM2, wsO]) {
      const f = await ws.next('event', (x) => x.event.kind === 'message.edited' && x.event.seq === 2);
      assert.deepEqual(f.event, ev);
    }
    const hist = await h.api.history(owner, g.id);
    const stored = hist.messages.find((x) => x.id === msg.id);
    assert.equal(stored?.body, 'typo fixed');
    assert.equal(typeof stored?.editedAt, 'number');
    assert.equal(stored?.seq, 1, 'an edit keeps the seq');

    await wsO.error({ type: 'edit', messageId: msg.id, body: 'owner rewrites' }, 'forbidden');
    await wsM.error({ type: 'edit', messageId: msg.id, body: '  ' }, 'bad_request');
    await wsM.error({ type: 'edit', messageId: 'no-such-message', body: 'x' }, 'not_found');
    const stranger = await h.api.user('editx');
    const wsX = await h.connect(stranger);
    await wsX.error({ type: 'edit', messageId: msg.id, body: 'x' }, 'forbidden');

    const httpEdit = await h.api.req<{ event: ConversationEvent }>('PATCH', `/v1/messages/${msg.id}`, { token: m.token, json: { body: 'via http' } });
    expectStatus(httpEdit, 200);
    assert.equal(httpEdit.body.event.kind, 'message.edited');
    assert.equal(httpEdit.body.event.seq, 3);
    await wsO.next('event', (x) => x.event.kind === 'message.edited' && x.event.seq === 3);
    expectError(await h.api.req('PATCH', `/v1/messages/${msg.id}`, { token: owner.token, json: { body: 'nope' } }), 403, 'forbidden', 'HTTP edit of another');
    expectError(await h.api.req('PATCH', '/v1/messages/no-such-message', { token: m.token, json: { body: 'nope' } }), 404, 'not_found', 'HTTP edit unknown');
    expectError(await h.api.req('PATCH', `/v1/messages/${msg.id}`, { token: m.token, json: { body: '' } }), 400, 'bad_request', 'HTTP edit empty');
  });

  test('delete: own, or any by owner/admin in a group; others forbidden; a deleted message refuses changes with conflict', async () => {
    const [owner, adm, m, n] = await h.api.users(4, 'del');
    assert.ok(owner && adm && m && n);
    const g = await h.api.group(owner, [adm, m, n], 'deletes');
    expectStatus(await h.api.req('PATCH', `/v1/conversations/${g.id}/members/${adm.id}`, { token: owner.token, json: { role: 'admin' } }), 200);
    const wsM = await h.connect(m, 'm');
    const wsN = await h.connect(n, 'n');
    const wsO = await h.connect(owner, 'owner');
    const wsAdm = await h.connect(adm, 'admin');

    const own = await sendWs(wsM, g.id, 'delete me');
    const ev = eventAck(await wsM.ack({ type: 'delete', messageId: own.id }));
    assert.equal(ev.kind, 'message.deleted');
    assert.equal((ev as Ev<'message.deleted'>).messageId, own.id);
    const seen = await wsN.next('event', (x) => x.event.kind === 'message.deleted' && x.event.seq === ev.seq);
    assert.deepEqual(seen.event, ev);
    const hist = await h.api.history(n, g.id);
    const stored = hist.messages.find((x) => x.id === own.id);
    assert.ok(stored, 'a deleted message keeps its place in history');
    assert.equal(stored.body, '');
    assert.equal(typeof stored.deletedAt, 'number');
    assert.equal(stored.seq, own.seq);

    await wsM.error({ type: 'edit', messageId: own.id, body: 'resurrect' }, 'conflict');
    await wsM.error({ type: 'delete', messageId: own.id }, 'conflict');
    await wsN.error({ type: 'react', messageId: own.id, reaction: '👍' }, 'conflict');

    const byN = await sendWs(wsN, g.id, 'n says');
    await wsM.error({ type: 'delete', messageId: byN.id }, 'forbidden');
    eventAck(await wsAdm.ack({ type: 'delete', messageId: byN.id }));
    const byN2 = await sendWs(wsN, g.id, 'n says again');
    const odel = eventAck(await wsO.ack({ type: 'delete', messageId: byN2.id }));
    assert.equal(odel.actorId, owner.id);
    await wsN.next('event', (x) => x.event.kind === 'message.deleted' && (x.event as Ev<'message.deleted'>).messageId === byN2.id);
    await wsM.error({ type: 'delete', messageId: 'no-such-message' }, 'not_found');

    const byN3 = await sendWs(wsN, g.id, 'http delete');
    expectError(await h.api.req('DELETE', `/v1/messages/${byN3.id}`, { token: m.token }), 403, 'forbidden', 'HTTP delete of another by a member');
    const hd = await h.api.req<{ event: ConversationEvent }>('DELETE', `/v1/messages/${byN3.id}`, { token: n.token });
    expectStatus(hd, 200);
    assert.equal(hd.body.event.kind, 'message.deleted');
    expectError(await h.api.req('DELETE', `/v1/messages/${byN3.id}`, { token: n.token }), 409, 'conflict', 'HTTP delete twice');
    expectError(await h.api.req('PATCH', `/v1/messages/${byN3.id}`, { token: n.token, json: { body: 'x' } }), 409, 'conflict', 'HTTP edit deleted');
    expectError(await h.api.req('DELETE', '/v1/messages/no-such-message', { token: n.token }), 404, 'not_found', 'HTTP delete unknown');
  });

  test('a member cannot delete the other side\'s message in a direct conversation', async () => {
    const [a, b] = await h.api.users(2, 'ddel');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const m = await h.api.send(a, d.id, 'mine');
    expectError(await h.api.req('DELETE', `/v1/messages/${m.id}`, { token: b.token }), 403, 'forbidden');
  });

  test('reactions: react / unreact acks, events to others, unchanged answers with the message, reactions in history', async () => {
    const [a, b] = await h.api.users(2, 'react');
    assert.ok(a && b);
    const a2 = await h.api.device(a);
    const d = await h.api.direct(a, b);
    const wsA = await h.connect(a, 'a1');
    const wsA2 = await h.connect(a2, 'a2');
    const wsB = await h.connect(b, 'b');
    const msg = await sendWs(wsB, d.id, 'react to me');

    const ev = eventAck(await wsA.ack({ type: 'react', messageId: msg.id, reaction: '👍' }));
    assert.equal(ev.kind, 'message.reacted');
    assert.deepEqual(
      { messageId: (ev as Ev<'message.reacted'>).messageId, reaction: (ev as Ev<'message.reacted'>).reaction, active: (ev as Ev<'message.reacted'>).active, actorId: ev.actorId },
      { messageId: msg.id, reaction: '👍', active: true, actorId: a.id },
    );
    for (const ws of [wsB, wsA2]) {
      const f: FrameOf<'event'> = await ws.next('event', (x) => x.event.kind === 'message.reacted' && x.event.seq === ev.seq);
      assert.deepEqual(f.event, ev);
    }
    const same = await wsA.ack({ type: 'react', messageId: msg.id, reaction: '👍' });
    assert.ok('message' in same && !('event' in same), `already reacted: the ack carries the message: ${JSON.stringify(same)}`);
    assert.deepEqual(same.message.reactions, { '👍': [a.id] });
    eventAck(await wsB.ack({ type: 'react', messageId: msg.id, reaction: '👍' }));
    eventAck(await wsB.ack({ type: 'react', messageId: msg.id, reaction: '🎉' }));
    let stored = (await h.api.history(a, d.id)).messages.find((x) => x.id === msg.id);
    assert.deepEqual(stored?.reactions, { '👍': [a.id, b.id], '🎉': [b.id] });
    assert.equal((await h.api.conversation(a, d.id)).lastSeq, 4, 'one event per change, none for the repeat');

    const un = eventAck(await wsA.ack({ type: 'unreact', messageId: msg.id, reaction: '👍' }));
    assert.equal((un as Ev<'message.reacted'>).active, false);
    await wsB.next('event', (x) => x.event.kind === 'message.reacted' && x.event.seq === un.seq);
    const unSame = await wsA.ack({ type: 'unreact', messageId: msg.id, reaction: '👍' });
    assert.ok('message' in unSame, 'unreact of nothing: the ack carries the message');

    // Over HTTP.
    const hr = await h.api.req<{ event?: ConversationEvent; message?: Message }>('DELETE', `/v1/messages/${msg.id}/reactions/${encodeURIComponent('👍')}`, { token: b.token });
    expectStatus(hr, 200);
    assert.equal(hr.body.event?.kind, 'message.reacted');
    const hr2 = await h.api.req<{ event?: ConversationEvent; message?: Message }>('DELETE', `/v1/messages/${msg.id}/reactions/${encodeURIComponent('🎉')}`, { token: b.token });
    expectStatus(hr2, 200);
    stored = (await h.api.history(a, d.id)).messages.find((x) => x.id === msg.id);
    assert.equal(stored?.reactions, undefined, `no reactions field when none left: ${JSON.stringify(stored)}`);
    const hp = await h.api.req<{ event?: ConversationEvent; message?: Message }>('POST', `/v1/messages/${msg.id}/reactions`, { token: a.token, json: { reaction: '❤️' } });
    expectStatus(hp, 200);
    assert.equal(hp.body.event?.kind, 'message.reacted');
    const hp2 = await h.api.req<{ event?: ConversationEvent; message?: Message }>('POST', `/v1/messages/${msg.id}/reactions`, { token: a.token, json: { reaction: '❤️' } });
    expectStatus(hp2, 200);
    assert.deepEqual(hp2.body.message?.reactions, { '❤️': [a.id] });
    assert.equal(hp2.body.event, undefined);

    const x = await h.api.user('reactx');
    const wsX = await h.connect(x);
    await wsX.error({ type: 'react', messageId: msg.id, reaction: '👍' }, 'forbidden');
    await wsA.error({ type: 'react', messageId: 'no-such-message', reaction: '👍' }, 'not_found');
    await wsA.error({ type: 'react', messageId: msg.id, reaction: '' }, 'bad_request');
    await wsA.error({ type: 'react', messageId: msg.id, reaction: 'x'.repeat(33) }, 'bad_request');
    expectError(await h.api.req('POST', `/v1/messages/${msg.id}/reactions`, { token: x.token, json: { reaction: '👍' } }), 403, 'forbidden', 'HTTP react stranger');
  });
});
