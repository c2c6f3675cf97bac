import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../helpers/server.js';
import { expectError, expectStatus, metricValue, sleep } from '../helpers/http.js';
import { stillWorks, type TestWs, type FrameOf } from '../helpers/ws-client.js';
import type { Message } from '../../src/protocol/model.js';

const AUTH_TIMEOUT = 300;
const IDLE_TIMEOUT = 1500;

describe('bad input over WebSocket and HTTP', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ authTimeoutMs: AUTH_TIMEOUT, idleTimeoutMs: IDLE_TIMEOUT });
  });
  after(async () => {
    await h?.close();
  });

  test('malformed JSON, binary frames, non-objects, unknown or missing type: bad_request, the socket stays open', async () => {
    const [a, b] = await h.api.users(2, 'badraw');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const ws = await h.connect(a);
    const raws: { data: string | Buffer; binary?: boolean; what: string }[] = [
      { data: '{"type":"ping",', what: 'truncated JSON' },
      { data: 'hello', what: 'not JSON' },
      { data: '', what: 'empty text frame' },
      { data: '[1,2,3]', what: 'array' },
      { data: '42', what: 'number' },
      { data: 'null', what: 'null' },
      { data: '"ping"', what: 'string' },
      { data: Buffer.from(JSON.stringify({ type: 'ping', ref: 'bin' })), binary: true, what: 'binary frame' },
      { data: Buffer.from([0xff, 0xfe, 0x00, 0x01]), binary: true, what: 'binary garbage' },
      { data: '{"ref":"x"}', what: 'missing type' },
      { data: '{"type":42,"ref":"x"}', what: 'type not a string' },
    ];
    for (const r of raws) {
      const before = ws.all('error').length;
      ws.sendRaw(r.data, r.binary);
      const e = await ws.next('error', () => true, 2000).catch((err: Error) => {
        throw new Error(`${r.what}: ${err.message}`);
      });
      assert.equal(e.code, 'bad_request', `${r.what}: ${JSON.stringify(e)}`);
      assert.equal(ws.all('error').length, before + 1, `${r.what}: exactly one error`);
      await stillWorks(ws, d.id, r.what);
    }
    // A binary frame is never treated as a request, even when it holds a valid one.
    assert.equal(ws.all('pong', (p) => p.ref === 'bin').length, 0);
  });

  test('unknown types, wrong field types and missing fields: bad_request echoing the ref', async () => {
    const [a, b] = await h.api.users(2, 'badfields');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const ws = await h.connect(a);
    const m = (await ws.ack({ type: 'send', conversationId: d.id, clientId: 'base', body: 'base' })) as FrameOf<'ack'> & { message: Message };
    const msgId = m.message.id;
    const frames: Record<string, unknown>[] = [
      { type: 'explode' },
      { type: 'SEND', conversationId: d.id, clientId: 'x1', body: 'upper-case type' },
      { type: 'send', conversationId: d.id, clientId: 'x2', body: 42 },
      { type: 'send', conversationId: 7, clientId: 'x3', body: 'hi' },
      { type: 'send', conversationId: d.id, clientId: 12, body: 'hi' },
      { type: 'send', conversationId: d.id, body: 'no client id' },
      { type: 'send', conversationId: d.id, clientId: 'x4' },
      { type: 'send', clientId: 'x5', body: 'no conversation' },
      { type: 'send', conversationId: d.id, clientId: 'x6', body: 'hi', replyTo: 5 },
      { type: 'edit', messageId: msgId },
      { type: 'edit', messageId: msgId, body: ['x'] },
      { type: 'delete' },
      { type: 'react', messageId: msgId },
      { type: 'unreact', messageId: msgId, reaction: 7 },
      { type: 'sync', positions: [1, 2] },
      { type: 'sync', positions: { [d.id]: -1 } },
      { type: 'sync', positions: { [d.id]: 'zero' } },
      { type: 'sync' },
      { type: 'typing', conversationId: d.id, active: 'yes' },
      { type: 'typing', conversationId: d.id },
      { type: 'receipt', conversationId: d.id, seq: 1, kind: 'seen' },
      { type: 'receipt', conversationId: d.id, seq: 1.5, kind: 'read' },
      { type: 'presence', status: 'sleeping' },
      { type: 'presence' },
      { type: 'auth', token: a.token },
    ];
    for (const f of frames) {
      await ws.error(f, 'bad_request');
      assert.ok(ws.open, `socket closed after ${JSON.stringify(f)}`);
    }
    await stillWorks(ws, d.id, 'the field checks');
    assert.equal((await h.api.conversation(a, d.id)).lastSeq, 2, 'none of the bad frames appended anything');
  });

  test('a second auth after ready is bad_request and the socket stays authenticated', async () => {
    const [a, b] = await h.api.users(2, 'reauth');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const ws = await h.connect(a);
    await ws.error({ type: 'auth', token: b.token }, 'bad_request');
    await ws.error({ type: 'auth', token: a.token }, 'bad_request');
    const ack = await ws.ack({ type: 'send', conversationId: d.id, clientId: 'after-reauth', body: 'still me' });
    assert.ok('message' in ack);
    assert.equal(ack.message.senderId, a.id);
  });

  test('body length: maxBodyChars is accepted, one more is too_large (never truncated), blank is bad_request', async () => {
    const [a, b] = await h.api.users(2, 'bodylen');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const ws = await h.connect(a);
    const max = 4000;
    const ok = await ws.ack({ type: 'send', conversationId: d.id, clientId: 'max', body: 'x'.repeat(max) });
    assert.ok('message' in ok);
    assert.equal(ok.message.body.length, max);
    await ws.error({ type: 'send', conversationId: d.id, clientId: 'max+1', body: 'y'.repeat(max + 1) }, 'too_large');
    await ws.error({ type: 'edit', messageId: ok.message.id, body: 'z'.repeat(max + 1) }, 'too_large');
    await ws.error({ type: 'send', conversationId: d.id, clientId: 'blank', body: ' \n ' }, 'bad_request');
    await ws.error({ type: 'edit', messageId: ok.message.id, body: '' }, 'bad_request');
    expectError(
      await h.api.req('POST', `/v1/conversations/${d.id}/messages`, { token: a.token, json: { clientId: 'http-big', body: 'y'.repeat(max + 1) } }),
      413,
      'too_large',
      'HTTP body over maxBodyChars',
    );
    const hist = await h.api.history(b, d.id);
    assert.deepEqual(hist.messages.map((m) => m.body.length), [max], 'only the accepted message exists, untruncated');
    assert.ok(ws.open);
  });

  test('U+0000 in a body, reaction, title or display name is bad_request, stored nowhere; the socket stays open', async () => {
    const [a, b] = await h.api.users(2, 'nul');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const ws = await h.connect(a);
    const ok = await ws.ack({ type: 'send', conversationId: d.id, clientId: 'fine', body: 'fine' });
    assert.ok('message' in ok);
    await ws.error({ type: 'send', conversationId: d.id, clientId: 'nul', body: 'a\u0000b' }, 'bad_request');
    await ws.error({ type: 'edit', messageId: ok.message.id, body: '\u0000' }, 'bad_request');
    expectError(
      await h.api.req('POST', `/v1/messages/${ok.message.id}/reactions`, { token: a.token, json: { reaction: 'x\u0000' } }),
      400,
      'bad_request',
      'reaction with U+0000',
    );
    expectError(
      await h.api.req('POST', '/v1/conversations', { token: a.token, json: { kind: 'group', title: 't\u0000', members: [b.id] } }),
      400,
      'bad_request',
      'title with U+0000',
    );
    expectError(
      await h.api.req('POST', '/v1/auth/register', { json: { username: `nul${Date.now() % 100000}`, password: 'password123', displayName: 'N\u0000' } }),
      400,
      'bad_request',
      'display name with U+0000',
    );
    const hist = await h.api.history(b, d.id);
    assert.deepEqual(hist.messages.map((m) => m.body), ['fine'], 'nothing with U+0000 was stored');
    assert.ok(ws.open);
  });

  test('unknown ids and foreign conversations get not_found / forbidden', async () => {
    const [a, b, x] = await h.api.users(3, 'ids');
    assert.ok(a && b && x);
    const foreign = await h.api.direct(b, x);
    const fm = await h.api.send(b, foreign.id, 'private');
    const ws = await h.connect(a);
    await ws.error({ type: 'send', conversationId: 'nope', clientId: 'c', body: 'x' }, 'not_found');
    await ws.error({ type: 'send', conversationId: foreign.id, clientId: 'c', body: 'x' }, 'forbidden');
    await ws.error({ type: 'edit', messageId: 'nope', body: 'x' }, 'not_found');
    await ws.error({ type: 'edit', messageId: fm.id, body: 'x' }, 'forbidden');
    await ws.error({ type: 'delete', messageId: fm.id }, 'forbidden');
    await ws.error({ type: 'react', messageId: fm.id, reaction: '👍' }, 'forbidden');
    await ws.error({ type: 'typing', conversationId: foreign.id, active: true }, 'forbidden');
    const e = await ws.error({ type: 'send', ref: 12345, conversationId: 'nope', clientId: 'c', body: 'x' }, 'not_found');
    assert.equal(e.ref, 12345, 'numeric refs are echoed as given');
    assert.ok(ws.open);
  });

  test('HTTP: body over 1 MiB is 413, unknown routes 404, bad JSON 400, all in the error shape', async () => {
    const u = await h.api.user('httpbad');
    const big = JSON.stringify({ username: 'x'.repeat(1024 * 1024 + 10), password: 'whatever1' });
    expectError(await h.api.req('POST', '/v1/auth/register', { raw: big }), 413, 'too_large', '1 MiB body');
    expectError(await h.api.req('GET', '/v1/nope', { token: u.token }), 404, 'not_found', 'unknown route');
    expectError(await h.api.req('POST', '/v1/nope/deeper', { token: u.token, json: {} }), 404, 'not_found', 'unknown POST route');
    expectError(await h.api.req('DELETE', '/v1/me', { token: u.token }), 404, 'not_found', 'unknown method on a route');
    expectError(await h.api.req('POST', '/v1/conversations', { token: u.token, raw: '{"kind":' }), 400, 'bad_request', 'bad JSON');
    expectStatus(await h.api.req('GET', '/v1/me', { token: u.token }), 200, 'server fine afterwards');
  });

  test('a frame over 64 KiB closes the socket with 4008', async () => {
    const [a, b] = await h.api.users(2, 'bigframe');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const ws = await h.connect(a);
    ws.send({ type: 'send', ref: 'big', conversationId: d.id, clientId: 'big', body: 'x'.repeat(70 * 1024) });
    assert.equal((await ws.closed(3000)).code, 4008);
    assert.equal((await h.api.conversation(a, d.id)).lastSeq, 0);
    // A frame just under the limit is fine (and refused only for its body length).
    const ws2 = await h.connect(a);
    await ws2.error({ type: 'send', conversationId: d.id, clientId: 'under', body: 'x'.repeat(60 * 1024) }, 'too_large');
    assert.ok(ws2.open);
  });

  test('800 pipelined sends (the default connection burst) are all acked and the socket stays open', async () => {
    // Like an outbox flushing after a reconnect. This server's limits are far above
    // 800 frames (the default per-connection burst), so nothing may be refused:
    // no rate_limited, and no policy close (4008) for frames in flight.
    const [a, b] = await h.api.users(2, 'pipeline');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const ws = await h.connect(a);
    const answers = await Promise.all(
      Array.from({ length: 800 }, (_, i) => ws.request({ type: 'send', conversationId: d.id, clientId: `pipe-${i}`, body: `pipelined ${i}` }, 15000).catch((e: Error) => e)),
    );
    const bad = answers.filter((x) => x instanceof Error || x.type !== 'ack');
    assert.equal(bad.length, 0, `${bad.length} of 800 not acked; first: ${String(bad[0] instanceof Error ? bad[0].message : JSON.stringify(bad[0])).slice(0, 300)}`);
    assert.ok(ws.open);
  });

  test('no auth within authTimeoutMs closes 4001', async () => {
    const t0 = performance.now();
    const ws = await h.raw('no-auth');
    const c = await ws.closed(AUTH_TIMEOUT + 3000);
    const took = performance.now() - t0;
    assert.equal(c.code, 4001);
    assert.ok(took >= AUTH_TIMEOUT * 0.8, `closed after ${took.toFixed(0)} ms, before the auth timeout`);
  });

  test('a socket silent past idleTimeoutMs is closed; one that pings stays', async () => {
    const [a, b] = await h.api.users(2, 'idle');
    assert.ok(a && b);
    const t0 = performance.now();
    const silent = await h.connect(a, 'silent', { autoPong: false });
    const pinger = await h.connect(b, 'pinger');
    const timer = setInterval(() => pinger.send({ type: 'ping' }), IDLE_TIMEOUT / 4);
    try {
      await silent.closed(IDLE_TIMEOUT + 4000);
      const took = performance.now() - t0;
      assert.ok(took >= IDLE_TIMEOUT * 0.8, `closed after ${took.toFixed(0)} ms, before the idle timeout`);
      await sleep(Math.max(0, IDLE_TIMEOUT * 1.5 - (performance.now() - t0)));
      assert.ok(pinger.open, `a socket sending pings was closed: ${JSON.stringify(pinger.closeInfo)}`);
    } finally {
      clearInterval(timer);
    }
  });
});

