/**
 * The SQLite search indexer's own behaviour, beyond the shared suite: it
 * indexes messages stored before search existed (migration 5 on old data), it
 * yields to a busy event loop, and a clock that stepped back between two runs
 * loses nothing.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Store } from '../../src/core/ports/store.js';
import { openSqliteStore, type SqliteStoreOptions } from '../../src/engines/sqlite/store.js';
import { IdGenerator } from '../../src/core/ids.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-search-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshPath = (): string => join(dir, `s-${process.pid}-${++n}.db`);
const T0 = 1_700_000_000_000;

async function seed(s: Store): Promise<void> {
  await s.users.create({ id: 'u1', username: 'alice', displayName: 'Alice', createdAt: T0, passwordHash: 'h' });
  await s.conversations.create({ id: 'c1', kind: 'group', title: 'T', members: [{ userId: 'u1', role: 'owner' }], at: T0 });
}

async function sendMany(s: Store, ids: IdGenerator, count: number, body: (i: number) => string): Promise<void> {
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      s.events.append({ kind: 'message.created', conversationId: 'c1', actorId: 'u1', at: T0 + i, message: { id: ids.next(), clientId: `${ids.next()}`, body: body(i) } }),
    ),
  );
}

/** Every match, following `next` to the end. */
async function countAll(s: Store, term: string): Promise<number> {
  let total = 0;
  let after: string | undefined;
  for (let i = 0; i < 1000; i++) {
    const p = await s.search.search({ userId: 'u1', terms: [term], limit: 50, ...(after === undefined ? {} : { after }) });
    total += p.messages.length;
    if (p.next === undefined) return total;
    after = p.next;
  }
  throw new Error('no end');
}

/** Docs in the index, read directly. */
function indexedCount(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM search_docs').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

const open = (path: string, more: Partial<SqliteStoreOptions> = {}) => openSqliteStore({ path, ...more });

describe('SQLite search indexer', () => {
  it('indexes, by itself and in steps, the messages a database held before migration 5', async () => {
    const path = freshPath();
    const s1 = open(path);
    await seed(s1);
    await sendMany(s1, new IdGenerator('old'), 1200, (i) => `old message ${i} about tea`);
    await s1.close();
    // Back to before search (migration 5) and attachments (6, and 9 which added a column to its table);
    // the encryption migration (8) stays.
    const db = new Database(path);
    db.exec(`DROP TRIGGER attachment_refs_released; DROP TABLE attachment_refs; DROP TABLE attachments;
             ALTER TABLE messages DROP COLUMN attachments;
             DROP TRIGGER messages_search_update; DROP TRIGGER messages_search_delete;
             DROP TABLE message_search; DROP TABLE search_docs; DROP TABLE search_state;
             DELETE FROM schema_migrations WHERE version IN (5, 6, 9);`);
    db.close();
    const s2 = open(path, { search: { intervalMs: 20, batch: 100, batchesPerRun: 2 } });
    try {
      const deadline = Date.now() + 10_000;
      while (indexedCount(path) < 1200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(indexedCount(path), 1200, 'the background indexer got through the backlog by itself');
      assert.equal(await countAll(s2, 'tea'), 1200);
    } finally {
      await s2.close();
    }
  });

  it('takes one batch per look while the event loop is busy, and all it may when it is not', async () => {
    const path = freshPath();
    let busy = true;
    // A look only when asked (no timer during the test).
    const s = open(path, { search: { intervalMs: 3_600_000, batch: 10, batchesPerRun: 5, busy: () => busy } });
    try {
      await seed(s);
      await sendMany(s, new IdGenerator('n'), 100, (i) => `m${i} busy`);
      const look = (): Promise<void> => (s.search as unknown as { run(asked?: boolean): Promise<void> }).run();
      await look();
      assert.equal(indexedCount(path), 10, 'busy: one batch');
      busy = false;
      await look();
      assert.equal(indexedCount(path), 60, 'idle: five batches');
      busy = true;
      await s.search.indexed();
      assert.equal(indexedCount(path), 100, 'indexed() does not hold back, busy or not');
    } finally {
      await s.close();
    }
  });

  it('loses nothing when the clock stepped back between two runs', async () => {
    const path = freshPath();
    const s1 = open(path);
    await seed(s1);
    // The last run's clock was an hour ahead: its ids sort after anything made now.
    await sendMany(s1, new IdGenerator('ahead', () => Date.now() + 3_600_000), 5, (i) => `ahead ${i} kiwi`);
    await s1.search.indexed();
    await s1.close();
    const s2 = open(path);
    try {
      await sendMany(s2, new IdGenerator('now'), 5, (i) => `now ${i} kiwi`);
      await s2.search.indexed();
      assert.equal(await countAll(s2, 'kiwi'), 10);
    } finally {
      await s2.close();
    }
  });
});
