/**
 * EventStore on SQLite (contract: core/ports/store.ts).
 *
 * An append reads the conversation's `last_seq`, writes the event with the
 * next seq, bumps `last_seq` and `updated_at`, and applies the effect to the
 * read models (messages, members, title), all inside one SAVEPOINT of a
 * group-commit transaction (group-commit.ts). SQLite has one writer at a time,
 * so seqs are gap-free and in commit order; a failed append rolls its seq back.
 *
 * The log is three sources merged by seq: a `message.created` event is a
 * message row, every other kind a row of `events`. A new message (up to
 * LOG_BODY_MAX characters) goes to the insertion-ordered `message_log` table and the in-memory index of recent
 * messages (recent-messages.ts); once that index passes `recentBytes`, each
 * commit moves its longest-held conversations into `messages` (keyed by
 * conversation and seq), a conversation's rows together. Appends spread over
 * hundreds of conversations thus write the log's last pages instead of a leaf
 * of `messages` and of its client-id index per send, and SQLite copies every
 * page it dirties whole into the WAL: about half the CPU per append at 500
 * conversations (bench/micro/sqlite-layouts.ts, docs/benchmarks.md). An edit,
 * delete or reaction first moves its message into `messages`, so recent rows
 * never change. The created event is rebuilt as it was appended:
 * `created_body` keeps the first body once an edit replaced it.
 *
 * The in-memory index makes the file single-owner: store.ts refuses a second
 * store on the same file.
 *
 * Engine choices the port leaves open:
 * - The store does not authorise: it does not check that the actor is a member.
 * - `updated_at` moves to the event time, never back (max of both).
 * - A reply to an unknown message is 'not_found', to a message of another
 *   conversation 'conflict'; a reply to a deleted message is allowed.
 * - Edit, delete and react on a deleted message are 'conflict' (so is a second
 *   delete). Deleting a message also drops its reactions.
 * - `member.joined` of a user that does not exist is 'not_found'; a new member
 *   starts with lastReadSeq = the seq of its join event, so the history before
 *   it does not count as unread. `member.role` always appends, even with the
 *   same role.
 * - A message id already used (with another clientId) is 'conflict'.
 */
import type Database from 'better-sqlite3';
import { StoreError, type AppendInput, type AppendResult, type EventStore } from '../../core/ports/store.js';
import type { ConversationEvent, Message, Reactions, Role } from '../../protocol/model.js';
import { performance } from 'node:perf_hooks';
import { GroupCommit, type GroupCommitStats, type TransactionGate } from './group-commit.js';
import type { RecentMessages, RecentRow } from './recent-messages.js';
import { MESSAGE_COLUMNS, toMessage, translate, type MessageRow } from './rows.js';

const QUALIFIED_COLUMNS = MESSAGE_COLUMNS.split(', ')
  .map((c) => `m.${c}`)
  .join(', ');

/** One row of the merged log: `payload` for an `events` row, the message columns for a `message.created`. */
interface LogRow {
  seq: number;
  kind: ConversationEvent['kind'];
  actor_id: string;
  at: number;
  payload: string | null;
  id: string | null;
  client_id: string | null;
  body: string | null;
  reply_to: string | null;
}

type Input<K extends AppendInput['kind']> = Extract<AppendInput, { kind: K }>;

export interface SqliteEventStoreOptions {
  gate?: TransactionGate;
  /** Heap the recent-message index may hold before commits move rows into `messages`. @default 6 MiB */
  recentBytes?: number;
  /** After a failed batch move, appends go on into the log and the move is tried again this much later. @default 5000 */
  moveRetryMs?: number;
}

export interface MessageLogStats {
  /** Messages in `message_log` and the in-memory index. */
  recent: number;
  /** Approximate heap bytes of the index. */
  recentBytes: number;
  /** Messages moved into `messages`, by batch or alone before a change. */
  moved: number;
  /** Batch moves that failed (tried again after `moveRetryMs`; appends go on meanwhile). */
  moveFailures: number;
}

/**
 * A longer body goes straight into `messages`: it fills most of a page (or
 * overflow pages) wherever it is written, so the log saves little, and held
 * in memory it would cost heap for nothing.
 */
const LOG_BODY_MAX = 1024;

