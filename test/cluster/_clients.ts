/**
 * SDK clients for the cluster tests: signed-in users, continuous senders, and
 * the checks every failure test ends with (every message exactly once, in seq
 * order, on every member's device).
 */
import assert from 'node:assert/strict';
import { createNodeClient, type ParleyClient } from '../../src/client/node.js';
import type { Id, Message } from '../../src/protocol/model.js';

export const PASSWORD = 'correct horse battery';
let counter = 0;

export interface Member {
  client: ParleyClient;
  username: string;
  id: Id;
  /** Settles with the client's first sync. */
  firstSync: Promise<void>;
}

/** A new user whose client is signed in and connecting (the SDK's login starts it). */
export async function member(url: string, tag: string, opts: { discovery?: boolean } = {}): Promise<Member> {
  const username = `${tag}${process.pid % 10000}_${++counter}_${Math.random().toString(36).slice(2, 6)}`;
  const client = createNodeClient({ url, backoffMinMs: 50, backoffMaxMs: 1000, gapWaitMs: 50, ...opts });
  const firstSync = new Promise<void>((resolve) => {
    const off = client.on('synced', () => {
      off();
      resolve();
    });
  });
  await client.register(username, PASSWORD);
  const user = await client.login(username, PASSWORD);
  return { client, username, id: user.id, firstSync };
}

export async function started(m: Member, ms = 15_000): Promise<void> {
  await withTimeout(m.firstSync, ms, `${m.username} synced`);
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

export async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Sends `prefix-i` every `everyMs` until `stop()`: the outbox queues while the
 * link is down and resends with the same clientId, as an app would.
 */
export function sender(m: Member, conversationId: Id, prefix: string, everyMs: number): { stop(): Promise<string[]> } {
  const bodies: string[] = [];
  let running = true;
  const loop = (async () => {
    for (let i = 0; running && i < 100_000; i++) {
      const body = `${prefix}-${i}`;
      await m.client.send(conversationId, body);
      bodies.push(body);
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return bodies;
    },
  };
}

/** Waits until no client has anything left in its outbox. */
export async function outboxesEmpty(members: readonly Member[], ms = 30_000): Promise<void> {
  await until(() => members.every((m) => m.client.outbox().length === 0), ms, 'every outbox to empty');
}

/**
 * Every member holds exactly `bodies` (each once), with seqs 1..n without a gap,
 * in seq order. Waits for late deliveries and gap fills first.
 */
export async function everyoneHolds(members: readonly Member[], conversationId: Id, bodies: readonly string[], ms = 30_000): Promise<void> {
  const want = new Set(bodies);
  assert.equal(want.size, bodies.length, 'bodies sent are distinct');
  await until(() => members.every((m) => m.client.messages(conversationId).length >= want.size), ms, `every member to hold ${want.size} messages`).catch((err: unknown) => {
    const counts = members.map((m) => `${m.username}:${m.client.messages(conversationId).length}/${m.client.state}`).join(' ');
    throw new Error(`${String(err)} (${counts})`);
  });
  for (const m of members) checkTimeline(m, m.client.messages(conversationId), want);
}

export function checkTimeline(m: Member, got: readonly Message[], want: ReadonlySet<string>): void {
  const bodies = got.map((x) => x.body);
  assert.equal(new Set(bodies).size, bodies.length, `${m.username}: no message twice`);
  assert.equal(got.length, want.size, `${m.username}: exactly the messages sent`);
  for (const b of bodies) assert.ok(want.has(b), `${m.username}: ${b} was sent`);
  got.forEach((x, i) => assert.equal(x.seq, i + 1, `${m.username}: seq ${i + 1} in order, no gap`));
}

export async function stopAll(members: readonly Member[]): Promise<void> {
  for (const m of members) m.client.stop();
}

/** Connections each node reports in /metrics. */
export async function connectionsOn(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('parley_connections '));
  return line ? Number(line.split(' ')[1]) : NaN;
}
