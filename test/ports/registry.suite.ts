/**
 * The Registry port suite (contract in src/core/ports/registry.ts), run by
 * every engine. Time is the `at` / `now` the suite passes, so entries lapse
 * without sleeping.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeInfo, Registry } from '../../src/core/ports/registry.js';

const T0 = 1_700_000_000_000;
const TTL = 10_000;

/** Node `id` as it would announce itself at `at`. */
const node = (id: string, connections = 0, eventLoopLagMs = 0, at = T0): NodeInfo => ({
  nodeId: id,
  url: `http://${id}.test:8080`,
  wsUrl: `ws://${id}.test:8080/v1/ws`,
  connections,
  eventLoopLagMs,
  at,
});

const ids = (nodes: NodeInfo[]): string[] => nodes.map((n) => n.nodeId);

export function registrySuite(
  name: string,
  open: () => Promise<Registry>,
  dispose: (registry: Registry) => Promise<void>,
): void {
  describe(`Registry port: ${name}`, () => {
    let r: Registry;

    beforeEach(async () => {
      r = await open();
    });

    afterEach(async () => {
      await dispose(r);
    });

    it('lists nothing before any heartbeat', async () => {
      assert.deepEqual(await r.healthy(T0), []);
    });

    it('lists a node with everything it announced', async () => {
      await r.heartbeat(node('a', 12, 3), TTL);
      assert.deepEqual(await r.healthy(T0 + 1), [node('a', 12, 3)]);
    });

    it('keeps one entry per node, the latest heartbeat', async () => {
      await r.heartbeat(node('a', 1), TTL);
      await r.heartbeat(node('a', 7, 2, T0 + 1000), TTL);
      assert.deepEqual(await r.healthy(T0 + 1001), [node('a', 7, 2, T0 + 1000)]);
    });

    it('stops listing an entry not refreshed within its ttl, and a refresh brings it back', async () => {
      await r.heartbeat(node('a'), TTL);
      await r.heartbeat(node('b', 0, 0, T0 + 5000), TTL);
      assert.deepEqual(ids(await r.healthy(T0 + TTL - 1)), ['a', 'b']);
      assert.deepEqual(ids(await r.healthy(T0 + TTL)), ['b'], 'a lapsed at at + ttl');
      assert.deepEqual(ids(await r.healthy(T0 + 5000 + TTL)), []);
      await r.heartbeat(node('a', 0, 0, T0 + 20_000), TTL);
      assert.deepEqual(ids(await r.healthy(T0 + 20_001)), ['a']);
    });

    it('extends an entry with each heartbeat', async () => {
      await r.heartbeat(node('a'), TTL);
      await r.heartbeat(node('a', 0, 0, T0 + 8000), TTL);
      assert.deepEqual(ids(await r.healthy(T0 + 15_000)), ['a']);
      assert.deepEqual(ids(await r.healthy(T0 + 18_000)), []);
    });

    it('honours the ttl of each heartbeat', async () => {
      await r.heartbeat(node('short'), 1000);
      await r.heartbeat(node('long'), 60_000);
      assert.deepEqual(ids(await r.healthy(T0 + 999)), ['long', 'short']);
      assert.deepEqual(ids(await r.healthy(T0 + 1000)), ['long']);
      assert.deepEqual(ids(await r.healthy(T0 + 59_999)), ['long']);
    });

    it('removes a node at once on leave, and ignores an unknown one', async () => {
      await r.heartbeat(node('a'), TTL);
      await r.heartbeat(node('b'), TTL);
      await r.leave('a');
      await r.leave('never-seen');
      assert.deepEqual(ids(await r.healthy(T0 + 1)), ['b']);
      await r.heartbeat(node('a', 0, 0, T0 + 2), TTL);
      assert.deepEqual(ids(await r.healthy(T0 + 3)), ['a', 'b'], 'a node that left may come back');
    });

    it('lists the least loaded first: fewest connections, then lowest lag, then node id', async () => {
      const nodes = [node('d', 5, 1), node('c', 2, 9), node('b', 2, 4), node('a', 2, 4), node('e', 0, 50)];
      for (const n of nodes) await r.heartbeat(n, TTL);
      assert.deepEqual(ids(await r.healthy(T0 + 1)), ['e', 'a', 'b', 'c', 'd']);
    });

    it('answers copies: changing a listed entry changes nothing held', async () => {
      await r.heartbeat(node('a', 1), TTL);
      const [listed] = await r.healthy(T0 + 1);
      assert.ok(listed);
      listed.connections = 999;
      assert.deepEqual(await r.healthy(T0 + 2), [node('a', 1)]);
    });

    it('keeps what it was given: changing the heartbeat object afterwards changes nothing held', async () => {
      const info = node('a', 1);
      await r.heartbeat(info, TTL);
      info.connections = 999;
      assert.deepEqual(await r.healthy(T0 + 1), [node('a', 1)]);
    });
  });
}
