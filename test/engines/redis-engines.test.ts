/**
 * The Redis engines of the Bus, Presence, Limiter and Registry ports: the
 * shared port suites against the machine's Redis (each test under a random
 * key prefix, deleted after it), what only several nodes on one Redis can
 * show, and faults (kill -9, SIGSTOP) on a private redis-server this file
 * starts and stops by PID. The shared Redis is never flushed or restarted.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { Redis } from 'ioredis';
import { RedisBus, RedisLimiter, RedisPresence, RedisRegistry, openRedisEngines } from '../../src/engines/redis/index.js';
import { decodeBusMessage, encodeBusMessage } from '../../src/engines/redis/codec.js';
import { BROADCAST, convTopic, userTopic, type BusMessage } from '../../src/core/ports/bus.js';
import type { NodeInfo } from '../../src/core/ports/registry.js';
import { busSuite } from '../ports/bus.suite.js';
import { presenceSuite } from '../ports/presence.suite.js';
import { limiterSuite } from '../ports/limiter.suite.js';
import { registrySuite } from '../ports/registry.suite.js';
import { REDIS_URL, redisMissing } from '../helpers/services.js';

const skip = await redisMissing();

/** Every key and channel of this run starts with it; each open gets a prefix of its own below it. */
const RUN = `parley-test:${randomBytes(6).toString('hex')}:`;
let opened = 0;
const freshPrefix = (): string => `${RUN}${++opened}:`;

let adminClient: Redis | undefined;
const admin = (): Redis => (adminClient ??= new Redis(REDIS_URL, { maxRetriesPerRequest: 1 }));

