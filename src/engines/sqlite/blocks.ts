/** BlockStore on SQLite (contract: core/ports/store.ts). */
import type Database from 'better-sqlite3';
import type { Id, Millis } from '../../protocol/model.js';
import type { BlockRecord, BlockStore } from '../../core/ports/store.js';
import { translate } from './rows.js';
import { toBlock, type BlockRow } from '../sql-rows.js';

export class SqliteBlockStore implements BlockStore {
  private readonly insert;
  private readonly select;
  private readonly del;
  private readonly page;
  private readonly blocking;
  private readonly blockers;

  constructor(db: Database.Database) {
    this.insert = db.prepare<[string, string, number]>('INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
    this.select = db.prepare<[string, string], BlockRow>('SELECT * FROM blocks WHERE blocker_id = ? AND blocked_id = ?');
    this.del = db.prepare<[string, string]>('DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ?');
    this.page = db.prepare<[string, string, number], BlockRow>('SELECT * FROM blocks WHERE blocker_id = ? AND blocked_id > ? ORDER BY blocked_id LIMIT ?');
    this.blocking = db.prepare<[string], { id: string }>('SELECT blocked_id AS id FROM blocks WHERE blocker_id = ?');
    this.blockers = db.prepare<[string], { id: string }>('SELECT blocker_id AS id FROM blocks WHERE blocked_id = ?');
  }

  async add(blockerId: Id, blockedId: Id, at: Millis): Promise<{ block: BlockRecord; created: boolean }> {
    let created: boolean;
    try {
      created = this.insert.run(blockerId, blockedId, at).changes === 1;
    } catch (err) {
      throw translate(err, 'user');
    }
    const row = this.select.get(blockerId, blockedId);
    if (!row) throw new Error('block vanished right after it was written');
    return { block: toBlock(row), created };
  }

  async remove(blockerId: Id, blockedId: Id): Promise<boolean> {
    return this.del.run(blockerId, blockedId).changes === 1;
  }

  async list(blockerId: Id, limit: number, afterBlockedId?: Id): Promise<BlockRecord[]> {
    return this.page.all(blockerId, afterBlockedId ?? '', limit).map(toBlock);
  }

  async related(userId: Id): Promise<{ blocks: Id[]; blockedBy: Id[] }> {
    return { blocks: this.blocking.all(userId).map((r) => r.id), blockedBy: this.blockers.all(userId).map((r) => r.id) };
  }
}
