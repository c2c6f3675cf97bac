/**
 * Black-box conformance of the WebSocket half of shared/PROTOCOL.md (GET /v1/ws)
 * and docs/protocol.md §5, §9–§11: a real server on 127.0.0.1, real `ws`
 * clients, nothing mocked. Bad input of every shape, the auth handshake, writes,
 * sync, ephemeral frames, limits and live delivery.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { Harness } from '../helpers/server.js';
import { eventually, expectStatus, sleep } from '../helpers/http.js';
import { stillWorks, type FrameOf, type TestWs } from '../helpers/ws-client.js';
import type { ConversationEvent, Message } from '../../src/protocol/model.js';

const SECRET = 'conformance-ws-secret-0123456789abcdef';
const AUTH_TIMEOUT = 400;

type Ack = FrameOf<'ack'>;
type Err = FrameOf<'error'>;
const msgOf = (a: Ack): Message => (a as Ack & { message: Message }).message;
const evOf = (a: Ack): ConversationEvent => (a as Ack & { event: ConversationEvent }).event;

/** Waits for the socket to close; bounded. */
async function closed(ws: TestWs, ms = 3000): Promise<{ code: number; reason: string }> {
  assert.ok(await eventually(() => ws.closeInfo !== undefined, ms), `${ws.label}: still open after ${ms} ms; ${ws.tail()}`);
  return ws.closeInfo as { code: number; reason: string };
}

