/**
 * The embedded engines of the Bus, Presence and Limiter ports: the shared port
 * suites, then what only the in-memory engines promise.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBus, MemoryBusHub } from '../../src/engines/memory/bus.js';
import { MemoryPresence } from '../../src/engines/memory/presence.js';
import { MemoryLimiter } from '../../src/engines/memory/limiter.js';
import { convTopic, type BusMessage } from '../../src/core/ports/bus.js';
import { busSuite } from '../ports/bus.suite.js';
import { presenceSuite } from '../ports/presence.suite.js';
import { limiterSuite } from '../ports/limiter.suite.js';

busSuite(
  'memory hub, two nodes',
  async () => {
    const hub = new MemoryBusHub({ onHandlerError: () => {} });
    return { nodes: [hub.node(), hub.node()] };
  },
  async ({ nodes }) => {
    for (const node of nodes) await node.close();
  },
  { syncDelivery: true },
);

presenceSuite(
  'memory',
  async () => new MemoryPresence(),
  (presence) => presence.close(),
);

limiterSuite(
  'memory',
  async () => new MemoryLimiter(),
  (limiter) => limiter.close(),
  { synchronous: true },
);

const membership: BusMessage = { t: 'membership', conversationId: 'c1' };

describe('MemoryBus', () => {
  it('is a single node of its own when made without a hub', async () => {
    const alone = new MemoryBus();
    const other = new MemoryBus();
    const got: string[] = [];
    alone.onMessage((topic) => got.push(`alone ${topic}`));
    other.onMessage((topic) => got.push(`other ${topic}`));
    await alone.subscribe(convTopic('c1'));
    await other.subscribe(convTopic('c1'));
    await alone.publish(convTopic('c1'), membership);
    assert.deepEqual(got, ['alone conv:c1']);
    await alone.close();
    await other.close();
  });

  it('reports a throwing handler to the hub and still delivers to the next node', async () => {
    const errors: { error: unknown; topic: string }[] = [];
    const hub = new MemoryBusHub({ onHandlerError: (error, topic) => errors.push({ error, topic }) });
    const [a, b] = [hub.node(), hub.node()];
    const boom = new Error('boom');
    let bGot = 0;
    a.onMessage(() => {
      throw boom;
    });
    b.onMessage(() => bGot++);
    await a.subscribe('t');
    await b.subscribe('t');
    await a.publish('t', membership);
    assert.equal(bGot, 1);
    assert.deepEqual(errors, [{ error: boom, topic: 't' }]);
    await a.close();
    await b.close();
  });

  it('shares the published object with handlers instead of copying it', async () => {
    const bus = new MemoryBus();
    let got: BusMessage | undefined;
    bus.onMessage((_topic, message) => (got = message));
    await bus.subscribe('t');
    await bus.publish('t', membership);
    assert.equal(got, membership);
    await bus.close();
  });

  it('does not deliver twice to a node that a handler moves to the end of the topic', async () => {
    const hub = new MemoryBusHub();
    const [a, b] = [hub.node(), hub.node()];
    let aGot = 0;
    a.onMessage(() => aGot++);
    b.onMessage(() => {
      void a.unsubscribe('t');
      void a.subscribe('t');
    });
    await a.subscribe('t');
    await b.subscribe('t');
    await a.publish('t', membership);
    assert.equal(aGot, 1);
    await a.close();
    await b.close();
  });

  it('does not deliver to a node that an earlier handler unsubscribed during delivery', async () => {
    const hub = new MemoryBusHub();
    const [a, b] = [hub.node(), hub.node()];
    let bGot = 0;
    a.onMessage(() => void b.unsubscribe('t'));
    b.onMessage(() => bGot++);
    await a.subscribe('t');
    await b.subscribe('t');
    await a.publish('t', membership);
    assert.equal(bGot, 0);
    await a.close();
    await b.close();
  });

  it('forgets a topic once its last node unsubscribes or closes', async () => {
    const hub = new MemoryBusHub();
    const [a, b] = [hub.node(), hub.node()];
    for (let i = 0; i < 100; i++) await a.subscribe(convTopic(`c${i}`));
    await b.subscribe(convTopic('c0'));
    await b.subscribe(convTopic('only-b'));
    assert.equal(hub.topicCount, 101);
    for (let i = 0; i < 100; i++) await a.unsubscribe(convTopic(`c${i}`));
    assert.equal(hub.topicCount, 2);
    await b.close();
    assert.equal(hub.topicCount, 0);
    await a.close();
  });

  it('refuses to publish or subscribe once closed, and reports itself unhealthy', async () => {
    const bus = new MemoryBus();
    await bus.close();
    assert.equal(bus.healthy(), false);
    await assert.rejects(bus.publish('t', membership), /closed/);
    await assert.rejects(bus.subscribe('t'), /closed/);
  });
});

describe('MemoryPresence', () => {
  it('answers touch with one shared settled promise, allocating nothing per call', async () => {
    const presence = new MemoryPresence();
    await presence.connect('u1', 'c1', 0, 1000);
    const first = presence.touch('u1', 'c1', 1, 1000);
    assert.equal(presence.touch('u1', 'c1', 2, 1000), first);
    assert.equal(presence.touch('nobody', 'c1', 2, 1000), first);
    await presence.close();
  });
});

describe('MemoryLimiter', () => {
  const rule = { ratePerSec: 10, burst: 5 };

  it('drops buckets that are full again, on a take after sweepEveryMs', async () => {
    const limiter = new MemoryLimiter({ sweepEveryMs: 1000 });
    for (let i = 0; i < 1000; i++) limiter.take(`k${i}`, 1, rule, 0);
    assert.equal(limiter.size, 1000);
    limiter.take('busy', 5, rule, 900);
    assert.equal(limiter.size, 1001, 'no sweep before sweepEveryMs');
    limiter.take('late', 1, rule, 1000);
    assert.equal(limiter.size, 2, 'the idle full buckets went, the busy one stays');
    assert.equal(limiter.take('busy', 2, rule, 1000), 100, 'a kept bucket kept its state');
    assert.equal(limiter.take('k1', 5, rule, 1000), 0, 'a dropped bucket is simply full');
    await limiter.close();
    assert.equal(limiter.size, 0);
  });
});
