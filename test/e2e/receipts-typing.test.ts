import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../helpers/server.js';
import { sleep } from '../helpers/http.js';

const TYPING_TTL = 500;

describe('typing and receipts', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ typingTtlMs: TYPING_TTL });
  });
  after(async () => {
    await h?.close();
  });

  test('typing reaches the other members\' devices, not the typer\'s own, and lapses after typingTtlMs', async () => {
    const [a, b, c] = await h.api.users(3, 'typ');
    assert.ok(a && b && c);
    const a2 = await h.api.device(a);
    const b2 = await h.api.device(b);
    const x = await h.api.user('typx');
    const g = await h.api.group(a, [b, c], 'typing');
    const [wsA, wsA2, wsB, wsB2, wsC, wsX] = await Promise.all([
      h.connect(a, 'a1'),
      h.connect(a2, 'a2'),
      h.connect(b, 'b1'),
      h.connect(b2, 'b2'),
      h.connect(c, 'c'),
      h.connect(x, 'stranger'),
    ]);
    const t0 = performance.now();
    wsA.send({ type: 'typing', conversationId: g.id, active: true });
    for (const ws of [wsB, wsB2, wsC]) {
      const f = await ws.next('typing', (t) => t.conversationId === g.id && t.active);
      assert.deepEqual(f, { type: 'typing', conversationId: g.id, userId: a.id, active: true });
    }
    const lapse = await wsB.next('typing', (t) => t.conversationId === g.id && !t.active, TYPING_TTL + 2000);
    const lapsedAfter = (wsB.times[wsB.log.indexOf(lapse)] ?? 0) - t0;
    assert.equal(lapse.userId, a.id);
    assert.ok(lapsedAfter >= TYPING_TTL * 0.8, `lapsed too early: ${lapsedAfter.toFixed(0)} ms`);
    assert.ok(lapsedAfter < TYPING_TTL + 1500, `lapsed too late: ${lapsedAfter.toFixed(0)} ms`);
    await wsC.next('typing', (t) => !t.active, 1000);
    await wsA2.nothing('typing', () => true, 50);
    await wsA.nothing('typing', () => true, 0);
    await wsX.nothing('typing', () => true, 0);
  });

  test('a repeat extends typing; active:false ends it at once', async () => {
    const [a, b] = await h.api.users(2, 'typrep');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const wsA = await h.connect(a);
    const wsB = await h.connect(b);
    wsA.send({ type: 'typing', conversationId: d.id, active: true });
    await wsB.next('typing', (t) => t.active);
    await sleep(TYPING_TTL * 0.6);
    const tRepeat = performance.now();
    wsA.send({ type: 'typing', conversationId: d.id, active: true });
    const lapse = await wsB.next('typing', (t) => !t.active, TYPING_TTL + 2000);
    const since = (wsB.times[wsB.log.indexOf(lapse)] ?? 0) - tRepeat;
    assert.ok(since >= TYPING_TTL * 0.8, `the repeat should extend typing, but it lapsed ${since.toFixed(0)} ms after the repeat`);

    wsA.send({ type: 'typing', conversationId: d.id, active: true });
    await wsB.next('typing', (t) => t.active);
    const tStop = performance.now();
    wsA.send({ type: 'typing', conversationId: d.id, active: false });
    const stop = await wsB.next('typing', (t) => !t.active, 1000);
    assert.ok((wsB.times[wsB.log.indexOf(stop)] ?? 0) - tStop < TYPING_TTL * 0.8, 'explicit stop is pushed at once');
    // No second lapse after an explicit stop.
    await wsB.nothing('typing', () => true, TYPING_TTL + 200);
  });

  test('typing into an unknown or foreign conversation is an error; the socket stays open', async () => {
    const [a, b, x] = await h.api.users(3, 'typerr');
    assert.ok(a && b && x);
    const d = await h.api.direct(a, b);
    const wsX = await h.connect(x);
    const wsB = await h.connect(b);
    await wsX.error({ type: 'typing', conversationId: d.id, active: true }, 'forbidden');
    await wsX.error({ type: 'typing', conversationId: 'no-such-conv', active: true }, 'not_found');
    await wsB.nothing('typing', () => true, 100);
    assert.equal((await wsX.request({ type: 'ping' })).type, 'pong');
  });

  test('receipts reach other members and the reader\'s other devices; read moves lastReadSeq forward only', async () => {
    const [a, b] = await h.api.users(2, 'rcpt');
    assert.ok(a && b);
    const a2 = await h.api.device(a);
    const b2 = await h.api.device(b);
    const x = await h.api.user('rcptx');
    const d = await h.api.direct(a, b);
    const [wsA, wsA2, wsB, wsB2, wsX] = await Promise.all([h.connect(a, 'a1'), h.connect(a2, 'a2'), h.connect(b, 'b1'), h.connect(b2, 'b2'), h.connect(x, 'x')]);
    for (let i = 1; i <= 3; i++) await h.api.send(a, d.id, `m${i}`);

    wsB.send({ type: 'receipt', conversationId: d.id, seq: 2, kind: 'delivered' });
    for (const ws of [wsA, wsA2, wsB2]) {
      const r = await ws.next('receipt', (f) => f.kind === 'delivered');
      assert.deepEqual(r, { type: 'receipt', conversationId: d.id, userId: b.id, seq: 2, kind: 'delivered' });
    }
    let conv = await h.api.conversation(a, d.id);
    assert.equal(conv.members.find((m) => m.userId === b.id)?.lastReadSeq, 0, 'delivered does not move lastReadSeq');

    wsB.send({ type: 'receipt', conversationId: d.id, seq: 3, kind: 'read' });
    for (const ws of [wsA, wsA2, wsB2]) {
      const r = await ws.next('receipt', (f) => f.kind === 'read');
      assert.deepEqual(r, { type: 'receipt', conversationId: d.id, userId: b.id, seq: 3, kind: 'read' });
    }
    conv = await h.api.conversation(a, d.id);
    assert.equal(conv.members.find((m) => m.userId === b.id)?.lastReadSeq, 3);
    assert.equal((await h.api.conversation(b, d.id)).unreadCount, 0);

    wsB.send({ type: 'receipt', conversationId: d.id, seq: 1, kind: 'read' });
    await sleep(150);
    conv = await h.api.conversation(a, d.id);
    assert.equal(conv.members.find((m) => m.userId === b.id)?.lastReadSeq, 3, 'read never moves back');
    await wsX.nothing('receipt', () => true, 0);
  });

  test('a delivered receipt is bounded by lastSeq like a read one, and dropped on an empty log', async () => {
    const [a, b, c] = await h.api.users(3, 'dlvmax');
    assert.ok(a && b && c);
    const d = await h.api.direct(a, b);
    const empty = await h.api.direct(a, c);
    const [wsA, wsB] = await Promise.all([h.connect(a, 'a'), h.connect(b, 'b')]);
    const wsC = await h.connect(c, 'c');
    for (let i = 1; i <= 3; i++) await h.api.send(a, d.id, `m${i}`);

    wsB.send({ type: 'receipt', conversationId: d.id, seq: 1_000_000, kind: 'delivered' });
    const r = await wsA.next('receipt', (f) => f.kind === 'delivered');
    assert.deepEqual(r, { type: 'receipt', conversationId: d.id, userId: b.id, seq: 3, kind: 'delivered' });
    wsB.send({ type: 'receipt', conversationId: d.id, seq: 2, kind: 'delivered' });
    assert.equal((await wsA.next('receipt', (f) => f.kind === 'delivered')).seq, 2, 'a seq within the log goes as sent');

    wsC.send({ type: 'receipt', conversationId: empty.id, seq: 5, kind: 'delivered' });
    assert.equal((await wsC.request({ type: 'ping' })).type, 'pong');
    await wsA.nothing('receipt', (f) => f.conversationId === empty.id, 150);
  });

  test('receipts with bad fields or for foreign conversations are errors', async () => {
    const [a, b, x] = await h.api.users(3, 'rcpterr');
    assert.ok(a && b && x);
    const d = await h.api.direct(a, b);
    await h.api.send(a, d.id, 'm');
    const wsX = await h.connect(x);
    const wsA = await h.connect(a);
    await wsX.error({ type: 'receipt', conversationId: d.id, seq: 1, kind: 'read' }, 'forbidden');
    await wsX.error({ type: 'receipt', conversationId: 'no-such-conv', seq: 1, kind: 'read' }, 'not_found');
    await wsX.error({ type: 'receipt', conversationId: d.id, seq: 1, kind: 'seen' }, 'bad_request');
    await wsX.error({ type: 'receipt', conversationId: d.id, seq: 0, kind: 'read' }, 'bad_request');
    await wsX.error({ type: 'receipt', conversationId: d.id, seq: 'one', kind: 'read' }, 'bad_request');
    await wsA.nothing('receipt', () => true, 100);
    const conv = await h.api.conversation(a, d.id);
    assert.ok(!conv.members.some((m) => m.userId === x.id));
  });
});