export class SqliteEventStore implements EventStore {
  private readonly committer: GroupCommit<AppendInput, AppendResult>;
  private readonly st;
  private readonly moveTx: (rows: readonly RecentRow[]) => void;
  private readonly recentBytes: number;
  private readonly moveRetryMs: number;
  private moveRetryAt = 0;
  /** The log holds no row below this rid (0: not known, as after a rollback). */
  private trimmedBelow = 0;
  readonly logStats: Omit<MessageLogStats, 'recent' | 'recentBytes'> = { moved: 0, moveFailures: 0 };

  constructor(
    private readonly db: Database.Database,
    private readonly recent: RecentMessages,
    opts: SqliteEventStoreOptions = {},
  ) {
    this.recentBytes = opts.recentBytes ?? 6 * 1024 * 1024;
    this.moveRetryMs = opts.moveRetryMs ?? 5000;
    const prep = <P extends unknown[] | object, R = unknown>(sql: string) => db.prepare<P, R>(sql);
    this.st = {
      lastSeq: prep<[string], { last_seq: number }>('SELECT last_seq FROM conversations WHERE id = ?'),
      bump: prep<[number, number, string]>('UPDATE conversations SET last_seq = ?, updated_at = max(updated_at, ?) WHERE id = ?'),
      insertEvent: prep<[string, number, string, string, number, string]>(
        'INSERT INTO events (conversation_id, seq, kind, actor_id, at, payload) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      // Both sides are read in seq order from their primary keys and merged (no sort, no temp table).
      logAfter: prep<{ conv: string; after: number; limit: number }, LogRow>(
        `SELECT seq, kind, actor_id, at, payload, NULL AS id, NULL AS client_id, NULL AS body, NULL AS reply_to
           FROM events WHERE conversation_id = @conv AND seq > @after
         UNION ALL
         SELECT seq, 'message.created', sender_id, created_at, NULL, id, client_id, coalesce(created_body, body), reply_to
           FROM messages WHERE conversation_id = @conv AND seq > @after
         ORDER BY seq LIMIT @limit`,
      ),
      message: prep<[string], MessageRow>(
        `SELECT ${QUALIFIED_COLUMNS} FROM message_ids i JOIN messages m ON m.conversation_id = i.conversation_id AND m.seq = i.seq
         WHERE i.id = ?`,
      ),
      byClientId: prep<[string, string, string], MessageRow>(
        `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND sender_id = ? AND client_id = ?`,
      ),
      idTaken: prep<[string], { one: number }>('SELECT 1 AS one FROM message_ids WHERE id = ?'),
      insertId: prep<[string, string, number]>('INSERT INTO message_ids (id, conversation_id, seq) VALUES (?, ?, ?)'),
      logInsert: prep<[string, number, string, string, string, string, string | null, number]>(
        `INSERT INTO message_log (conversation_id, seq, id, sender_id, client_id, body, reply_to, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      // Moved rows leave the log from its oldest end only, whole pages at a time (recent-messages.ts).
      logTrim: prep<[number]>('DELETE FROM message_log WHERE rid < ?'),
      insertMessage: prep<[string, string, number, string, string, string, string | null, number]>(
        `INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, body, reply_to, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      // The right-hand sides see the row before the update: the first edit keeps the body as sent.
      edit: prep<[string, number, string, number]>(
        'UPDATE messages SET created_body = coalesce(created_body, body), body = ?, edited_at = ? WHERE conversation_id = ? AND seq = ?',
      ),
      // A delete removes the text from the log as well (the created event reads created_body or body),
      // so a device catching up never sees it.
      del: prep<[number, string, number]>(
        "UPDATE messages SET body = '', created_body = NULL, deleted_at = ?, reactions = NULL WHERE conversation_id = ? AND seq = ?",
      ),
      react: prep<[string | null, string, number]>('UPDATE messages SET reactions = ? WHERE conversation_id = ? AND seq = ?'),
      scrubEdits: prep<[string, number, string]>(
        `UPDATE events SET payload = json_set(payload, '$.body', '')
         WHERE conversation_id = ? AND kind = 'message.edited' AND seq > ? AND json_extract(payload, '$.messageId') = ?`,
      ),
      memberExists: prep<[string, string], { one: number }>('SELECT 1 AS one FROM members WHERE conversation_id = ? AND user_id = ?'),
      join: prep<[string, string, Role, number]>(
        'INSERT INTO members (conversation_id, user_id, role, last_read_seq) VALUES (?, ?, ?, ?)',
      ),
      leave: prep<[string, string]>('DELETE FROM members WHERE conversation_id = ? AND user_id = ?'),
      role: prep<[Role, string, string]>('UPDATE members SET role = ? WHERE conversation_id = ? AND user_id = ?'),
      title: prep<[string, string]>('UPDATE conversations SET title = ? WHERE id = ?'),
      newest: prep<[string, number], MessageRow>(
        `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY seq DESC LIMIT ?`,
      ),
      below: prep<[string, number, number], MessageRow>(
        `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
      ),
      between: prep<[string, number, number, number], MessageRow>(
        `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND seq > ? AND seq < ? ORDER BY seq LIMIT ?`,
      ),
    };
    // Called inside the batch transaction, better-sqlite3 makes this a SAVEPOINT: a failed move is undone alone.
    this.moveTx = db.transaction((rows: readonly RecentRow[]) => {
      for (const r of rows) this.moveRow(r);
    });
    this.committer = new GroupCommit(db, (input: AppendInput) => this.apply(input), {
      gate: opts.gate,
      // create() writes nothing before its INSERT, the only statement of it that can fail.
      savepoint: (input) => input.kind !== 'message.created',
      beforeCommit: () => this.moveOldest(),
      // The rollback may have undone rows the index holds or dropped, and the last trim.
      afterRollback: () => {
        recent.invalidate();
        this.trimmedBelow = 0;
      },
    });
  }

  get stats(): GroupCommitStats {
    return this.committer.stats;
  }

  get messageLog(): MessageLogStats {
    const recent = this.recent.fresh();
    return { recent: recent.size, recentBytes: recent.bytes, ...this.logStats };
  }

  /** Applies queued appends and refuses new ones. */
  close(): void {
    this.committer.close();
  }

  append(input: AppendInput): Promise<AppendResult> {
    return this.committer.submit(input);
  }

  async after(conversationId: string, afterSeq: number, limit: number): Promise<ConversationEvent[]> {
    const recent = this.recent.fresh().between(conversationId, afterSeq, Infinity).slice(0, limit);
    const stored = this.st.logAfter.all({ conv: conversationId, after: afterSeq, limit });
    const rows = recent.length === 0 ? stored : mergeBySeq<LogRow>(stored, recent.map(logRow)).slice(0, limit);
    return rows.map((r) => {
      if (r.payload !== null) {
        return { conversationId, seq: r.seq, kind: r.kind, at: r.at, actorId: r.actor_id, ...(JSON.parse(r.payload) as object) } as ConversationEvent;
      }
      // Field order as append() made it, so a replayed frame reads like the live one.
      const message: Message = {
        id: r.id as string,
        conversationId,
        seq: r.seq,
        senderId: r.actor_id,
        clientId: r.client_id as string,
        body: r.body as string,
        createdAt: r.at,
      };
      if (r.reply_to !== null) message.replyTo = r.reply_to;
      return { conversationId, seq: r.seq, kind: 'message.created', at: r.at, actorId: r.actor_id, message };
    });
  }

  async message(id: string): Promise<Message | undefined> {
    const r = this.find(id);
    return r && toMessage(r);
  }

  /** With both `before` and `after`, the oldest `limit` between them. */
  async messages(
    conversationId: string,
    opts: { before?: number; after?: number; limit: number },
  ): Promise<{ messages: Message[]; hasMore: boolean }> {
    const n = opts.limit + 1;
    const inRange = this.recent.fresh().between(conversationId, opts.after ?? 0, opts.before ?? Infinity);
    let rows: MessageRow[];
    if (opts.after !== undefined) {
      rows = this.st.between.all(conversationId, opts.after, opts.before ?? Number.MAX_SAFE_INTEGER, n);
      if (inRange.length > 0) rows = mergeBySeq<MessageRow>(rows, inRange.slice(0, n)).slice(0, n);
    } else {
      rows = opts.before !== undefined ? this.st.below.all(conversationId, opts.before, n) : this.st.newest.all(conversationId, n);
      rows.reverse();
      if (inRange.length > 0) rows = mergeBySeq<MessageRow>(rows, inRange.slice(-n)).slice(-n);
    }
    const hasMore = rows.length > opts.limit;
    if (hasMore) {
      // The extra row sits at the far end of the direction read.
      if (opts.after !== undefined) rows.pop();
      else rows.shift();
    }
    return { messages: rows.map(toMessage), hasMore };
  }

  // ---- the write path, run synchronously inside a savepoint ----

  private apply(input: AppendInput): AppendResult {
    const version = this.recent.fresh().version;
    try {
      return this.applyNow(input);
    } catch (err) {
      // The savepoint's rollback may undo what the index was told: rebuild it before the next use.
      if (this.recent.version !== version) this.recent.invalidate();
      throw err;
    }
  }

  private applyNow(input: AppendInput): AppendResult {
    const conv = this.st.lastSeq.get(input.conversationId);
    if (!conv) throw new StoreError('not_found', 'No conversation has that id.');
    const seq = conv.last_seq + 1;
    switch (input.kind) {
      case 'message.created':
        return this.create(input, seq);
      case 'message.edited': {
        const target = this.liveMessage(input);
        this.st.edit.run(input.body, input.at, input.conversationId, target.seq);
        return this.commit(input, seq, { messageId: input.messageId, body: input.body }, this.current(input.messageId));
      }
      case 'message.deleted': {
        const target = this.liveMessage(input);
        this.st.del.run(input.at, input.conversationId, target.seq);
        this.st.scrubEdits.run(input.conversationId, target.seq, input.messageId);
        return this.commit(input, seq, { messageId: input.messageId }, this.current(input.messageId));
      }
      case 'message.reacted':
        return this.react(input, seq);
      case 'member.joined': {
        if (this.st.memberExists.get(input.conversationId, input.userId)) return { status: 'unchanged' };
        try {
          this.st.join.run(input.conversationId, input.userId, input.role, seq);
        } catch (err) {
          throw translate(err, 'user');
        }
        return this.commit(input, seq, { userId: input.userId, role: input.role });
      }
      case 'member.left': {
        if (this.st.leave.run(input.conversationId, input.userId).changes === 0) throw notMember();
        return this.commit(input, seq, { userId: input.userId });
      }
      case 'member.role': {
        if (this.st.role.run(input.role, input.conversationId, input.userId).changes === 0) throw notMember();
        return this.commit(input, seq, { userId: input.userId, role: input.role });
      }
      case 'conversation.updated': {
        this.st.title.run(input.title, input.conversationId);
        return this.commit(input, seq, { title: input.title });
      }
    }
  }

  private create(input: Input<'message.created'>, seq: number): AppendResult {
    const { conversationId, actorId, at } = input;
    const { id, clientId, body, replyTo } = input.message;
    const seen = this.recent.byClientId(conversationId, actorId, clientId) ?? this.st.byClientId.get(conversationId, actorId, clientId);
    if (seen) return { status: 'unchanged', message: toMessage(seen) };
    if (replyTo !== undefined) {
      const target = this.find(replyTo);
      if (!target) throw new StoreError('not_found', 'The message replied to does not exist.');
      if (target.conversation_id !== conversationId) {
        throw new StoreError('conflict', 'The message replied to belongs to another conversation.');
      }
    }
    // Checked before any write, so the INSERT below is the first write and the only one that can fail.
    if (this.st.idTaken.get(id)) throw new StoreError('conflict', 'That message already exists.');
    // Nothing is written before this INSERT, and after it nothing can fail but the disk (which ends the
    // whole transaction and rebuilds the index): so a message.created needs no savepoint (group-commit.ts).
    let rid: number | undefined;
    try {
      if (body.length > LOG_BODY_MAX) this.st.insertMessage.run(id, conversationId, seq, actorId, clientId, body, replyTo ?? null, at);
      else rid = Number(this.st.logInsert.run(conversationId, seq, id, actorId, clientId, body, replyTo ?? null, at).lastInsertRowid);
    } catch (err) {
      throw translate(err, 'message');
    }
    this.st.insertId.run(id, conversationId, seq);
    this.st.bump.run(seq, at, conversationId);
    if (rid !== undefined) this.recent.add({
      rid,
      id,
      conversation_id: conversationId,
      seq,
      sender_id: actorId,
      client_id: clientId,
      body,
      reply_to: replyTo ?? null,
      created_at: at,
      edited_at: null,
      deleted_at: null,
      reactions: null,
    });
    const message: Message = { id, conversationId, seq, senderId: actorId, clientId, body, createdAt: at };
    if (replyTo !== undefined) message.replyTo = replyTo;
    // The event's message is a copy: the result's message may be changed by the caller.
    const event: ConversationEvent = { conversationId, seq, kind: 'message.created', at, actorId, message: { ...message } };
    return { status: 'appended', event, message };
  }

  private react(input: Input<'message.reacted'>, seq: number): AppendResult {
    const row = this.liveMessage(input);
    const reactions: Reactions = row.reactions === null ? {} : (JSON.parse(row.reactions) as Reactions);
    const who = reactions[input.reaction] ?? [];
    if (who.includes(input.actorId) === input.active) return { status: 'unchanged', message: toMessage(row) };
    if (input.active) reactions[input.reaction] = [...who, input.actorId];
    else if (who.length > 1) reactions[input.reaction] = who.filter((u) => u !== input.actorId);
    else delete reactions[input.reaction];
    this.st.react.run(Object.keys(reactions).length > 0 ? JSON.stringify(reactions) : null, input.conversationId, row.seq);
    return this.commit(
      input,
      seq,
      { messageId: input.messageId, reaction: input.reaction, active: input.active },
      this.current(input.messageId),
    );
  }

  /**
   * The target message of a change: in this conversation and not deleted. A
   * recent one is moved into `messages` first, where the change is made.
   */
  private liveMessage(input: { conversationId: string; messageId: string }): MessageRow {
    const row = this.find(input.messageId);
    if (!row || row.conversation_id !== input.conversationId) {
      throw new StoreError('not_found', 'No message with that id is in this conversation.');
    }
    if (row.deleted_at !== null) throw new StoreError('conflict', 'The message was deleted.');
    if ('rid' in row) {
      this.moveRow(row as RecentRow);
      this.recent.remove([row as RecentRow]);
    }
    return row;
  }

  private find(id: string): MessageRow | undefined {
    return this.recent.fresh().byMessageId(id) ?? this.st.message.get(id);
  }

  /** Copies a log row into `messages` (the index is told by the caller; the log row goes with the next trim). */
  private moveRow(r: RecentRow): void {
    this.st.insertMessage.run(r.id, r.conversation_id, r.seq, r.sender_id, r.client_id, r.body, r.reply_to, r.created_at);
    this.logStats.moved++;
  }

  /**
   * Inside each batch, before COMMIT: past `recentBytes`, the longest-held
   * conversations move into `messages` in one savepoint. If that fails (a
   * full disk, a broken trigger), appends go on into the log and the move is
   * tried again `moveRetryMs` later: a failing move never fails a send.
   */
  private moveOldest(): void {
    // A write of this batch that failed may have left the index stale: the trim must not trust it.
    const recent = this.recent.fresh();
    if (recent.bytes > this.recentBytes && performance.now() >= this.moveRetryAt) {
      const rows = recent.oldest(this.recentBytes);
      try {
        this.moveTx(rows);
        recent.remove(rows);
      } catch (err) {
        // Errors that end the whole transaction (SQLITE_FULL, SQLITE_IOERR…) fail the batch.
        if (!this.db.inTransaction) throw err;
        this.logStats.moveFailures++;
        this.moveRetryAt = performance.now() + this.moveRetryMs;
      }
    }
    // Every log row below the oldest one still held has moved: drop them, leading pages whole.
    const low = recent.lowWater();
    if (low > this.trimmedBelow) {
      this.st.logTrim.run(low);
      this.trimmedBelow = low;
    }
  }

  private current(id: string): Message {
    const row = this.st.message.get(id);
    if (!row) throw new Error(`message ${id} vanished`);
    return toMessage(row);
  }

  /** Writes the event with `seq` to `events` and moves the conversation to it (every kind but message.created). */
  private commit(input: AppendInput, seq: number, payload: object, message?: Message): AppendResult {
    const { conversationId, kind, actorId, at } = input;
    this.st.bump.run(seq, at, conversationId);
    this.st.insertEvent.run(conversationId, seq, kind, actorId, at, JSON.stringify(payload));
    const event = { conversationId, seq, kind, at, actorId, ...payload } as ConversationEvent;
    return message ? { status: 'appended', event, message } : { status: 'appended', event };
  }
}

/** A log row in the shape of the merged `events` + `messages` query. */
function logRow(r: RecentRow): LogRow {
  return {
    seq: r.seq,
    kind: 'message.created',
    actor_id: r.sender_id,
    at: r.created_at,
    payload: null,
    id: r.id,
    client_id: r.client_id,
    body: r.body,
    reply_to: r.reply_to,
  };
}

/** Two lists in seq order (no seq in both) merged into one. */
function mergeBySeq<T extends { seq: number }>(a: readonly T[], b: readonly T[]): T[] {
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) out.push((a[i] as T).seq < (b[j] as T).seq ? (a[i++] as T) : (b[j++] as T));
  while (i < a.length) out.push(a[i++] as T);
  while (j < b.length) out.push(b[j++] as T);
  return out;
}

const notMember = (): StoreError => new StoreError('not_found', 'That user is not a member of this conversation.');