describe('rate limits', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ rateConnPerSec: 5, rateConnBurst: 10, rateUserPerSec: 1, rateUserBurst: 6 });
  });
  after(async () => {
    await h?.close();
  });

  test('per connection: a burst past rateConnBurst gets rate_limited with retryAfterMs; the socket stays open', async () => {
    const u = await h.api.user('rconn');
    const ws = await h.connect(u);
    const answers = await Promise.all(Array.from({ length: 20 }, () => ws.request({ type: 'ping' })));
    const limited = answers.filter((x): x is FrameOf<'error'> => x.type === 'error');
    const pongs = answers.filter((x) => x.type === 'pong');
    assert.ok(limited.length >= 5, `limited ${limited.length} of 20`);
    assert.ok(pongs.length >= 5 && pongs.length <= 12, `pongs ${pongs.length} (burst 10, the auth frame may count)`);
    for (const e of limited) {
      assert.equal(e.code, 'rate_limited');
      assert.equal(typeof e.retryAfterMs, 'number');
      assert.ok((e.retryAfterMs ?? 0) > 0, `retryAfterMs ${e.retryAfterMs}`);
    }
    assert.ok(ws.open);
    const wait = Math.max(...limited.map((e) => e.retryAfterMs ?? 0));
    await sleep(Math.min(wait, 2000) + 50);
    assert.equal((await ws.request({ type: 'ping' })).type, 'pong', 'after waiting, frames pass again');
  });

  test('per user: the write bucket holds across two sockets of the same user', async () => {
    const u = await h.api.user('ruser');
    const peer = await h.api.user('rpeer');
    const u2 = await h.api.device(u);
    const d = await h.api.direct(u, peer);
    const ws1 = await h.connect(u, 'dev1');
    const ws2 = await h.connect(u2, 'dev2');
    const sends = (ws: TestWs, tag: string): Promise<FrameOf<'ack'> | FrameOf<'error'>>[] =>
      Array.from({ length: 5 }, (_, i) => ws.request({ type: 'send', conversationId: d.id, clientId: `${tag}-${i}`, body: `${tag} ${i}` }) as Promise<FrameOf<'ack'> | FrameOf<'error'>>);
    const answers = await Promise.all([...sends(ws1, 'one'), ...sends(ws2, 'two')]);
    const acks = answers.filter((x) => x.type === 'ack');
    const limited = answers.filter((x): x is FrameOf<'error'> => x.type === 'error' && x.code === 'rate_limited');
    assert.ok(acks.length >= 6 && acks.length <= 7, `acks ${acks.length}: the user burst is 6 across both sockets`);
    assert.equal(acks.length + limited.length, 10, JSON.stringify(answers.filter((x) => x.type === 'error')));
    for (const e of limited) assert.ok((e.retryAfterMs ?? 0) > 0);
    assert.ok(ws1.open && ws2.open);
    assert.equal((await h.api.conversation(u, d.id)).lastSeq, acks.length, 'refused sends appended nothing');

    // HTTP writes share the user's bucket: 429 with Retry-After.
    const res = await h.api.req('POST', `/v1/conversations/${d.id}/messages`, { token: u.token, json: { clientId: 'http-limited', body: 'x' } });
    expectError(res, 429, 'rate_limited', 'HTTP send while the bucket is empty');
    const retry = res.headers.get('retry-after');
    assert.ok(retry !== null && Number(retry) > 0, `Retry-After header: ${retry}`);
    const ra = (res.body as { error: { retryAfterMs?: number } }).error.retryAfterMs;
    assert.ok(typeof ra === 'number' && ra > 0, `retryAfterMs in the error: ${res.text}`);
    // Reads are not writes: a ping on the user's sockets still passes.
    assert.equal((await ws1.request({ type: 'ping' })).type, 'pong');
  });
});

