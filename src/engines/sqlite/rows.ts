/** Row shapes and row → model mapping shared by the SQLite aggregates. */
import Database from 'better-sqlite3';
import { StoreError } from '../../core/ports/store.js';
import type { Attachment, Message, Reactions } from '../../protocol/model.js';

export interface MessageRow {
  id: string;
  conversation_id: string;
  seq: number;
  sender_id: string;
  client_id: string;
  body: string;
  reply_to: string | null;
  created_at: number;
  edited_at: number | null;
  deleted_at: number | null;
  reactions: string | null;
  attachments: string | null;
}

export const MESSAGE_COLUMNS =
  'id, conversation_id, seq, sender_id, client_id, body, reply_to, created_at, edited_at, deleted_at, reactions, attachments';

/** Optional fields are left out, not set to undefined, so results deep-equal what was stored. */
export function toMessage(r: MessageRow): Message {
  const m: Message = {
    id: r.id,
    conversationId: r.conversation_id,
    seq: r.seq,
    senderId: r.sender_id,
    clientId: r.client_id,
    body: r.body,
    createdAt: r.created_at,
  };
  if (r.reply_to !== null) m.replyTo = r.reply_to;
  if (r.attachments !== null) m.attachments = JSON.parse(r.attachments) as Attachment[];
  if (r.edited_at !== null) m.editedAt = r.edited_at;
  if (r.deleted_at !== null) m.deletedAt = r.deleted_at;
  if (r.reactions !== null) m.reactions = JSON.parse(r.reactions) as Reactions;
  return m;
}

/**
 * Turns constraint violations the caller can cause into StoreErrors: a taken
 * unique key is `conflict`, a reference to a row that does not exist is
 * `not_found`. Anything else stays an engine fault.
 */
export function translate(err: unknown, what: string): unknown {
  if (err instanceof Database.SqliteError) {
    if (err.code === 'SQLITE_CONSTRAINT_UNIQUE' || err.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
      return new StoreError('conflict', `That ${what} already exists.`);
    }
    if (err.code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
      return new StoreError('not_found', `That ${what} refers to something that does not exist.`);
    }
  }
  return err;
}
