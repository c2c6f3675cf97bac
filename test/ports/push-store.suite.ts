/**
 * The PushStore part of the Store port (contract in src/core/ports/store.ts),
 * run by every store engine: subscriptions belong to a device, one per (kind,
 * address) store-wide, gone with the device's revocation; secrets are shared.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { StoreError, type PushSubscriptionRecord, type Store } from '../../src/core/ports/store.js';

const T0 = 1_700_000_000_000;

export function pushStoreSuite(name: string, open: () => Promise<Store>, dispose: (s: Store) => Promise<void>): void {
  describe(`Store port, push subscriptions: ${name}`, () => {
    let s: Store;
    /** Fresh ids per test, so engines that share a database across tests never collide. */
    let tag: string;
    const id = (x: string): string => `${x}-${tag}`;

    beforeEach(async () => {
      s = await open();
      tag = randomUUID().slice(0, 8);
      for (const u of ['u1', 'u2']) {
        await s.users.create({ id: id(u), username: `${u}${tag}`, displayName: u, createdAt: T0, passwordHash: 'h' });
      }
      for (const [d, u] of [['d1', 'u1'], ['d2', 'u1'], ['d3', 'u2']] as const) {
        await s.devices.create({ id: id(d), userId: id(u), name: d, createdAt: T0, lastActiveAt: T0 });
      }
    });

    afterEach(async () => {
      await dispose(s);
    });

    const web = (sid: string, device: string, user: string, endpoint: string): PushSubscriptionRecord => ({
      id: id(sid),
      userId: id(user),
      deviceId: id(device),
      kind: 'webpush',
      address: endpoint,
      p256dh: 'BPk',
      auth: 'au',
      createdAt: T0,
    });

    it('stores a subscription and reads it back as stored, optional fields left out', async () => {
      const rec = web('s1', 'd1', 'u1', `https://push.example/${tag}/1`);
      assert.deepEqual(await s.push.put(rec), { subscription: rec, created: true });
      assert.deepEqual(await s.push.get(rec.id), rec);
      const apns: PushSubscriptionRecord = { id: id('s2'), userId: id('u1'), deviceId: id('d2'), kind: 'apns', address: `ab${tag}`, createdAt: T0 + 1 };
      assert.deepEqual((await s.push.put(apns)).subscription, apns);
      assert.deepEqual(await s.push.get(apns.id), apns);
      assert.equal(await s.push.get(id('nope')), undefined);
    });

    it('gives an address registered again to the device that did it, keeping the record id', async () => {
      const endpoint = `https://push.example/${tag}/moves`;
      await s.push.put(web('s1', 'd1', 'u1', endpoint));
      const again = await s.push.put({ ...web('s9', 'd3', 'u2', endpoint), p256dh: 'BNew', createdAt: T0 + 5 });
      assert.equal(again.created, false);
      assert.deepEqual(again.subscription, { ...web('s1', 'd3', 'u2', endpoint), p256dh: 'BNew', createdAt: T0 + 5 });
      assert.deepEqual(await s.push.listForUser(id('u1'), 10), [], 'the old owner has it no more');
      assert.deepEqual((await s.push.listForUser(id('u2'), 10)).map((x) => x.id), [id('s1')]);
      // The same address under another kind is another subscription.
      const fcm = await s.push.put({ id: id('s3'), userId: id('u1'), deviceId: id('d1'), kind: 'fcm', address: endpoint, createdAt: T0 });
      assert.equal(fcm.created, true);
    });

    it('lists a user’s subscriptions by id in keyset pages, counts a device’s, finds those of many users', async () => {
      await s.push.put(web('a', 'd1', 'u1', `https://p.example/${tag}/a`));
      await s.push.put(web('b', 'd2', 'u1', `https://p.example/${tag}/b`));
      await s.push.put(web('c', 'd1', 'u1', `https://p.example/${tag}/c`));
      await s.push.put(web('d', 'd3', 'u2', `https://p.example/${tag}/d`));
      const first = await s.push.listForUser(id('u1'), 2);
      assert.deepEqual(first.map((x) => x.id), [id('a'), id('b')]);
      assert.deepEqual((await s.push.listForUser(id('u1'), 2, first[1]!.id)).map((x) => x.id), [id('c')]);
      assert.equal(await s.push.countForDevice(id('d1')), 2);
      assert.equal(await s.push.countForDevice(id('d9')), 0);
      const many = await s.push.forUsers([id('u2'), id('u1'), id('nobody')]);
      assert.deepEqual(many.map((x) => x.id).sort(), [id('a'), id('b'), id('c'), id('d')].sort());
      assert.deepEqual(await s.push.forUsers([]), []);
    });

    it('removes a subscription once, and every one of a device when the device is revoked', async () => {
      await s.push.put(web('a', 'd1', 'u1', `https://p.example/${tag}/a`));
      await s.push.put(web('b', 'd1', 'u1', `https://p.example/${tag}/b`));
      await s.push.put(web('c', 'd2', 'u1', `https://p.example/${tag}/c`));
      assert.equal(await s.push.remove(id('a')), true);
      assert.equal(await s.push.remove(id('a')), false);
      await s.devices.revoke(id('d1'), T0 + 10);
      assert.equal(await s.push.get(id('b')), undefined);
      assert.equal(await s.push.countForDevice(id('d1')), 0);
      assert.deepEqual((await s.push.forUsers([id('u1')])).map((x) => x.id), [id('c')]);
    });

    it('refuses a subscription of an unknown device or user as not_found', async () => {
      await assert.rejects(s.push.put(web('x', 'd-none', 'u1', `https://p.example/${tag}/x`)), (e) => e instanceof StoreError && e.code === 'not_found');
      await assert.rejects(s.push.put(web('y', 'd1', 'u-none', `https://p.example/${tag}/y`)), (e) => e instanceof StoreError && e.code === 'not_found');
    });

    it('keeps the first value of a secret, whoever asks after, and concurrently', async () => {
      const name = `vapid-${tag}`;
      const values = await Promise.all(['one', 'two', 'three'].map((v) => s.push.ensureSecret(name, v)));
      assert.equal(new Set(values).size, 1);
      assert.equal(await s.push.ensureSecret(name, 'later'), values[0]);
    });
  });
}
