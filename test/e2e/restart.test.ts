import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../helpers/server.js';
import { expectError, expectStatus, type LoginBody } from '../helpers/http.js';
import type { FrameOf } from '../helpers/ws-client.js';
import type { Message } from '../../src/protocol/model.js';

describe('durability across a restart on the same data dir', () => {
  const harnesses: Harness[] = [];
  after(async () => {
    for (const h of harnesses) await h.close();
  });

  test('users, tokens, conversations, messages, edits, reactions, read state and idempotency survive a restart', async () => {
    const h = await Harness.start();
    harnesses.push(h);
    const [a, b, c] = await h.api.users(3, 'dur');
    assert.ok(a && b && c);
    const revoked = await h.api.device(a, 'to-revoke');
    const g = await h.api.group(a, [b, c], 'durable');
    const wsA = await h.connect(a);
    const sent: Message[] = [];
    for (let i = 0; i < 10; i++) {
      const ack = await wsA.ack({ type: 'send', conversationId: g.id, clientId: `dur-${i}`, body: `durable ${i}` });
      assert.ok('message' in ack);
      sent.push(ack.message);
    }
    const first = sent[0];
    const second = sent[1];
    assert.ok(first && second);
    await wsA.ack({ type: 'edit', messageId: first.id, body: 'edited before restart' });
    await wsA.ack({ type: 'delete', messageId: second.id });
    await wsA.ack({ type: 'react', messageId: first.id, reaction: '🔥' });
    expectStatus(await h.api.req('POST', `/v1/conversations/${g.id}/read`, { token: b.token, json: { seq: 5 } }), 200);
    expectStatus(await h.api.req('PATCH', `/v1/conversations/${g.id}/members/${b.id}`, { token: a.token, json: { role: 'admin' } }), 200);
    expectStatus(await h.api.req('DELETE', `/v1/sessions/${revoked.deviceId}`, { token: a.token }), 204);
    const beforeConv = await h.api.conversation(b, g.id);
    const beforeHist = await h.api.history(b, g.id);
    const d = await h.api.direct(b, c);

    await h.restart();

    // Access tokens signed before the restart still verify (the key lives in the data dir).
    expectStatus(await h.api.req('GET', '/v1/me', { token: a.token }), 200, 'old access token');
    expectError(await h.api.req('GET', '/v1/me', { token: revoked.token }), 401, 'unauthorized', 'revoked device stays revoked');
    const r = await h.api.req<LoginBody>('POST', '/v1/auth/refresh', { json: { refreshToken: c.refreshToken } });
    expectStatus(r, 200, 'refresh token from before');
    expectStatus(await h.api.req<LoginBody>('POST', '/v1/auth/login', { json: { username: c.username, password: c.password } }), 200, 'login');

    const afterConv = await h.api.conversation(b, g.id);
    assert.equal(afterConv.lastSeq, beforeConv.lastSeq);
    assert.deepEqual(afterConv.members, beforeConv.members);
    assert.equal(afterConv.title, 'durable');
    assert.equal(afterConv.members.find((m) => m.userId === b.id)?.lastReadSeq, 5);
    assert.equal(afterConv.members.find((m) => m.userId === b.id)?.role, 'admin');
    const afterHist = await h.api.history(b, g.id);
    assert.deepEqual(afterHist, beforeHist);
    const m1 = afterHist.messages.find((m) => m.id === first.id);
    assert.equal(m1?.body, 'edited before restart');
    assert.deepEqual(m1?.reactions, { '🔥': [a.id] });
    const m2 = afterHist.messages.find((m) => m.id === second.id);
    assert.equal(m2?.body, '');
    assert.equal(typeof m2?.deletedAt, 'number');
    const list = await h.api.req<{ conversations: { id: string }[] }>('GET', '/v1/conversations', { token: c.token });
    assert.deepEqual(new Set(list.body.conversations.map((x) => x.id)), new Set([g.id, d.id]));

    // Idempotency survives: the same clientId returns the original, lastSeq unchanged.
    const wsA2 = await h.connect(a);
    const retry = await wsA2.ack({ type: 'send', conversationId: g.id, clientId: 'dur-3', body: 'durable 3' });
    assert.ok('message' in retry);
    assert.deepEqual(retry.message, sent[3]);
    const httpRetry = await h.api.req<{ message: Message }>('POST', `/v1/conversations/${g.id}/messages`, { token: a.token, json: { clientId: 'dur-4', body: 'durable 4' } });
    expectStatus(httpRetry, 200);
    assert.deepEqual(httpRetry.body.message, sent[4]);
    assert.equal((await h.api.conversation(a, g.id)).lastSeq, beforeConv.lastSeq);

    // Seqs continue without a gap, ids keep sorting after the old ones.
    const next = await wsA2.ack({ type: 'send', conversationId: g.id, clientId: 'after-restart', body: 'new' });
    assert.ok('message' in next);
    assert.equal(next.message.seq, beforeConv.lastSeq + 1);
    assert.ok(next.message.id > (sent[9]?.id ?? ''), 'ids stay time-sortable across restarts');
    const wsB = await h.connect(b);
    const synced = await wsB.request({ type: 'sync', positions: { [g.id]: beforeConv.lastSeq } });
    assert.equal(synced.type, 'synced');
    assert.deepEqual(wsB.all('event', (f) => f.event.conversationId === g.id).map((f) => f.event.seq), [beforeConv.lastSeq + 1]);
  });

  test('a long-poll cursor from before the restart answers reset', async () => {
    const h = await Harness.start();
    harnesses.push(h);
    const [a, b] = await h.api.users(2, 'durpoll');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const p0 = await h.api.req<{ cursor: number }>('GET', '/v1/poll', { token: a.token });
    expectStatus(p0, 200);
    await h.api.send(b, d.id, 'x');
    const p1 = await h.api.req<{ cursor: number; frames: unknown[] }>('GET', `/v1/poll?cursor=${p0.body.cursor}&timeoutMs=2000`, { token: a.token });
    expectStatus(p1, 200);
    assert.ok(p1.body.cursor > 0);
    await h.restart();
    const p2 = await h.api.req<{ cursor: number; frames: unknown[]; reset?: boolean }>('GET', `/v1/poll?cursor=${p1.body.cursor}&timeoutMs=2000`, { token: a.token });
    expectStatus(p2, 200);
    assert.deepEqual(p2.body, { frames: [], cursor: 0, reset: true });
  });

  test('graceful close: sockets get 4010, /readyz is 503 while draining, every acked send is durable and gap-free', async () => {
    const h = await Harness.start();
    harnesses.push(h);
    const [a, b] = await h.api.users(2, 'drain');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const wsA = await h.connect(a, 'sender');
    const wsB = await h.connect(b, 'receiver');
    // A socket that does not read holds the drain open for a while.
    const stuck = await h.connect(await h.api.device(b, 'stuck'), 'stuck');
    stuck.pause();

    const N = 200;
    const acks: Promise<FrameOf<'ack'> | undefined>[] = [];
    for (let i = 0; i < N; i++) {
      acks.push(wsA.ack({ type: 'send', conversationId: d.id, clientId: `drain-${i}`, body: `drain ${i}` }, 5000).catch(() => undefined));
    }
    await new Promise((r) => setTimeout(r, 5));
    const closing = h.srv.close();
    const ready = await h.api.req('GET', '/readyz').catch((e: Error) => ({ status: -1, text: e.message }));
    assert.equal(ready.status, 503, `/readyz while draining: ${ready.status} ${ready.text}`);
    const [ca, cb] = await Promise.all([wsA.closed(5000), wsB.closed(5000)]);
    assert.equal(ca.code, 4010);
    assert.equal(cb.code, 4010);
    await closing;
    const acked = (await Promise.all(acks)).filter((x): x is FrameOf<'ack'> & { message: Message } => !!x && 'message' in x).map((x) => x.message);

    await h.restart();
    const hist = await h.api.history(a, d.id, '?limit=200');
    const seqs = hist.messages.map((m) => m.seq);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'gap-free after the drain');
    const stored = new Map(hist.messages.map((m) => [m.id, m]));
    for (const m of acked) assert.deepEqual(stored.get(m.id), m, `acked message ${m.seq} is durable`);
    assert.ok(acked.length <= seqs.length);

    // Retrying every send after the restart: acked ones come back unchanged, none doubles.
    const wsA2 = await h.connect(a, 'sender-again');
    for (let i = 0; i < N; i++) await wsA2.ack({ type: 'send', conversationId: d.id, clientId: `drain-${i}`, body: `drain ${i}` });
    const final = await h.api.history(a, d.id, '?limit=200');
    assert.equal(final.messages.length, N, 'each clientId exactly once');
    assert.deepEqual(
      final.messages.map((m) => m.seq),
      Array.from({ length: N }, (_, i) => i + 1),
    );
    for (const m of acked) assert.deepEqual(final.messages.find((x) => x.id === m.id), m);
  });
});
