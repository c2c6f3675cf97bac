/**
 * The cluster's brokers fail under traffic: a private Redis killed and
 * restarted, then PostgreSQL made unreachable through a proxy. The machine's
 * shared servers are never stopped.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { nginxMissing, postgresMissing, redisMissing, POSTGRES_URL } from '../helpers/services.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { freePort } from '../../src/cluster/launcher.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { everyoneHolds, member, outboxesEmpty, sender, sleep, started, stopAll, until, PASSWORD, type Member } from './_clients.js';

const missing = (await redisMissing()) ?? (await postgresMissing()) ?? (await nginxMissing());

/** A redis-server of the test's own, on its own port, keeping nothing on disk. */
class PrivateRedis {
  private child: ChildProcess | undefined;
  constructor(readonly port: number) {}
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    this.child = child;
    await until(
      () =>
        new Promise<boolean>((resolve) => {
          const s = net.connect(this.port, '127.0.0.1');
          s.once('connect', () => {
            s.destroy();
            resolve(true);
          });
          s.once('error', () => resolve(false));
        }),
      10_000,
      'the private redis-server to listen',
    );
  }
  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  }
}

async function healthOf(c: TestCluster): Promise<number[]> {
  return Promise.all(c.nodes.map(async (n) => (await fetch(`${n.url}/readyz`, { signal: AbortSignal.timeout(3000) })).status));
}

async function tokenOf(url: string, m: Member): Promise<string> {
  const res = await fetch(`${url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: m.username, password: PASSWORD }) });
  return ((await res.json()) as { accessToken: string }).accessToken;
}

describe('Redis restarted mid-traffic', { skip: missing }, () => {
  let redis: PrivateRedis;
  let c: TestCluster;
  const crew: Member[] = [];
  before(async () => {
    redis = new PrivateRedis(await freePort('127.0.0.1'));
    await redis.start();
    c = await startTestCluster({ nodes: 3, redisUrl: redis.url });
  });
  after(async () => {
    await stopAll(crew);
    await c?.close();
    await redis?.kill();
  });

  test('nodes resubscribe by themselves; every acknowledged message reaches every member once', async () => {
    // Members on every node, each talking to its node directly: every delivery crosses Redis.
    for (let i = 0; i < 9; i++) crew.push(await member(c.nodes[i % 3]!.url, 'r'));
    await Promise.all(crew.map((m) => started(m)));
    const group = await crew[0]!.client.createGroup('redis', crew.slice(1).map((m) => m.id));
    await until(() => crew.every((m) => m.client.conversation(group.id)), 15_000, 'every member to learn of the group');

    const senders = crew.slice(0, 3).map((m, k) => sender(m, group.id, `r-${k}`, 25));
    await sleep(500);
    await redis.kill();
    await until(async () => (await healthOf(c)).every((s) => s === 503), 10_000, 'every node to report the bus down in /readyz');
    await sleep(1500);
    // Stop before Redis is back: nothing sent later can reveal a gap, so the nodes themselves must make clients catch up.
    const bodies = (await Promise.all(senders.map((s) => s.stop()))).flat();
    await redis.start();
    await until(async () => (await healthOf(c)).every((s) => s === 200), 15_000, 'every node ready again');
    await outboxesEmpty(crew);
    await everyoneHolds(crew, group.id, bodies);
  });
});

describe('PostgreSQL unreachable for a few seconds', { skip: missing }, () => {
  let proxy: TcpProxy;
  let c: TestCluster;
  const crew: Member[] = [];
  before(async () => {
    const pg = new URL(POSTGRES_URL);
    proxy = await TcpProxy.start({ host: pg.hostname, port: Number(pg.port || 5432) });
    const viaProxy = new URL(POSTGRES_URL);
    viaProxy.port = String(proxy.port);
    c = await startTestCluster({ nodes: 3, databaseUrl: viaProxy.toString() });
  });
  after(async () => {
    await stopAll(crew);
    await c?.close();
    await proxy?.close();
  });

  test('sends fail fast with unavailable, /readyz answers 503, and everything recovers by itself', async () => {
    for (let i = 0; i < 6; i++) crew.push(await member(c.nodes[i % 3]!.url, 'p'));
    await Promise.all(crew.map((m) => started(m)));
    const group = await crew[0]!.client.createGroup('pg', crew.slice(1).map((m) => m.id));
    await until(() => crew.every((m) => m.client.conversation(group.id)), 15_000, 'every member to learn of the group');
    const token = await tokenOf(c.url, crew[1]!);

    const before = sender(crew[0]!, group.id, 'before', 20);
    await sleep(300);
    const sentBefore = await before.stop();
    await outboxesEmpty(crew);

    await proxy.cut();
    const t0 = Date.now();
    const res = await fetch(`${c.nodes[1]!.url}/v1/conversations/${group.id}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ clientId: 'during-outage-1', body: 'during the outage' }),
    });
    const failedIn = Date.now() - t0;
    assert.equal(res.status, 503, 'a send while the database is unreachable is refused');
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'unavailable');
    assert.ok(failedIn < 5000, `it fails fast (${failedIn} ms)`);
    await until(async () => (await healthOf(c)).every((s) => s === 503), 10_000, 'every node to report the store down in /readyz');

    // Sends queued by the SDK during the outage go through once the database is back.
    const during = sender(crew[2]!, group.id, 'during', 50);
    await sleep(2000);
    const sentDuring = await during.stop();
    await proxy.restore();
    const back = Date.now();
    await until(async () => (await healthOf(c)).every((s) => s === 200), 20_000, 'every node ready again');
    console.log(`# PostgreSQL back: nodes ready ${Date.now() - back} ms later; a send during the outage failed in ${failedIn} ms`);
    await outboxesEmpty(crew);
    const retried = await fetch(`${c.nodes[1]!.url}/v1/conversations/${group.id}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ clientId: 'during-outage-1', body: 'during the outage' }),
    });
    assert.equal(retried.status, 201, 'the refused send, retried with its clientId, is stored once');
    await everyoneHolds(crew, group.id, [...sentBefore, ...sentDuring, 'during the outage']);
  });
});
