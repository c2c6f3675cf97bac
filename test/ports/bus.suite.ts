/**
 * The Bus port suite (contract in src/core/ports/bus.ts), run by every engine.
 *
 * `open` gives at least two nodes on one shared broker; `dispose` closes them
 * (also a node a test already closed). Delivery may be asynchronous, so the
 * suite waits for what must arrive, and proves that something did NOT arrive
 * by first waiting for a later probe message plus a short grace period.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { BROADCAST, convTopic, userTopic, type Bus, type BusMessage } from '../../src/core/ports/bus.js';

export interface BusCluster {
  nodes: Bus[];
}

export interface BusSuiteOptions {
  /** The engine delivers before `publish` resolves, as the in-process one promises. */
  syncDelivery?: boolean;
}

interface Node {
  bus: Bus;
  received: { topic: string; message: BusMessage }[];
  throwOnNext: boolean;
}

const WAIT_MS = 2000;
const GRACE_MS = 30;
const PROBE = 'probe';

/** Message number `n`: a small ephemeral one, whose frame carries `n`. */
const message = (n: number, conversationId = 'c1'): BusMessage => ({
  t: 'ephemeral',
  conversationId,
  frame: JSON.stringify({ n }),
});

const numberOf = (m: BusMessage): number => ('frame' in m ? (JSON.parse(m.frame) as { n: number }).n : -1);

