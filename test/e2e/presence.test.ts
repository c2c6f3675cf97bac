import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../helpers/server.js';
import { expectError, expectStatus, sleep } from '../helpers/http.js';
import type { FrameOf } from '../helpers/ws-client.js';
import type { PresenceSnapshot } from '../../src/core/ports/presence.js';

const BATCH = 50;
const TTL = 800;

describe('presence', () => {
  let h: Harness;
  before(async () => {
    // A long idle timeout, so that the presence TTL (not the socket idle close) is what lapses.
    h = await Harness.start({ presenceBatchMs: BATCH, presenceTtlMs: TTL, idleTimeoutMs: 20000, heartbeatMs: 1000 });
  });
  after(async () => {
    await h?.close();
  });

  test('online, away, busy, invisible (shown offline), and offline when the last socket closes; strangers hear nothing', async () => {
    const [a, b, s] = await h.api.users(3, 'pres');
    assert.ok(a && b && s);
    await h.api.direct(a, b);
    const wsB = await h.connect(b, 'b');
    const wsS = await h.connect(s, 'stranger');
    // Heartbeats keep every open socket alive past the presence TTL.
    const live = [wsB, wsS];
    const keep = setInterval(() => live.filter((w) => w.open).forEach((w) => w.send({ type: 'ping' })), TTL / 4);
    try {
      const t0 = Date.now();
      const wsA = await h.connect(a, 'a1');
      live.push(wsA);
      const on = await wsB.next('presence', (p) => p.userId === a.id && p.status === 'online', 2000);
      assert.equal(typeof on.lastActiveAt, 'number');
      assert.ok(on.lastActiveAt >= t0 - 1000 && on.lastActiveAt <= Date.now() + 1000, 'lastActiveAt is now-ish');

      for (const status of ['away', 'busy', 'online'] as const) {
        wsA.send({ type: 'presence', status });
        const p: FrameOf<'presence'> = await wsB.next('presence', (x) => x.userId === a.id, 2000);
        assert.equal(p.status, status);
      }
      wsA.send({ type: 'presence', status: 'invisible' });
      assert.equal((await wsB.next('presence', (x) => x.userId === a.id, 2000)).status, 'offline', 'invisible shows offline');
      const snap = await h.api.req<{ presence: PresenceSnapshot[] }>('GET', `/v1/presence?userIds=${a.id}`, { token: b.token });
      assert.equal(snap.body.presence[0]?.status, 'offline', 'invisible is offline over HTTP too');
      wsA.send({ type: 'presence', status: 'online' });
      assert.equal((await wsB.next('presence', (x) => x.userId === a.id, 2000)).status, 'online');

      // Two sockets: closing one keeps a online, closing the last pushes offline.
      const a2 = await h.api.device(a);
      const wsA2 = await h.connect(a2, 'a2');
      live.push(wsA2);
      await wsA.close();
      await wsB.nothing('presence', (x) => x.userId === a.id && x.status === 'offline', BATCH * 4);
      await wsA2.close();
      const off = await wsB.next('presence', (x) => x.userId === a.id && x.status === 'offline', 2000);
      assert.equal(typeof off.lastActiveAt, 'number');
      await wsS.nothing('presence', (x) => x.userId === a.id, 0);
      await wsB.nothing('presence', (x) => x.userId === a.id, BATCH * 3);
    } finally {
      clearInterval(keep);
    }
  });

  test('GET /v1/presence shows people I share a conversation with; others as offline', async () => {
    const [a, b, s] = await h.api.users(3, 'presget');
    assert.ok(a && b && s);
    await h.api.direct(a, b);
    const wsA = await h.connect(a, 'a');
    const wsS = await h.connect(s, 's');
    const keep = setInterval(() => {
      wsA.send({ type: 'ping' });
      wsS.send({ type: 'ping' });
    }, TTL / 4);
    try {
      wsA.send({ type: 'presence', status: 'busy' });
      await sleep(BATCH * 3);
      const res = await h.api.req<{ presence: PresenceSnapshot[] }>('GET', `/v1/presence?userIds=${a.id},${s.id}`, { token: b.token });
      expectStatus(res, 200);
      const by = new Map(res.body.presence.map((p) => [p.userId, p]));
      assert.equal(by.get(a.id)?.status, 'busy');
      assert.equal(typeof by.get(a.id)?.lastActiveAt, 'number');
      assert.equal(by.get(s.id)?.status, 'offline', 'a stranger is shown offline even when online');
      expectError(await h.api.req('GET', `/v1/presence?userIds=${a.id}`), 401, 'unauthorized');
    } finally {
      clearInterval(keep);
    }
  });

  test('a connection silent past the presence TTL goes offline by itself', async () => {
    const [a, b] = await h.api.users(2, 'presttl');
    assert.ok(a && b);
    await h.api.direct(a, b);
    const wsB = await h.connect(b, 'b');
    const keep = setInterval(() => wsB.send({ type: 'ping' }), TTL / 4);
    try {
      const t0 = performance.now();
      await h.connect(a, 'silent-a', { autoPong: false });
      await wsB.next('presence', (p) => p.userId === a.id && p.status === 'online', 2000);
      const off = await wsB.next('presence', (p) => p.userId === a.id && p.status === 'offline', TTL * 4 + 2000);
      const at = (wsB.times[wsB.log.indexOf(off)] ?? 0) - t0;
      assert.ok(at >= TTL * 0.8, `offline came too early: ${at.toFixed(0)} ms`);
    } finally {
      clearInterval(keep);
    }
  });

  test('heartbeats (pings) keep a user online past the TTL', async () => {
    const [a, b] = await h.api.users(2, 'preshb');
    assert.ok(a && b);
    await h.api.direct(a, b);
    const wsB = await h.connect(b, 'b');
    const wsA = await h.connect(a, 'a');
    const keep = setInterval(() => {
      wsA.send({ type: 'ping' });
      wsB.send({ type: 'ping' });
    }, TTL / 4);
    try {
      await wsB.next('presence', (p) => p.userId === a.id && p.status === 'online', 2000);
      await wsB.nothing('presence', (p) => p.userId === a.id && p.status === 'offline', TTL * 2.5);
    } finally {
      clearInterval(keep);
    }
  });

  test('rapid changes are coalesced, and the last one wins', async () => {
    const [a, b] = await h.api.users(2, 'prescoal');
    assert.ok(a && b);
    await h.api.direct(a, b);
    const wsB = await h.connect(b, 'b');
    const wsA = await h.connect(a, 'a');
    await wsB.next('presence', (p) => p.userId === a.id && p.status === 'online', 2000);
    const flips = ['away', 'busy', 'away', 'busy', 'away', 'busy', 'away', 'busy', 'away', 'busy'] as const;
    for (const status of flips) wsA.send({ type: 'presence', status });
    await sleep(BATCH * 6);
    const seen = wsB.all('presence', (p) => p.userId === a.id).slice(1);
    assert.ok(seen.length >= 1, 'a change was pushed');
    assert.equal(seen[seen.length - 1]?.status, 'busy', 'the final status wins');
    assert.ok(seen.length < flips.length, `${flips.length} changes inside one batch window were pushed as ${seen.length} frames`);
  });

  test('many users connecting at once: the watcher gets one online per user, no storm', async () => {
    const watcher = await h.api.user('preswatch');
    const users = await h.api.users(20, 'presmany');
    await h.api.group(watcher, users, 'crowd');
    const wsW = await h.connect(watcher, 'watcher');
    const keep = setInterval(() => wsW.send({ type: 'ping' }), TTL / 4);
    try {
      const sockets = await Promise.all(users.map((u) => h.connect(u)));
      const keepAll = setInterval(() => sockets.forEach((s) => s.send({ type: 'ping' })), TTL / 4);
      try {
        await sleep(BATCH * 6);
        const frames = wsW.all('presence');
        for (const u of users) {
          const mine = frames.filter((p) => p.userId === u.id);
          assert.equal(mine.length, 1, `${u.username}: ${JSON.stringify(mine)}`);
          assert.equal(mine[0]?.status, 'online');
        }
      } finally {
        clearInterval(keepAll);
      }
    } finally {
      clearInterval(keep);
    }
  });
});

