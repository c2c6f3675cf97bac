/**
 * The newest messages of the SQLite store, held twice: as rows of the
 * insertion-ordered `message_log` table (durable) and indexed here in memory
 * (for reads). See events.ts for why appends go to the log first. Moved rows
 * stay in the table until everything older has moved too (`lowWater`).
 *
 * A recent message is always as it was created: an edit, delete or reaction
 * first moves it into `messages` (events.ts). So its created event and its
 * current state are the same row, and nothing here ever changes in place.
 *
 * This index is a cache of `message_log`, not a second source of truth: after
 * a rollback that may have undone a change made here, `invalidate()` and the
 * next `fresh()` rebuilds it from the table.
 */
import type Database from 'better-sqlite3';
import type { MessageRow } from './rows.js';

/** A `message_log` row; the mutable columns of MessageRow are always null here. */
export interface RecentRow extends MessageRow {
  rid: number;
  edited_at: null;
  deleted_at: null;
  reactions: null;
}

/** Rough heap bytes of a row besides its body: the object, its key strings and map entries. */
const ROW_OVERHEAD = 320;

const clientKey = (conversationId: string, senderId: string, clientId: string): string =>
  `${conversationId}\0${senderId}\0${clientId}`;

export class RecentMessages {
  /** Per conversation, its recent rows in seq order; conversations in the order they got their first recent row. */
  private readonly byConversation = new Map<string, RecentRow[]>();
  private readonly byId = new Map<string, RecentRow>();
  private readonly byClient = new Map<string, RecentRow>();
  private stale = true;
  private readonly selectAll;
  /** Approximate heap bytes held, bodies included. */
  bytes = 0;
  /** Bumped by every change, so a caller can tell whether a failed write touched the index. */
  version = 0;

  constructor(db: Database.Database) {
    // A log row whose message is in `messages` has moved and waits for the log's oldest end to be trimmed.
    this.selectAll = db.prepare<[], Omit<RecentRow, 'edited_at' | 'deleted_at' | 'reactions'>>(
      `SELECT rid, id, conversation_id, seq, sender_id, client_id, body, reply_to, created_at FROM message_log l
       WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = l.conversation_id AND m.seq = l.seq)
       ORDER BY rid`,
    );
  }

  get size(): number {
    return this.byId.size;
  }

  /** The next read rebuilds the index from the table. */
  invalidate(): void {
    this.stale = true;
  }

  /** Rebuilds the index if a rollback made it stale; call before any read or write. */
  fresh(): this {
    if (!this.stale) return this;
    this.byConversation.clear();
    this.byId.clear();
    this.byClient.clear();
    this.bytes = 0;
    const rows = this.selectAll.all().map((r): RecentRow => ({ ...r, edited_at: null, deleted_at: null, reactions: null }));
    // Seq order within a conversation is rid order: seqs are handed out under the one writer.
    for (const r of rows) this.index(r);
    this.stale = false;
    this.version++;
    return this;
  }

  add(row: RecentRow): void {
    this.index(row);
    this.version++;
  }

  private index(row: RecentRow): void {
    let rows = this.byConversation.get(row.conversation_id);
    if (!rows) this.byConversation.set(row.conversation_id, (rows = []));
    rows.push(row);
    this.byId.set(row.id, row);
    this.byClient.set(clientKey(row.conversation_id, row.sender_id, row.client_id), row);
    this.bytes += ROW_OVERHEAD + row.body.length;
  }

  /** Drops rows that now live in `messages`. */
  remove(rows: readonly RecentRow[]): void {
    for (const row of rows) {
      if (this.byId.get(row.id) !== row) continue;
      this.byId.delete(row.id);
      this.byClient.delete(clientKey(row.conversation_id, row.sender_id, row.client_id));
      this.bytes -= ROW_OVERHEAD + row.body.length;
      const list = this.byConversation.get(row.conversation_id);
      if (!list) continue;
      const at = list.indexOf(row);
      if (at >= 0) list.splice(at, 1);
      if (list.length === 0) this.byConversation.delete(row.conversation_id);
    }
    this.version++;
  }

  byMessageId(id: string): RecentRow | undefined {
    return this.byId.get(id);
  }

  byClientId(conversationId: string, senderId: string, clientId: string): RecentRow | undefined {
    return this.byClient.get(clientKey(conversationId, senderId, clientId));
  }

  /** The conversation's recent rows with `after < seq < before`, in seq order. */
  between(conversationId: string, after: number, before: number): RecentRow[] {
    const rows = this.byConversation.get(conversationId);
    if (!rows) return [];
    // Seqs are integers: the first row at or past `before` is the first above `before - 1`.
    return rows.slice(firstAbove(rows, after), firstAbove(rows, before - 1));
  }

  /**
   * The lowest rid still held; every log row below it has moved. Each
   * conversation's rows are in rid order, so only their first rows count.
   */
  lowWater(): number {
    let low = Number.MAX_SAFE_INTEGER;
    for (const rows of this.byConversation.values()) low = Math.min(low, (rows[0] as RecentRow).rid);
    return low;
  }

  /** The newest recent row of the conversation (never a deleted one: a delete moves it out first). */
  last(conversationId: string): RecentRow | undefined {
    const rows = this.byConversation.get(conversationId);
    return rows?.[rows.length - 1];
  }

  /** Recent rows of the conversation after `seq` not sent by `userId`. */
  unreadCount(conversationId: string, seq: number, userId: string): number {
    const rows = this.byConversation.get(conversationId);
    if (!rows) return 0;
    let n = 0;
    for (let i = firstAbove(rows, seq); i < rows.length; i++) if ((rows[i] as RecentRow).sender_id !== userId) n++;
    return n;
  }

  /**
   * Whole conversations, the longest-held first, whose rows bring the index
   * back under `maxBytes`: moved together, each conversation's rows fill a
   * leaf of `messages` at once instead of one page write per message.
   */
  oldest(maxBytes: number): RecentRow[] {
    const out: RecentRow[] = [];
    let bytes = this.bytes;
    for (const rows of this.byConversation.values()) {
      if (bytes <= maxBytes) break;
      for (const r of rows) {
        out.push(r);
        bytes -= ROW_OVERHEAD + r.body.length;
      }
    }
    return out;
  }
}

/** Index of the first row with seq > `seq` (rows are in seq order). */
function firstAbove(rows: readonly RecentRow[], seq: number): number {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((rows[mid] as RecentRow).seq > seq) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
