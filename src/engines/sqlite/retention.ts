/**
 * RetentionStore on SQLite (contract: core/ports/store.ts).
 *
 * A conversation's log lives in two tables, both keyed by (conversation, seq):
 * `messages` holds message.created (with its time in created_at), `events`
 * every other kind (time in at); each seq is in exactly one of them. Clearing
 * removes a prefix of seqs from both and records it in
 * conversations.cleared_through_seq.
 *
 * Clears go through their own group committer behind the same gate as the
 * appends, so a checkpoint catching up keeps them out too, and a clear never
 * waits on a lock on the event loop.
 */
import type Database from 'better-sqlite3';
import type { Id, Millis } from '../../protocol/model.js';
import type { RetentionStore, RetentionTarget } from '../../core/ports/store.js';
import { GroupCommit, type TransactionGate } from './group-commit.js';
import { RETENTION_TARGET_COLUMNS, toRetentionTarget, type RetentionTargetRow } from '../sql-rows.js';

interface ClearInput {
  conversationId: Id;
  before: Millis;
  maxEvents: number;
}

export class SqliteRetentionStore implements RetentionStore {
  private readonly st;
  private readonly committer: GroupCommit<ClearInput, number | undefined>;

  constructor(db: Database.Database, gate?: TransactionGate) {
    this.st = {
      setPolicy: db.prepare<[number | null, string]>('UPDATE conversations SET retention_days = ? WHERE id = ?'),
      // `policy` 1 keeps only conversations with a policy of their own.
      page: db.prepare<{ after: string | null; limit: number; policy: number }, RetentionTargetRow>(
        `SELECT ${RETENTION_TARGET_COLUMNS} FROM conversations
         WHERE (@after IS NULL OR id > @after) AND last_seq > cleared_through_seq
           AND (@policy = 0 OR retention_days IS NOT NULL)
         ORDER BY id LIMIT @limit`,
      ),
      target: db.prepare<[string], RetentionTargetRow>(`SELECT ${RETENTION_TARGET_COLUMNS} FROM conversations WHERE id = ?`),
      // Each walks its table's primary key in seq order and stops at the first row as new as the cutoff:
      // a conversation of millions of messages costs at most `limit` rows here, never a scan of all of them.
      firstNewMessage: db.prepare<[string, number, number, Millis], { seq: number }>(
        `SELECT seq FROM (SELECT seq, created_at FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq LIMIT ?)
         WHERE created_at >= ? ORDER BY seq LIMIT 1`,
      ),
      firstNewEvent: db.prepare<[string, number, number, Millis], { seq: number }>(
        `SELECT seq FROM (SELECT seq, at FROM events WHERE conversation_id = ? AND seq > ? ORDER BY seq LIMIT ?)
         WHERE at >= ? ORDER BY seq LIMIT 1`,
      ),
      delMessages: db.prepare<[string, number, number]>('DELETE FROM messages WHERE conversation_id = ? AND seq > ? AND seq <= ?'),
      delEvents: db.prepare<[string, number, number]>('DELETE FROM events WHERE conversation_id = ? AND seq > ? AND seq <= ?'),
      cleared: db.prepare<[number, string]>('UPDATE conversations SET cleared_through_seq = ? WHERE id = ?'),
    };
    // Every statement of a clear can fail only before it has written anything that matters alone; still,
    // its own savepoint keeps a failed clear from touching the rest of a batch.
    this.committer = new GroupCommit(db, (input: ClearInput) => this.clearNow(input), { gate });
  }

  async setPolicy(conversationId: Id, days: number | null): Promise<boolean> {
    return this.st.setPolicy.run(days, conversationId).changes > 0;
  }

  async scan(limit: number, afterId?: Id, opts: { withPolicyOnly?: boolean } = {}): Promise<RetentionTarget[]> {
    return this.st.page.all({ after: afterId ?? null, limit, policy: opts.withPolicyOnly ? 1 : 0 }).map(toRetentionTarget);
  }

  clear(conversationId: Id, before: Millis, maxEvents: number): Promise<number | undefined> {
    return this.committer.submit({ conversationId, before, maxEvents });
  }

  /** Applies queued clears and refuses new ones. */
  close(): void {
    this.committer.close();
  }

  private clearNow({ conversationId, before, maxEvents }: ClearInput): number | undefined {
    const t = this.st.target.get(conversationId);
    if (!t || maxEvents < 1) return undefined;
    const from = t.cleared_through_seq;
    const firstNew = Math.min(
      this.st.firstNewMessage.get(conversationId, from, maxEvents, before)?.seq ?? Infinity,
      this.st.firstNewEvent.get(conversationId, from, maxEvents, before)?.seq ?? Infinity,
    );
    const through = Math.min(firstNew - 1, t.last_seq, from + maxEvents);
    if (through <= from) return undefined;
    this.st.delMessages.run(conversationId, from, through);
    this.st.delEvents.run(conversationId, from, through);
    this.st.cleared.run(through, conversationId);
    return through;
  }
}