describe('slow readers', () => {
  let h: Harness;
  const QUEUE = 256 * 1024;
  const BODY = 60_000;
  before(async () => {
    // In a child process, so that /metrics reports the server's memory alone.
    h = await Harness.start({ sendQueueBytes: QUEUE, maxBodyChars: BODY }, { child: true });
  });
  after(async () => {
    await h?.close();
  });

  test('a client that stops reading is closed 4009 and the server\'s memory stays bounded', async () => {
    const [sender, slow] = await h.api.users(2, 'slow');
    assert.ok(sender && slow);
    const d = await h.api.direct(sender, slow);
    // Two paused devices: the first resumes soon after its queue overflowed, to read
    // the close code within the server's close grace; the second stays paused
    // through the whole flood, for the memory check.
    const wsSlow = await h.connect(slow, 'slow');
    const wsStuck = await h.connect(await h.api.device(slow, 'stuck'), 'stuck');
    const fast = await h.connect(await h.api.device(slow, 'fast'), 'slow-user-fast-device');
    const rss = async (): Promise<number> => {
      const v = metricValue(await h.api.metrics(), 'process_resident_memory_bytes');
      assert.ok(v !== undefined && v > 0, 'process_resident_memory_bytes in /metrics');
      return v;
    };
    // Sent over HTTP: a sending socket would get every 60 KB body back twice (ack and event) and could
    // itself be cut off as a slow reader when this machine is busy, which is not what is tested here.
    // Ten requests at a time, so the server's heap holds few request bodies at once (RSS is measured below).
    const sendBatch = async (from: number, n: number, body: string, tag: string): Promise<void> => {
      for (let k = 0; k < n; k += 10) {
        await Promise.all(Array.from({ length: Math.min(10, n - k) }, (_, j) => h.api.send(sender, d.id, body, `${tag}-${from + k + j}`)));
      }
    };
    // Warm up with the same kind of traffic while everyone reads, so the heap
    // and caches reach their working size first: what grows after that is queueing.
    const WARM = 400;
    const warmBody = 'w'.repeat(BODY);
    for (let i = 0; i < WARM; i += 50) await sendBatch(i, 50, warmBody, 'warm');
    for (const ws of [fast, wsSlow, wsStuck]) await ws.collect('event', WARM, () => true, 20000);
    const rss0 = await rss();

    wsSlow.pause();
    wsStuck.pause();
    const body = 's'.repeat(BODY);
    // How much loopback absorbs before the server sees a backlog depends on the
    // kernel's buffer autotuning (tcp_rmem goes up to 32 MB here, and the
    // warm-up may have grown it), so send until the server has cut both paused
    // sockets off, not a fixed amount: at most 1,500 × 60 KB = 90 MB.
    const cutOff = async (): Promise<number> => metricValue(await h.api.metrics(), 'parley_slow_reader_closes_total') ?? 0;
    let sent = 0;
    while (sent < 1500 && (await cutOff()) < 2) {
      await sendBatch(sent, 50, body, 'slow');
      sent += 50;
    }
    assert.ok((await cutOff()) >= 2, `both paused sockets cut off after ${sent} sends`);
    wsSlow.resume();
    const c = await wsSlow.closed(10000);
    assert.equal(c.code, 4009, `close code of the slow reader: ${JSON.stringify(c)}`);
    const got = wsSlow.all('event', (f) => f.event.seq > WARM).length;
    assert.ok(got < sent, `the slow socket got ${got} of ${sent} events: the server should have cut it off, not queued everything`);

    // 30 MB more, aimed at the stuck socket: none of it may pile up in the server.
    const N = sent + 500;
    const rssCut = await rss();
    for (let i = sent; i < N; i += 50) await sendBatch(i, 50, body, 'slow');
    const rss1 = await rss();
    const grew = (rss1 - rss0) / 1024 / 1024;
    const grewAfterCut = (rss1 - rssCut) / 1024 / 1024;
    const aimed = (N * BODY) / 1024 / 1024;
    assert.ok(grew < aimed / 2, `RSS grew ${grew.toFixed(1)} MB while ${aimed.toFixed(0)} MB were aimed at a paused socket (queue bound ${QUEUE / 1024} KiB)`);
    assert.ok(grewAfterCut < 15, `RSS grew ${grewAfterCut.toFixed(1)} MB while 30 MB more were aimed at the cut-off sockets`);

    // The other device of the same user reads normally and gets everything.
    await fast.collect('event', N, (f) => f.event.seq > WARM, 30000);
    assert.ok(fast.open, 'the reader that reads is unaffected');
    wsStuck.resume();
    await wsStuck.closed(10000);
    assert.ok(wsStuck.all('event', (f) => f.event.seq > WARM).length < N, 'the stuck socket was cut off too');
  });
});
