/**
 * Push notifications (R12) end to end: a real server, and loopback servers
 * that speak Web Push, APNs and FCM (test/helpers/push-services.ts: VAPID
 * checked, payloads decrypted with the subscription's own keys, provider JWTs
 * verified) and a signed webhook. Who is notified (offline members only, never
 * the sender, never across a block), coalescing, retries with backoff, token
 * removal, the fallback, the circuit breaker, and registration's bad input.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createECDH, randomBytes } from 'node:crypto';
import type { Config } from '../../src/config.js';
import type { PushSubscription, PushVapidInfo } from '../../src/protocol/push.js';
import { Harness } from '../helpers/server.js';
import { eventually, expectError, expectStatus, metricSum, metricValue, sleep, type TestUser } from '../helpers/http.js';
import { newRef } from '../helpers/ws-client.js';
import { ApnsService, FcmService, WebhookReceiver, WebPushService, fcmError } from '../helpers/push-services.js';

const COALESCE_MS = 150;

interface Services {
  web: WebPushService;
  apns: ApnsService;
  fcm: FcmService;
  hook: WebhookReceiver;
  dir: string;
}

async function startServices(): Promise<Services> {
  const [web, apns, fcm, hook] = await Promise.all([WebPushService.start(), ApnsService.start(), FcmService.start(), WebhookReceiver.start()]);
  const dir = await mkdtemp(join(tmpdir(), 'parley-push-keys-'));
  await writeFile(join(dir, 'apns.p8'), apns.privateKeyPem);
  await writeFile(join(dir, 'fcm.json'), fcm.serviceAccount());
  return { web, apns, fcm, hook, dir };
}

function pushConfig(s: Services, extra: Partial<Config> = {}): Partial<Config> {
  return {
    pushCoalesceMs: COALESCE_MS,
    pushRetryBaseMs: 40,
    pushMaxAttempts: 4,
    pushTimeoutMs: 2000,
    pushAllowPrivateEndpoints: true,
    apnsKeyFile: join(s.dir, 'apns.p8'),
    apnsKeyId: s.apns.keyId,
    apnsTeamId: s.apns.teamId,
    apnsTopic: s.apns.topic,
    apnsUrl: s.apns.url,
    fcmCredentialsFile: join(s.dir, 'fcm.json'),
    fcmUrl: s.fcm.url,
    pushWebhookUrl: s.hook.url,
    pushWebhookSecret: s.hook.secret,
    ...extra,
  };
}

async function stopServices(s: Services | undefined): Promise<void> {
  if (!s) return;
  await Promise.all([s.web.close(), s.apns.close(), s.fcm.close(), s.hook.close()]);
  await rm(s.dir, { recursive: true, force: true });
}

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

describe('push notifications', () => {
  let h: Harness;
  let s: Services;
  before(async () => {
    s = await startServices();
    h = await Harness.start(pushConfig(s));
  });
  after(async () => {
    await h?.close();
    await stopServices(s);
  });

  const register = (u: TestUser, body: unknown) => h.api.req<{ subscription: PushSubscription }>('POST', '/v1/push/subscriptions', { token: u.token, json: body });
  const webSub = async (u: TestUser): Promise<{ name: string; sub: PushSubscription }> => {
    const w = s.web.subscribe();
    const res = await register(u, { kind: 'webpush', endpoint: w.endpoint, keys: w.keys, expirationTime: null });
    expectStatus(res, 201, 'register webpush');
    return { name: w.name, sub: res.body.subscription };
  };
  const list = async (u: TestUser): Promise<PushSubscription[]> => {
    const res = await h.api.req<{ subscriptions: PushSubscription[]; next: string | null }>('GET', '/v1/push/subscriptions', { token: u.token });
    expectStatus(res, 200, 'list');
    return res.body.subscriptions;
  };
  /** Waits past a coalescing window and the queue's first attempt. */
  const settle = () => sleep(COALESCE_MS * 3 + 100);

  test('GET /v1/push/vapid gives the key push services see in the VAPID header, and the kinds on offer', async () => {
    const [a, b] = await h.api.users(2, 'pv');
    const res = await h.api.req<PushVapidInfo>('GET', '/v1/push/vapid', { token: a!.token });
    expectStatus(res, 200, 'vapid');
    assert.match(res.body.publicKey, /^[A-Za-z0-9_-]{87}$/);
    assert.deepEqual([...res.body.kinds].sort(), ['apns', 'fcm', 'webpush']);
    const { name } = await webSub(b!);
    const d = await h.api.direct(a!, b!);
    await h.api.send(a!, d.id, 'key check');
    assert.ok(await eventually(() => s.web.for(name).length === 1, 3000), 'delivered');
    assert.equal(s.web.for(name)[0]!.vapidKey, res.body.publicKey);
    expectError(await h.api.req('GET', '/v1/push/vapid'), 401, 'unauthorized', 'no token');
  });

  test('an offline member gets one push with the message; an online member and the sender get none', async () => {
    const [a, b, c] = await h.api.users(3, 'p1');
    const subA = await webSub(a!);
    const subB = await webSub(b!);
    const subC = await webSub(c!);
    const g = await h.api.group(a!, [b!, c!], 'Trip');
    const wsC = await h.connect(c!);
    const m = await h.api.send(a!, g.id, 'Train at   8:15\nplatform 4');
    await wsC.next('event', (f) => f.event.kind === 'message.created' && f.event.seq === m.seq);
    assert.ok(await eventually(() => s.web.for(subB.name).length === 1, 3000), 'b (offline) is notified');
    await settle();
    assert.equal(s.web.for(subB.name).length, 1, 'exactly one push');
    assert.equal(s.web.for(subC.name).length, 0, 'c has a socket open: no push');
    assert.equal(s.web.for(subA.name).length, 0, 'the sender: no push');
    const n = s.web.for(subB.name)[0]!;
    assert.deepEqual(n.notification, {
      type: 'message',
      conversationId: g.id,
      messageId: m.id,
      seq: m.seq,
      title: 'Trip',
      body: `${a!.user.displayName}: Train at 8:15 platform 4`,
      senderId: a!.id,
      senderName: a!.user.displayName,
      count: 1,
      at: m.createdAt,
    });
    assert.equal(n.headers.urgency, 'high');
    assert.equal(n.headers.topic, g.id, 'a newer notification of the conversation replaces an unfetched one');
    assert.deepEqual(s.web.problems, []);
  });

  test('a direct chat is titled with the sender; a long message is cut to a preview', async () => {
    const [a, b] = await h.api.users(2, 'p2');
    const subB = await webSub(b!);
    const d = await h.api.direct(a!, b!);
    const long = 'word '.repeat(200);
    await h.api.send(a!, d.id, long);
    assert.ok(await eventually(() => s.web.for(subB.name).length === 1, 3000), 'b is notified');
    const n = s.web.for(subB.name)[0]!.notification;
    assert.equal(n.title, a!.user.displayName);
    assert.ok(n.body && Array.from(n.body).length === 120 && n.body.endsWith('…'), n.body);
  });

  test('a member who blocks the sender, or whom the sender blocks, is not notified of their messages', async () => {
    const [a, b, c, d] = await h.api.users(4, 'p3');
    const subs = await Promise.all([b!, c!, d!].map((u) => webSub(u)));
    const subA = await webSub(a!);
    const g = await h.api.group(a!, [b!, c!, d!], 'Blocks');
    expectStatus(await h.api.req('POST', '/v1/blocks', { token: c!.token, json: { userId: a!.id } }), 201, 'c blocks a');
    expectStatus(await h.api.req('POST', '/v1/blocks', { token: a!.token, json: { userId: d!.id } }), 201, 'a blocks d');
    await h.api.send(a!, g.id, 'from a');
    assert.ok(await eventually(() => s.web.for(subs[0]!.name).length === 1, 3000), 'b is notified');
    await settle();
    assert.equal(s.web.for(subs[1]!.name).length, 0, 'c blocks a');
    assert.equal(s.web.for(subs[2]!.name).length, 0, 'a blocks d');
    // b writes too: c and d hear of b's message only, counted alone.
    await h.api.send(a!, g.id, 'a again');
    await h.api.send(b!, g.id, 'from b');
    assert.ok(await eventually(() => s.web.for(subs[1]!.name).length === 1 && s.web.for(subs[2]!.name).length === 1, 3000), 'c and d hear of b');
    for (const sub of [subs[1]!, subs[2]!]) {
      const n = s.web.for(sub.name)[0]!.notification;
      assert.equal(n.count, 1);
      assert.equal(n.senderId, b!.id);
    }
    // a sent one of the two: a hears of b's alone.
    assert.ok(await eventually(() => s.web.for(subA.name).length === 1, 3000), 'a is notified of b');
    assert.deepEqual([s.web.for(subA.name)[0]!.notification.count, s.web.for(subA.name)[0]!.notification.senderId], [1, b!.id]);
  });

  test('a burst of messages makes one push per conversation with their count and the newest as preview', async () => {
    const [a, b] = await h.api.users(2, 'p4');
    const subB = await webSub(b!);
    const d = await h.api.direct(a!, b!);
    const g = await h.api.group(a!, [b!], 'Burst');
    const ws = await h.connect(a!, 'a-ws');
    for (let i = 1; i <= 30; i++) {
      ws.send({ type: 'send', ref: newRef(), conversationId: i % 3 === 0 ? g.id : d.id, clientId: `burst-${i}`, body: `burst ${i}` });
    }
    for (let i = 0; i < 30; i++) await ws.next('ack');
    assert.ok(await eventually(() => s.web.for(subB.name).length === 2, 3000), 'two conversations, two pushes');
    await settle();
    const got = s.web.for(subB.name).map((x) => x.notification);
    assert.equal(got.length, 2);
    const direct = got.find((n) => n.conversationId === d.id)!;
    const group = got.find((n) => n.conversationId === g.id)!;
    assert.equal(direct.count, 20);
    assert.equal(direct.body, 'burst 29');
    assert.equal(group.count, 10);
    assert.equal(group.body, `${a!.user.displayName}: burst 30`);
    // After the window, a new one.
    await h.api.send(a!, d.id, 'later');
    assert.ok(await eventually(() => s.web.for(subB.name).length === 3, 3000), 'a later message makes a new push');
    assert.equal(s.web.for(subB.name)[2]!.notification.count, 1);
  });

  test('the preview shows a message as it is when the window closes: edited text, and never a deleted one', async () => {
    const [a, b, c] = await h.api.users(3, 'p4e');
    const subB = await webSub(b!);
    const subC = await webSub(c!);
    const toB = await h.api.direct(a!, b!);
    const toC = await h.api.direct(a!, c!);
    const ws = await h.connect(a!, 'a-edit');
    const first = await ws.ack({ type: 'send', conversationId: toB.id, clientId: 'e-1', body: 'meet at 9' });
    assert.ok('message' in first);
    await ws.ack({ type: 'edit', messageId: first.message.id, body: 'meet at 10' });
    const secret = await ws.ack({ type: 'send', conversationId: toC.id, clientId: 'd-1', body: 'the door code is 4711' });
    assert.ok('message' in secret);
    await ws.ack({ type: 'delete', messageId: secret.message.id });
    assert.ok(await eventually(() => s.web.for(subB.name).length === 1 && s.web.for(subC.name).length === 1, 3000), 'both notified');
    assert.equal(s.web.for(subB.name)[0]!.notification.body, 'meet at 10');
    const deleted = s.web.for(subC.name)[0]!.notification;
    assert.equal(deleted.body, undefined, `deleted text pushed: ${JSON.stringify(deleted)}`);
    assert.equal(deleted.messageId, secret.message.id);
  });

  test('retries a 5xx with exponential backoff and a 429 after its Retry-After, then delivers once', async () => {
    const [a, b] = await h.api.users(2, 'p5');
    const subB = await webSub(b!);
    const d = await h.api.direct(a!, b!);
    const before = await h.api.metrics();
    s.web.script.respond(subB.name, 500, 503, { status: 429, headers: { 'retry-after': '1' } });
    await h.api.send(a!, d.id, 'eventually');
    assert.ok(await eventually(() => s.web.for(subB.name).length === 1, 6000), 'delivered after the retries');
    const times = s.web.attempts.filter((x) => x.subscription === subB.name).map((x) => x.at);
    assert.equal(times.length, 4, 'three failures and the delivery');
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // Base 40 ms doubling, half of it jittered: [20, 40], [40, 80], then at least Retry-After's second.
    assert.ok(gaps[0]! >= 18 && gaps[0]! < 400, `first retry after ${gaps[0]} ms`);
    assert.ok(gaps[1]! >= 38 && gaps[1]! < 500, `second retry after ${gaps[1]} ms`);
    assert.ok(gaps[2]! >= 990, `the 429's Retry-After: 1 s was honoured (${gaps[2]} ms)`);
    await settle();
    assert.equal(s.web.for(subB.name).length, 1);
    const after = await h.api.metrics();
    assert.equal(metricSum(after, 'parley_push_retried_total', { provider: 'webpush' }) - metricSum(before, 'parley_push_retried_total', { provider: 'webpush' }), 3);
  });

  test('removes a subscription the provider reports gone: Web Push 410, APNs Unregistered and BadDeviceToken, FCM UNREGISTERED', async () => {
    const [a, b] = await h.api.users(2, 'p6');
    const web = await webSub(b!);
    const second = await h.api.device(b!, 'phone');
    const apnsTokens = [hex(32), hex(32)];
    for (const token of apnsTokens) expectStatus(await register(second, { kind: 'apns', token }), 201, 'apns');
    const fcmToken = `fcm_${hex(40)}:APA91b`;
    expectStatus(await register(second, { kind: 'fcm', token: fcmToken }), 201, 'fcm');
    const keep = await webSub(second);
    assert.equal((await list(b!)).length, 5);
    s.web.script.respond(web.name, 410);
    s.apns.script.respond(apnsTokens[0]!, { status: 410, body: { reason: 'Unregistered' } });
    s.apns.script.respond(apnsTokens[1]!, { status: 400, body: { reason: 'BadDeviceToken' } });
    s.fcm.script.respond(fcmToken, fcmError(404, 'NOT_FOUND', 'UNREGISTERED'));
    const before = await h.api.metrics();
    const d = await h.api.direct(a!, b!);
    await h.api.send(a!, d.id, 'who is still there?');
    assert.ok(await eventually(async () => (await list(b!)).length === 1, 4000), 'four subscriptions removed');
    assert.deepEqual((await list(b!)).map((x) => x.id), [keep.sub.id]);
    assert.equal(s.web.for(keep.name).length, 1, 'the live one got it');
    const after = await h.api.metrics();
    const removed = (p: string) => metricSum(after, 'parley_push_tokens_removed_total', { provider: p }) - metricSum(before, 'parley_push_tokens_removed_total', { provider: p });
    assert.deepEqual([removed('webpush'), removed('apns'), removed('fcm')], [1, 2, 1]);
    // One delivered: no fallback for b.
    await settle();
    assert.equal(s.hook.items.filter((x) => x.userId === b!.id).length, 0);
  });

  test('APNs gets a provider JWT, the topic, and an alert; FCM a message after the OAuth exchange', async () => {
    const [a, b] = await h.api.users(2, 'p7');
    const phone = await h.api.device(b!, 'iphone');
    const apnsToken = hex(32);
    const res = await register(phone, { kind: 'apns', token: apnsToken.toUpperCase() });
    expectStatus(res, 201, 'apns');
    assert.equal(res.body.subscription.token, apnsToken, 'stored lower-case');
    const android = await h.api.device(b!, 'pixel');
    const fcmToken = `d${hex(30)}:APA91bH-${hex(20)}`;
    expectStatus(await register(android, { kind: 'fcm', token: fcmToken }), 201, 'fcm');
    const g = await h.api.group(a!, [b!], 'Native');
    const m = await h.api.send(a!, g.id, 'hello phones');
    assert.ok(await eventually(() => s.apns.for(apnsToken).length === 1 && s.fcm.for(fcmToken).length === 1, 3000), 'both phones notified');
    const ap = s.apns.for(apnsToken)[0]!;
    assert.deepEqual(ap.payload.aps.alert, { title: 'Native', body: `${a!.user.displayName}: hello phones` });
    assert.equal(ap.payload.aps['thread-id'], g.id);
    assert.equal(ap.payload.parley.messageId, m.id);
    assert.equal(ap.headers['apns-collapse-id'], g.id);
    const fm = s.fcm.for(fcmToken)[0]!.message;
    assert.deepEqual(fm.notification, { title: 'Native', body: `${a!.user.displayName}: hello phones` });
    assert.equal((JSON.parse(fm.data.parley) as { seq: number }).seq, m.seq);
    assert.equal(fm.android.collapse_key, g.id);
    assert.deepEqual([...s.apns.problems, ...s.fcm.problems], []);
    // An access token the provider no longer honours is exchanged again.
    const exchanges = s.fcm.tokenExchanges;
    s.fcm.revokeAccessTokens();
    await sleep(COALESCE_MS + 50);
    await h.api.send(a!, g.id, 'again');
    assert.ok(await eventually(() => s.fcm.for(fcmToken).length === 2, 3000), 'delivered after a 401 and a new exchange');
    assert.equal(s.fcm.tokenExchanges, exchanges + 1);
  });

  test('falls back to the signed webhook for a member with no subscription, and for one whose every push failed', async () => {
    const [a, b, c] = await h.api.users(3, 'p8');
    const subC = await webSub(c!);
    s.web.script.respond(subC.name, 400);
    const g = await h.api.group(a!, [b!, c!], 'Fallback');
    const m = await h.api.send(a!, g.id, 'anyone?');
    assert.ok(await eventually(() => s.hook.items.filter((x) => x.notification.conversationId === g.id).length === 2, 3000), 'two fallback items');
    const items = s.hook.items.filter((x) => x.notification.conversationId === g.id);
    assert.deepEqual(
      items.map((x) => [x.userId, x.reason]).sort(),
      [
        [b!.id, 'no_subscription'],
        [c!.id, 'push_failed'],
      ].sort(),
    );
    assert.equal(items[0]!.notification.messageId, m.id);
    assert.deepEqual(s.hook.problems, []);
  });

  test('a webhook batch that fails is retried with the same delivery id', async () => {
    const [a, b] = await h.api.users(2, 'p9');
    s.hook.script.respond('*', 503);
    const d = await h.api.direct(a!, b!);
    await h.api.send(a!, d.id, 'retry the hook');
    assert.ok(await eventually(() => s.hook.items.some((x) => x.userId === b!.id), 3000), 'the batch came through after the 503');
    const batch = s.hook.batches.find((x) => x.notifications.some((n) => n.userId === b!.id))!;
    assert.equal(batch.delivery, batch.id);
    const tries = s.hook.attempts.filter((x) => x.delivery === batch.id).map((x) => x.status);
    assert.deepEqual(tries, [503, 204], 'the refused attempt and its retry carried the same delivery id');
  });

  test('subscriptions: listed for their owner only, removed by id, gone with the session, taken over by another account', async () => {
    const [a, b] = await h.api.users(2, 'p10');
    const laptop = await webSub(a!);
    const phone = await h.api.device(a!, 'phone');
    const phoneSub = await webSub(phone);
    const mine = await list(a!);
    assert.deepEqual(mine.map((x) => [x.id, x.current, x.deviceId]).sort(), [
      [laptop.sub.id, true, a!.deviceId],
      [phoneSub.sub.id, false, phone.deviceId],
    ].sort());
    assert.deepEqual(await list(b!), []);
    expectError(await h.api.req('DELETE', `/v1/push/subscriptions/${laptop.sub.id}`, { token: b!.token }), 404, 'not_found', "another user's");
    expectError(await h.api.req('DELETE', '/v1/push/subscriptions/nope', { token: a!.token }), 404, 'not_found', 'unknown');
    expectStatus(await h.api.req('DELETE', `/v1/push/subscriptions/${laptop.sub.id}`, { token: phone.token }), 204, 'any device of the owner');
    expectError(await h.api.req('DELETE', `/v1/push/subscriptions/${laptop.sub.id}`, { token: a!.token }), 404, 'not_found', 'twice');
    // Logging out takes the device's subscriptions with it.
    expectStatus(await h.api.req('POST', '/v1/auth/logout', { token: phone.token }), 204, 'logout');
    assert.deepEqual(await list(a!), []);
    // A revoked session too.
    const tablet = await h.api.device(a!, 'tablet');
    await webSub(tablet);
    expectStatus(await h.api.req('DELETE', `/v1/sessions/${tablet.deviceId}`, { token: a!.token }), 204, 'revoke');
    assert.deepEqual(await list(a!), []);
    // The same endpoint registered by another account (a shared browser) is theirs now; same endpoint again is 200.
    const w = s.web.subscribe();
    const body = { kind: 'webpush', endpoint: w.endpoint, keys: w.keys };
    expectStatus(await register(a!, body), 201, 'a');
    const again = await register(a!, body);
    expectStatus(again, 200, 'a again');
    const moved = await register(b!, body);
    expectStatus(moved, 200, 'b takes it');
    assert.equal(moved.body.subscription.id, again.body.subscription.id);
    assert.deepEqual(await list(a!), []);
    assert.equal((await list(b!)).length, 1);
    // Paging.
    for (let i = 0; i < 3; i++) await webSub(b!);
    const p1 = await h.api.req<{ subscriptions: PushSubscription[]; next: string | null }>('GET', '/v1/push/subscriptions?limit=3', { token: b!.token });
    expectStatus(p1, 200, 'page 1');
    assert.equal(p1.body.subscriptions.length, 3);
    assert.ok(p1.body.next, 'a next cursor');
    const p2 = await h.api.req<{ subscriptions: PushSubscription[]; next: string | null }>('GET', `/v1/push/subscriptions?limit=3&after=${p1.body.next}`, { token: b!.token });
    assert.deepEqual([p2.body.subscriptions.length, p2.body.next], [1, null]);
  });

  test('refuses malformed registrations with a sentence that names the problem', async () => {
    const [u] = await h.api.users(1, 'p11');
    const w = s.web.subscribe();
    const ecdh = w.keys.p256dh;
    const cases: [unknown, RegExp][] = [
      [{ kind: 'email', endpoint: 'x' }, /kind/],
      [{ kind: 'webpush', endpoint: w.endpoint }, /keys/],
      [{ kind: 'webpush', endpoint: 'not a url', keys: w.keys }, /absolute URL/],
      [{ kind: 'webpush', endpoint: 'ftp://push.example/x', keys: w.keys }, /https/],
      [{ kind: 'webpush', endpoint: 'https://user:pw@push.example/x', keys: w.keys }, /user name/],
      [{ kind: 'webpush', endpoint: w.endpoint, keys: { p256dh: ecdh.slice(0, 40), auth: w.keys.auth } }, /65 bytes/],
      [{ kind: 'webpush', endpoint: w.endpoint, keys: { p256dh: Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 7)]).toString('base64url'), auth: w.keys.auth } }, /P-256 curve/],
      [{ kind: 'webpush', endpoint: w.endpoint, keys: { p256dh: ecdh, auth: randomBytes(15).toString('base64url') } }, /16-byte/],
      [{ kind: 'webpush', endpoint: w.endpoint, keys: { p256dh: 'a+b/c', auth: w.keys.auth } }, /65 bytes/],
      [{ kind: 'webpush', endpoint: `https://push.example/${'x'.repeat(2100)}`, keys: w.keys }, /endpoint/],
      [{ kind: 'apns', token: 'not-hex' }, /hexadecimal/],
      [{ kind: 'apns', token: hex(31) + 'f' }, /even number/],
      [{ kind: 'apns', token: hex(32), topic: 'bad topic!' }, /bundle id/],
      [{ kind: 'fcm', token: 'short' }, /32 or more/],
      [{ kind: 'fcm', token: 'x'.repeat(40) + ' y' }, /A-Z a-z/],
      [{ kind: 'fcm' }, /token/],
      ['[]', /body|Expected/],
    ];
    for (const [body, message] of cases) {
      const res = typeof body === 'string' ? await h.api.req('POST', '/v1/push/subscriptions', { token: u!.token, raw: body }) : await register(u!, body);
      expectError(res, 400, 'bad_request', JSON.stringify(body).slice(0, 80));
      assert.match((res.body as { error: { message: string } }).error.message, message, JSON.stringify(body).slice(0, 80));
    }
    expectError(await h.api.req('POST', '/v1/push/subscriptions', { json: { kind: 'fcm', token: 'x'.repeat(40) } }), 401, 'unauthorized', 'no token');
    assert.deepEqual(await list(u!), []);
    // Ten per device, then conflict; the eleventh from another device is fine.
    for (let i = 0; i < 10; i++) await webSub(u!);
    expectError(await register(u!, { kind: 'fcm', token: 'x'.repeat(40) }), 409, 'conflict', 'eleventh');
    const other = await h.api.device(u!, 'other');
    expectStatus(await register(other, { kind: 'fcm', token: 'x'.repeat(40) }), 201, 'another device');
  });
});

