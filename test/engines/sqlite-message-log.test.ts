/**
 * The SQLite store's message log (events.ts, recent-messages.ts): new messages
 * live in `message_log` and an in-memory index until commits move them into
 * `messages`. These tests pin what the port suite cannot see: moves, restarts,
 * rollbacks that must rebuild the index, and a move that keeps failing.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import type { AppendInput, Store } from '../../src/core/ports/store.js';
import { openSqliteStore, type SqliteStore } from '../../src/engines/sqlite/store.js';
import { MIGRATIONS, migrate } from '../../src/engines/sqlite/migrations.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-msglog-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshPath = (): string => join(dir, `log-${process.pid}-${++n}.db`);

const T0 = 1_700_000_000_000;
const CONVS = ['c1', 'c2', 'c3'];

async function seed(s: Store): Promise<void> {
  for (const id of ['u1', 'u2']) await s.users.create({ id, username: id, displayName: id, createdAt: T0, passwordHash: 'h' });
  for (const id of CONVS) {
    await s.conversations.create({ id, kind: 'group', title: id, members: [{ userId: 'u1', role: 'owner' }, { userId: 'u2', role: 'member' }], at: T0 });
  }
}

type Send = Extract<AppendInput, { kind: 'message.created' }>;
const send = (conv: string, i: number, actor = i % 2 ? 'u2' : 'u1', extra: { replyTo?: string } = {}): Send => ({
  kind: 'message.created',
  conversationId: conv,
  actorId: actor,
  at: T0 + i,
  // Every eighth body is long enough to skip the log and go straight into `messages`.
  message: { id: `m${String(i).padStart(5, '0')}`, clientId: `k${i}`, body: i % 8 === 5 ? `long ${'x'.repeat(1100)} ${i}` : `body ${i}`, ...extra },
});

/**
 * Raw counts: log rows not moved yet, rows of `messages`, and ids that do not
 * name exactly one message of either (a log row whose message is in `messages`
 * has moved and waits for the log's oldest end to be trimmed).
 */
function tables(path: string): { log: number; messages: number; badIds: number } {
  const db = new Database(path, { readonly: true });
  try {
    const one = (sql: string): number => (db.prepare(sql).get() as { n: number }).n;
    const live = `SELECT conversation_id, seq, id FROM message_log l
      WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = l.conversation_id AND m.seq = l.seq)`;
    return {
      log: one(`SELECT count(*) AS n FROM (${live})`),
      messages: one('SELECT count(*) AS n FROM messages'),
      badIds: one(`SELECT (SELECT count(*) FROM message_ids) - (SELECT count(*) FROM message_ids i WHERE EXISTS
        (SELECT 1 FROM (${live} UNION ALL SELECT conversation_id, seq, id FROM messages) x
         WHERE x.id = i.id AND x.conversation_id = i.conversation_id AND x.seq = i.seq)) AS n`),
    };
  } finally {
    db.close();
  }
}

/** Everything a reader can see of the conversations, for comparing stores that hold the same history. */
async function snapshot(s: Store): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const conv of CONVS) {
    const pages: unknown[] = [];
    for (const limit of [1, 3, 50]) {
      pages.push(await s.events.after(conv, 0, limit), await s.events.after(conv, 4, limit));
      pages.push(await s.events.messages(conv, { limit }));
      pages.push(await s.events.messages(conv, { before: 9, limit }), await s.events.messages(conv, { after: 3, limit }));
      pages.push(await s.events.messages(conv, { after: 2, before: 12, limit }));
    }
    out[conv] = { pages, u1: await s.conversations.getFor(conv, 'u1'), u2: await s.conversations.getFor(conv, 'u2') };
  }
  out.lists = [await s.conversations.listForUser('u1', 10), await s.conversations.listForUser('u2', 10)];
  return out;
}

/** A history with replies, edits, deletes, reactions and retries over three conversations. */
async function history(s: Store): Promise<void> {
  const ids: string[] = [];
  for (let i = 0; i < 60; i++) {
    const conv = CONVS[i % 3] as string;
    const replyTo = i >= 6 && i % 5 === 0 ? ids[i - 3] : undefined;
    const r = await s.events.append(send(conv, i, undefined, replyTo ? { replyTo } : {}));
    assert.equal(r.status, 'appended');
    ids.push(`m${String(i).padStart(5, '0')}`);
    // Changes to messages old and new, some in the same batch as a send.
    const edit = i % 7 === 3 ? s.events.append({ kind: 'message.edited', conversationId: conv, actorId: i % 2 ? 'u2' : 'u1', at: T0 + i, messageId: ids[i] as string, body: `edited ${i}` }) : undefined;
    if (i % 11 === 10) {
      await s.events.append({ kind: 'message.deleted', conversationId: CONVS[(i - 6) % 3] as string, actorId: 'u1', at: T0 + i, messageId: ids[i - 6] as string });
    }
    if (i >= 5 && i % 4 === 1) {
      await s.events.append({ kind: 'message.reacted', conversationId: CONVS[(i - 3) % 3] as string, actorId: 'u2', at: T0 + i, messageId: ids[i - 3] as string, reaction: '👍', active: true });
    }
    if (i % 9 === 4) {
      const retry = await s.events.append(send(CONVS[(i - 3) % 3] as string, i - 3));
      assert.equal(retry.status, 'unchanged');
    }
    if (edit) await edit;
    if (i % 13 === 12) await s.conversations.markRead(conv, 'u2', i);
  }
}

