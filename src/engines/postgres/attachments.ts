/**
 * AttachmentStore on PostgreSQL (contract: core/ports/store.ts; same tables
 * as the SQLite engine). References are written by append_events and dropped
 * with their message (schema-v6.ts); this reads them.
 *
 * `remove` races an append that references the upload on another node: the
 * reference's foreign key settles it. Either the append's insert of the
 * reference comes first (the delete then finds it, or fails on the key and
 * says false), or the delete does (the append's insert then fails on the
 * key, and its batch is retried item by item, where the upload is found gone).
 */
import type { Id, Millis } from '../../protocol/model.js';
import type { AttachmentRecord, AttachmentStore } from '../../core/ports/store.js';
import { isServerError, type Db } from './db.js';
import { SQLSTATE, translate } from './rows.js';
import { ATTACHMENT_COLUMNS, attachmentValues, toAttachment, type AttachmentRow } from '../sql-attachments.js';

const COLS = ATTACHMENT_COLUMNS.split(', ').map((c) => `a.${c}`).join(', ');

export class PostgresAttachmentStore implements AttachmentStore {
  constructor(private readonly db: Db) {}

  async create(record: AttachmentRecord): Promise<void> {
    try {
      await this.db.query(
        `INSERT INTO attachments (${ATTACHMENT_COLUMNS}, unreferenced_since) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $11)`,
        attachmentValues(record),
      );
    } catch (err) {
      throw translate(err, 'attachment');
    }
  }

  async readable(id: Id, userId: Id): Promise<AttachmentRecord | undefined> {
    const [r] = await this.db.query<AttachmentRow>(
      `SELECT ${COLS} FROM attachments a
       WHERE a.id = $1 AND (
         (a.uploader_id = $2 AND (a.attached_at IS NULL OR a.unreferenced_since IS NULL))
         OR EXISTS (
           SELECT 1 FROM attachment_refs r JOIN members m ON m.conversation_id = r.conversation_id AND m.user_id = $2
           WHERE r.attachment_id = a.id))`,
      [id, userId],
    );
    return r && toAttachment(r);
  }

  async usable(uploaderId: Id, ids: readonly Id[]): Promise<AttachmentRecord[]> {
    if (ids.length === 0) return [];
    const rows = await this.db.query<AttachmentRow>(
      `SELECT ${COLS} FROM attachments a
       WHERE a.id = ANY ($1::text[]) AND a.uploader_id = $2 AND (a.attached_at IS NULL OR a.unreferenced_since IS NULL)`,
      [ids, uploaderId],
    );
    return rows.map(toAttachment);
  }

  async unreferenced(before: Millis, limit: number): Promise<Id[]> {
    const rows = await this.db.query<{ id: string }>(
      'SELECT id FROM attachments WHERE unreferenced_since IS NOT NULL AND unreferenced_since < $1 ORDER BY unreferenced_since LIMIT $2',
      [before, limit],
    );
    return rows.map((r) => r.id);
  }

  async remove(id: Id, before: Millis): Promise<boolean> {
    try {
      const rows = await this.db.query<{ one: number }>(
        `DELETE FROM attachments a
         WHERE a.id = $1 AND a.unreferenced_since IS NOT NULL AND a.unreferenced_since < $2
           AND NOT EXISTS (SELECT 1 FROM attachment_refs r WHERE r.attachment_id = a.id)
         RETURNING 1 AS one`,
        [id, before],
      );
      return rows.length === 1;
    } catch (err) {
      // A message carrying it committed between this statement's snapshot and its delete.
      if (isServerError(err) && err.code === SQLSTATE.foreignKeyViolation) return false;
      throw err;
    }
  }
}