describe('WebSocket conformance', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ jwtSecret: SECRET, authTimeoutMs: AUTH_TIMEOUT });
  });
  after(async () => {
    await h?.close();
  });

  // ---------------------------------------------------------------- auth
  test('auth: ready has exactly {type, ref, user, deviceId, heartbeatMs}; user is the public user object', async () => {
    const a = await h.api.user('wsready');
    const ws = await h.raw();
    const ready = (await ws.request({ type: 'auth', ref: 'a1', token: a.token })) as FrameOf<'ready'>;
    assert.equal(ready.type, 'ready');
    assert.deepEqual(Object.keys(ready).sort(), ['deviceId', 'heartbeatMs', 'ref', 'type', 'user']);
    assert.equal(ready.ref, 'a1');
    assert.deepEqual(ready.user, a.user);
    assert.deepEqual(Object.keys(ready.user).sort(), ['createdAt', 'displayName', 'id', 'username']);
    assert.equal(ready.deviceId, a.deviceId);
    assert.ok(Number.isInteger(ready.heartbeatMs) && ready.heartbeatMs > 0);
    // An integer ref is echoed as an integer; no ref, no ref.
    const ws2 = await h.raw();
    assert.equal(((await ws2.request({ type: 'auth', ref: 7, token: a.token })) as FrameOf<'ready'>).ref, 7);
    const ws3 = await h.raw();
    ws3.send({ type: 'auth', token: a.token });
    const r3 = await ws3.next('ready');
    assert.equal('ref' in r3, false);
  });

  test('auth: nothing within authTimeoutMs, a non-auth first frame, junk, binary, bad/expired/forged/revoked tokens: close 4001', async () => {
    const a = await h.api.user('wsauth');
    // Silence.
    const silent = await h.raw('silent');
    const t0 = Date.now();
    const c0 = await closed(silent, AUTH_TIMEOUT + 3000);
    assert.deepEqual(c0, { code: 4001, reason: 'auth timeout' });
    assert.ok(Date.now() - t0 >= AUTH_TIMEOUT - 50, `closed after ${Date.now() - t0} ms`);

    const now = Math.floor(Date.now() / 1000);
    const key = new TextEncoder().encode(SECRET);
    const expired = await new SignJWT({ did: a.deviceId }).setProtectedHeader({ alg: 'HS256' }).setSubject(a.id).setIssuedAt(now - 1000).setExpirationTime(now - 10).sign(key);
    const forged = await new SignJWT({ did: a.deviceId }).setProtectedHeader({ alg: 'HS256' }).setSubject(a.id).setIssuedAt(now).setExpirationTime(now + 600).sign(new TextEncoder().encode('another secret entirely, not ours'));
    const noDevice = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(a.id).setIssuedAt(now).setExpirationTime(now + 600).sign(key);
    const otherUser = await new SignJWT({ did: a.deviceId }).setProtectedHeader({ alg: 'HS256' }).setSubject('someone-else').setIssuedAt(now).setExpirationTime(now + 600).sign(key);
    const [header, payload] = a.token.split('.');
    const unsigned = `${header}.${payload}.`;
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`;
    const logout = await h.api.device(a, 'to-revoke');
    expectStatus(await h.api.req('POST', '/v1/auth/logout', { token: logout.token }), 204, 'logout');

    const firsts: { what: string; data: string | Buffer; binary?: boolean; reason?: RegExp }[] = [
      { what: 'ping first', data: JSON.stringify({ type: 'ping', ref: 'p' }), reason: /first frame must be auth/ },
      { what: 'send first', data: JSON.stringify({ type: 'send', ref: 's', conversationId: 'x', clientId: 'c', body: 'b' }), reason: /first frame must be auth/ },
      { what: 'not JSON', data: 'hello', reason: /first frame must be auth/ },
      { what: 'array', data: '[]', reason: /first frame must be auth/ },
      { what: 'number', data: '42', reason: /first frame must be auth/ },
      { what: 'auth without token', data: JSON.stringify({ type: 'auth', ref: 'x' }), reason: /first frame must be auth/ },
      { what: 'auth with a numeric token', data: JSON.stringify({ type: 'auth', token: 42 }), reason: /first frame must be auth/ },
      { what: 'auth with a null token', data: JSON.stringify({ type: 'auth', token: null }), reason: /first frame must be auth/ },
      { what: 'binary auth', data: Buffer.from(JSON.stringify({ type: 'auth', token: a.token })), binary: true, reason: /first frame must be auth/ },
      { what: 'garbage token', data: JSON.stringify({ type: 'auth', token: 'abc' }), reason: /invalid or expired/ },
      { what: 'expired token', data: JSON.stringify({ type: 'auth', token: expired }), reason: /invalid or expired/ },
      { what: 'token signed with another key', data: JSON.stringify({ type: 'auth', token: forged }), reason: /invalid/ },
      { what: 'token without a device', data: JSON.stringify({ type: 'auth', token: noDevice }), reason: /invalid/ },
      { what: 'token naming another user for the device', data: JSON.stringify({ type: 'auth', token: otherUser }) },
      { what: 'unsigned token', data: JSON.stringify({ type: 'auth', token: unsigned }), reason: /invalid/ },
      { what: 'alg none', data: JSON.stringify({ type: 'auth', token: none }), reason: /invalid/ },
      { what: 'logged-out device', data: JSON.stringify({ type: 'auth', token: logout.token }), reason: /revoked/ },
    ];
    for (const f of firsts) {
      const ws = await h.raw(f.what);
      ws.sendRaw(f.data, f.binary);
      const c = await closed(ws);
      assert.equal(c.code, 4001, `${f.what}: ${JSON.stringify(c)}`);
      if (f.reason) assert.match(c.reason, f.reason, f.what);
      assert.equal(ws.all('ready').length, 0, `${f.what}: no ready`);
      assert.equal(ws.all('pong').length, 0, `${f.what}: nothing answered`);
    }
  });

  test('frames pipelined right behind auth wait for it and are answered after ready', async () => {
    const [a, b] = await h.api.users(2, 'wspipe');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const ws = await h.raw();
    ws.send({ type: 'auth', ref: 'au', token: a.token });
    ws.send({ type: 'ping', ref: 'p1' });
    ws.send({ type: 'send', ref: 's1', conversationId: d.id, clientId: 'pipelined', body: 'right behind auth' });
    await ws.next('ready');
    assert.equal((await ws.next('pong', (p) => p.ref === 'p1')).ref, 'p1');
    assert.equal(msgOf(await ws.next('ack', (x) => x.ref === 's1')).body, 'right behind auth');
    const order = ws.log.filter((f) => f.type !== 'event').map((f) => f.type);
    assert.deepEqual(order.slice(0, 3), ['ready', 'pong', 'ack']);
  });

  // ---------------------------------------------------------------- bad input
  test('every client frame with a field missing, null, of the wrong type or huge: bad_request echoing the ref, nothing stored, the socket stays usable', async () => {
    const [a, b] = await h.api.users(2, 'wsbad');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const ws = await h.connect(a);
    const peer = await h.connect(b);
    const m = msgOf(await ws.ack({ type: 'send', conversationId: d.id, clientId: 'base', body: 'base' }));
    const base: Record<string, Record<string, unknown>> = {
      send: { type: 'send', conversationId: d.id, clientId: 'cx', body: 'hi', replyTo: m.id },
      edit: { type: 'edit', messageId: m.id, body: 'edited' },
      delete: { type: 'delete', messageId: m.id },
      react: { type: 'react', messageId: m.id, reaction: '👍' },
      unreact: { type: 'unreact', messageId: m.id, reaction: '👍' },
      sync: { type: 'sync', positions: { [d.id]: 0 } },
      typing: { type: 'typing', conversationId: d.id, active: true },
      receipt: { type: 'receipt', conversationId: d.id, seq: 1, kind: 'read' },
      presence: { type: 'presence', status: 'away' },
    };
    const wrong: unknown[] = [null, 42, 1.5, true, [], {}, ['x'], { a: 1 }];
    const hugeId = 'x'.repeat(65);
    let n = 0;
    for (const [type, frame] of Object.entries(base)) {
      for (const field of Object.keys(frame)) {
        if (field === 'type') continue;
        const variants: unknown[] = (field === 'replyTo' ? [...wrong] : [undefined, ...wrong]).filter((v) => !(field === 'active' && v === true) && !(field === 'seq' && v === 42));
        if (typeof frame[field] === 'string' && field !== 'body') variants.push(field === 'clientId' ? 'c'.repeat(129) : field === 'reaction' ? 'r'.repeat(33) : hugeId, '');
        if (field === 'seq') variants.push(0, -1, '1', 2 ** 53 + 2);
        if (field === 'positions') variants.push({ [d.id]: -1 }, { [d.id]: 1.5 }, { [d.id]: '3' }, { [d.id]: null }, { [hugeId]: 0 });
        if (field === 'active') variants.push('true', 1);
        for (const v of variants) {
          // A field whose type may be an object and whose wrong value is an empty object is still valid (positions {}).
          if (field === 'positions' && v !== undefined && typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => Number.isInteger(x))) continue;
          const f: Record<string, unknown> = { ...frame, ref: `bad-${++n}` };
          if (v === undefined) delete f[field];
          else f[field] = v;
          const e = await ws.error(f, 'bad_request');
          assert.equal(e.ref, f.ref, `${type}.${field}=${JSON.stringify(v)}: ref echoed`);
          assert.ok(ws.open);
        }
      }
      // Every frame: a wrong ref type is bad_request too (without a ref to echo).
      for (const ref of [null, {}, [], 1.5, true, 'r'.repeat(129)]) {
        ws.sendRaw(JSON.stringify({ ...frame, ref }));
        const e = await ws.next('error', () => true, 2000);
        assert.equal(e.code, 'bad_request', `${type} with ref ${JSON.stringify(ref).slice(0, 20)}`);
        // An over-long string ref is still read, and echoed so the client can match the refusal.
        assert.equal(e.ref, typeof ref === 'string' ? ref : undefined);
      }
    }
    await stillWorks(ws, d.id, 'the field checks');
    const conv = await h.api.conversation(a, d.id);
    assert.equal(conv.lastSeq, 2, 'only the base message and the one of stillWorks were appended');
    assert.equal(conv.members.find((x) => x.userId === a.id)?.lastReadSeq, 0, 'no receipt was applied');
    assert.equal(peer.all('typing').length + peer.all('receipt').length + peer.all('presence', (f) => f.status !== 'online').length, 0, `peer got nothing ephemeral: ${peer.tail()}`);
  });

  test('extra fields are ignored (forward compatibility); unknown types, server frame types and odd JSON are bad_request', async () => {
    const [a, b] = await h.api.users(2, 'wsextra');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const ws = await h.connect(a);
    const ack = await ws.ack({ type: 'send', conversationId: d.id, clientId: 'extra', body: 'with extras', extra: { deep: [1] }, senderId: b.id, seq: 99 });
    const msg = msgOf(ack);
    assert.equal(msg.senderId, a.id, 'senderId is never taken from the frame');
    assert.equal(msg.seq, 1);
    assert.equal((msg as unknown as Record<string, unknown>).extra, undefined);
    assert.equal((await ws.request({ type: 'ping', ref: 'pp', whatever: 1 })).type, 'pong');
    for (const type of ['ready', 'ack', 'event', 'synced', 'pong', 'error', 'conversation', '__proto__', 'constructor', 'toString', '', 'Ping', 'x'.repeat(10_000)]) {
      const e = await ws.error({ type }, 'bad_request');
      assert.ok(e.message.length < 300, `message stays short for type ${type.slice(0, 10)}`);
    }
    for (const raw of ['null', 'true', '"send"', '1e309', '[{"type":"ping","ref":"in-array"}]', '{"type":"ping","ref":"dup","ref":"dup2"', '{}', ' ', '[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]', '['.repeat(30000) + ']'.repeat(30000)]) {
      ws.sendRaw(raw);
      const e = await ws.next('error', () => true, 2000);
      assert.equal(e.code, 'bad_request', raw.slice(0, 30));
      assert.equal(e.ref, undefined, raw.slice(0, 30));
    }
    assert.equal(ws.all('pong', (p) => p.ref === 'in-array').length, 0);
    // A binary message is refused in its turn: after the answer to the frame before it, before the next one's.
    ws.drain();
    const from = ws.log.length;
    ws.send({ type: 'send', ref: 'before-bin', conversationId: d.id, clientId: 'before-bin', body: 'before a binary message' });
    ws.sendRaw(Buffer.from(JSON.stringify({ type: 'ping', ref: 'bin' })), true);
    ws.send({ type: 'ping', ref: 'after-bin' });
    await ws.next('pong', (p) => p.ref === 'after-bin');
    const order = ws.log.slice(from).filter((f) => f.type !== 'event').map((f) => `${f.type}:${String((f as { ref?: unknown }).ref)}`);
    assert.deepEqual(order, ['ack:before-bin', 'error:undefined', 'pong:after-bin']);
    await stillWorks(ws, d.id, 'odd JSON');
    assert.deepEqual(ws.violations, []);
  });

  test('a clientId with a lone surrogate or U+0000 is bad_request (it would be stored altered, or fail on PostgreSQL); well-formed ones are kept as sent', async () => {
    const [a, b] = await h.api.users(2, 'wscid');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const ws = await h.connect(a);
    for (const clientId of ['\ud800', '\ud801', 'x\udfffy', 'nul\u0000']) {
      const e = await ws.error({ type: 'send', conversationId: d.id, clientId, body: `clientId ${JSON.stringify(clientId)}` }, 'bad_request');
      assert.match(e.message, /clientId/);
    }
    // Two well-formed clientIds that differ are two messages.
    const m1 = msgOf(await ws.ack({ type: 'send', conversationId: d.id, clientId: '\ufffd', body: 'one' }));
    const m2 = msgOf(await ws.ack({ type: 'send', conversationId: d.id, clientId: '😀', body: 'two' }));
    assert.notEqual(m1.id, m2.id);
    assert.equal(m2.clientId, '😀');
    const stored = (await h.api.history(a, d.id)).messages.map((m) => m.clientId);
    assert.deepEqual(stored, ['\ufffd', '😀'], 'stored as sent, nothing else stored');
    // HTTP sends share the rule.
    const res = await h.api.req('POST', `/v1/conversations/${d.id}/messages`, { token: a.token, json: { clientId: '\udc00', body: 'over HTTP' } });
    assert.equal(res.status, 400, res.text);
  });

  // ---------------------------------------------------------------- writes
  test('send, edit, delete: ack shapes; forbidden for others\' messages, not_found for unknown ids, forbidden after leaving', async () => {
    const [a, b, c] = await h.api.users(3, 'wswrite');
    assert.ok(a && b && c);
    const g = await h.api.group(a, [b, c], 'writes');
    const wa = await h.connect(a);
    const wb = await h.connect(b);
    const wc = await h.connect(c);
    const sentAck = await wa.ack({ type: 'send', ref: 's1', conversationId: g.id, clientId: 'w1', body: 'hello' });
    assert.deepEqual(Object.keys(sentAck).sort(), ['message', 'ref', 'type']);
    const m = msgOf(sentAck);
    assert.equal(m.conversationId, g.id);
    assert.equal(m.senderId, a.id);
    assert.equal(m.clientId, 'w1');
    assert.equal(m.body, 'hello');
    assert.ok(Number.isInteger(m.seq) && Number.isInteger(m.createdAt));
    assert.equal(m.editedAt, undefined);
    assert.equal(m.deletedAt, undefined);

    const editAck = await wa.ack({ type: 'edit', ref: 'e1', messageId: m.id, body: 'hello again' });
    assert.deepEqual(Object.keys(editAck).sort(), ['event', 'ref', 'type']);
    const ev = evOf(editAck);
    assert.equal(ev.kind, 'message.edited');
    assert.equal(ev.seq, m.seq + 1);
    assert.equal((ev as { messageId: string }).messageId, m.id);
    assert.equal((ev as { body: string }).body, 'hello again');
    assert.equal(ev.actorId, a.id);

    // Others' messages: b (member) can neither edit nor delete a's message.
    await wb.error({ type: 'edit', messageId: m.id, body: 'not mine' }, 'forbidden');
    await wb.error({ type: 'delete', messageId: m.id }, 'forbidden');
    // Unknown ids.
    await wb.error({ type: 'edit', messageId: 'nope', body: 'x' }, 'not_found');
    await wb.error({ type: 'delete', messageId: 'nope' }, 'not_found');
    await wb.error({ type: 'send', conversationId: 'nope', clientId: 'x', body: 'x' }, 'not_found');
    await wb.error({ type: 'send', conversationId: g.id, clientId: 'x', body: 'x', replyTo: 'nope' }, 'not_found');

    // c sends, then leaves: c can no longer edit or delete its own message there.
    const mc = msgOf(await wc.ack({ type: 'send', conversationId: g.id, clientId: 'c1', body: 'from c' }));
    expectStatus(await h.api.req('DELETE', `/v1/conversations/${g.id}/members/${c.id}`, { token: c.token }), 204, 'c leaves');
    await wc.error({ type: 'edit', messageId: mc.id, body: 'after leaving' }, 'forbidden');
    await wc.error({ type: 'delete', messageId: mc.id }, 'forbidden');
    await wc.error({ type: 'send', conversationId: g.id, clientId: 'c2', body: 'after leaving' }, 'forbidden');
    await wc.error({ type: 'typing', conversationId: g.id, active: true }, 'forbidden');
    await wc.error({ type: 'receipt', conversationId: g.id, seq: 1, kind: 'read' }, 'forbidden');

    // R3: the owner (and an admin) may delete another's message in a group.
    const del = evOf(await wa.ack({ type: 'delete', ref: 'd1', messageId: mc.id }));
    assert.equal(del.kind, 'message.deleted');
    assert.equal(del.actorId, a.id);
    assert.equal((del as { messageId: string }).messageId, mc.id);
    expectStatus(await h.api.req('PATCH', `/v1/conversations/${g.id}/members/${b.id}`, { token: a.token, json: { role: 'admin' } }), 200, 'make b admin');
    const mb = msgOf(await wa.ack({ type: 'send', conversationId: g.id, clientId: 'w2', body: 'admin will delete' }));
    assert.equal(evOf(await wb.ack({ type: 'delete', messageId: mb.id })).kind, 'message.deleted');
    await wb.error({ type: 'delete', messageId: mb.id }, 'conflict');
    await wb.error({ type: 'edit', messageId: m.id, body: 'admins still cannot edit' }, 'forbidden');
    const hist = await h.api.history(a, g.id);
    const stored = hist.messages.find((x) => x.id === mb.id);
    assert.equal(stored?.body, '');
    assert.ok(stored?.deletedAt !== undefined);

    // In a direct conversation nobody deletes the other's message.
    const d = await h.api.direct(a, b);
    const md = msgOf(await wa.ack({ type: 'send', conversationId: d.id, clientId: 'd1', body: 'direct' }));
    await wb.error({ type: 'delete', messageId: md.id }, 'forbidden');
  });

  test('a repeated clientId returns the original message, never a second one: sequential, across devices, concurrent, and after an edit', async () => {
    const [a, b] = await h.api.users(2, 'wsdup');
    assert.ok(a && b);
    const a2 = await h.api.device(a, 'second');
    const d = await h.api.direct(a, b);
    const w1 = await h.connect(a, 'a1');
    const w2 = await h.connect(a2, 'a2');
    const wb = await h.connect(b);
    const first = msgOf(await w1.ack({ type: 'send', conversationId: d.id, clientId: 'same', body: 'original' }));
    const again = msgOf(await w1.ack({ type: 'send', conversationId: d.id, clientId: 'same', body: 'a different body' }));
    assert.deepEqual(again, first);
    const other = msgOf(await w2.ack({ type: 'send', conversationId: d.id, clientId: 'same', body: 'from the other device' }));
    assert.equal(other.id, first.id);
    // Concurrent duplicates: 10 on each device at once, pipelined.
    const all = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? w1 : w2).ack({ type: 'send', conversationId: d.id, clientId: 'burst', body: `copy ${i}` })),
    );
    const ids = new Set(all.map((x) => msgOf(x).id));
    assert.equal(ids.size, 1, 'one message for 20 concurrent sends of one clientId');
    const burst = msgOf(all[0] as Ack);
    // After an edit the repeat returns the message in its current state.
    await w1.ack({ type: 'edit', messageId: first.id, body: 'edited original' });
    const afterEdit = msgOf(await w1.ack({ type: 'send', conversationId: d.id, clientId: 'same', body: 'original' }));
    assert.equal(afterEdit.id, first.id);
    assert.equal(afterEdit.body, 'edited original');
    // The same clientId from another user is their own message.
    const fromB = msgOf(await wb.ack({ type: 'send', conversationId: d.id, clientId: 'same', body: 'b uses it too' }));
    assert.notEqual(fromB.id, first.id);
    const conv = await h.api.conversation(a, d.id);
    assert.equal(conv.lastSeq, 4, 'original, burst, edit, b');
    await wb.collect('event', 4);
    await wb.nothing('event', (f) => f.event.kind === 'message.created' && f.event.message.clientId !== 'same' && f.event.message.id !== burst.id, 200);
    assert.equal(wb.all('event', (f) => f.event.kind === 'message.created').length, 3, 'b saw exactly three created events');
  });

  // ---------------------------------------------------------------- sync
  test('sync: members get their events in seq order; foreign and unknown ids get errors with the ref and never leak; unnamed conversations announced; synced last', async () => {
    const [a, b, c] = await h.api.users(3, 'wssync');
    assert.ok(a && b && c);
    const mine = await h.api.direct(a, b);
    const unnamed = await h.api.group(b, [a], 'unnamed');
    const foreign = await h.api.direct(b, c);
    for (let i = 1; i <= 5; i++) await h.api.send(a, mine.id, `mine ${i}`);
    await h.api.send(b, foreign.id, 'secret between b and c');
    const ws = await h.connect(a);
    const ref = 'sy1';
    const done = ws.next('synced', (f) => f.ref === ref, 5000);
    ws.send({ type: 'sync', ref, positions: { [foreign.id]: 0, [mine.id]: 2, nope: 0, '': 0 } });
    await done;
    const frames = ws.log.filter((f) => f.type !== 'presence');
    const last = frames[frames.length - 1] as FrameOf<'synced'>;
    assert.deepEqual(last, { type: 'synced', ref });
    const events = ws.all('event').map((f) => f.event);
    assert.deepEqual(events.map((e) => [e.conversationId, e.seq]), [[mine.id, 3], [mine.id, 4], [mine.id, 5]]);
    assert.ok(!JSON.stringify(ws.log).includes('secret between'), 'nothing of a foreign conversation leaked');
    const errors = ws.all('error');
    assert.deepEqual(errors.map((e) => [e.code, e.ref]), [['forbidden', ref], ['not_found', ref], ['not_found', ref]]);
    const convs = ws.all('conversation').map((f) => f.conversation);
    assert.deepEqual(convs.map((x) => x.id), [unnamed.id], 'the unnamed group, and only it');
    assert.equal(convs[0]?.title, 'unnamed');
    // Positions beyond lastSeq or far beyond any seq: nothing, no error.
    const ref2 = 'sy2';
    const d2 = ws.next('synced', (f) => f.ref === ref2, 5000);
    ws.drain();
    ws.send({ type: 'sync', ref: ref2, positions: { [mine.id]: 1_000_000, [unnamed.id]: Number.MAX_SAFE_INTEGER } });
    await d2;
    assert.deepEqual(ws.log.filter((f, i) => i >= ws.log.length - 1).map((f) => f.type), ['synced']);
    assert.equal(ws.all('error').length, 3, 'no new errors');
    await ws.error({ type: 'sync', positions: { [mine.id]: -1 } }, 'bad_request');
    await ws.error({ type: 'sync', positions: { [mine.id]: 0.5 } }, 'bad_request');
    // Seqs past 2^53 are not exact integers in JSON, and past 2^63 PostgreSQL refused them (internal): bad_request.
    await ws.error({ type: 'sync', positions: { [mine.id]: 2 ** 60 } }, 'bad_request');
    await ws.error({ type: 'sync', positions: { [mine.id]: 1e300 } }, 'bad_request');
    await ws.error({ type: 'receipt', conversationId: mine.id, seq: 1e300, kind: 'read' }, 'bad_request');
    await ws.error({ type: 'receipt', conversationId: mine.id, seq: 2 ** 53, kind: 'delivered' }, 'bad_request');
    // No id holds U+0000 (PostgreSQL answered internal for one): bad_request, in a position's key too.
    await ws.error({ type: 'sync', positions: { [`${mine.id}\u0000`]: 0 } }, 'bad_request');
    await ws.error({ type: 'edit', messageId: 'm\u0000', body: 'x' }, 'bad_request');
    await ws.error({ type: 'delete', messageId: 'm\u0000' }, 'bad_request');
    await ws.error({ type: 'send', conversationId: `${mine.id}\u0000`, clientId: 'nul-conv', body: 'x' }, 'bad_request');
    await ws.error({ type: 'typing', conversationId: 'c\u0000', active: true }, 'bad_request');
    // The largest exact seq is fine.
    assert.equal((await ws.request({ type: 'sync', positions: { [mine.id]: Number.MAX_SAFE_INTEGER } })).type, 'synced');
    // Empty positions: every conversation announced, no events.
    ws.drain();
    const before = ws.log.length;
    const r = await ws.request({ type: 'sync', positions: {} });
    assert.equal(r.type, 'synced');
    const got = ws.log.slice(before);
    assert.deepEqual(got.filter((f) => f.type === 'conversation').map((f) => (f as FrameOf<'conversation'>).conversation.id).sort(), [mine.id, unnamed.id].sort());
    assert.equal(got.filter((f) => f.type === 'event').length, 0);
  });

  // ---------------------------------------------------------------- ephemeral
  test('typing reaches others (not own devices) and lapses 6-7.5 s after the last repeat', async () => {
    const [a, b] = await h.api.users(2, 'wstype');
    assert.ok(a && b);
    const a2 = await h.api.device(a, 'second');
    const d = await h.api.direct(a, b);
    const wa = await h.connect(a);
    const wa2 = await h.connect(a2, 'a2');
    const wb = await h.connect(b);
    wa.send({ type: 'typing', conversationId: d.id, active: true });
    const t0 = Date.now();
    const on = await wb.next('typing', (f) => f.active);
    assert.deepEqual(on, { type: 'typing', conversationId: d.id, userId: a.id, active: true });
    const off = await wb.next('typing', (f) => !f.active, 9000);
    const took = Date.now() - t0;
    assert.ok(took >= 5900 && took <= 7500, `lapsed after ${took} ms`);
    assert.deepEqual(off, { type: 'typing', conversationId: d.id, userId: a.id, active: false });
    assert.equal(wa.all('typing').length + wa2.all('typing').length, 0, 'the typist\'s own devices hear nothing');
  });

  test('receipts: delivered and read reach others, bounded by lastSeq; read updates lastReadSeq in GET conversation', async () => {
    const [a, b] = await h.api.users(2, 'wsrcpt');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const wa = await h.connect(a);
    const wb = await h.connect(b);
    for (let i = 0; i < 3; i++) await wa.ack({ type: 'send', conversationId: d.id, clientId: `r${i}`, body: `m${i}` });
    wb.send({ type: 'receipt', conversationId: d.id, seq: 2, kind: 'delivered' });
    assert.deepEqual(await wa.next('receipt', (f) => f.kind === 'delivered'), { type: 'receipt', conversationId: d.id, userId: b.id, seq: 2, kind: 'delivered' });
    wb.send({ type: 'receipt', conversationId: d.id, seq: 1000, kind: 'delivered' });
    assert.equal((await wa.next('receipt', (f) => f.kind === 'delivered')).seq, 3);
    wb.send({ type: 'receipt', conversationId: d.id, seq: Number.MAX_SAFE_INTEGER, kind: 'read' });
    assert.equal((await wa.next('receipt', (f) => f.kind === 'read')).seq, 3);
    const conv = await h.api.conversation(b, d.id);
    assert.equal(conv.members.find((m) => m.userId === b.id)?.lastReadSeq, 3);
    assert.equal(conv.unreadCount, 0);
    assert.equal(wb.all('receipt').length, 0, 'the reporting socket is not echoed');
    await wb.error({ type: 'receipt', conversationId: 'nope', seq: 1, kind: 'read', ref: 'rx' }, 'not_found');
  });

  test('presence: busy and away are shown, invisible is shown as offline, online again; own devices and strangers hear nothing', async () => {
    const [a, b, stranger] = await h.api.users(3, 'wspres');
    assert.ok(a && b && stranger);
    await h.api.direct(a, b);
    const wb = await h.connect(b);
    const ws = await h.connect(stranger, 'stranger');
    const wa = await h.connect(a);
    await wb.next('presence', (f) => f.userId === a.id && f.status === 'online', 3000);
    for (const [sent, shown] of [['busy', 'busy'], ['away', 'away'], ['invisible', 'offline'], ['online', 'online']] as const) {
      wa.send({ type: 'presence', status: sent });
      const p: FrameOf<'presence'> = await wb.next('presence', (f) => f.userId === a.id && f.status === shown, 3000);
      assert.deepEqual(Object.keys(p).sort(), ['lastActiveAt', 'status', 'type', 'userId']);
      assert.ok(Number.isInteger(p.lastActiveAt));
    }
    assert.equal(wa.all('presence', (f) => f.userId === a.id).length, 0);
    assert.equal(ws.all('presence', (f) => f.userId === a.id).length, 0);
    assert.ok(!wb.all('presence').some((f) => (f.status as string) === 'invisible'));
  });

  test('ping with a string or integer ref gets pong with it; a frame over maxFrameBytes closes 4008 "frame too large"', async () => {
    const a = await h.api.user('wsping');
    const ws = await h.connect(a);
    assert.deepEqual(await ws.request({ type: 'ping', ref: 'p1' }), { type: 'pong', ref: 'p1' });
    assert.deepEqual(await ws.request({ type: 'ping', ref: 0 }), { type: 'pong', ref: 0 });
    assert.deepEqual(await ws.request({ type: 'ping', ref: -12 }), { type: 'pong', ref: -12 });
    ws.send({ type: 'ping' });
    assert.deepEqual(await ws.next('pong'), { type: 'pong' });
    ws.sendRaw(JSON.stringify({ type: 'ping', ref: 'x', pad: 'y'.repeat(70_000) }));
    assert.deepEqual(await closed(ws), { code: 4008, reason: 'frame too large' });
    // Before auth too, and for a binary message.
    const pre = await h.raw('pre-auth-large');
    pre.sendRaw(JSON.stringify({ type: 'auth', token: 'y'.repeat(70_000) }));
    assert.deepEqual(await closed(pre), { code: 4008, reason: 'frame too large' });
    // A text message that is not UTF-8 fails the connection (RFC 6455 §8.1): 1007.
    const bad = await h.connect(a, 'bad-utf8');
    bad.sendRaw(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
    assert.equal((await closed(bad)).code, 1007);
    const bin = await h.connect(a, 'binary-large');
    bin.sendRaw(Buffer.alloc(70_000), true);
    assert.deepEqual(await closed(bin), { code: 4008, reason: 'frame too large' });
  });

  // ---------------------------------------------------------------- live delivery
  test('live events reach the sender\'s other devices; a removed member stops getting the group\'s events and ephemeral frames', async () => {
    const [a, b, c] = await h.api.users(3, 'wslive');
    assert.ok(a && b && c);
    const a2 = await h.api.device(a, 'phone');
    const g = await h.api.group(a, [b, c], 'live');
    const wa = await h.connect(a);
    const wa2 = await h.connect(a2, 'a-phone');
    const wb = await h.connect(b);
    const wc = await h.connect(c);
    const sent = msgOf(await wa.ack({ type: 'send', conversationId: g.id, clientId: 'l1', body: 'to everyone' }));
    for (const w of [wa, wa2, wb, wc]) {
      const e = await w.next('event', (f) => f.event.seq === sent.seq);
      assert.equal(e.event.kind, 'message.created');
      assert.deepEqual((e.event as { message: Message }).message, sent);
    }
    expectStatus(await h.api.req('DELETE', `/v1/conversations/${g.id}/members/${c.id}`, { token: a.token }), 204, 'remove c');
    const left = await wc.next('event', (f) => f.event.kind === 'member.left');
    const conv = await wc.next('conversation', (f) => f.conversation.id === g.id);
    assert.ok(!conv.conversation.members.some((m) => m.userId === c.id));
    wc.drain();
    const after = msgOf(await wa.ack({ type: 'send', conversationId: g.id, clientId: 'l2', body: 'c must not see this' }));
    wa.send({ type: 'typing', conversationId: g.id, active: true });
    wb.send({ type: 'receipt', conversationId: g.id, seq: after.seq, kind: 'read' });
    await wb.next('event', (f) => f.event.seq === after.seq);
    await wb.next('typing', (f) => f.active);
    await wa.next('receipt', (f) => f.userId === b.id && f.kind === 'read');
    await wc.nothing('event', () => true, 200);
    await wc.nothing('typing', () => true, 0);
    await wc.nothing('receipt', () => true, 0);
    assert.ok(!JSON.stringify(wc.log).includes('c must not see this'));
    assert.ok(left.event.seq < after.seq);
  });

  test('a member added while connected, or a new direct conversation, gets a conversation frame and from then on its live events and typing', async () => {
    const [a, b, c] = await h.api.users(3, 'wsadd');
    assert.ok(a && b && c);
    const g = await h.api.group(a, [b], 'added later');
    const wa = await h.connect(a);
    const wc = await h.connect(c);
    expectStatus(await h.api.req('POST', `/v1/conversations/${g.id}/members`, { token: a.token, json: { userIds: [c.id] } }), 200, 'add c');
    const added = await wc.next('conversation', (f) => f.conversation.id === g.id);
    assert.ok(added.conversation.members.some((m) => m.userId === c.id));
    const m = msgOf(await wa.ack({ type: 'send', conversationId: g.id, clientId: 'after-add', body: 'welcome' }));
    assert.equal((await wc.next('event', (f) => f.event.seq === m.seq)).event.kind, 'message.created');
    wa.send({ type: 'typing', conversationId: g.id, active: true });
    await wc.next('typing', (f) => f.conversationId === g.id && f.userId === a.id);
    // c can act in it at once.
    const mc = msgOf(await wc.ack({ type: 'send', conversationId: g.id, clientId: 'c-hello', body: 'thanks' }));
    await wa.next('event', (f) => f.event.seq === mc.seq);
    // A direct conversation created by someone else.
    const d = await h.api.direct(b, c);
    await wc.next('conversation', (f) => f.conversation.id === d.id);
    const mb = await h.api.send(b, d.id, 'hi c');
    assert.equal((await wc.next('event', (f) => f.event.conversationId === d.id)).event.seq, mb.seq);
  });
});

describe('WebSocket conformance: rate limits', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ rateConnPerSec: 5, rateConnBurst: 10, rateUserPerSec: 1, rateUserBurst: 3 });
  });
  after(async () => {
    await h?.close();
  });

  test('a write burst past the user bucket gets rate_limited with an integer retryAfterMs and the ref; nothing stored for it', async () => {
    const [a, b] = await h.api.users(2, 'wsrl');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const ws = await h.connect(a);
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => ws.request({ type: 'send', ref: `rl${i}`, conversationId: d.id, clientId: `rl${i}`, body: `n${i}` })));
    const limited = answers.filter((x): x is Err => x.type === 'error');
    assert.ok(limited.length >= 2, JSON.stringify(answers));
    for (const e of limited) {
      assert.equal(e.code, 'rate_limited');
      assert.ok(Number.isInteger(e.retryAfterMs) && (e.retryAfterMs ?? 0) > 0, JSON.stringify(e));
      assert.match(String(e.ref), /^rl\d$/);
    }
    const acks = answers.filter((x) => x.type === 'ack').length;
    assert.equal((await h.api.conversation(a, d.id)).lastSeq, acks);
  });

  test('valid frames past the connection bucket: rate_limited with retryAfterMs, then close 4008 with a reason after 100 in a row', async () => {
    const a = await h.api.user('wsflood');
    const ws = await h.connect(a);
    for (let i = 0; i < 130; i++) ws.send({ type: 'ping', ref: i });
    const c = await closed(ws, 5000);
    assert.deepEqual(c, { code: 4008, reason: 'rate limit exceeded repeatedly' });
    const limited = ws.all('error');
    assert.ok(limited.length >= 90 && limited.length < 100, `${limited.length} rate_limited errors before the close`);
    for (const e of limited) {
      assert.equal(e.code, 'rate_limited');
      assert.ok(Number.isInteger(e.retryAfterMs) && (e.retryAfterMs ?? 0) > 0);
      assert.equal(typeof e.ref, 'number', 'the ref is echoed');
    }
  });

  test('POST /v1/frames (the long-poll fallback): unreadable frames count against the frame bucket too', async () => {
    const a = await h.api.user('polljunk');
    await sleep(2100); // the bucket is full again
    const codes: string[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await h.api.req<{ frames: Err[] }>('POST', '/v1/frames', { token: a.token, json: { type: 'nope', ref: i } });
      expectStatus(res, 200, 'POST /v1/frames');
      const [e] = res.body.frames;
      assert.equal(e?.ref, i);
      codes.push(String(e?.code));
    }
    const limited = codes.filter((c) => c === 'rate_limited').length;
    assert.ok(limited >= 15, `${limited} of 30 unreadable frames were rate limited: ${codes.join(',')}`);
  });

  test('invalid frames count against the connection bucket too: a flood of junk is rate limited, and closed 4008 when it goes on', async () => {
    const a = await h.api.user('wsjunk');
    const ws = await h.connect(a);
    await sleep(2100); // the bucket is full again (burst 10 at 5/s)
    for (let i = 0; i < 40; i++) ws.sendRaw('not json at all');
    const errors = await ws.collect('error', 40, () => true, 5000);
    const limited = errors.filter((e) => e.code === 'rate_limited');
    assert.ok(limited.length >= 25, `only ${limited.length} of 40 junk frames were rate limited: ${JSON.stringify(errors.slice(-2))}`);
    for (const e of limited) assert.ok((e.retryAfterMs ?? 0) > 0);
    assert.ok(ws.open, 'still open after 40');
    // Keep going: 100 refused in a row closes the socket with a reason.
    for (let i = 0; i < 120; i++) ws.sendRaw(i % 2 ? '[]' : '{"type":"nope"}');
    const c = await closed(ws, 5000);
    assert.deepEqual(c, { code: 4008, reason: 'rate limit exceeded repeatedly' });
  });
});
