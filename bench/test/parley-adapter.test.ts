/**
 * The generator's raw Parley client against the real server: direct messages
 * are delivered and acked, and a device that missed messages gets every one
 * of them, in seq order, from one sync after reconnecting.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSystem, parleyLaunch } from '../lib/systems.js';
import { BenchClient, Counters } from '../gen/client.js';
import { directConversation, groupConversation, registerAndLogin } from '../gen/parley-http.js';
import { stopAll } from '../lib/proc.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-bench-test-'));
after(async () => {
  await stopAll(3000);
  rmSync(dir, { recursive: true, force: true });
});

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

test('raw Parley clients: direct send → event at the peer and ack at the sender; sync after a gap', { skip: parleyLaunch() === null ? 'Parley not built' : false }, async () => {
  const srv = await startSystem('parley', { core: null, dataDir: dir });
  try {
    const [a, b, x] = await Promise.all(['benchalice', 'benchbob', 'benchxavier'].map((n) => registerAndLogin(srv.httpUrl, n)));
    assert.ok(a && b && x);
    const conv = await directConversation(srv.httpUrl, a.token, b.userId);
    const c = new Counters();
    const ca = new BenchClient({ system: 'parley', wsUrl: srv.wsUrl }, { idx: 0, ...a }, c);
    const cb = new BenchClient({ system: 'parley', wsUrl: srv.wsUrl }, { idx: 1, ...b }, c);
    await ca.connect('127.0.0.20', 5000);
    await cb.connect('127.0.0.21', 5000);
    ca.target = cb.target = conv;
    c.reset(2);
    for (let i = 0; i < 20; i++) {
      ca.sendBench(2);
      cb.sendBench(2);
    }
    await until(() => c.delivered === 40 && c.acked === 40);
    assert.equal(c.delivered, 40);
    assert.equal(c.acked, 40);
    assert.equal(c.errors, 0);

    // B learns its position, goes away, misses 300 messages, comes back and syncs.
    cb.positions = new Map();
    const first = await cb.sync(5000);
    assert.equal(first.conversations, 1);
    assert.equal(cb.positions.get(conv), 40);
    await cb.close();
    assert.equal(await ca.burst(300, 50, 20_000), true);
    await cb.connect('127.0.0.22', 5000);
    const r = await cb.sync(10_000);
    assert.equal(r.events, 300);
    assert.equal(r.ordered, true);
    assert.equal(cb.positions.get(conv), 340);

    // A group: every other member gets each message once.
    const g = await groupConversation(srv.httpUrl, a.token, 'g', [b.userId, x.userId]);
    const cx = new BenchClient({ system: 'parley', wsUrl: srv.wsUrl }, { idx: 2, ...x }, c);
    await cx.connect('127.0.0.23', 5000);
    ca.target = g;
    c.reset(5);
    for (let i = 0; i < 10; i++) ca.sendBench(5);
    await until(() => c.delivered === 20 && c.acked === 10);
    assert.equal(c.delivered, 20);
    for (const cl of [ca, cb, cx]) await cl.close();
  } finally {
    await srv.stop();
  }
});
