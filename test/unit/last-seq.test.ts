/**
 * LastSeqs on a real (in-memory SQLite) store: a cold node bounds a seq by the
 * log it finds, and what it learns, or is told by `note`, spares later reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSqliteStore } from '../../src/engines/sqlite/store.js';
import { LastSeqs, type LastSeqReads } from '../../src/core/last-seq.js';

test('bound: min(seq, lastSeq) from a cold start, 0 on an empty log, no store read for a known seq', async () => {
  const store = openSqliteStore({ path: ':memory:', synchronous: 'full' });
  try {
    const at = Date.now();
    for (const id of ['ua', 'ub']) await store.users.create({ id, username: id, displayName: id, createdAt: at, passwordHash: 'x' });
    const members = [
      { userId: 'ua', role: 'member' as const },
      { userId: 'ub', role: 'member' as const },
    ];
    await store.conversations.create({ id: 'c1', kind: 'group', title: 't', members, at });
    await store.conversations.create({ id: 'c2', kind: 'group', title: 'empty', members, at });
    for (let i = 0; i < 3; i++) {
      await store.events.append({ kind: 'message.created', conversationId: 'c1', actorId: 'ua', at, message: { id: `m${i}`, clientId: `k${i}`, body: 'x' } });
    }
    // Counts the store reads LastSeqs makes, on the real store underneath.
    let reads = 0;
    const counted: LastSeqReads = {
      events: { after: (...args) => (reads++, store.events.after(...args)) },
      conversations: { get: (id) => (reads++, store.conversations.get(id)) },
    };
    const seqs = new LastSeqs(counted);
    assert.equal(await seqs.bound('c1', 2), 2);
    assert.equal(await seqs.bound('c1', 99), 3);
    assert.equal(await seqs.bound('c2', 1), 0);
    assert.equal(await seqs.bound('nope', 1), 0);
    const before = reads;
    assert.equal(await seqs.bound('c1', 3), 3, 'learned from the store');
    seqs.note('c1', 7);
    assert.equal(await seqs.bound('c1', 7), 7, 'told by a local commit');
    assert.equal(reads, before, 'known seqs need no store read');
  } finally {
    await store.close();
  }
});
