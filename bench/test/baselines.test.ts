/**
 * The two baseline servers route, fan out and acknowledge as documented, and
 * the generator's raw clients speak their wire formats (Socket.IO's checked
 * against the official socket.io-client).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { io as ioClient } from 'socket.io-client';
import { startSystem, type RunningServer } from '../lib/systems.js';
import { BenchClient, Counters } from '../gen/client.js';
import { stopAll } from '../lib/proc.js';
import type { System } from '../gen/wire.js';

after(() => stopAll(3000));

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await wait(10);
}

async function pairAndRoom(system: System): Promise<void> {
  const srv: RunningServer = await startSystem(system, { core: null });
  try {
    const c = new Counters();
    const clients = [0, 1, 2].map((idx) => new BenchClient({ system, wsUrl: srv.wsUrl }, { idx, userId: `u${idx}` }, c));
    for (const [i, cl] of clients.entries()) await cl.connect(`127.0.0.${10 + i}`, 5000);
    const [a, b, d] = clients as [BenchClient, BenchClient, BenchClient];
    // 1:1 both ways
    a.target = 'u1';
    b.target = 'u0';
    c.reset(3);
    for (let i = 0; i < 50; i++) {
      a.sendBench(3);
      b.sendBench(3);
    }
    await until(() => c.delivered === 100 && c.acked === 100);
    assert.equal(c.sent, 100);
    assert.equal(c.delivered, 100);
    assert.equal(c.acked, 100);
    assert.equal(c.echo, 0);
    assert.equal(c.hist.count, 100);
    // a message of another step is not counted as delivered
    c.reset(4);
    a.sendBench(3);
    await until(() => c.stale === 1);
    assert.equal(c.delivered, 0);
    assert.equal(c.stale, 1);
    // a room: everyone but the sender gets it
    for (const cl of clients) await cl.join('g', 5000);
    a.target = 'g';
    a.toRoom = true;
    c.reset(5);
    for (let i = 0; i < 10; i++) a.sendBench(5);
    await until(() => c.delivered === 20 && c.acked === 10);
    assert.equal(c.delivered, 20);
    assert.equal(c.echo, 0);
    // nobody else got stray frames
    assert.deepEqual(c.errorCodes, {});
    for (const cl of [a, b, d]) await cl.close();
  } finally {
    await srv.stop();
  }
}

test('bare ws router: 1:1 routing with acks, rooms without echo', () => pairAndRoom('ws'));

test('Socket.IO server: the same through the raw Engine.IO/Socket.IO client', () => pairAndRoom('sio'));

test('Socket.IO server works with the official client: rooms per user, ack callback', async () => {
  const srv = await startSystem('sio', { core: null });
  try {
    const opts = { transports: ['websocket'], forceNew: true };
    const alice = ioClient(srv.httpUrl, { ...opts, query: { u: 'alice' } });
    const bob = ioClient(srv.httpUrl, { ...opts, query: { u: 'bob' } });
    await Promise.all([alice, bob].map((s) => new Promise((r) => s.once('connect', () => r(null)))));
    const got = new Promise<unknown>((r) => bob.once('msg', r));
    const ack = await alice.timeout(3000).emitWithAck('send', { to: 'bob', body: 'hi' });
    assert.deepEqual(ack, { ok: true });
    assert.deepEqual(await got, { from: 'alice', body: 'hi' });
    const bad = await alice.timeout(3000).emitWithAck('send', { nope: 1 });
    assert.deepEqual(bad, { ok: false, error: 'bad_request' });
    alice.close();
    bob.close();
  } finally {
    await srv.stop();
  }
});

test('bare ws router answers a malformed frame with an error and keeps the socket', async () => {
  const srv = await startSystem('ws', { core: null });
  try {
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(`${srv.wsUrl}?u=x`);
    await new Promise((r) => ws.once('open', r));
    const frames: string[] = [];
    ws.on('message', (d: Buffer) => frames.push(d.toString()));
    ws.send('not json');
    ws.send('{"type":"ping","ref":7}');
    await until(() => frames.length === 2);
    assert.match(frames[0] ?? '', /"code":"bad_request"/);
    assert.equal(frames[1], '{"type":"pong","ref":7}');
    ws.close();
  } finally {
    await srv.stop();
  }
});