/** Deletes the keys under `prefix` (SCAN + DEL: never FLUSHALL a shared Redis). */
async function dropPrefix(prefix: string, client = admin()): Promise<void> {
  let cursor = '0';
  for (let round = 0; round < 10_000; round++) {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length > 0) await client.del(...keys);
    cursor = next;
    if (cursor === '0') return;
  }
  throw new Error(`scan of ${prefix}* did not finish`);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, done: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<number> {
  const start = Date.now();
  while (!(await done())) {
    if (Date.now() - start > timeoutMs) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
  return Date.now() - start;
}

/** Milliseconds until `promise` rejects; fails if it resolves. */
async function rejectsWithin(promise: Promise<unknown>): Promise<number> {
  const start = Date.now();
  await assert.rejects(promise);
  return Date.now() - start;
}

/**
 * One object whose methods go to the given instances in turn, so a port suite
 * written for one instance checks that several nodes on one Redis act as one.
 */
function alternating<T extends object>(instances: T[]): T {
  let next = 0;
  return new Proxy(instances[0]!, {
    get(_target, property) {
      if (property === 'close') {
        return async () => {
          for (const instance of instances) await (instance as { close(): Promise<void> }).close();
        };
      }
      const sample: unknown = Reflect.get(instances[0]!, property);
      if (typeof sample !== 'function') return sample;
      const instance = instances[next++ % instances.length]!;
      return (Reflect.get(instance, property) as (...args: unknown[]) => unknown).bind(instance);
    },
  });
}

const prefixOf = new WeakMap<object, string>();

/** Opens `count` instances of an engine on one fresh prefix, remembered for dispose. */
async function openOn<T extends object>(count: number, openOne: (prefix: string) => Promise<T>): Promise<T> {
  const prefix = freshPrefix();
  const instances: T[] = [];
  for (let i = 0; i < count; i++) instances.push(await openOne(prefix));
  const engine = count === 1 ? instances[0]! : alternating(instances);
  prefixOf.set(engine, prefix);
  return engine;
}

async function disposeOf(engine: { close(): Promise<void> }): Promise<void> {
  await engine.close();
  const prefix = prefixOf.get(engine);
  if (prefix) await dropPrefix(prefix);
}

const quiet = { onHandlerError: () => {} };

describe('Redis engines', { skip }, () => {
  after(async () => {
    if (!adminClient) return;
    await dropPrefix(RUN);
    adminClient.disconnect();
  });

  busSuite(
    'redis, two nodes',
    async () => {
      const prefix = freshPrefix();
      return { nodes: [await RedisBus.open({ url: REDIS_URL, prefix, ...quiet }), await RedisBus.open({ url: REDIS_URL, prefix, ...quiet })] };
    },
    async ({ nodes }) => {
      for (const node of nodes) await node.close();
    },
  );

  busSuite(
    'redis, two nodes, publishes batched per event-loop turn',
    async () => {
      const prefix = freshPrefix();
      const open = (): Promise<RedisBus> => RedisBus.open({ url: REDIS_URL, prefix, publishBatching: 'turn', ...quiet });
      return { nodes: [await open(), await open()] };
    },
    async ({ nodes }) => {
      for (const node of nodes) await node.close();
    },
  );

  busSuite(
    'redis, three nodes',
    async () => {
      const prefix = freshPrefix();
      const nodes = [];
      for (let i = 0; i < 3; i++) nodes.push(await RedisBus.open({ url: REDIS_URL, prefix, ...quiet }));
      return { nodes };
    },
    async ({ nodes }) => {
      for (const node of nodes) await node.close();
    },
  );

  presenceSuite('redis', () => openOn(1, (prefix) => RedisPresence.open({ url: REDIS_URL, prefix })), disposeOf);
  presenceSuite('redis, calls alternating over two nodes', () => openOn(2, (prefix) => RedisPresence.open({ url: REDIS_URL, prefix })), disposeOf);

  limiterSuite('redis', () => openOn(1, (prefix) => RedisLimiter.open({ url: REDIS_URL, prefix })), disposeOf);
  limiterSuite('redis, takes alternating over three nodes', () => openOn(3, (prefix) => RedisLimiter.open({ url: REDIS_URL, prefix })), disposeOf);

  registrySuite('redis', () => openOn(1, (prefix) => RedisRegistry.open({ url: REDIS_URL, prefix })), disposeOf);
  registrySuite('redis, calls alternating over two nodes', () => openOn(2, (prefix) => RedisRegistry.open({ url: REDIS_URL, prefix })), disposeOf);

  describe('RedisBus', () => {
    it('encodes a frame raw after the head, and decodes every kind of message as it was', () => {
      const event = {
        id: 'e1', conversationId: 'c1', seq: 7, kind: 'message.created', userId: 'u1', at: 1, data: { body: 'a "quoted"\nline' },
      } as unknown as Extract<BusMessage, { t: 'event' }>['event'];
      const messages: BusMessage[] = [
        { t: 'event', event, frame: JSON.stringify({ type: 'event', event }) },
        { t: 'ephemeral', conversationId: 'c1', skipUserId: 'u1', frame: 'raw\nnewline {"a":1}' },
        { t: 'presence', conversationId: 'c1', userId: 'u1', status: 'away', lastActiveAt: 5, frame: '{}' },
        { t: 'conversation', userId: 'u1', conversation: { id: 'c1' } as unknown as Extract<BusMessage, { t: 'conversation' }>['conversation'] },
        { t: 'revoke', userId: 'u1', deviceId: 'd1' },
        { t: 'membership', conversationId: 'c1' },
      ];
      for (const message of messages) assert.deepEqual(decodeBusMessage(encodeBusMessage(message)), message);
      const frame = '{"type":"typing","text":"say \\"hi\\""}';
      assert.ok(encodeBusMessage({ t: 'ephemeral', conversationId: 'c1', frame }).endsWith(`\n${frame}`), 'the frame is not escaped again');
      assert.throws(() => decodeBusMessage('[1,2]'), SyntaxError);
      assert.throws(() => decodeBusMessage('not json'), SyntaxError);
    });

    it('holds one Redis subscription per topic and node, and none once unsubscribed or closed', async () => {
      const prefix = freshPrefix();
      const [a, b] = [await RedisBus.open({ url: REDIS_URL, prefix }), await RedisBus.open({ url: REDIS_URL, prefix })];
      const numsub = async (topic: string): Promise<number> => Number(((await admin().pubsub('NUMSUB', prefix + topic)) as [string, number])[1]);
      for (let i = 0; i < 50; i++) await a.subscribe(convTopic(`c${i}`));
      await a.subscribe(convTopic('c0'));
      await b.subscribe(convTopic('c0'));
      assert.equal(a.topicCount, 50);
      assert.equal(await numsub(convTopic('c0')), 2);
      assert.equal(await numsub(convTopic('c49')), 1);
      for (let i = 0; i < 50; i++) await a.unsubscribe(convTopic(`c${i}`));
      assert.equal(a.topicCount, 0);
      assert.equal(await numsub(convTopic('c0')), 1);
      assert.equal(await numsub(convTopic('c49')), 0);
      await b.close();
      await waitFor('the closed node to leave the channel', async () => (await numsub(convTopic('c0'))) === 0);
      await a.close();
    });

    it('reports a foreign payload on its channel and goes on delivering', async () => {
      const prefix = freshPrefix();
      const errors: { error: unknown; topic: string }[] = [];
      const bus = await RedisBus.open({ url: REDIS_URL, prefix, onHandlerError: (error, topic) => errors.push({ error, topic }) });
      const got: BusMessage[] = [];
      bus.onMessage((_topic, message) => got.push(message));
      await bus.subscribe(BROADCAST);
      await admin().publish(prefix + BROADCAST, 'garbage');
      await bus.publish(BROADCAST, { t: 'membership', conversationId: 'c1' });
      await waitFor('the message after the garbage', () => got.length === 1);
      assert.deepEqual(got, [{ t: 'membership', conversationId: 'c1' }]);
      assert.equal(errors.length, 1);
      assert.equal(errors[0]?.topic, BROADCAST);
      assert.ok(errors[0]?.error instanceof SyntaxError);
      await bus.close();
    });

    it('keeps prefixes apart: a node hears nothing published under another prefix', async () => {
      const [mine, theirs] = [freshPrefix(), freshPrefix()];
      const a = await RedisBus.open({ url: REDIS_URL, prefix: mine });
      const b = await RedisBus.open({ url: REDIS_URL, prefix: theirs });
      const got: string[] = [];
      a.onMessage((topic) => got.push(`a ${topic}`));
      b.onMessage((topic) => got.push(`b ${topic}`));
      await a.subscribe(BROADCAST);
      await b.subscribe(BROADCAST);
      await a.publish(BROADCAST, { t: 'membership', conversationId: 'c1' });
      await b.publish(BROADCAST, { t: 'membership', conversationId: 'c2' });
      await waitFor('both', () => got.length >= 2);
      await sleep(50);
      assert.deepEqual(got.sort(), ['a all', 'b all']);
      await a.close();
      await b.close();
    });

    it('refuses to publish or subscribe once closed, and reports itself unhealthy', async () => {
      const bus = await RedisBus.open({ url: REDIS_URL, prefix: freshPrefix() });
      assert.equal(bus.healthy(), true);
      await bus.close();
      assert.equal(bus.healthy(), false);
      await assert.rejects(bus.publish('t', { t: 'membership', conversationId: 'c1' }), /closed/);
      await assert.rejects(bus.subscribe('t'), /closed/);
      await bus.close();
    });

    it('rejects open when nothing answers, within its timeout, and leaves nothing running', async () => {
      const port = await freePort();
      const start = Date.now();
      await assert.rejects(RedisBus.open({ url: `redis://127.0.0.1:${port}`, prefix: freshPrefix(), openTimeoutMs: 300 }), /not ready within 300 ms/);
      assert.ok(Date.now() - start < 1500);
    });
  });

  describe('RedisPresence across nodes', () => {
    const T0 = 1_700_000_000_000;
    const TTL = 60_000;

    it('keeps a user with connections on two nodes online until both go, reporting each change once', async () => {
      const prefix = freshPrefix();
      const [a, b] = [await RedisPresence.open({ url: REDIS_URL, prefix }), await RedisPresence.open({ url: REDIS_URL, prefix })];
      assert.deepEqual(await a.connect('u1', 'on-a', T0, TTL), { userId: 'u1', status: 'online', lastActiveAt: T0 });
      assert.equal(await b.connect('u1', 'on-b', T0 + 1, TTL), undefined);
      assert.equal(await a.disconnect('u1', 'on-a', T0 + 2), undefined);
      assert.deepEqual(await b.get(['u1']), [{ userId: 'u1', status: 'online', lastActiveAt: T0 + 2 }]);
      assert.deepEqual(await a.setStatus('u1', 'busy', T0 + 3), { userId: 'u1', status: 'busy', lastActiveAt: T0 + 3 });
      assert.deepEqual(await b.disconnect('u1', 'on-b', T0 + 4), { userId: 'u1', status: 'offline', lastActiveAt: T0 + 4 });
      assert.deepEqual(await a.get(['u1']), [{ userId: 'u1', status: 'offline', lastActiveAt: T0 + 4 }]);
      await a.close();
      await b.close();
      await dropPrefix(prefix);
    });

    it('reports each user online once when their devices connect on two nodes at the same moment', async () => {
      const prefix = freshPrefix();
      const [a, b] = [await RedisPresence.open({ url: REDIS_URL, prefix }), await RedisPresence.open({ url: REDIS_URL, prefix })];
      const users = Array.from({ length: 200 }, (_, i) => `u${i}`);
      const changes = await Promise.all(users.flatMap((u) => [a.connect(u, `${u}-a`, T0, TTL), b.connect(u, `${u}-b`, T0, TTL)]));
      const reported = changes.filter((c) => c !== undefined).map((c) => c.userId).sort();
      assert.deepEqual(reported, [...users].sort());
      await a.close();
      await b.close();
      await dropPrefix(prefix);
    });

    it('reports each lapse once when two nodes sweep at the same time', async () => {
      const prefix = freshPrefix();
      const [a, b] = [await RedisPresence.open({ url: REDIS_URL, prefix }), await RedisPresence.open({ url: REDIS_URL, prefix })];
      const users = Array.from({ length: 1200 }, (_, i) => `u${i}`);
      for (const u of users) await (u.endsWith('7') ? b : a).connect(u, `${u}-c`, T0, u.endsWith('0') ? TTL * 2 : TTL);
      const [fromA, fromB] = await Promise.all([a.sweep(T0 + TTL), b.sweep(T0 + TTL)]);
      const lapsed = [...fromA, ...fromB].map((c) => c.userId).sort();
      assert.deepEqual(lapsed, users.filter((u) => !u.endsWith('0')).sort(), 'each once, more than one sweep batch');
      assert.ok([...fromA, ...fromB].every((c) => c.status === 'offline' && c.lastActiveAt === T0));
      assert.deepEqual(await a.sweep(T0 + TTL + 1), []);
      assert.equal((await b.sweep(T0 + TTL * 2)).length, 120);
      await a.close();
      await b.close();
      await dropPrefix(prefix);
    });

    it('leaves no index entry for users without connections, and sets an expiry on every key it writes', async () => {
      const prefix = freshPrefix();
      const p = await RedisPresence.open({ url: REDIS_URL, prefix, retainMs: 3_600_000 });
      for (let i = 0; i < 40; i++) await p.connect(`u${i}`, 'c', T0, TTL);
      for (let i = 0; i < 40; i++) await p.disconnect(`u${i}`, 'c', T0 + 1);
      await p.setStatus('offline-user', 'busy', T0);
      const keys = await allKeys(prefix);
      assert.ok(keys.some((k) => k.includes(':u:u1')), 'user records are kept for lastActiveAt');
      assert.ok(!keys.some((k) => k.includes(':c:') || k.endsWith(':due')), `no connection sets or due entries left: ${keys.filter((k) => !k.includes(':u:')).join(', ')}`);
      for (const key of keys) {
        const pttl = await admin().pttl(key);
        assert.ok(pttl > 3_500_000 && pttl <= 3_600_000, `${key} expires in ${pttl} ms`);
      }
      await p.close();
      await dropPrefix(prefix);
    });
  });

  describe('RedisLimiter across nodes', () => {
    it('holds the total of a bucket shared by three nodes taking at once', async () => {
      const prefix = freshPrefix();
      const nodes = [await RedisLimiter.open({ url: REDIS_URL, prefix }), await RedisLimiter.open({ url: REDIS_URL, prefix }), await RedisLimiter.open({ url: REDIS_URL, prefix })];
      const rule = { ratePerSec: 1, burst: 10 };
      const now = 1_700_000_000_000;
      const answers = await Promise.all(Array.from({ length: 90 }, (_, i) => nodes[i % 3]!.take('u:shared', 1, rule, now)));
      assert.equal(answers.filter((w) => w === 0).length, 10);
      assert.ok(answers.filter((w) => w > 0).every((w) => w === 1000));
      for (const node of nodes) await node.close();
      await dropPrefix(prefix);
    });

    it('holds the rate over real time with three nodes hammering one key', async () => {
      const prefix = freshPrefix();
      const nodes = [await RedisLimiter.open({ url: REDIS_URL, prefix }), await RedisLimiter.open({ url: REDIS_URL, prefix }), await RedisLimiter.open({ url: REDIS_URL, prefix })];
      const rule = { ratePerSec: 100, burst: 20 };
      const start = Date.now();
      let allowed = 0;
      let refused = 0;
      await Promise.all(
        nodes.map(async (node) => {
          while (Date.now() - start < 600) {
            if ((await node.take('u:hot', 1, rule, Date.now())) === 0) allowed++;
            else refused++;
          }
        }),
      );
      const elapsedSec = (Date.now() - start) / 1000;
      const most = rule.burst + Math.ceil(rule.ratePerSec * elapsedSec);
      assert.ok(allowed <= most, `${allowed} allowed in ${elapsedSec} s, at most ${most}`);
      assert.ok(allowed >= rule.burst + rule.ratePerSec * 0.4, `${allowed} allowed: the bucket refills`);
      assert.ok(refused > 0);
      for (const node of nodes) await node.close();
      await dropPrefix(prefix);
    });

    it('lets an idle bucket expire when it is full again', async () => {
      const prefix = freshPrefix();
      const limiter = await RedisLimiter.open({ url: REDIS_URL, prefix });
      await limiter.take('k', 3, { ratePerSec: 10, burst: 5 }, Date.now());
      const pttl = await admin().pttl(`${prefix}rl:k`);
      assert.ok(pttl > 1100 && pttl <= 1300, `expires a second after it is full again: ${pttl} ms`);
      await waitFor('the bucket key to expire', async () => (await admin().exists(`${prefix}rl:k`)) === 0, 3000);
      await limiter.close();
    });
  });

  describe('RedisRegistry across nodes', () => {
    it('shows every node the same list, and a leave at once', async () => {
      const prefix = freshPrefix();
      const [a, b] = [await RedisRegistry.open({ url: REDIS_URL, prefix }), await RedisRegistry.open({ url: REDIS_URL, prefix })];
      const now = Date.now();
      const info = (nodeId: string, connections: number): NodeInfo => ({ nodeId, url: `http://${nodeId}`, wsUrl: `ws://${nodeId}/v1/ws`, connections, eventLoopLagMs: 1, at: now });
      await a.heartbeat(info('a', 10), 5000);
      await b.heartbeat(info('b', 3), 5000);
      assert.deepEqual(await a.healthy(now + 1), [info('b', 3), info('a', 10)]);
      assert.deepEqual(await b.healthy(now + 1), [info('b', 3), info('a', 10)]);
      await b.leave('b');
      assert.deepEqual(await a.healthy(now + 2), [info('a', 10)]);
      const pttl = await admin().pttl(`${prefix}{registry}:expiry`);
      assert.ok(pttl > 60_000 && pttl <= 65_000, `the registry ages out a minute after every node is gone: ${pttl}`);
      await a.close();
      await b.close();
      await dropPrefix(prefix);
    });
  });

  describe('faults, on a private redis-server', { skip: privateServerMissing() }, () => {
    let server: PrivateRedis;

    before(async () => {
      server = await PrivateRedis.start();
    });

    after(async () => {
      await server?.stop();
    });

    for (const publishBatching of ['none', 'turn'] as const) {
      it(`bus (publishes batched: ${publishBatching}): unhealthy while Redis is down, publishes settle fast, every subscription resumes by itself after a restart`, async () => {
        const prefix = freshPrefix();
        const [a, b] = [await RedisBus.open({ url: server.url, prefix, publishBatching }), await RedisBus.open({ url: server.url, prefix, publishBatching })];
        const got = { a: [] as string[], b: [] as string[] };
        a.onMessage((topic, m) => got.a.push(`${topic} ${m.t === 'membership' ? m.conversationId : m.t}`));
        b.onMessage((topic, m) => got.b.push(`${topic} ${m.t === 'membership' ? m.conversationId : m.t}`));
        const say = (bus: RedisBus, topic: string, text: string): Promise<void> => bus.publish(topic, { t: 'membership', conversationId: text });
        let recoveries = 0;
        b.onRecovered(() => {
          assert.equal(b.healthy(), true, 'told once resubscribed');
          recoveries++;
        });
        await a.subscribe(BROADCAST);
        await b.subscribe(BROADCAST);
        await a.subscribe(convTopic('c1'));
        await b.subscribe(convTopic('c1'));
        await b.subscribe(userTopic('u1'));
        await a.subscribe(convTopic('gone'));
        await say(a, convTopic('c1'), 'before');
        await waitFor('the first message', () => got.a.length === 1 && got.b.length === 1);
        assert.equal(recoveries, 0, 'the first connection is no recovery');

        // Publishes in flight when Redis dies settle (either way) instead of hanging on a dead link.
        const inFlight = Promise.allSettled(Array.from({ length: 2000 }, (_, i) => say(a, convTopic('nobody'), String(i))));
        await server.kill('SIGKILL');
        const settledIn = await Promise.race([
          inFlight.then(() => 'settled'),
          sleep(1500).then(() => 'still pending after 1.5 s'),
        ]);
        assert.equal(settledIn, 'settled');
        const noticed = await waitFor('both nodes to notice', () => !a.healthy() && !b.healthy(), 3000);
        const t0 = performance.now();
        await say(a, convTopic('c1'), 'late');
        const publishKeptIn = Math.round(performance.now() - t0);
        assert.ok(publishKeptIn < 200, `a publish while down is kept at once (${publishKeptIn} ms)`);
        await assert.rejects(b.subscribe(convTopic('new')), 'a subscribe while down rejects: the caller cannot count on it');
        await a.unsubscribe(convTopic('gone'));

        await server.restart();
        const recovered = await waitFor('both nodes healthy again', () => a.healthy() && b.healthy(), 5000);
        assert.equal(recoveries, 1, 'told of the recovery once');
        // No subscribe from here on: the nodes restore what they wanted on their own.
        await say(a, convTopic('c1'), 'after');
        await say(a, userTopic('u1'), 'to-u1');
        await say(b, BROADCAST, 'to-all');
        await say(b, convTopic('gone'), 'unwanted');
        await say(b, convTopic('new'), 'unwanted');
        // The kept publish goes out the moment a's publisher is back, which may be before a subscriber is:
        // it may be missed (the nodes' catch-up covers that), never delivered out of order.
        const late = (xs: string[]): string[] => xs.filter((x) => x !== 'conv:c1 late');
        await waitFor('the messages after the restart', () => late(got.a).length === 3 && late(got.b).length === 4);
        await sleep(50);
        assert.deepEqual(late(got.a), ['conv:c1 before', 'conv:c1 after', 'all to-all']);
        assert.deepEqual(late(got.b), ['conv:c1 before', 'conv:c1 after', 'user:u1 to-u1', 'all to-all']);
        for (const xs of [got.a, got.b]) if (xs.includes('conv:c1 late')) assert.equal(xs[1], 'conv:c1 late');
        assert.equal(a.backlogStats.sent + a.backlogStats.dropped, 1);
        const numsub = (await server.client().pubsub('NUMSUB', prefix + convTopic('gone'), prefix + convTopic('new'))) as (string | number)[];
        assert.deepEqual(numsub.map(String), [prefix + convTopic('gone'), '0', prefix + convTopic('new'), '0']);
        console.log(`# bus (${publishBatching}): noticed the kill in ${noticed} ms, publish kept in ${publishKeptIn} ms, healthy ${recovered} ms after restart`);
        await a.close();
        await b.close();
      });
    }

    it('bus: what a node publishes while only its publisher link is down reaches the other nodes, in order, once it is back', async () => {
      const prefix = freshPrefix();
      const [a, b] = [await RedisBus.open({ url: server.url, prefix }), await RedisBus.open({ url: server.url, prefix })];
      const got: string[] = [];
      b.onMessage((_topic, m) => got.push(m.t === 'membership' ? m.conversationId : m.t));
      await b.subscribe(convTopic('c1'));
      const say = (text: string): Promise<void> => a.publish(convTopic('c1'), { t: 'membership', conversationId: text });
      await say('before');
      await waitFor('the first message', () => got.length === 1);
      // Kill a's publisher connection alone: b's subscriber never notices, so without the backlog nobody would resync.
      const admin = server.client();
      const list = String(await admin.client('LIST'));
      const pubIds = list.split('\n').filter((l) => / name=parley-bus-pub /.test(l)).map((l) => /^id=(\d+)/.exec(l)?.[1]);
      assert.equal(pubIds.length, 2, 'one publisher link per node');
      // Both publisher links go (the admin cannot tell a's from b's); b only listens here.
      for (const id of pubIds) await admin.client('KILL', 'ID', String(id));
      await waitFor('a to notice its publisher is gone', () => !a.healthy(), 3000);
      for (let i = 1; i <= 50; i++) await say(`while-down-${i}`);
      await say('after');
      await waitFor('everything at b', () => got.length === 52, 5000);
      assert.deepEqual(got, ['before', ...Array.from({ length: 50 }, (_, i) => `while-down-${i + 1}`), 'after']);
      assert.deepEqual(a.backlogStats, { sent: 51, dropped: 0 });
      await a.close();
      await b.close();
    });

    it('bus: the backlog keeps the newest publishes within its bounds', async () => {
      const prefix = freshPrefix();
      const a = await RedisBus.open({ url: server.url, prefix, backlog: { maxMessages: 10 } });
      const b = await RedisBus.open({ url: server.url, prefix });
      const got: string[] = [];
      b.onMessage((_topic, m) => got.push(m.t === 'membership' ? m.conversationId : m.t));
      await b.subscribe(convTopic('c1'));
      const admin = server.client();
      const list = String(await admin.client('LIST'));
      for (const line of list.split('\n').filter((l) => / name=parley-bus-pub /.test(l))) {
        await admin.client('KILL', 'ID', String(/^id=(\d+)/.exec(line)?.[1]));
      }
      await waitFor('a to notice', () => !a.healthy(), 3000);
      for (let i = 1; i <= 25; i++) await a.publish(convTopic('c1'), { t: 'membership', conversationId: String(i) });
      await waitFor('the kept ones at b', () => got.length === 10, 5000);
      await sleep(50);
      assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => String(i + 16)));
      assert.deepEqual(a.backlogStats, { sent: 10, dropped: 15 });
      await a.close();
      await b.close();
    });

    it('bus: a hung Redis (SIGSTOP) is noticed, publishes reject within about a second, and it recovers on SIGCONT', async () => {
      const prefix = freshPrefix();
      const [a, b] = [await RedisBus.open({ url: server.url, prefix }), await RedisBus.open({ url: server.url, prefix })];
      let bGot = 0;
      b.onMessage(() => bGot++);
      await b.subscribe(convTopic('c1'));
      server.signal('SIGSTOP');
      try {
        const publishRejectedIn = await rejectsWithin(a.publish(convTopic('c1'), { t: 'membership', conversationId: 'x' }));
        assert.ok(publishRejectedIn < 1500, `rejected in ${publishRejectedIn} ms`);
        const noticed = await waitFor('both nodes to notice the hang', () => !a.healthy() && !b.healthy(), 5000);
        console.log(`# bus: publish into a hung Redis rejected in ${publishRejectedIn} ms; unhealthy after ${noticed} ms more`);
      } finally {
        server.signal('SIGCONT');
      }
      await waitFor('both nodes healthy again', () => a.healthy() && b.healthy(), 8000);
      await a.publish(convTopic('c1'), { t: 'membership', conversationId: 'y' });
      await waitFor('delivery after the hang', () => bGot >= 1);
      await a.close();
      await b.close();
    });

    it('presence, limiter, registry: calls reject within a second while Redis is down or hung, then work again by themselves', async () => {
      const prefix = freshPrefix();
      const engines = await openRedisEngines({ url: server.url, prefix });
      const { presence, limiter, registry } = engines;
      const rule = { ratePerSec: 10, burst: 5 };
      const calls = (): Promise<unknown>[] => [
        presence.connect('u1', 'c1', Date.now(), 60_000),
        presence.get(['u1']),
        presence.sweep(Date.now()),
        limiter.take('k', 1, rule, Date.now()),
        registry.heartbeat({ nodeId: 'n', url: 'u', wsUrl: 'w', connections: 0, eventLoopLagMs: 0, at: Date.now() }, 5000),
        registry.healthy(Date.now()),
      ];
      await Promise.all(calls());

      await server.kill('SIGKILL');
      await waitFor('every engine to report the outage', () => !presence.connected() && !limiter.connected() && !registry.connected());
      for (const call of calls()) assert.ok((await rejectsWithin(call)) < 1000);
      await server.restart();
      const back = await waitFor('the engines to answer again', async () => {
        const results = await Promise.allSettled(calls());
        return results.every((r) => r.status === 'fulfilled');
      }, 5000);
      assert.ok(presence.connected() && limiter.connected() && registry.connected());

      server.signal('SIGSTOP');
      try {
        const times = await Promise.all(calls().map(rejectsWithin));
        assert.ok(times.every((t) => t < 1500), `hung: rejected in ${times.join(', ')} ms`);
      } finally {
        server.signal('SIGCONT');
      }
      await waitFor('the engines to answer after the hang', async () => (await Promise.allSettled(calls())).every((r) => r.status === 'fulfilled'), 8000);
      console.log(`# presence/limiter/registry answered again ${back} ms after the restart`);
      for (const engine of Object.values(engines)) await engine.close();
    });
  });
});

