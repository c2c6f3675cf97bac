/**
 * The SDK's push calls (R12) against a real server and a loopback Web Push
 * service: the VAPID key, registering this device (again: the same one),
 * listing, a notification while the client is stopped, unregistering, and
 * the errors a caller gets.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ParleyError } from '../../src/client/index.js';
import { TestServer, signedIn, until } from './_helpers.js';
import { WebPushService } from '../helpers/push-services.js';

let server: TestServer;
let web: WebPushService;
before(async () => {
  web = await WebPushService.start();
  server = await TestServer.start({ pushCoalesceMs: 100, pushAllowPrivateEndpoints: true });
});
after(async () => {
  await server.cleanup();
  await web.close();
});

describe('push through the SDK', () => {
  test('registers this device, lists and unregisters; a stopped client is notified', async () => {
    const a = (await signedIn(server.url)).client;
    const b = (await signedIn(server.url)).client;
    try {
      await until(() => a.state === 'online' && b.state === 'online', 5000, 'both online');
      const vapid = await a.pushVapid();
      assert.match(vapid.publicKey, /^[A-Za-z0-9_-]{87}$/);
      assert.deepEqual(vapid.kinds, ['webpush']);
      const w = web.subscribe();
      const sub = await a.registerPush({ kind: 'webpush', endpoint: w.endpoint, keys: w.keys });
      assert.equal(sub.current, true);
      assert.equal(sub.endpoint, w.endpoint);
      assert.equal((await a.registerPush({ kind: 'webpush', endpoint: w.endpoint, keys: w.keys })).id, sub.id, 'the same again');
      assert.deepEqual((await a.pushSubscriptions()).map((s) => s.id), [sub.id]);

      const conv = await b.startDirect(a.user!.id);
      await until(() => !!a.conversation(conv.id), 5000, 'a sees the conversation');
      a.stop();
      await until(() => b.presenceOf(a.user!.id)?.status === 'offline', 5000, 'a is offline');
      await b.send(conv.id, 'while you were away');
      await until(() => web.for(w.name).length === 1, 5000, 'a push for a');
      assert.equal(web.for(w.name)[0]!.notification.body, 'while you were away');

      await assert.rejects(b.unregisterPush(sub.id), (e) => e instanceof ParleyError && e.code === 'not_found', "b cannot remove a's");
      await assert.rejects(b.registerPush({ kind: 'fcm', token: 'x'.repeat(40) }), (e) => e instanceof ParleyError && e.code === 'bad_request');
      await a.unregisterPush(sub.id);
      assert.deepEqual(await a.pushSubscriptions(), []);
    } finally {
      a.stop();
      b.stop();
    }
  });
});
