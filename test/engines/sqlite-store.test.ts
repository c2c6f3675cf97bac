import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError, type Store } from '../../src/core/ports/store.js';
import { openSqliteStore } from '../../src/engines/sqlite/store.js';
import { MIGRATIONS } from '../../src/engines/sqlite/migrations.js';
import { storeSuite } from '../ports/store.suite.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-sqlite-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const freshPath = (): string => join(dir, `store-${process.pid}-${++n}.db`);

const files = new Map<Store, string>();
storeSuite(
  'sqlite (temp file)',
  async () => {
    const path = freshPath();
    const s = openSqliteStore({ path });
    files.set(s, path);
    return s;
  },
  async (s) => {
    await s.close();
    const path = files.get(s);
    files.delete(s);
    if (path) for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
  },
);

storeSuite(
  'sqlite (:memory:, synchronous full)',
  async () => openSqliteStore({ path: ':memory:', synchronous: 'full' }),
  async (s) => s.close(),
);

describe('SQLite store engine', () => {
  const T0 = 1_700_000_000_000;

  async function seed(s: Store): Promise<{ conv: string; user: string }> {
    await s.users.create({ id: 'u1', username: 'alice', displayName: 'Alice', createdAt: T0, passwordHash: 'h' });
    await s.conversations.create({ id: 'c1', kind: 'group', title: 'T', members: [{ userId: 'u1', role: 'owner' }], at: T0 });
    return { conv: 'c1', user: 'u1' };
  }

  it('keeps data, including appends fired just before close, across close and reopen', async () => {
    const path = freshPath();
    const s1 = openSqliteStore({ path });
    const { conv, user } = await seed(s1);
    const pending = Array.from({ length: 30 }, (_, i) =>
      s1.events.append({ kind: 'message.created', conversationId: conv, actorId: user, at: T0 + i, message: { id: `m${i}`, clientId: `k${i}`, body: `b${i}` } }),
    );
    await s1.close();
    await Promise.all(pending);
    const s2 = openSqliteStore({ path });
    try {
      assert.equal((await s2.conversations.get(conv))?.lastSeq, 30);
      assert.equal((await s2.users.byUsername('ALICE'))?.id, user);
      const events = await s2.events.after(conv, 0, 100);
      assert.deepEqual(events.map((e) => e.seq), Array.from({ length: 30 }, (_, i) => i + 1));
      const next = await s2.events.append({
        kind: 'message.created', conversationId: conv, actorId: user, at: T0 + 99, message: { id: 'm99', clientId: 'k99', body: 'after reopen' },
      });
      assert.equal(next.status === 'appended' && next.event.seq, 31);
    } finally {
      await s2.close();
    }
  });

  it('applies migrations once and records them; reopening applies nothing again', async () => {
    const path = freshPath();
    await openSqliteStore({ path }).close();
    await openSqliteStore({ path }).close();
    const db = new Database(path, { readonly: true });
    try {
      const rows = db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[];
      assert.deepEqual(rows.map((r) => r.version), MIGRATIONS.map((m) => m.version));
    } finally {
      db.close();
    }
  });

  it('opens the file in WAL mode with foreign keys on, a busy timeout and the synchronous level asked', async () => {
    for (const [option, level] of [[undefined, 'normal'], ['normal', 'normal'], ['full', 'full']] as const) {
      const s = openSqliteStore(option ? { path: freshPath(), synchronous: option } : { path: freshPath() });
      try {
        assert.deepEqual(s.settings(), { journalMode: 'wal', synchronous: level, foreignKeys: true, busyTimeoutMs: 5000 });
      } finally {
        await s.close();
      }
    }
  });

  it('commits a burst of appends made in one turn as one transaction', async () => {
    const s = openSqliteStore({ path: freshPath() });
    try {
      const { conv, user } = await seed(s);
      const before = s.stats();
      const burst = Array.from({ length: 200 }, (_, i) =>
        s.events.append({ kind: 'message.created', conversationId: conv, actorId: user, at: T0 + i, message: { id: `m${i}`, clientId: `k${i}`, body: 'x' } }),
      );
      await Promise.all(burst);
      const afterBurst = s.stats();
      assert.equal(afterBurst.commits - before.commits, 1);
      assert.equal(afterBurst.writes - before.writes, 200);
      // Awaited one by one, each append gets its own commit.
      for (let i = 0; i < 3; i++) {
        await s.events.append({ kind: 'message.created', conversationId: conv, actorId: user, at: T0, message: { id: `s${i}`, clientId: `s${i}`, body: 'x' } });
      }
      assert.equal(s.stats().commits - afterBurst.commits, 3);
    } finally {
      await s.close();
    }
  });

  it('splits a burst larger than the batch limit over several commits, still gap-free', async () => {
    const s = openSqliteStore({ path: freshPath() });
    try {
      const { conv, user } = await seed(s);
      const before = s.stats().commits;
      const results = await Promise.all(
        Array.from({ length: 2500 }, (_, i) =>
          s.events.append({ kind: 'message.created', conversationId: conv, actorId: user, at: T0, message: { id: `m${i}`, clientId: `k${i}`, body: 'x' } }),
        ),
      );
      assert.equal(s.stats().commits - before, 3);
      const seqs = results.map((r) => (r.status === 'appended' ? r.event.seq : 0));
      assert.deepEqual(seqs, Array.from({ length: 2500 }, (_, i) => i + 1), 'seqs follow submission order');
    } finally {
      await s.close();
    }
  });

  it('keeps seqs gap-free when two connections append to the same file', async () => {
    const path = freshPath();
    const s1 = openSqliteStore({ path });
    const s2 = openSqliteStore({ path });
    try {
      const { conv, user } = await seed(s1);
      const all = Array.from({ length: 400 }, (_, i) =>
        (i % 2 ? s1 : s2).events.append({
          kind: 'message.created', conversationId: conv, actorId: user, at: T0, message: { id: `m${i}`, clientId: `k${i}`, body: 'x' },
        }),
      );
      const seqs = (await Promise.all(all)).map((r) => (r.status === 'appended' ? r.event.seq : 0)).sort((a, b) => a - b);
      assert.deepEqual(seqs, Array.from({ length: 400 }, (_, i) => i + 1));
      assert.equal((await s2.conversations.get(conv))?.lastSeq, 400);
    } finally {
      await s1.close();
      await s2.close();
    }
  });

  it('makes one direct conversation when two connections create the same pair', async () => {
    const path = freshPath();
    const s1 = openSqliteStore({ path });
    const s2 = openSqliteStore({ path });
    try {
      for (const id of ['a', 'b']) await s1.users.create({ id, username: id, displayName: id, createdAt: T0, passwordHash: 'h' });
      const members = [{ userId: 'a', role: 'member' as const }, { userId: 'b', role: 'member' as const }];
      const [r1, r2] = await Promise.all([
        s1.conversations.create({ id: 'd1', kind: 'direct', members, at: T0 }),
        s2.conversations.create({ id: 'd2', kind: 'direct', members: [...members].reverse(), at: T0 }),
      ]);
      assert.deepEqual([r1.created, r2.created], [true, false]);
      assert.equal(r2.conversation.id, 'd1');
    } finally {
      await s1.close();
      await s2.close();
    }
  });

  it('rejects references to users or devices that do not exist with not_found', async () => {
    const s = openSqliteStore({ path: ':memory:' });
    try {
      const { conv, user } = await seed(s);
      await assert.rejects(s.devices.create({ id: 'd', userId: 'ghost', name: 'x', createdAt: T0, lastActiveAt: T0 }), isCode('not_found'));
      await assert.rejects(s.devices.addRefreshToken('hash', 'ghost-device', T0), isCode('not_found'));
      await assert.rejects(
        s.conversations.create({ id: 'c2', kind: 'group', title: 'x', members: [{ userId: 'ghost', role: 'owner' }], at: T0 }),
        isCode('not_found'),
      );
      assert.equal(await s.conversations.get('c2'), undefined, 'a failed create leaves nothing behind');
      await assert.rejects(
        s.events.append({ kind: 'member.joined', conversationId: conv, actorId: user, at: T0, userId: 'ghost', role: 'member' }),
        isCode('not_found'),
      );
      assert.equal((await s.conversations.get(conv))?.lastSeq, 0);
    } finally {
      await s.close();
    }
  });

  it('treats a token as expired from expiresAt on', async () => {
    const s = openSqliteStore({ path: ':memory:' });
    try {
      await seed(s);
      await s.devices.create({ id: 'd', userId: 'u1', name: 'x', createdAt: T0, lastActiveAt: T0 });
      await s.devices.addRefreshToken('t1', 'd', T0 + 10);
      await s.devices.addRefreshToken('t2', 'd', T0 + 10);
      assert.equal((await s.devices.spendRefreshToken('t1', T0 + 10))?.outcome, 'expired');
      assert.equal((await s.devices.spendRefreshToken('t2', T0 + 9))?.outcome, 'ok');
    } finally {
      await s.close();
    }
  });

  it('starts a member who joins later as having read up to the join', async () => {
    const s = openSqliteStore({ path: ':memory:' });
    try {
      const { conv, user } = await seed(s);
      await s.users.create({ id: 'u2', username: 'bob', displayName: 'Bob', createdAt: T0, passwordHash: 'h' });
      await s.events.append({ kind: 'message.created', conversationId: conv, actorId: user, at: T0, message: { id: 'm1', clientId: 'k1', body: 'x' } });
      await s.events.append({ kind: 'member.joined', conversationId: conv, actorId: user, at: T0, userId: 'u2', role: 'member' });
      await s.events.append({ kind: 'message.created', conversationId: conv, actorId: user, at: T0, message: { id: 'm2', clientId: 'k2', body: 'y' } });
      assert.equal((await s.conversations.members(conv)).find((m) => m.userId === 'u2')?.lastReadSeq, 2);
      assert.equal((await s.conversations.listForUser('u2', 5)).conversations[0]?.unreadCount, 1);
    } finally {
      await s.close();
    }
  });

  it('rejects a list cursor it did not make, and appends after close', async () => {
    const s = openSqliteStore({ path: ':memory:' });
    await seed(s);
    await assert.rejects(s.conversations.listForUser('u1', 5, 'not-a-cursor'), isCode('not_found'));
    await s.close();
    await s.close();
    assert.equal(await s.ping(), false);
    await assert.rejects(
      s.events.append({ kind: 'conversation.updated', conversationId: 'c1', actorId: 'u1', at: T0, title: 'x' }),
      /closed/,
    );
  });
});

function isCode(code: StoreError['code']): (err: unknown) => boolean {
  return (err) => err instanceof StoreError && err.code === code;
}
