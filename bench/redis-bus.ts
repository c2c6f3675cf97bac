/**
 * What the Redis bus costs, measured on a private redis-server (no
 * persistence, stopped by PID at the end), never the shared one:
 *
 *   1. the wire encoding of a bus message: JSON of the whole message against
 *      head JSON + raw frame (engines/redis/codec.ts);
 *   2. publish → receive throughput between two RedisBus nodes, publishes
 *      written one by one or batched per event-loop turn;
 *   3. publish → receive latency at fixed rates;
 *   4. a node subscribed to 1,000 vs 10,000 conversation channels: subscribe
 *      time, Redis memory (INFO), publish throughput and Redis CPU per publish,
 *      and the time to resubscribe everything after the link is cut.
 *
 * Both nodes live in this one process (one event loop), as a node that both
 * publishes and receives does. Run under the bench lock:
 *   flock /tmp/parley-bench.lock node --import tsx bench/redis-bus.ts [--quick] [--only codec,throughput,latency,channels] [--repeat N]
 * --repeat runs the throughput and latency rows N times, alternating the
 * batching setting, since the machine is shared and single runs are noisy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { RedisBus, type PublishBatching } from '../src/engines/redis/bus.js';
import { decodeBusMessage, encodeBusMessage } from '../src/engines/redis/codec.js';
import { convTopic, type BusMessage } from '../src/core/ports/bus.js';
import type { ConversationEvent } from '../src/protocol/model.js';
import { eventFrame } from '../src/core/frames.js';

const quick = process.argv.includes('--quick');
const argument = (name: string): string | undefined => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
};
const only = argument('--only')?.split(',');
const runs = (section: string): boolean => !only || only.includes(section);
const repeat = Math.max(1, Number(argument('--repeat') ?? 2));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- messages

/** A message.created event as the fan-out publishes it; `at` carries the send time in ms (performance.now()). */
function eventMessage(n: number, conversationId = 'c1', at = 0): BusMessage {
  const event: ConversationEvent = {
    kind: 'message.created',
    conversationId,
    seq: n,
    at,
    actorId: '01JD0000000000000001',
    message: {
      id: `01JD${String(n).padStart(16, '0')}`,
      conversationId,
      seq: n,
      senderId: '01JD0000000000000001',
      clientId: `client-${n}`,
      body: 'Are we still on for the review at three? I moved the "staging" notes into the doc.',
      createdAt: 1_764_000_000_000 + n,
    },
  };
  return { t: 'event', event, frame: eventFrame(event) };
}

// ---------------------------------------------------------------- 1. codec

function measureCodec(): Record<string, unknown> {
  const message = eventMessage(42, '01JD0000000000000042');
  const iterations = quick ? 100_000 : 400_000;
  const run = (encode: (m: BusMessage) => string, decode: (s: string) => BusMessage): { nsPerMessage: number; bytes: number } => {
    let sink = 0;
    for (let i = 0; i < 20_000; i++) sink += decode(encode(message)).t.length; // warm up
    const start = performance.now();
    for (let i = 0; i < iterations; i++) sink += decode(encode(message)).t.length;
    const perMessage = ((performance.now() - start) * 1e6) / iterations;
    if (sink === 0) throw new Error('unreachable: keeps the loop from being optimised away');
    return { nsPerMessage: Math.round(perMessage), bytes: Buffer.byteLength(encode(message)) };
  };
  const json = run((m) => JSON.stringify(m), (s) => JSON.parse(s) as BusMessage);
  const split = run(encodeBusMessage, decodeBusMessage);
  return { iterations, json, split, note: 'ns per encode + decode of one message.created event' };
}

// ---------------------------------------------------------------- private redis-server

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

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmpdir()], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const probe = new Redis({ port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => {});
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return child;
    } catch {
      probe.disconnect();
      await sleep(50);
    }
  }
  child.kill('SIGKILL');
  throw new Error('redis-server did not start');
}

async function info(admin: Redis, section: string, field: string): Promise<number> {
  const text = await admin.info(section);
  const line = text.split('\r\n').find((l) => l.startsWith(`${field}:`));
  return Number(line?.slice(field.length + 1));
}

const redisCpuMs = async (admin: Redis): Promise<number> =>
  ((await info(admin, 'cpu', 'used_cpu_user')) + (await info(admin, 'cpu', 'used_cpu_sys'))) * 1000;

// ---------------------------------------------------------------- 2. throughput

