/**
 * The attachments table's row and its mapping, the same in both SQL engines
 * (sqlite/, postgres/): migration 6 of each names the columns alike, and
 * migration 9 adds `encrypted` (an integer 0/1 on SQLite, a boolean on
 * PostgreSQL, which takes 0/1 as input too).
 */
import type { AttachmentRecord } from '../core/ports/store.js';

export interface AttachmentRow {
  id: string;
  uploader_id: string;
  type: string;
  name: string;
  size: number | string;
  sha256: string;
  width: number | null;
  height: number | null;
  thumb_width: number | null;
  thumb_height: number | null;
  created_at: number | string;
  encrypted: number | boolean;
}

export const ATTACHMENT_COLUMNS = 'id, uploader_id, type, name, size, sha256, width, height, thumb_width, thumb_height, created_at, encrypted';

/** Optional fields are left out, not set to undefined, so a record deep-equals what was stored. */
export function toAttachment(r: AttachmentRow): AttachmentRecord {
  const a: AttachmentRecord = {
    id: r.id,
    uploaderId: r.uploader_id,
    type: r.type,
    name: r.name,
    size: Number(r.size),
    sha256: r.sha256,
    createdAt: Number(r.created_at),
  };
  if (r.width !== null && r.height !== null) {
    a.width = r.width;
    a.height = r.height;
  }
  if (r.thumb_width !== null && r.thumb_height !== null) a.thumbnail = { width: r.thumb_width, height: r.thumb_height };
  if (r.encrypted === true || r.encrypted === 1) a.encrypted = true;
  return a;
}

/** The values of an INSERT of every column but the two states, in ATTACHMENT_COLUMNS order. */
export function attachmentValues(a: AttachmentRecord): (string | number | null)[] {
  return [a.id, a.uploaderId, a.type, a.name, a.size, a.sha256, a.width ?? null, a.height ?? null, a.thumbnail?.width ?? null, a.thumbnail?.height ?? null, a.createdAt, a.encrypted ? 1 : 0];
}