async function allKeys(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await admin().scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Skip reason when there is no redis-server binary to start; under CI=true its absence fails. */
function privateServerMissing(): string | undefined {
  if (spawnSync('redis-server', ['--version']).status === 0) return undefined;
  if (process.env.CI === 'true') throw new Error('redis-server is not installed, and CI=true requires it');
  return 'redis-server is not installed';
}

/** A throwaway redis-server on a free port, no persistence; stopped by PID, restartable on the same port. */
class PrivateRedis {
  private process: ChildProcess | undefined;
  private admin: Redis | undefined;

  private constructor(readonly port: number) {}

  static async start(): Promise<PrivateRedis> {
    const server = new PrivateRedis(await freePort());
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** A client for inspecting the private server. */
  client(): Redis {
    return (this.admin ??= new Redis(this.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 }));
  }

  async restart(): Promise<void> {
    if (this.process) throw new Error('already running');
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmpdir()], { stdio: 'ignore' });
    this.process = child;
    await waitFor('the private redis-server to answer', async () => {
      const probe = new Redis(this.url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      probe.on('error', () => {});
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG';
      } catch {
        return false;
      } finally {
        probe.disconnect();
      }
    }, 5000);
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.process?.pid) throw new Error('not running');
    process.kill(this.process.pid, signal);
  }

  /** Sends `signal` and waits for the process to exit. */
  async kill(signal: NodeJS.Signals): Promise<void> {
    const child = this.process;
    if (!child) return;
    this.process = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    if (child.pid) process.kill(child.pid, signal);
    await exited;
  }

  async stop(): Promise<void> {
    this.admin?.disconnect();
    if (this.process?.pid) {
      try {
        process.kill(this.process.pid, 'SIGCONT');
      } catch {
        // Already gone.
      }
    }
    await this.kill('SIGKILL');
  }
}
