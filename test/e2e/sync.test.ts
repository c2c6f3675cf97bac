import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../helpers/server.js';
import { sleep } from '../helpers/http.js';
import { newRef, type FrameOf } from '../helpers/ws-client.js';

describe('sync', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start();
  });
  after(async () => {
    await h?.close();
  });

  test('sync returns exactly the events after each position, in order, announces unnamed conversations, then synced', async () => {
    const [a, b, c] = await h.api.users(3, 'sync');
    assert.ok(a && b && c);
    const c1 = await h.api.direct(a, b);
    const c2 = await h.api.group(b, [a, c], 'two');
    const c3 = await h.api.group(c, [a], 'three');
    const notMine = await h.api.direct(b, c);
    for (let i = 1; i <= 5; i++) await h.api.send(b, c1.id, `c1-${i}`);
    for (let i = 1; i <= 3; i++) await h.api.send(c, c2.id, `c2-${i}`);
    for (let i = 1; i <= 2; i++) await h.api.send(c, c3.id, `c3-${i}`);
    await h.api.send(b, notMine.id, 'private');

    const ws = await h.connect(a);
    const ref = newRef();
    ws.send({ type: 'sync', ref, positions: { [c1.id]: 2, [c2.id]: 0 } });
    const synced = await ws.next('synced', (f) => f.ref === ref, 5000);
    assert.equal(synced.ref, ref);
    const syncedAt = ws.log.indexOf(synced);
    const before = ws.log.slice(0, syncedAt);
    const evs = before.filter((f): f is FrameOf<'event'> => f.type === 'event');
    const per = (id: string): number[] => evs.filter((f) => f.event.conversationId === id).map((f) => f.event.seq);
    assert.deepEqual(per(c1.id), [3, 4, 5]);
    assert.deepEqual(per(c2.id), [1, 2, 3]);
    assert.deepEqual(per(c3.id), [], 'unnamed conversations are announced, not replayed');
    assert.deepEqual(per(notMine.id), [], 'nothing from a foreign conversation');
    const c1Bodies = evs.filter((f) => f.event.conversationId === c1.id).map((f) => (f.event.kind === 'message.created' ? f.event.message.body : ''));
    assert.deepEqual(c1Bodies, ['c1-3', 'c1-4', 'c1-5']);
    const announced = before.filter((f): f is FrameOf<'conversation'> => f.type === 'conversation').map((f) => f.conversation);
    const c3Frame = announced.find((x) => x.id === c3.id);
    assert.ok(c3Frame, `c3 announced; got ${announced.map((x) => x.id).join(',')}`);
    assert.equal(c3Frame.lastSeq, 2, 'the announcement carries lastSeq so the client knows what to fetch');
    assert.ok(!announced.some((x) => x.id === notMine.id), 'a foreign conversation is not announced');
    ws.drain();
    await ws.nothing('event', () => true, 200);
  });

  test('sync at the latest position sends no events', async () => {
    const [a, b] = await h.api.users(2, 'synclatest');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    for (let i = 0; i < 3; i++) await h.api.send(b, d.id, `m${i}`);
    const ws = await h.connect(a);
    const r = await ws.request({ type: 'sync', positions: { [d.id]: 3 } }, 5000);
    assert.equal(r.type, 'synced');
    assert.equal(ws.all('event').length, 0);
  });

  test('a foreign or unknown id in positions gets an error; the sync goes on for the others', async () => {
    const [a, b, x] = await h.api.users(3, 'syncforeign');
    assert.ok(a && b && x);
    const mine = await h.api.direct(a, b);
    const foreign = await h.api.direct(b, x);
    await h.api.send(b, mine.id, 'for a');
    await h.api.send(b, foreign.id, 'not for a');
    const ws = await h.connect(a);
    const ref = newRef();
    ws.send({ type: 'sync', ref, positions: { [foreign.id]: 0, 'no-such-conv': 0, [mine.id]: 0 } });
    await ws.next('synced', (f) => f.ref === ref, 5000);
    const errors = ws.all('error');
    const codes = errors.map((e) => e.code).sort();
    assert.deepEqual(codes, ['forbidden', 'not_found'], `errors: ${JSON.stringify(errors)}`);
    assert.deepEqual(
      ws.all('event').map((f) => [f.event.conversationId, f.event.seq]),
      [[mine.id, 1]],
    );
    assert.ok(ws.open);
  });

  test('a removed member syncing that conversation gets forbidden, never its events', async () => {
    const [owner, m] = await h.api.users(2, 'syncrm');
    assert.ok(owner && m);
    const g = await h.api.group(owner, [m], 'left behind');
    await h.api.send(owner, g.id, 'before');
    const res = await h.api.req('DELETE', `/v1/conversations/${g.id}/members/${m.id}`, { token: owner.token });
    assert.equal(res.status, 204);
    await h.api.send(owner, g.id, 'after');
    const ws = await h.connect(m);
    const ref = newRef();
    ws.send({ type: 'sync', ref, positions: { [g.id]: 0 } });
    await ws.next('synced', (f) => f.ref === ref, 5000);
    assert.deepEqual(ws.all('event'), []);
    assert.equal(ws.all('error')[0]?.code, 'forbidden');
  });

  test('live events arriving during a sync: nothing missed, nothing twice, in order', async () => {
    const [a, b] = await h.api.users(2, 'synclive');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const wsB = await h.connect(b, 'sender');
    const N = 400;
    // A backlog first, so the sync has real work to do while sends continue.
    const first: Promise<FrameOf<'ack'>>[] = [];
    for (let i = 0; i < 150; i++) first.push(wsB.ack({ type: 'send', conversationId: d.id, clientId: `pre-${i}`, body: `pre ${i}` }, 15000));
    await Promise.all(first);

    const wsA = await h.connect(a, 'syncer');
    const rest: Promise<FrameOf<'ack'>>[] = [];
    for (let i = 150; i < N; i++) rest.push(wsB.ack({ type: 'send', conversationId: d.id, clientId: `live-${i}`, body: `live ${i}` }, 15000));
    await sleep(1);
    const ref = newRef();
    const startIdx = wsA.log.length;
    wsA.send({ type: 'sync', ref, positions: { [d.id]: 0 } });
    await wsA.next('synced', (f) => f.ref === ref, 10000);
    await Promise.all(rest);
    // Every seq 1..N on this socket, at least once over its whole life.
    const ok = await (async () => {
      const end = Date.now() + 5000;
      while (Date.now() < end) {
        const have = new Set(wsA.all('event', (f) => f.event.conversationId === d.id).map((f) => f.event.seq));
        if (have.size === N) return true;
        await sleep(20);
      }
      return false;
    })();
    const have = new Set(wsA.all('event', (f) => f.event.conversationId === d.id).map((f) => f.event.seq));
    assert.ok(ok, `missing seqs: ${Array.from({ length: N }, (_, i) => i + 1).filter((s) => !have.has(s)).slice(0, 20).join(',')}`);
    // Live events already on the wire when the server took up the sync may come
    // again in the replay (the client asked from 0). From the first replayed
    // frame (seq 1) on, everything is strictly increasing: no repeats, no disorder.
    const afterSync = wsA.log
      .slice(startIdx)
      .filter((f): f is FrameOf<'event'> => f.type === 'event' && f.event.conversationId === d.id)
      .map((f) => f.event.seq);
    const replayStart = afterSync.indexOf(1);
    assert.ok(replayStart >= 0, 'the replay starts at seq 1');
    const preSync = afterSync.slice(0, replayStart);
    assert.ok(preSync.length < 50, `${preSync.length} live frames came before the replay started: ${preSync.join(',')}`);
    const replay = afterSync.slice(replayStart);
    for (let i = 1; i < replay.length; i++) {
      assert.ok((replay[i] as number) > (replay[i - 1] as number), `seq ${replay[i]} after ${replay[i - 1]} at ${i} of the replay: a repeat or disorder during sync (pre-sync live: ${preSync.join(',')})`);
    }
  });

  test('a big backlog (1,000 events) arrives complete and in order', async () => {
    const [a, b] = await h.api.users(2, 'syncbig');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const wsB = await h.connect(b, 'sender');
    for (let i = 0; i < 1000; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, j) => wsB.ack({ type: 'send', conversationId: d.id, clientId: `big-${i + j}`, body: `big ${i + j}` }, 20000)));
    }
    const wsA = await h.connect(a, 'syncer');
    const ref = newRef();
    wsA.send({ type: 'sync', ref, positions: { [d.id]: 0 } });
    await wsA.next('synced', (f) => f.ref === ref, 15000);
    const seqs = wsA.all('event', (f) => f.event.conversationId === d.id).map((f) => f.event.seq);
    assert.deepEqual(seqs, Array.from({ length: 1000 }, (_, i) => i + 1));
  });

  test('after a sync the socket gets live events', async () => {
    const [a, b] = await h.api.users(2, 'synclater');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const wsA = await h.connect(a);
    const r = await wsA.request({ type: 'sync', positions: { [d.id]: 0 } });
    assert.equal(r.type, 'synced');
    const m = await h.api.send(b, d.id, 'live now');
    const ev = await wsA.next('event', (f) => f.event.kind === 'message.created' && f.event.message.id === m.id);
    assert.equal(ev.event.seq, 1);
  });
});
