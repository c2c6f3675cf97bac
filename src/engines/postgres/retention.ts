/**
 * RetentionStore on PostgreSQL (contract: core/ports/store.ts).
 *
 * A conversation's log lives in two tables, both keyed by (conversation,
 * seq): `messages` holds message.created (time in created_at), `events` every
 * other kind (time in at); each seq is in exactly one of them. A clear removes
 * a prefix of seqs from both, with the reactions of the messages it removes,
 * and records it in conversations.cleared_through_seq: one call of the
 * `clear_history` function (schema-v4.ts), so one round trip and one
 * transaction that holds the conversation's row lock, the one appends take,
 * for as short a time as it can.
 *
 * Nothing on the append path caches what a clear changes: append_events reads
 * last_seq under the same row lock, and looks messages up by id each time (an
 * edit, reaction or reply naming a removed message is 'not_found', as for any
 * unknown message). A policy change is not activity: updated_at stays.
 */
import type { RetentionStore, RetentionTarget } from '../../core/ports/store.js';
import { RETENTION_TARGET_COLUMNS, toRetentionTarget, type RetentionTargetRow } from '../sql-rows.js';
import type { Id, Millis } from '../../protocol/model.js';
import type { Db } from './db.js';

export class PostgresRetentionStore implements RetentionStore {
  constructor(private readonly db: Db) {}

  async setPolicy(conversationId: Id, days: number | null): Promise<boolean> {
    const rows = await this.db.query<{ id: string }>('UPDATE conversations SET retention_days = $2 WHERE id = $1 RETURNING id', [
      conversationId,
      days,
    ]);
    return rows.length > 0;
  }

  async scan(limit: number, afterId?: Id, opts: { withPolicyOnly?: boolean } = {}): Promise<RetentionTarget[]> {
    const rows = await this.db.query<RetentionTargetRow>(
      `SELECT ${RETENTION_TARGET_COLUMNS} FROM conversations WHERE ($2::text IS NULL OR id > $2) AND last_seq > cleared_through_seq
         AND (NOT $3::boolean OR retention_days IS NOT NULL)
       ORDER BY id LIMIT $1`,
      [limit, afterId ?? null, opts.withPolicyOnly === true],
    );
    return rows.map(toRetentionTarget);
  }

  async clear(conversationId: Id, before: Millis, maxEvents: number): Promise<number | undefined> {
    if (!(maxEvents >= 1)) return undefined;
    const [r] = await this.db.query<{ through: number | null }>('SELECT clear_history($1, $2::bigint, $3::bigint) AS through', [
      conversationId,
      Math.floor(before),
      Math.floor(Math.min(maxEvents, Number.MAX_SAFE_INTEGER)),
    ]);
    return r?.through ?? undefined;
  }
}
