/**
 * AttachmentStore on SQLite (contract: core/ports/store.ts). References are
 * written by the event store's append (events.ts) and dropped with their
 * message; this reads them. One writer at a time makes `remove` atomic
 * against an append that would reference the upload.
 */
import type Database from 'better-sqlite3';
import type { Id, Millis } from '../../protocol/model.js';
import type { AttachmentRecord, AttachmentStore } from '../../core/ports/store.js';
import { translate } from './rows.js';
import { ATTACHMENT_COLUMNS, attachmentValues, toAttachment, type AttachmentRow } from '../sql-attachments.js';

export class SqliteAttachmentStore implements AttachmentStore {
  private readonly st;

  constructor(db: Database.Database) {
    const cols = ATTACHMENT_COLUMNS.split(', ').map((c) => `a.${c}`).join(', ');
    this.st = {
      insert: db.prepare<(string | number | null)[]>(
        `INSERT INTO attachments (${ATTACHMENT_COLUMNS}, unreferenced_since) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      // The uploader while not released; anyone who is a member now of a conversation whose message carries it.
      readable: db.prepare<{ id: string; user: string }, AttachmentRow>(
        `SELECT ${cols} FROM attachments a
         WHERE a.id = @id AND (
           (a.uploader_id = @user AND (a.attached_at IS NULL OR a.unreferenced_since IS NULL))
           OR EXISTS (
             SELECT 1 FROM attachment_refs r JOIN members m ON m.conversation_id = r.conversation_id AND m.user_id = @user
             WHERE r.attachment_id = a.id))`,
      ),
      usable: db.prepare<[string, string], AttachmentRow>(
        `SELECT ${cols} FROM attachments a
         WHERE a.id IN (SELECT value FROM json_each(?)) AND a.uploader_id = ? AND (a.attached_at IS NULL OR a.unreferenced_since IS NULL)`,
      ),
      unreferenced: db.prepare<[number, number], { id: string }>(
        'SELECT id FROM attachments WHERE unreferenced_since IS NOT NULL AND unreferenced_since < ? ORDER BY unreferenced_since LIMIT ?',
      ),
      remove: db.prepare<{ id: string; before: number }>(
        `DELETE FROM attachments
         WHERE id = @id AND unreferenced_since IS NOT NULL AND unreferenced_since < @before
           AND NOT EXISTS (SELECT 1 FROM attachment_refs WHERE attachment_id = @id)`,
      ),
    };
  }

  async create(record: AttachmentRecord): Promise<void> {
    try {
      this.st.insert.run(...attachmentValues(record), record.createdAt);
    } catch (err) {
      throw translate(err, 'attachment');
    }
  }

  async readable(id: Id, userId: Id): Promise<AttachmentRecord | undefined> {
    const r = this.st.readable.get({ id, user: userId });
    return r && toAttachment(r);
  }

  async usable(uploaderId: Id, ids: readonly Id[]): Promise<AttachmentRecord[]> {
    if (ids.length === 0) return [];
    return this.st.usable.all(JSON.stringify(ids), uploaderId).map(toAttachment);
  }

  async unreferenced(before: Millis, limit: number): Promise<Id[]> {
    return this.st.unreferenced.all(before, limit).map((r) => r.id);
  }

  async remove(id: Id, before: Millis): Promise<boolean> {
    return this.st.remove.run({ id, before }).changes === 1;
  }
}
