/** BlockStore on PostgreSQL (contract: core/ports/store.ts; same table as the SQLite engine). */
import type { Id, Millis } from '../../protocol/model.js';
import type { BlockRecord, BlockStore } from '../../core/ports/store.js';
import type { Db } from './db.js';
import { translate } from './rows.js';
import { toBlock, type BlockRow } from '../sql-rows.js';

export class PostgresBlockStore implements BlockStore {
  constructor(private readonly db: Db) {}

  async add(blockerId: Id, blockedId: Id, at: Millis): Promise<{ block: BlockRecord; created: boolean }> {
    let rows: (BlockRow & { created: boolean })[];
    try {
      // One statement either way: the insert, or the row that was already there.
      rows = await this.db.query<BlockRow & { created: boolean }>(
        `WITH ins AS (
           INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3)
           ON CONFLICT DO NOTHING RETURNING *
         )
         SELECT *, true AS created FROM ins
         UNION ALL
         SELECT *, false AS created FROM blocks WHERE blocker_id = $1 AND blocked_id = $2 AND NOT EXISTS (SELECT 1 FROM ins)`,
        [blockerId, blockedId, at],
      );
    } catch (err) {
      throw translate(err, 'user');
    }
    const [row] = rows;
    if (!row) throw new Error('block vanished right after it was written');
    return { block: toBlock(row), created: row.created };
  }

  async remove(blockerId: Id, blockedId: Id): Promise<boolean> {
    const rows = await this.db.query<{ one: number }>('DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2 RETURNING 1 AS one', [blockerId, blockedId]);
    return rows.length === 1;
  }

  async list(blockerId: Id, limit: number, afterBlockedId?: Id): Promise<BlockRecord[]> {
    const rows = await this.db.query<BlockRow>(
      'SELECT * FROM blocks WHERE blocker_id = $1 AND blocked_id > $2 ORDER BY blocked_id LIMIT $3',
      [blockerId, afterBlockedId ?? '', limit],
    );
    return rows.map(toBlock);
  }

  async related(userId: Id): Promise<{ blocks: Id[]; blockedBy: Id[] }> {
    // One round trip for both directions, each through its own index.
    const rows = await this.db.query<{ id: string; outgoing: boolean }>(
      'SELECT blocked_id AS id, true AS outgoing FROM blocks WHERE blocker_id = $1 UNION ALL SELECT blocker_id, false FROM blocks WHERE blocked_id = $1',
      [userId],
    );
    return { blocks: rows.filter((r) => r.outgoing).map((r) => r.id), blockedBy: rows.filter((r) => !r.outgoing).map((r) => r.id) };
  }
}
