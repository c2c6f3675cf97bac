/**
 * A member removed while their sync is under way: the sync checked membership
 * when it began, so a removal committed after that must still end what it
 * sends. Runs the core's SyncService on a real SQLite store; the removal is
 * committed right after the sync has read the user's conversations (the race
 * a black-box test cannot time).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openSqliteStore } from '../../src/engines/sqlite/store.js';
import { SyncService } from '../../src/core/sync.js';
import { MembershipCache } from '../../src/core/membership.js';
import type { Peer } from '../../src/core/peer.js';
import type { Store } from '../../src/core/ports/store.js';
import type { ServerFrame } from '../../src/protocol/frames.js';

const at = 1_700_000_000_000;

async function seed(): Promise<Store> {
  const store = openSqliteStore({ path: ':memory:' });
  for (const id of ['owner', 'bob']) await store.users.create({ id, username: id, displayName: id, createdAt: at, passwordHash: 'x' });
  await store.conversations.create({
    id: 'g1',
    kind: 'group',
    title: 'team',
    members: [
      { userId: 'owner', role: 'owner' },
      { userId: 'bob', role: 'member' },
    ],
    at,
  });
  for (let i = 0; i < 3; i++) {
    await store.events.append({ kind: 'message.created', conversationId: 'g1', actorId: 'owner', at, message: { id: `m${i}`, clientId: `c${i}`, body: `before ${i}` } });
  }
  return store;
}

/** The store as the sync sees it, with `between` run once after the user's conversations were read. */
function withRaceAfterIds(store: Store, between: () => Promise<void>): Store {
  const conversations = new Proxy(store.conversations, {
    get(target, key, receiver) {
      if (key !== 'idsForUser') return Reflect.get(target, key, receiver) as unknown;
      return async (userId: string) => {
        const ids = await target.idsForUser(userId);
        await between();
        return ids;
      };
    },
  });
  return new Proxy(store, { get: (target, key, receiver) => (key === 'conversations' ? conversations : (Reflect.get(target, key, receiver) as unknown)) });
}

function collector(): { peer: Peer; frames: ServerFrame[]; out: (f: string) => void } {
  const frames: ServerFrame[] = [];
  const peer: Peer = { connId: 'c', userId: 'bob', deviceId: 'd', syncing: undefined, push: () => undefined, close: () => undefined };
  return { peer, frames, out: (f) => frames.push(JSON.parse(f) as ServerFrame) };
}

const bodies = (frames: ServerFrame[]): string[] =>
  frames.flatMap((f) => (f.type === 'event' && f.event.kind === 'message.created' ? [f.event.message.body] : []));

describe('sync and a removal that races it', () => {
  test('a member removed after the sync began gets their own member.left and nothing written after it', async () => {
    const store = await seed();
    try {
      const race = withRaceAfterIds(store, async () => {
        await store.events.append({ kind: 'member.left', conversationId: 'g1', actorId: 'owner', at, userId: 'bob' });
        await store.events.append({ kind: 'message.created', conversationId: 'g1', actorId: 'owner', at, message: { id: 'secret', clientId: 'cs', body: 'after bob left' } });
      });
      const { peer, frames, out } = collector();
      await new SyncService(race, new MembershipCache(race.conversations)).sync(peer, { g1: 0 }, 'r1', out);
      assert.deepEqual(bodies(frames), ['before 0', 'before 1', 'before 2']);
      const kinds = frames.map((f) => (f.type === 'event' ? f.event.kind : f.type));
      assert.deepEqual(kinds.slice(-2), ['member.left', 'synced']);
    } finally {
      await store.close();
    }
  });

  test('removed and added back within the backlog: still a member, so the sync reads on to the end', async () => {
    const store = await seed();
    try {
      await store.events.append({ kind: 'member.left', conversationId: 'g1', actorId: 'owner', at, userId: 'bob' });
      await store.events.append({ kind: 'member.joined', conversationId: 'g1', actorId: 'owner', at, userId: 'bob', role: 'member' });
      await store.events.append({ kind: 'message.created', conversationId: 'g1', actorId: 'owner', at, message: { id: 'back', clientId: 'cb', body: 'welcome back' } });
      const { peer, frames, out } = collector();
      await new SyncService(store, new MembershipCache(store.conversations)).sync(peer, { g1: 0 }, 'r1', out);
      assert.deepEqual(bodies(frames), ['before 0', 'before 1', 'before 2', 'welcome back']);
      assert.equal(frames.at(-1)?.type, 'synced');
    } finally {
      await store.close();
    }
  });
});