describe('presence of large conversations: an online count', () => {
  let h: Harness;
  before(async () => {
    // A group of 5 is "large" here: no presence frames go through it.
    h = await Harness.start({ presenceFanoutMaxMembers: 3, presenceBatchMs: BATCH });
  });
  after(async () => {
    await h?.close();
  });

  test('GET /v1/conversations/:id/presence counts online members (invisible and disconnected as offline); members only', async () => {
    const [a, b, c, d, e, x] = await h.api.users(6, 'pcount');
    assert.ok(a && b && c && d && e && x);
    const g = await h.api.group(a, [b, c, d, e], 'big');
    const wsA = await h.connect(a, 'a');
    await h.connect(b, 'b');
    const wsC = await h.connect(c, 'c');
    await h.connect(d, 'd');
    wsC.send({ type: 'presence', status: 'invisible' });
    // Frames of a socket take effect in order: after the pong, c is invisible.
    assert.equal((await wsC.request({ type: 'ping' })).type, 'pong');

    const res = await h.api.req<{ presence: { conversationId: string; members: number; online: number; at: number } }>('GET', `/v1/conversations/${g.id}/presence`, {
      token: b.token,
    });
    expectStatus(res, 200);
    assert.equal(res.body.presence.conversationId, g.id);
    assert.equal(res.body.presence.members, 5);
    assert.equal(res.body.presence.online, 3, 'a, b and d; c is invisible, e is not connected');
    assert.ok(Math.abs(res.body.presence.at - Date.now()) < 5000, 'at is now-ish');
    // The conversation is above presenceFanoutMaxMembers: its members get no presence frames about each other.
    await wsA.nothing('presence', () => true, BATCH * 4);

    expectError(await h.api.req('GET', `/v1/conversations/${g.id}/presence`, { token: x.token }), 403, 'forbidden', 'a non-member');
    expectError(await h.api.req('GET', '/v1/conversations/no-such-conv/presence', { token: x.token }), 404, 'not_found', 'unknown conversation');
    expectError(await h.api.req('GET', `/v1/conversations/${g.id}/presence`), 401, 'unauthorized', 'no token');
  });
});
