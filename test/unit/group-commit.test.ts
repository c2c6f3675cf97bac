import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { eventLoopBusy, GroupCommit } from '../../src/engines/sqlite/group-commit.js';

/** A committer over a one-table database; `busy` says whether the event loop counts as busy. */
function committer(busy: () => boolean, windowMs: number): { gc: GroupCommit<number, number>; db: Database.Database } {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t (n INTEGER NOT NULL)');
  const insert = db.prepare<[number]>('INSERT INTO t (n) VALUES (?)');
  const gc = new GroupCommit<number, number>(db, (n) => (insert.run(n), n), { windowMs, busy });
  return { gc, db };
}

/** Waits for one write after another has just committed; returns how long the second took. */
async function secondWriteMs(gc: GroupCommit<number, number>): Promise<number> {
  await gc.submit(1);
  const t0 = performance.now();
  await gc.submit(2);
  return performance.now() - t0;
}

describe('group commit window', () => {
  it('commits at once while the event loop is not busy, however recent the last commit', async () => {
    const { gc, db } = committer(() => false, 200);
    try {
      const ms = await secondWriteMs(gc);
      assert.ok(ms < 100, `the second write waited ${ms.toFixed(1)} ms for a window it does not need`);
      assert.equal(gc.stats.commits, 2);
    } finally {
      gc.close();
      db.close();
    }
  });

  it('holds the next transaction back for the window while the event loop is busy, so writes can share it', async () => {
    const { gc, db } = committer(() => true, 200);
    try {
      const ms = await secondWriteMs(gc);
      assert.ok(ms >= 150, `the second write committed after ${ms.toFixed(1)} ms, inside the 200 ms window`);
      // Writes that arrive during the window join one transaction.
      await gc.submit(0);
      const before = gc.stats.commits;
      const late = [gc.submit(3)];
      await new Promise((r) => setTimeout(r, 20));
      late.push(gc.submit(4));
      await Promise.all(late);
      assert.equal(gc.stats.commits - before, 1);
      assert.deepEqual(db.prepare('SELECT n FROM t ORDER BY rowid').pluck().all(), [1, 2, 0, 3, 4]);
    } finally {
      gc.close();
      db.close();
    }
  });
});

describe('eventLoopBusy', () => {
  it('reads idle after a quiet spell and busy after the loop was kept working', async () => {
    const busy = eventLoopBusy(0.5, 20);
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(busy(), false);
    // Keep the loop spinning for a whole sample, then ask after the sample ended.
    const until = performance.now() + 60;
    while (performance.now() < until) {
      /* working */
    }
    assert.equal(busy(), true);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(busy(), false, 'a sample spent waiting reads idle again');
  });
});