/** A publishes `count` messages (at most `window` unanswered) on topics picked by `topicOf`; waits until `receiver` got `expected`. */
async function blast(
  a: RedisBus,
  received: () => number,
  count: number,
  topicOf: (n: number) => string,
  expected: number,
  window = 1000,
): Promise<number> {
  const base = received();
  const start = performance.now();
  let inFlight: Promise<void>[] = [];
  for (let n = 0; n < count; n++) {
    inFlight.push(a.publish(topicOf(n), eventMessage(n)));
    if (inFlight.length >= window) {
      await Promise.all(inFlight);
      inFlight = [];
    }
  }
  await Promise.all(inFlight);
  const deadline = Date.now() + 30_000;
  while (received() - base < expected) {
    if (Date.now() > deadline) throw new Error(`only ${received() - base} of ${expected} arrived`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return Math.round(count / ((performance.now() - start) / 1000));
}

// ---------------------------------------------------------------- 3. latency

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function latencyAt(a: RedisBus, b: RedisBus, rate: number, seconds: number): Promise<Record<string, number>> {
  const samples: number[] = [];
  b.onMessage((_topic, m) => {
    if (m.t === 'event') samples.push(performance.now() - m.event.at);
  });
  const perTick = rate / 1000;
  const total = Math.round(rate * seconds);
  const start = performance.now();
  let sent = 0;
  // Paced by the clock, not by timer counts: a late timer sends what is due.
  while (sent < total) {
    const due = Math.min(total, Math.floor((performance.now() - start) * perTick) + 1);
    for (; sent < due; sent++) void a.publish(convTopic('lat'), eventMessage(sent, 'lat', performance.now())).catch(() => undefined);
    await sleep(1);
  }
  const deadline = Date.now() + 10_000;
  while (samples.length < total && Date.now() < deadline) await sleep(5);
  samples.sort((x, y) => x - y);
  const r = (v: number): number => Math.round(v * 100) / 100;
  return { rate, sent: total, received: samples.length, p50Ms: r(percentile(samples, 50)), p99Ms: r(percentile(samples, 99)), maxMs: r(samples.at(-1) ?? NaN) };
}

// ---------------------------------------------------------------- 4. many channels

async function channels(url: string, admin: Redis, count: number): Promise<Record<string, number>> {
  const prefix = `bench-${count}:`;
  const node = await RedisBus.open({ url, prefix, onHandlerError: () => {} });
  const pub = await RedisBus.open({ url, prefix });
  let got = 0;
  node.onMessage(() => got++);
  const memoryBefore = await info(admin, 'memory', 'used_memory');
  const start = performance.now();
  await Promise.all(Array.from({ length: count }, (_, i) => node.subscribe(convTopic(`c${i}`))));
  const subscribeMs = performance.now() - start;
  await sleep(100);
  const memoryAfter = await info(admin, 'memory', 'used_memory');

  const publishes = quick ? 20_000 : 100_000;
  const cpuBefore = await redisCpuMs(admin);
  const toSubscribed = await blast(pub, () => got, publishes, (n) => convTopic(`c${(n * 7919) % count}`), publishes);
  const cpuSubscribed = (await redisCpuMs(admin)) - cpuBefore;
  const cpuBefore2 = await redisCpuMs(admin);
  const toNobody = await blast(pub, () => got, publishes, (n) => convTopic(`nobody${n % count}`), 0);
  const cpuNobody = (await redisCpuMs(admin)) - cpuBefore2;

  // Cut every subscriber link; the node resubscribes all `count` channels on its own.
  await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
  const cut = performance.now();
  while (node.healthy()) await sleep(1);
  while (!node.healthy()) await sleep(1);
  const resubscribeMs = performance.now() - cut;
  const before = got;
  await pub.publish(convTopic(`c${count - 1}`), eventMessage(1));
  while (got === before) await sleep(1);

  await node.close();
  await pub.close();
  await sleep(100);
  return {
    channels: count,
    subscribeMs: Math.round(subscribeMs),
    redisBytesPerChannel: Math.round((memoryAfter - memoryBefore) / count),
    redisMemoryDeltaKB: Math.round((memoryAfter - memoryBefore) / 1024),
    publishPerSecToSubscribed: toSubscribed,
    redisCpuUsPerPublishSubscribed: Math.round(((cpuSubscribed * 1000) / publishes) * 100) / 100,
    publishPerSecToNobody: toNobody,
    redisCpuUsPerPublishNobody: Math.round(((cpuNobody * 1000) / publishes) * 100) / 100,
    resubscribeAfterCutMs: Math.round(resubscribeMs),
  };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const results: Record<string, unknown> = { quick, node: process.version };
  if (runs('codec')) {
    results.codec = measureCodec();
    console.log('codec', JSON.stringify(results.codec));
  }

  const port = await freePort();
  const server = await startRedis(port);
  const url = `redis://127.0.0.1:${port}`;
  const admin = new Redis(url);
  try {
    results.redis = await info(admin, 'server', 'redis_version').catch(() => NaN);
    const modes: PublishBatching[] = ['none', 'turn'];
    const alternating = Array.from({ length: repeat }, () => modes).flat();
    const throughput: Record<string, number | string>[] = [];
    for (const publishBatching of runs('throughput') ? alternating : []) {
      const a = await RedisBus.open({ url, prefix: 't:', publishBatching });
      const b = await RedisBus.open({ url, prefix: 't:' });
      let got = 0;
      b.onMessage(() => got++);
      await b.subscribe(convTopic('c1'));
      const count = quick ? 20_000 : 100_000;
      const cpu0 = await redisCpuMs(admin);
      const perSec = await blast(a, () => got, count, () => convTopic('c1'), count);
      const cpu = (await redisCpuMs(admin)) - cpu0;
      throughput.push({ publishBatching, msgPerSec: perSec, redisCpuUsPerMsg: Math.round(((cpu * 1000) / count) * 100) / 100 });
      console.log('throughput', JSON.stringify(throughput.at(-1)));
      await a.close();
      await b.close();
    }
    results.throughput = throughput;

    const latency: Record<string, number | string>[] = [];
    for (const rate of runs('latency') ? [1_000, 5_000, 10_000, 20_000] : []) {
      for (const publishBatching of alternating) {
        const a = await RedisBus.open({ url, prefix: 'l:', publishBatching });
        const b = await RedisBus.open({ url, prefix: 'l:' });
        await b.subscribe(convTopic('lat'));
        const row = { publishBatching, ...(await latencyAt(a, b, rate, quick ? 1 : 3)) };
        latency.push(row);
        console.log('latency', JSON.stringify(row));
        await a.close();
        await b.close();
      }
    }
    results.latency = latency;

    const many: Record<string, number>[] = [];
    for (const count of runs('channels') ? [1_000, 10_000] : []) {
      const row = await channels(url, admin, count);
      many.push(row);
      console.log('channels', JSON.stringify(row));
    }
    results.channels = many;
  } finally {
    admin.disconnect();
    server.kill('SIGKILL');
  }
  console.log(JSON.stringify(results, null, 2));
}

await main();