describe('push notifications when a provider is down', () => {
  let h: Harness;
  let s: Services;
  before(async () => {
    s = await startServices();
    h = await Harness.start(pushConfig(s, { pushTimeoutMs: 400, pushBreakerFailures: 3, pushBreakerMs: 1500, pushMaxAttempts: 3, pushRetryBaseMs: 100 }));
  });
  after(async () => {
    await h?.close();
    await stopServices(s);
  });

  test('sends still ack at once and messages arrive; the breaker opens, the fallback is told, and it closes when the provider is back', async () => {
    const users = await h.api.users(12, 'pd');
    const [a, online] = users as [TestUser, TestUser];
    const offline = users.slice(2);
    const subs: string[] = [];
    for (const u of offline) {
      const w = s.web.subscribe();
      expectStatus(await h.api.req('POST', '/v1/push/subscriptions', { token: u.token, json: { kind: 'webpush', ...w } }), 201, 'sub');
      subs.push(w.name);
    }
    const convs: { id: string }[] = [];
    for (const u of offline) convs.push(await h.api.group(a, [u, online], `down ${u.username}`));
    const wsOnline = await h.connect(online, 'online');
    const ws = await h.connect(a, 'sender');
    // Baseline ack times with the provider up.
    const ackTimes = async (tag: string, n: number): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const ref = newRef();
        const t0 = performance.now();
        ws.send({ type: 'send', ref, conversationId: convs[i % convs.length]!.id, clientId: `${tag}-${i}`, body: `${tag} ${i}` });
        await ws.next('ack', (f) => f.ref === ref);
        out.push(performance.now() - t0);
        await sleep(5);
      }
      return out;
    };
    s.web.script.hang = true;
    const before = await h.api.metrics();
    const down = await ackTimes('down', 60);
    // Every message reached the member who is online.
    for (let i = 0; i < 60; i++) await wsOnline.next('event', (f) => f.event.kind === 'message.created' && f.event.actorId === a.id);
    const p = (xs: number[], q: number) => [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
    // A push waits up to 400 ms for this provider: an ack that waited for it would show it.
    assert.ok(p(down, 0.5) < 25 && p(down, 1) < 300, `acks while the provider hangs: p50 ${p(down, 0.5).toFixed(1)} ms, max ${p(down, 1).toFixed(1)} ms`);
    assert.ok(await eventually(async () => metricValue(await h.api.metrics(), 'parley_push_breaker_open', { provider: 'webpush' }) === 1, 5000), 'the breaker opened');
    // Every offline member ends up in the fallback as push_failed, within the bounded attempts.
    assert.ok(
      await eventually(() => offline.every((u) => s.hook.items.some((x) => x.userId === u.id && x.reason === 'push_failed')), 8000),
      `fallback for all: ${s.hook.items.length}`,
    );
    const mid = await h.api.metrics();
    const hits = s.web.attempts.length;
    assert.ok(
      metricSum(mid, 'parley_push_failed_total', { provider: 'webpush', reason: 'exhausted' }) - metricSum(before, 'parley_push_failed_total', { provider: 'webpush', reason: 'exhausted' }) >=
        offline.length,
      'every push exhausted its attempts',
    );
    // While the breaker is open, new notifications do not reach the provider: at most a probe does.
    const reached = s.web.requests;
    for (const c of convs) await h.api.send(a, c.id, 'while open');
    await sleep(1000);
    assert.ok(s.web.requests - reached <= 2, `${s.web.requests - reached} requests reached the provider while its breaker was open (10 notifications)`);
    // Back up: after the cooldown a probe goes through and the breaker closes.
    s.web.release();
    await sleep(1600);
    const up = await ackTimes('up', 10);
    assert.ok(await eventually(async () => metricValue(await h.api.metrics(), 'parley_push_breaker_open', { provider: 'webpush' }) === 0, 5000), 'the breaker closed');
    assert.ok(await eventually(() => s.web.deliveries.length > 0, 5000), 'pushes go out again');
    assert.ok(s.web.attempts.length >= hits, 'attempts only grow');
    console.log(`# ack p50/p99 with the provider hanging: ${p(down, 0.5).toFixed(2)}/${p(down, 0.99).toFixed(2)} ms; after: ${p(up, 0.5).toFixed(2)}/${p(up, 0.99).toFixed(2)} ms`);
  });
});

