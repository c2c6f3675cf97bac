/**
 * Cluster mode end to end: three real nodes (the CLI, as child processes)
 * behind nginx on the machine's Redis and PostgreSQL. Delivery across nodes,
 * then a node killed with SIGKILL, then one drained with SIGTERM, each while
 * clients keep sending.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { nginxMissing, postgresMissing, redisMissing } from '../helpers/services.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import {
  connectionsOn,
  everyoneHolds,
  member,
  outboxesEmpty,
  sender,
  sleep,
  started,
  stopAll,
  until,
  PASSWORD,
  type Member,
} from './_clients.js';
import WebSocket from 'ws';

const missing = (await redisMissing()) ?? (await postgresMissing()) ?? (await nginxMissing());

describe('a 3-node cluster behind nginx', { skip: missing }, () => {
  let c: TestCluster;
  const everyone: Member[] = [];

  before(async () => {
    c = await startTestCluster({ nodes: 3 });
  });
  after(async () => {
    await stopAll(everyone);
    await c?.close();
  });

  test('discovery lists all three nodes and answers the least loaded', async () => {
    const res = (await (await fetch(`${c.url}/v1/discovery`)).json()) as { nodeId: string; wsUrl: string; healthyNodes: number };
    assert.equal(res.healthyNodes, 3);
    assert.match(res.nodeId, /^node-[123]$/);
    const node = c.nodes.find((n) => n.id === res.nodeId);
    assert.equal(res.wsUrl, node?.wsUrl);
  });

  test('clients on different nodes talk 1:1 and in a 50-member group; each message reaches each member once, in order', async () => {
    // Each client talks to one node directly, so traffic must cross nodes through Redis.
    const members: Member[] = [];
    for (let i = 0; i < 50; i++) members.push(await member(c.nodes[i % 3]!.url, 'g'));
    everyone.push(...members);
    for (let i = 0; i < 50; i += 10) await Promise.all(members.slice(i, i + 10).map((m) => started(m)));
    const counts = await Promise.all(c.nodes.map((n) => connectionsOn(n.url)));
    assert.deepEqual(counts, [17, 17, 16], 'the 50 sockets are spread over the three nodes');

    // 1:1 between a client of node-1 and one of node-2.
    const [a, b] = [members[0]!, members[1]!];
    const direct = await a.client.startDirect(b.id);
    const pair = [a, b];
    for (let i = 0; i < 20; i++) await (i % 2 ? b : a).client.send(direct.id, `dm-${i}`);
    await outboxesEmpty(pair);
    await everyoneHolds(pair, direct.id, Array.from({ length: 20 }, (_, i) => `dm-${i}`));

    // A 50-member group; five senders on all three nodes send concurrently.
    const group = await members[2]!.client.createGroup('fifty', members.filter((_, i) => i !== 2).map((m) => m.id));
    await until(() => members.every((m) => m.client.conversation(group.id)), 15_000, 'every member to learn of the group');
    const senders = [2, 3, 4, 5, 6].map((i) => members[i]!);
    const bodies: string[] = [];
    await Promise.all(
      senders.map(async (s, k) => {
        for (let i = 0; i < 10; i++) {
          const body = `grp-${k}-${i}`;
          bodies.push(body);
          await s.client.send(group.id, body);
        }
      }),
    );
    await outboxesEmpty(senders);
    await everyoneHolds(members, group.id, bodies);
    await stopAll(members);
  });

  test('a block made on one node takes effect at once on another that had cached "no block"; unblocking likewise', async () => {
    const a = await member(c.nodes[0]!.url, 'blka');
    const b = await member(c.nodes[1]!.url, 'blkb');
    everyone.push(a, b);
    try {
      await Promise.all([started(a), started(b)]);
      const direct = await a.client.startDirect(b.id);
      // b's node now holds b's relations (none) in its cache.
      await b.client.send(direct.id, 'before');
      await outboxesEmpty([b]);
      await until(() => b.client.presenceOf(a.id)?.status === 'online', 10_000, 'b to see a online');
      await a.client.block(b.id);
      // The other node's client is told to show a as offline: presence frames alone would never say so.
      await until(() => b.client.presenceOf(a.id)?.status === 'offline', 10_000, 'b to see a offline after the block');
      await b.client.send(direct.id, 'blocked');
      await until(() => b.client.outbox(direct.id)[0]?.state === 'failed', 10_000, 'the send on the other node to be refused');
      await b.client.discard(b.client.outbox(direct.id)[0]!.clientId);
      await a.client.unblock(b.id);
      await until(() => b.client.presenceOf(a.id)?.status === 'online', 10_000, 'b to see a online again after the unblock');
      await b.client.send(direct.id, 'after');
      await outboxesEmpty([a, b]);
      await everyoneHolds([a, b], direct.id, ['before', 'after']);
    } finally {
      // Stopped here even on failure: later tests count the nodes' sockets.
      await stopAll([a, b]);
    }
  });

  test('kill -9 of a node while clients send: they reconnect through the balancer, and every acknowledged message is there exactly once', async () => {
    const crew: Member[] = [];
    for (let i = 0; i < 12; i++) crew.push(await member(c.url, 'k'));
    everyone.push(...crew);
    await Promise.all(crew.map((m) => started(m)));
    const group = await crew[0]!.client.createGroup('kill', crew.slice(1).map((m) => m.id));
    await until(() => crew.every((m) => m.client.conversation(group.id)), 15_000, 'every member to learn of the group');

    const victim = c.nodes[0]!;
    const onVictim = await connectionsOn(victim.url);
    assert.ok(onVictim >= 2, `the balancer put clients on ${victim.id} (${onVictim})`);
    const lost = new Set<Member>();
    const resynced = new Map<Member, number>();
    const offs = crew.flatMap((m) => [
      m.client.on('state', (s) => {
        if (s === 'reconnecting') lost.add(m);
      }),
      m.client.on('synced', ({ reconnect }) => {
        if (reconnect) resynced.set(m, Date.now());
      }),
    ]);

    const senders = crew.slice(0, 6).map((m, k) => sender(m, group.id, `kill-${k}`, 20));
    await sleep(800);
    const killedAt = Date.now();
    assert.equal(await victim.kill('SIGKILL'), null, 'the node died of the signal');
    await until(() => lost.size > 0 && [...lost].every((m) => resynced.has(m)), 20_000, 'every client of the dead node to resync');
    const recoveryMs = Math.max(...[...lost].map((m) => resynced.get(m)! - killedAt));
    await sleep(800);
    const bodies = (await Promise.all(senders.map((s) => s.stop()))).flat();
    await outboxesEmpty(crew);
    await everyoneHolds(crew, group.id, bodies);
    for (const off of offs) off();
    console.log(`# kill -9 recovery: ${lost.size} clients resynced ${recoveryMs} ms after the kill; ${bodies.length} messages, each once`);
    assert.equal(lost.size, onVictim, 'exactly the clients of the dead node reconnected');
    await stopAll(crew);
    await victim.start();
  });

  test('SIGTERM drains a node: its clients get 4010 and move, nothing is lost, and it exits 0', async () => {
    const crew: Member[] = [];
    for (let i = 0; i < 9; i++) crew.push(await member(c.url, 'd'));
    everyone.push(...crew);
    await Promise.all(crew.map((m) => started(m)));
    const group = await crew[0]!.client.createGroup('drain', crew.slice(1).map((m) => m.id));
    await until(() => crew.every((m) => m.client.conversation(group.id)), 15_000, 'every member to learn of the group');

    const node = c.nodes[1]!;
    const onNode = await connectionsOn(node.url);
    assert.ok(onNode >= 1, `clients on ${node.id}`);
    // A raw socket on the node itself, to see the close code the SDK handles.
    const login = (await (
      await fetch(`${node.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: crew[0]!.username, password: PASSWORD }) })
    ).json()) as { accessToken: string };
    const raw = new WebSocket(node.wsUrl);
    await new Promise((r) => raw.once('open', r));
    raw.send(JSON.stringify({ type: 'auth', ref: 'a', token: login.accessToken }));
    await new Promise((r) => raw.once('message', r));
    const closed = new Promise<number>((r) => raw.once('close', (code) => r(code)));
    const moved = new Set<Member>();
    const offsState = crew.map((m) =>
      m.client.on('state', (s) => {
        if (s === 'reconnecting') moved.add(m);
      }),
    );
    const senders = crew.slice(0, 5).map((m, k) => sender(m, group.id, `drain-${k}`, 20));
    await sleep(600);
    const exit = node.kill('SIGTERM');
    assert.equal(await exit, 0, 'the drained node exits 0');
    await until(() => [...moved].every((m) => m.client.state === 'online'), 15_000, 'moved clients online again');
    await sleep(500);
    const bodies = (await Promise.all(senders.map((s) => s.stop()))).flat();
    await outboxesEmpty(crew);
    await everyoneHolds(crew, group.id, bodies);
    for (const off of offsState) off();
    assert.equal(await closed, 4010, 'sockets of a draining node are closed with 4010');
    assert.equal(moved.size, onNode, 'exactly the clients of the drained node moved');
    const others = (await connectionsOn(c.nodes[0]!.url)) + (await connectionsOn(c.nodes[2]!.url));
    assert.ok(others >= crew.length, `the other nodes hold every client now (${others})`);
    await stopAll(crew);
    await node.start();
  });

  test('SDK with discovery: connects straight to the node discovery names, and moves on when that node dies', async () => {
    await until(async () => ((await (await fetch(`${c.url}/v1/discovery`)).json()) as { healthyNodes: number }).healthyNodes === 3, 10_000, 'three healthy nodes');
    const crew: Member[] = [];
    for (let i = 0; i < 3; i++) crew.push(await member(c.url, 's', { discovery: true }));
    everyone.push(...crew);
    await Promise.all(crew.map((m) => started(m)));
    const chosen = crew[0]!.client.connectedNode;
    const node = c.nodes.find((n) => n.id === chosen);
    assert.ok(node, `the client connected to a discovered node (${chosen})`);
    assert.ok((await connectionsOn(node.url)) >= 1, `${node.id} holds the discovered connection`);

    const group = await crew[0]!.client.createGroup('disc', crew.slice(1).map((m) => m.id));
    await until(() => crew.every((m) => m.client.conversation(group.id)), 15_000, 'every member to learn of the group');
    const victims = crew.filter((m) => m.client.connectedNode === node.id);
    await node.kill('SIGKILL');
    await until(() => victims.every((m) => m.client.state === 'online' && m.client.connectedNode !== node.id), 20_000, 'clients of the dead node online elsewhere');
    const bodies: string[] = [];
    for (const [k, m] of crew.entries()) {
      bodies.push(`after-${k}`);
      await m.client.send(group.id, `after-${k}`);
    }
    await outboxesEmpty(crew);
    await everyoneHolds(crew, group.id, bodies);
    await stopAll(crew);
    await node.start();
  });
});