function attach(bus: Bus): Node {
  const node: Node = { bus, received: [], throwOnNext: false };
  bus.onMessage((topic, msg) => {
    node.received.push({ topic, message: msg });
    if (node.throwOnNext) {
      node.throwOnNext = false;
      throw new Error('handler failed on purpose');
    }
  });
  return node;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, done: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** What a node received on `topic`, in order. */
const on = (node: Node, topic: string): BusMessage[] =>
  node.received.filter((r) => r.topic === topic).map((r) => r.message);

export function busSuite(
  name: string,
  open: () => Promise<BusCluster>,
  dispose: (cluster: BusCluster) => Promise<void>,
  options: BusSuiteOptions = {},
): void {
  describe(`Bus port: ${name}`, () => {
    let cluster: BusCluster;
    let a: Node;
    let b: Node;
    let probes = 0;

    beforeEach(async () => {
      cluster = await open();
      const [first, second] = cluster.nodes;
      assert.ok(first && second, 'the factory must give two nodes');
      a = attach(first);
      b = attach(second);
    });

    afterEach(async () => {
      await dispose(cluster);
    });

    /** Waits until everything published before it had its chance to arrive at `nodes`. */
    async function settle(...nodes: Node[]): Promise<void> {
      const probe = message(++probes, PROBE);
      const expected = probes;
      for (const node of nodes) await node.bus.subscribe(PROBE);
      await a.bus.publish(PROBE, probe);
      await waitFor('the probe', () => nodes.every((node) => on(node, PROBE).some((m) => numberOf(m) === expected)));
      await sleep(GRACE_MS);
    }

    it('is healthy once open', () => {
      assert.equal(a.bus.healthy(), true);
      assert.equal(b.bus.healthy(), true);
    });

    it('delivers to every subscribed node, the publisher included', async () => {
      await a.bus.subscribe(convTopic('c1'));
      await b.bus.subscribe(convTopic('c1'));
      await a.bus.publish(convTopic('c1'), message(1));
      await waitFor('both nodes', () => on(a, convTopic('c1')).length === 1 && on(b, convTopic('c1')).length === 1);
      await settle(a, b);
      assert.deepEqual(on(a, convTopic('c1')), [message(1)]);
      assert.deepEqual(on(b, convTopic('c1')), [message(1)]);
    });

    it('delivers a topic only to the nodes subscribed to it', async () => {
      await a.bus.subscribe(convTopic('c1'));
      await b.bus.subscribe(userTopic('u2'));
      await b.bus.publish(convTopic('c1'), message(1));
      await a.bus.publish(userTopic('u2'), message(2));
      await a.bus.publish(convTopic('c9'), message(3));
      await waitFor('each node its topic', () => a.received.length >= 1 && b.received.length >= 1);
      await settle(a, b);
      assert.deepEqual(a.received.filter((r) => r.topic !== PROBE), [{ topic: convTopic('c1'), message: message(1) }]);
      assert.deepEqual(b.received.filter((r) => r.topic !== PROBE), [{ topic: userTopic('u2'), message: message(2) }]);
    });

    it('keeps publish order per topic, even when publishes are not awaited one by one', async () => {
      await b.bus.subscribe(BROADCAST);
      await b.bus.subscribe(convTopic('c2'));
      const sent: Promise<void>[] = [];
      for (let n = 0; n < 200; n++) {
        sent.push(a.bus.publish(BROADCAST, message(n)));
        sent.push(a.bus.publish(convTopic('c2'), message(n, 'c2')));
      }
      await Promise.all(sent);
      await waitFor('200 messages per topic', () => b.received.length === 400);
      const order = (topic: string) => on(b, topic).map(numberOf);
      const expected = Array.from({ length: 200 }, (_, n) => n);
      assert.deepEqual(order(BROADCAST), expected);
      assert.deepEqual(order(convTopic('c2')), expected);
    });

    it('treats a repeated subscribe as one: delivered once, gone after one unsubscribe', async () => {
      await b.bus.subscribe(convTopic('c1'));
      await b.bus.subscribe(convTopic('c1'));
      await a.bus.publish(convTopic('c1'), message(1));
      await waitFor('the message', () => on(b, convTopic('c1')).length >= 1);
      await b.bus.unsubscribe(convTopic('c1'));
      await a.bus.publish(convTopic('c1'), message(2));
      await settle(b);
      assert.deepEqual(on(b, convTopic('c1')), [message(1)]);
    });

    it('delivers nothing after unsubscribe resolves, and again after a new subscribe', async () => {
      await a.bus.subscribe(convTopic('c1'));
      await b.bus.subscribe(convTopic('c1'));
      await b.bus.unsubscribe(convTopic('c1'));
      await a.bus.publish(convTopic('c1'), message(1));
      await settle(a, b);
      assert.deepEqual(on(a, convTopic('c1')), [message(1)]);
      assert.deepEqual(on(b, convTopic('c1')), []);

      await b.bus.subscribe(convTopic('c1'));
      await a.bus.publish(convTopic('c1'), message(2));
      await waitFor('the message after resubscribing', () => on(b, convTopic('c1')).length === 1);
      assert.deepEqual(on(b, convTopic('c1')), [message(2)]);
    });

    it('keeps other topics when one is unsubscribed, and ignores unknown unsubscribes', async () => {
      await b.bus.subscribe(convTopic('c1'));
      await b.bus.subscribe(convTopic('c2'));
      await b.bus.unsubscribe(convTopic('c1'));
      await b.bus.unsubscribe(convTopic('never-subscribed'));
      await a.bus.publish(convTopic('c1'), message(1));
      await a.bus.publish(convTopic('c2'), message(2, 'c2'));
      await waitFor('the c2 message', () => on(b, convTopic('c2')).length === 1);
      await settle(b);
      assert.deepEqual(on(b, convTopic('c1')), []);
      assert.deepEqual(on(b, convTopic('c2')), [message(2, 'c2')]);
    });

    it('survives a throwing handler: publish resolves, other nodes and later messages still arrive', async () => {
      await a.bus.subscribe(convTopic('c1'));
      await b.bus.subscribe(convTopic('c1'));
      b.throwOnNext = true;
      await a.bus.publish(convTopic('c1'), message(1));
      await a.bus.publish(convTopic('c1'), message(2));
      await waitFor('both messages on both nodes', () => on(a, convTopic('c1')).length === 2 && on(b, convTopic('c1')).length === 2);
      assert.deepEqual(on(a, convTopic('c1')), [message(1), message(2)]);
      assert.deepEqual(on(b, convTopic('c1')), [message(1), message(2)]);
    });

    it('stops delivering to a closed node while the others go on', async () => {
      await a.bus.subscribe(convTopic('c1'));
      await b.bus.subscribe(convTopic('c1'));
      await b.bus.close();
      await a.bus.publish(convTopic('c1'), message(1));
      await settle(a);
      assert.deepEqual(on(a, convTopic('c1')), [message(1)]);
      assert.deepEqual(on(b, convTopic('c1')), []);
    });

    if (options.syncDelivery) {
      it('delivers to every subscribed node before publish resolves', async () => {
        await a.bus.subscribe(convTopic('c1'));
        await b.bus.subscribe(convTopic('c1'));
        const published = a.bus.publish(convTopic('c1'), message(1));
        assert.deepEqual(on(a, convTopic('c1')), [message(1)]);
        assert.deepEqual(on(b, convTopic('c1')), [message(1)]);
        await published;
      });
    }
  });
}
