/**
 * Push notifications (R12) on the cluster engines: two nodes in this process
 * on the machine's PostgreSQL (a throwaway schema) and Redis (a throwaway
 * prefix). Both sign with one VAPID pair (the first node's, from the store);
 * "no device online" is the cluster's answer (Redis presence), not the node's;
 * subscriptions registered on one node are used by the other and go with a
 * logout made on either.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { PushSubscription, PushVapidInfo } from '../../src/protocol/push.js';
import { Harness } from '../helpers/server.js';
import { Api, eventually, expectStatus, sleep } from '../helpers/http.js';
import { POSTGRES_URL, REDIS_URL, postgresMissing, redisMissing } from '../helpers/services.js';
import { deleteRedisPrefix, dropSchema } from '../helpers/cluster.js';
import { WebPushService } from '../helpers/push-services.js';

const skip = (await postgresMissing()) ?? (await redisMissing());

describe('push notifications across cluster nodes', { skip }, () => {
  const tag = randomBytes(4).toString('hex');
  const schema = `parley_test_push_${tag}`;
  const prefix = `parley-test-push-${tag}:`;
  let n1: Harness;
  let n2: Harness;
  let web: WebPushService;

  before(async () => {
    web = await WebPushService.start();
    const shared = {
      databaseUrl: POSTGRES_URL,
      databaseSchema: schema,
      redisUrl: REDIS_URL,
      redisPrefix: prefix,
      jwtSecret: randomBytes(32).toString('base64url'),
      pushCoalesceMs: 100,
      pushAllowPrivateEndpoints: true,
    };
    // Started together: both race to store the VAPID pair.
    [n1, n2] = await Promise.all([Harness.start({ ...shared, nodeId: 'push1' }), Harness.start({ ...shared, nodeId: 'push2' })]);
  });
  after(async () => {
    await n1?.close();
    await n2?.close();
    await web?.close();
    await dropSchema(POSTGRES_URL, schema).catch(() => undefined);
    await deleteRedisPrefix(REDIS_URL, prefix).catch(() => undefined);
  });

  test('one VAPID key; no push while a device is online on the other node; a push once it is gone; logout on either node removes it', async () => {
    const api2 = new Api(n2.url);
    const [a, b] = await n1.api.users(2, 'pc');
    const keys = await Promise.all([n1, n2].map(async (n) => (await n.api.req<PushVapidInfo>('GET', '/v1/push/vapid', { token: a!.token })).body.publicKey));
    assert.equal(keys[0], keys[1], 'both nodes give the same VAPID key');

    const w = web.subscribe();
    const reg = await api2.req<{ subscription: PushSubscription }>('POST', '/v1/push/subscriptions', { token: b!.token, json: { kind: 'webpush', ...w } });
    expectStatus(reg, 201, 'register on node 2');
    const d = await n1.api.direct(a!, b!);

    const wsB = await n2.connect(b!, 'b-on-node-2');
    await n1.api.send(a!, d.id, 'while b is online elsewhere');
    await wsB.next('event', (f) => f.event.kind === 'message.created');
    await sleep(500);
    assert.equal(web.for(w.name).length, 0, 'b has a socket on node 2: node 1 sends no push');

    await wsB.close();
    assert.ok(await eventually(async () => (await n1.api.req<{ users: { status: string }[] }>('GET', `/v1/presence?userIds=${b!.id}`, { token: a!.token })).text.includes('offline'), 3000), 'b is offline');
    const m = await n1.api.send(a!, d.id, 'now b is away');
    assert.ok(await eventually(() => web.for(w.name).length === 1, 3000), 'b is notified through node 1');
    assert.equal(web.for(w.name)[0]!.notification.messageId, m.id);
    assert.equal(web.for(w.name)[0]!.vapidKey, keys[0]);

    expectStatus(await n1.api.req('POST', '/v1/auth/logout', { token: b!.token }), 204, 'logout on node 1');
    const b2 = await n1.api.device(b!, 'again');
    const list = await api2.req<{ subscriptions: PushSubscription[] }>('GET', '/v1/push/subscriptions', { token: b2.token });
    assert.deepEqual(list.body.subscriptions, [], 'gone with the session');
  });
});