describe('push registration on a server with Web Push only, in production settings', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ pushCoalesceMs: COALESCE_MS });
  });
  after(async () => {
    await h?.close();
  });

  test('refuses kinds not configured, and endpoints that are not public https URLs', async () => {
    const [u] = await h.api.users(1, 'pp');
    const vapid = await h.api.req<PushVapidInfo>('GET', '/v1/push/vapid', { token: u!.token });
    assert.deepEqual(vapid.body.kinds, ['webpush']);
    const keys = freshKeys();
    for (const [body, message] of [
      [{ kind: 'apns', token: hex(32) }, /does not deliver APNs/],
      [{ kind: 'fcm', token: 'x'.repeat(40) }, /does not deliver FCM/],
      [{ kind: 'webpush', endpoint: 'http://push.example.com/x', keys }, /https/],
      [{ kind: 'webpush', endpoint: 'https://127.0.0.1/x', keys }, /public push service/],
      [{ kind: 'webpush', endpoint: 'https://localhost:8443/x', keys }, /public push service/],
      [{ kind: 'webpush', endpoint: 'https://10.1.2.3/x', keys }, /public push service/],
      [{ kind: 'webpush', endpoint: 'https://[::1]/x', keys }, /public push service/],
      [{ kind: 'webpush', endpoint: 'https://169.254.169.254/latest', keys }, /public push service/],
    ] as const) {
      const res = await h.api.req('POST', '/v1/push/subscriptions', { token: u!.token, json: body });
      expectError(res, 400, 'bad_request', JSON.stringify(body));
      assert.match((res.body as { error: { message: string } }).error.message, message);
    }
    const ok = await h.api.req('POST', '/v1/push/subscriptions', { token: u!.token, json: { kind: 'webpush', endpoint: 'https://fcm.googleapis.com/fcm/send/abc', keys } });
    expectStatus(ok, 201, 'a public https push service');
  });

  test('keeps its VAPID key across a restart', async () => {
    const [u] = await h.api.users(1, 'pk');
    const first = (await h.api.req<PushVapidInfo>('GET', '/v1/push/vapid', { token: u!.token })).body.publicKey;
    await h.restart();
    const second = (await h.api.req<PushVapidInfo>('GET', '/v1/push/vapid', { token: u!.token })).body.publicKey;
    assert.equal(second, first);
  });
});

/** Valid subscription keys, for registrations that fail elsewhere. */
function freshKeys(): { p256dh: string; auth: string } {
  const e = createECDH('prime256v1');
  e.generateKeys();
  return { p256dh: e.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') };
}
