/**
 * The Presence port suite (contract in src/core/ports/presence.ts), run by
 * every engine. Time is the `at` / `now` the suite passes, never the clock, so
 * TTLs lapse without sleeping.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type { Presence } from '../../src/core/ports/presence.js';

const T0 = 1_700_000_000_000;
const TTL = 60_000;

export function presenceSuite(
  name: string,
  open: () => Promise<Presence>,
  dispose: (presence: Presence) => Promise<void>,
): void {
  describe(`Presence port: ${name}`, () => {
    let p: Presence;

    beforeEach(async () => {
      p = await open();
    });

    afterEach(async () => {
      await dispose(p);
    });

    it('tells which users have a live connection, invisible ones included, until it lapses or goes', async () => {
      assert.deepEqual(await p.connectedAmong([], T0), []);
      await p.connect('u1', 'c1', T0, TTL);
      await p.connect('u2', 'c2', T0, TTL);
      await p.setStatus('u2', 'invisible', T0 + 1);
      await p.connect('u3', 'c3', T0, TTL);
      await p.disconnect('u3', 'c3', T0 + 2);
      assert.deepEqual(await p.connectedAmong(['u3', 'u2', 'nobody', 'u1'], T0 + 10), ['u2', 'u1']);
      await p.touch('u1', 'c1', T0 + TTL / 2, TTL);
      assert.deepEqual(await p.connectedAmong(['u1', 'u2'], T0 + TTL), ['u1'], 'u2 lapsed at its expiry, swept or not');
      assert.deepEqual(await p.connectedAmong(['u1', 'u2'], T0 + TTL + TTL / 2), [], 'u1 lapsed too');
    });

    it('shows unknown users as offline with no lastActiveAt', async () => {
      assert.deepEqual(await p.get(['nobody']), [{ userId: 'nobody', status: 'offline' }]);
    });

    it('keeps a user online until their last connection goes, reporting each change once', async () => {
      assert.deepEqual(await p.connect('u1', 'c1', T0, TTL), { userId: 'u1', status: 'online', lastActiveAt: T0 });
      assert.equal(await p.connect('u1', 'c2', T0 + 10, TTL), undefined);
      assert.equal(await p.disconnect('u1', 'c1', T0 + 20), undefined);
      assert.deepEqual(await p.get(['u1']), [{ userId: 'u1', status: 'online', lastActiveAt: T0 + 20 }]);
      assert.deepEqual(await p.disconnect('u1', 'c2', T0 + 30), { userId: 'u1', status: 'offline', lastActiveAt: T0 + 30 });
      assert.equal(await p.disconnect('u1', 'c2', T0 + 40), undefined);
      assert.deepEqual(await p.get(['u1']), [{ userId: 'u1', status: 'offline', lastActiveAt: T0 + 30 }]);
    });

    it('answers get() in the order asked, users independent', async () => {
      await p.connect('u1', 'c1', T0, TTL);
      await p.connect('u2', 'c2', T0 + 5, TTL);
      await p.setStatus('u2', 'busy', T0 + 6);
      assert.deepEqual(await p.get(['u2', 'x', 'u1']), [
        { userId: 'u2', status: 'busy', lastActiveAt: T0 + 6 },
        { userId: 'x', status: 'offline' },
        { userId: 'u1', status: 'online', lastActiveAt: T0 },
      ]);
    });

    it('reports away and busy, and nothing when the status is set again', async () => {
      await p.connect('u1', 'c1', T0, TTL);
      assert.deepEqual(await p.setStatus('u1', 'away', T0 + 1), { userId: 'u1', status: 'away', lastActiveAt: T0 + 1 });
      assert.equal(await p.setStatus('u1', 'away', T0 + 2), undefined);
      assert.deepEqual(await p.setStatus('u1', 'busy', T0 + 3), { userId: 'u1', status: 'busy', lastActiveAt: T0 + 3 });
      assert.deepEqual(await p.setStatus('u1', 'online', T0 + 4), { userId: 'u1', status: 'online', lastActiveAt: T0 + 4 });
      assert.equal((await p.get(['u1']))[0]?.status, 'online');
    });

    it('shows an invisible user as offline, without later activity, and back when visible', async () => {
      await p.connect('u1', 'c1', T0, TTL);
      assert.deepEqual(await p.setStatus('u1', 'invisible', T0 + 1), { userId: 'u1', status: 'offline', lastActiveAt: T0 + 1 });
      await p.touch('u1', 'c1', T0 + 500, TTL);
      assert.equal(await p.connect('u1', 'c2', T0 + 600, TTL), undefined);
      assert.deepEqual(await p.get(['u1']), [{ userId: 'u1', status: 'offline', lastActiveAt: T0 + 1 }]);
      assert.deepEqual(await p.setStatus('u1', 'away', T0 + 700), { userId: 'u1', status: 'away', lastActiveAt: T0 + 700 });
    });

    it('changes nothing others see when an offline user sets a status, and applies it on connect', async () => {
      assert.equal(await p.setStatus('u1', 'busy', T0), undefined);
      assert.equal(await p.setStatus('u1', 'invisible', T0 + 1), undefined);
      assert.equal(await p.connect('u1', 'c1', T0 + 2, TTL), undefined);
      assert.deepEqual(await p.setStatus('u1', 'busy', T0 + 3), { userId: 'u1', status: 'busy', lastActiveAt: T0 + 3 });
      await p.disconnect('u1', 'c1', T0 + 4);
      assert.deepEqual(await p.connect('u1', 'c2', T0 + 5, TTL), { userId: 'u1', status: 'busy', lastActiveAt: T0 + 5 });
    });

    it('lapses a connection at its TTL on sweep, reporting the user offline exactly once', async () => {
      await p.connect('u1', 'c1', T0, TTL);
      await p.connect('u2', 'c2', T0 + 1000, TTL);
      assert.deepEqual(await p.sweep(T0 + TTL - 1), []);
      assert.deepEqual(await p.sweep(T0 + TTL), [{ userId: 'u1', status: 'offline', lastActiveAt: T0 }]);
      assert.deepEqual(await p.sweep(T0 + TTL + 1), []);
      assert.deepEqual(await p.get(['u1', 'u2']), [
        { userId: 'u1', status: 'offline', lastActiveAt: T0 },
        { userId: 'u2', status: 'online', lastActiveAt: T0 + 1000 },
      ]);
      assert.equal(await p.disconnect('u1', 'c1', T0 + TTL + 2), undefined, 'the lapse was already reported');
    });

    it('reports every user a sweep makes offline', async () => {
      for (let i = 0; i < 5; i++) await p.connect(`u${i}`, `c${i}`, T0 + i, TTL);
      const changes = await p.sweep(T0 + TTL + 10);
      assert.deepEqual(changes.map((c) => c.userId).sort(), ['u0', 'u1', 'u2', 'u3', 'u4']);
      assert.ok(changes.every((c) => c.status === 'offline'));
    });

    it('extends the TTL and moves lastActiveAt with touch', async () => {
      await p.connect('u1', 'c1', T0, TTL);
      await p.touch('u1', 'c1', T0 + 50_000, TTL);
      assert.deepEqual(await p.sweep(T0 + TTL + 1), []);
      assert.deepEqual(await p.get(['u1']), [{ userId: 'u1', status: 'online', lastActiveAt: T0 + 50_000 }]);
      assert.deepEqual(await p.sweep(T0 + 50_000 + TTL), [{ userId: 'u1', status: 'offline', lastActiveAt: T0 + 50_000 }]);
    });

    it('keeps a user online while one connection lapses and another lives', async () => {
      await p.connect('u1', 'short', T0, 1000);
      await p.connect('u1', 'long', T0, TTL);
      assert.deepEqual(await p.sweep(T0 + 5000), []);
      assert.equal((await p.get(['u1']))[0]?.status, 'online');
      assert.deepEqual(await p.disconnect('u1', 'long', T0 + 6000), { userId: 'u1', status: 'offline', lastActiveAt: T0 + 6000 });
    });

    it('counts a lapsed connection as gone when the last live one disconnects, before any sweep', async () => {
      await p.connect('u1', 'short', T0, 1000);
      await p.connect('u1', 'long', T0, TTL);
      assert.deepEqual(await p.disconnect('u1', 'long', T0 + 5000), { userId: 'u1', status: 'offline', lastActiveAt: T0 + 5000 });
      assert.deepEqual(await p.sweep(T0 + TTL), []);
    });

    it('reports a lapse once even when another call sees it before sweep', async () => {
      await p.connect('u1', 'c1', T0, TTL);
      // The connection lapsed, so the first call to notice reports it, whichever it is.
      assert.deepEqual(await p.setStatus('u1', 'away', T0 + TTL + 5), { userId: 'u1', status: 'offline', lastActiveAt: T0 + TTL + 5 });
      assert.equal((await p.get(['u1']))[0]?.status, 'offline');
      assert.deepEqual(await p.sweep(T0 + TTL + 10), []);
    });

    it('does not report a lapse of an invisible user, who already looked offline', async () => {
      await p.connect('u1', 'c1', T0, TTL);
      await p.setStatus('u1', 'invisible', T0 + 1);
      assert.deepEqual(await p.sweep(T0 + TTL + 1), []);
    });

    it('does not bring a user back with touch after their connection is gone', async () => {
      await p.connect('u1', 'c1', T0, TTL);
      await p.disconnect('u1', 'c1', T0 + 1);
      await p.touch('u1', 'c1', T0 + 2, TTL);
      await p.touch('ghost', 'c9', T0 + 2, TTL);
      assert.deepEqual(await p.get(['u1', 'ghost']), [
        { userId: 'u1', status: 'offline', lastActiveAt: T0 + 1 },
        { userId: 'ghost', status: 'offline' },
      ]);
    });
  });
}