describe('SQLite message log', () => {
  it('reads the same with no message moved, every message moved, and some moved', async () => {
    const snaps: unknown[] = [];
    const moved: number[] = [];
    for (const recentBytes of [1 << 30, 0, 2000]) {
      const s = openSqliteStore({ path: freshPath(), recentBytes });
      try {
        await seed(s);
        await history(s);
        snaps.push(await snapshot(s));
        moved.push(s.messageLog().moved);
      } finally {
        await s.close();
      }
    }
    // 53 of the 60 bodies are short enough for the log; with recentBytes 0 every one of them moves.
    assert.equal(moved[1], 53);
    assert.ok((moved[0] as number) < (moved[2] as number) && (moved[2] as number) < 53, `moved ${moved.join(', ')}`);
    assert.deepEqual(snaps[1], snaps[0]);
    assert.deepEqual(snaps[2], snaps[0]);
  });

  it('keeps recent messages across a restart; every id names exactly one message', async () => {
    const path = freshPath();
    const s1 = openSqliteStore({ path, recentBytes: 2000 });
    await seed(s1);
    await history(s1);
    const before = await snapshot(s1);
    const log = s1.messageLog();
    assert.ok(log.recent > 0 && log.moved > 0, JSON.stringify(log));
    await s1.close();
    const t = tables(path);
    assert.equal(t.log, log.recent);
    assert.equal(t.badIds, 0);
    assert.equal(t.log + t.messages, 60);

    const s2 = openSqliteStore({ path });
    try {
      assert.equal(s2.messageLog().recent, log.recent, 'the index is rebuilt from the log on open');
      assert.deepEqual(await snapshot(s2), before);
      const again = await s2.events.append(send('c1', 0));
      assert.equal(again.status, 'unchanged', 'a retry of a message sent before the restart is found');
    } finally {
      await s2.close();
    }
  });

  it('moves a recent message into messages before an edit, a delete or a reaction changes it', async () => {
    const path = freshPath();
    const s = openSqliteStore({ path });
    try {
      await seed(s);
      for (let i = 0; i < 3; i++) await s.events.append(send('c1', i));
      assert.deepEqual(s.messageLog(), { recent: 3, recentBytes: s.messageLog().recentBytes, moved: 0, moveFailures: 0 });
      await s.events.append({ kind: 'message.edited', conversationId: 'c1', actorId: 'u1', at: T0, messageId: 'm00000', body: 'new' });
      await s.events.append({ kind: 'message.deleted', conversationId: 'c1', actorId: 'u2', at: T0, messageId: 'm00001' });
      await s.events.append({ kind: 'message.reacted', conversationId: 'c1', actorId: 'u1', at: T0, messageId: 'm00002', reaction: '🎉', active: true });
      assert.equal(s.messageLog().recent, 0);
      assert.equal(s.messageLog().moved, 3);
      const events = await s.events.after('c1', 0, 10);
      assert.deepEqual(events.map((e) => e.kind), ['message.created', 'message.created', 'message.created', 'message.edited', 'message.deleted', 'message.reacted']);
      const created = events.filter((e) => e.kind === 'message.created').map((e) => (e.kind === 'message.created' ? e.message.body : ''));
      assert.deepEqual(created, ['body 0', '', 'body 2'], 'the created event keeps the body as sent; a delete scrubs it');
      assert.equal((await s.events.message('m00000'))?.body, 'new');
      assert.deepEqual((await s.events.message('m00002'))?.reactions, { '🎉': ['u1'] });
    } finally {
      await s.close();
    }
    assert.deepEqual(tables(path), { log: 0, messages: 3, badIds: 0 });
  });

  it('rejects a message id already taken, recent or moved, without writing it', async () => {
    const s = openSqliteStore({ path: freshPath(), recentBytes: 0 });
    try {
      await seed(s);
      await s.events.append(send('c1', 0));
      await assert.rejects(s.events.append({ ...send('c2', 0), message: { id: 'm00000', clientId: 'other', body: 'x' } }), /already exists/);
      // Held in memory: the next one stays recent until its batch commits (recentBytes 0 then moves it).
      const [a, b] = await Promise.allSettled([s.events.append(send('c1', 1)), s.events.append({ ...send('c2', 1), message: { id: 'm00001', clientId: 'k-other', body: 'x' } })]);
      assert.equal(a.status, 'fulfilled');
      assert.equal(b.status, 'rejected');
      assert.equal((await s.conversations.get('c2'))?.lastSeq, 0);
    } finally {
      await s.close();
    }
  });

  it('rebuilds the index when a change that moved a recent message is rolled back', async () => {
    const path = freshPath();
    const s = openSqliteStore({ path });
    const raw = new Database(path, { timeout: 5000 });
    try {
      await seed(s);
      await s.events.append(send('c1', 0));
      raw.exec(`CREATE TRIGGER no_edits BEFORE INSERT ON events WHEN NEW.kind = 'message.edited' BEGIN SELECT RAISE(ABORT, 'no edits'); END`);
      await assert.rejects(s.events.append({ kind: 'message.edited', conversationId: 'c1', actorId: 'u1', at: T0, messageId: 'm00000', body: 'new' }));
      assert.equal(s.messageLog().recent, 1, 'the move was rolled back with the edit');
      assert.equal((await s.events.message('m00000'))?.body, 'body 0');
      assert.deepEqual((await s.events.after('c1', 0, 10)).map((e) => e.seq), [1]);
      assert.equal((await s.events.append(send('c1', 0))).status, 'unchanged');
      raw.exec('DROP TRIGGER no_edits');
      await s.events.append({ kind: 'message.edited', conversationId: 'c1', actorId: 'u1', at: T0, messageId: 'm00000', body: 'new' });
      assert.equal((await s.events.message('m00000'))?.body, 'new');
    } finally {
      raw.close();
      await s.close();
    }
    assert.deepEqual(tables(path), { log: 0, messages: 1, badIds: 0 });
  });

  it('upgrades a file from before the log: its messages stay readable by id, retry and seq', async () => {
    const path = freshPath();
    const raw = new Database(path);
    migrate(raw, MIGRATIONS.filter((m) => m.version <= 2));
    raw.exec(`INSERT INTO users (id, username, display_name, password_hash, created_at) VALUES ('u1', 'u1', 'u1', 'h', 0), ('u2', 'u2', 'u2', 'h', 0);
      INSERT INTO conversations (id, kind, title, last_seq, created_at, updated_at) VALUES ('c1', 'group', 'c1', 1, 0, 0);
      INSERT INTO members (conversation_id, user_id, role) VALUES ('c1', 'u1', 'owner'), ('c1', 'u2', 'member');
      INSERT INTO messages (conversation_id, seq, id, sender_id, client_id, body, created_at) VALUES ('c1', 1, 'm-old', 'u1', 'k-old', 'old', 0);`);
    raw.close();
    const s = openSqliteStore({ path });
    try {
      assert.equal((await s.events.message('m-old'))?.body, 'old');
      const retry = await s.events.append({ kind: 'message.created', conversationId: 'c1', actorId: 'u1', at: T0, message: { id: 'm-new', clientId: 'k-old', body: 'old' } });
      assert.equal(retry.status === 'unchanged' && retry.message?.id, 'm-old');
      await assert.rejects(s.events.append({ ...send('c1', 1), message: { id: 'm-old', clientId: 'k-x', body: 'x' } }), /already exists/);
      await s.events.append(send('c1', 2));
      assert.deepEqual((await s.events.after('c1', 0, 10)).map((e) => e.seq), [1, 2]);
    } finally {
      await s.close();
    }
  });

  it('goes on accepting sends while moves fail, and moves them once the fault is gone', async () => {
    const path = freshPath();
    const s: SqliteStore = openSqliteStore({ path, recentBytes: 0, moveRetryMs: 100 });
    const raw = new Database(path, { timeout: 5000 });
    try {
      await seed(s);
      raw.exec(`CREATE TRIGGER broken BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'broken'); END`);
      for (let i = 0; i < 5; i++) assert.equal((await s.events.append(send('c1', i))).status, 'appended');
      assert.equal(s.messageLog().recent, 5);
      assert.ok(s.messageLog().moveFailures >= 1);
      assert.deepEqual((await s.events.after('c1', 0, 10)).map((e) => e.seq), [1, 2, 3, 4, 5]);
      raw.exec('DROP TRIGGER broken');
      await sleep(150);
      await s.events.append(send('c1', 5));
      assert.equal(s.messageLog().recent, 0);
      assert.deepEqual((await s.events.messages('c1', { limit: 10 })).messages.map((m) => m.seq), [1, 2, 3, 4, 5, 6]);
    } finally {
      raw.close();
      await s.close();
    }
    assert.deepEqual(tables(path), { log: 0, messages: 6, badIds: 0 });
  });
});
