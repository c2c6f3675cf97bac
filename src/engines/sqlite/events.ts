/**
 * EventStore on SQLite (contract: core/ports/store.ts).
 *
 * An append reads the conversation's `last_seq`, writes the event with the
 * next seq, bumps `last_seq` and `updated_at`, and applies the effect to the
 * read models (messages, members, title), all inside one SAVEPOINT of a
 * group-commit transaction (group-commit.ts). SQLite has one writer at a time,
 * so seqs are gap-free and in commit order; a failed append rolls its seq back.
 *
 * The log is two tables merged by seq: a `message.created` event is its
 * `messages` row (keyed by conversation and seq, migration 2), every other
 * kind a row of `events`. Writing a message once instead of twice is most of
 * what a send costs the disk. The created event is rebuilt as it was appended:
 * `created_body` keeps the first body once an edit replaced it.
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
import type { Attachment, ConversationEvent, Message, Reactions, Role } from '../../protocol/model.js';
import { GroupCommit, type GroupCommitStats, type TransactionGate } from './group-commit.js';
import { MESSAGE_COLUMNS, toMessage, translate, type MessageRow } from './rows.js';

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
  attachments: string | null;
}

type Input<K extends AppendInput['kind']> = Extract<AppendInput, { kind: K }>;

export class SqliteEventStore implements EventStore {
  private readonly committer: GroupCommit<AppendInput, AppendResult>;
  private readonly st;

  constructor(db: Database.Database, gate?: TransactionGate) {
    const prep = <P extends unknown[] | object, R = unknown>(sql: string) => db.prepare<P, R>(sql);
    this.st = {
      lastSeq: prep<[string], { last_seq: number }>('SELECT last_seq FROM conversations WHERE id = ?'),
      bump: prep<[number, number, string]>('UPDATE conversations SET last_seq = ?, updated_at = max(updated_at, ?) WHERE id = ?'),
      insertEvent: prep<[string, number, string, string, number, string]>(
        'INSERT INTO events (conversation_id, seq, kind, actor_id, at, payload) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      // Both sides are read in seq order from their primary keys and merged (no sort, no temp table).
      logAfter: prep<{ conv: string; after: number; limit: number }, LogRow>(
        `SELECT seq, kind, actor_id, at, payload, NULL AS id, NULL AS client_id, NULL AS body, NULL AS reply_to, NULL AS attachments
           FROM events WHERE conversation_id = @conv AND seq > @after
         UNION ALL
         SELECT seq, 'message.created', sender_id, created_at, NULL, id, client_id, coalesce(created_body, body), reply_to, attachments
           FROM messages WHERE conversation_id = @conv AND seq > @after
         ORDER BY seq LIMIT @limit`,
      ),
      message: prep<[string], MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE id = ?`),
      byClientId: prep<[string, string, string], MessageRow>(
        `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND sender_id = ? AND client_id = ?`,
      ),
      insertMessage: prep<[string, string, number, string, string, string, string | null, number]>(
        `INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, body, reply_to, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      // Only for messages with attachments (R14): the references, checked and written in the same savepoint.
      insertMessageWithAttachments: prep<[string, string, number, string, string, string, string | null, number, string]>(
        `INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, body, reply_to, created_at, attachments)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      usableAttachments: prep<[string, string], { n: number }>(
        `SELECT count(*) AS n FROM attachments
         WHERE id IN (SELECT value FROM json_each(?)) AND uploader_id = ? AND (attached_at IS NULL OR unreferenced_since IS NULL)`,
      ),
      insertRef: prep<[string, number, string]>('INSERT INTO attachment_refs (conversation_id, message_seq, attachment_id) VALUES (?, ?, ?)'),
      markAttached: prep<[number, string]>(
        'UPDATE attachments SET attached_at = coalesce(attached_at, ?), unreferenced_since = NULL WHERE id IN (SELECT value FROM json_each(?))',
      ),
      // The trigger attachment_refs_released marks an upload whose last reference this was.
      dropRefs: prep<[string, number]>('DELETE FROM attachment_refs WHERE conversation_id = ? AND message_seq = ?'),
      // The right-hand sides see the row before the update: the first edit keeps the body as sent.
      edit: prep<[string, number, string]>('UPDATE messages SET created_body = coalesce(created_body, body), body = ?, edited_at = ? WHERE id = ?'),
      // A delete removes the text from the log as well (the created event reads created_body or body),
      // so a device catching up never sees it.
      del: prep<[number, string]>("UPDATE messages SET body = '', created_body = NULL, deleted_at = ?, reactions = NULL, attachments = NULL WHERE id = ?"),
      react: prep<[string | null, string]>('UPDATE messages SET reactions = ? WHERE id = ?'),
      scrubEdits: prep<[string, string, string]>(
        `UPDATE events SET payload = json_set(payload, '$.body', '')
         WHERE conversation_id = ? AND kind = 'message.edited' AND seq > (SELECT seq FROM messages WHERE id = ?)
           AND json_extract(payload, '$.messageId') = ?`,
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
    this.committer = new GroupCommit(db, (input: AppendInput) => this.apply(input), {
      gate,
      // create() writes nothing before its INSERT, the only statement of it that can fail, unless the message
      // has attachments: their references are written after it.
      savepoint: (input) => input.kind !== 'message.created' || input.message.attachments !== undefined,
    });
  }

  get stats(): GroupCommitStats {
    return this.committer.stats;
  }

  /** Applies queued appends and refuses new ones. */
  close(): void {
    this.committer.close();
  }

  append(input: AppendInput): Promise<AppendResult> {
    return this.committer.submit(input);
  }

  async after(conversationId: string, afterSeq: number, limit: number): Promise<ConversationEvent[]> {
    return this.st.logAfter.all({ conv: conversationId, after: afterSeq, limit }).map((r) => {
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
      if (r.attachments !== null) message.attachments = JSON.parse(r.attachments) as Attachment[];
      return { conversationId, seq: r.seq, kind: 'message.created', at: r.at, actorId: r.actor_id, message };
    });
  }

  async message(id: string): Promise<Message | undefined> {
    const r = this.st.message.get(id);
    return r && toMessage(r);
  }

  /** With both `before` and `after`, the oldest `limit` between them. */
  async messages(
    conversationId: string,
    opts: { before?: number; after?: number; limit: number },
  ): Promise<{ messages: Message[]; hasMore: boolean }> {
    const n = opts.limit + 1;
    let rows: MessageRow[];
    if (opts.after !== undefined) {
      rows = this.st.between.all(conversationId, opts.after, opts.before ?? Number.MAX_SAFE_INTEGER, n);
    } else {
      rows = opts.before !== undefined ? this.st.below.all(conversationId, opts.before, n) : this.st.newest.all(conversationId, n);
      rows.reverse();
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
    const conv = this.st.lastSeq.get(input.conversationId);
    if (!conv) throw new StoreError('not_found', 'No conversation has that id.');
    const seq = conv.last_seq + 1;
    switch (input.kind) {
      case 'message.created':
        return this.create(input, seq);
      case 'message.edited': {
        this.liveMessage(input);
        this.st.edit.run(input.body, input.at, input.messageId);
        return this.commit(input, seq, { messageId: input.messageId, body: input.body }, this.current(input.messageId));
      }
      case 'message.deleted': {
        const row = this.liveMessage(input);
        this.st.del.run(input.at, input.messageId);
        if (row.attachments !== null) this.st.dropRefs.run(input.conversationId, row.seq);
        this.st.scrubEdits.run(input.conversationId, input.messageId, input.messageId);
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
    const { id, clientId, body, replyTo, attachments } = input.message;
    const seen = this.st.byClientId.get(conversationId, actorId, clientId);
    if (seen) return { status: 'unchanged', message: toMessage(seen) };
    if (replyTo !== undefined) {
      const target = this.st.message.get(replyTo);
      if (!target) throw new StoreError('not_found', 'The message replied to does not exist.');
      if (target.conversation_id !== conversationId) {
        throw new StoreError('conflict', 'The message replied to belongs to another conversation.');
      }
    }
    if (attachments !== undefined) return this.createWithAttachments(input, seq, attachments);
    // Nothing is written before this INSERT, and after it nothing can fail but the disk (which ends the
    // whole transaction): so a message.created needs no savepoint (group-commit.ts).
    try {
      this.st.insertMessage.run(id, conversationId, seq, actorId, clientId, body, replyTo ?? null, at);
    } catch (err) {
      throw translate(err, 'message');
    }
    return this.created(input, seq);
  }

  /** The rarer send (R14), in a savepoint of its own: the uploads are checked, the message and its references written. */
  private createWithAttachments(input: Input<'message.created'>, seq: number, attachments: Attachment[]): AppendResult {
    const { conversationId, actorId, at } = input;
    const { id, clientId, body, replyTo } = input.message;
    const ids = JSON.stringify(attachments.map((a) => a.id));
    if (new Set(attachments.map((a) => a.id)).size !== attachments.length || this.st.usableAttachments.get(ids, actorId)?.n !== attachments.length) {
      throw new StoreError('not_found', 'An attachment of this message is not one of your uploads, or no longer exists.');
    }
    try {
      this.st.insertMessageWithAttachments.run(id, conversationId, seq, actorId, clientId, body, replyTo ?? null, at, JSON.stringify(attachments));
    } catch (err) {
      throw translate(err, 'message');
    }
    for (const a of attachments) this.st.insertRef.run(conversationId, seq, a.id);
    this.st.markAttached.run(at, ids);
    return this.created(input, seq);
  }

  private created(input: Input<'message.created'>, seq: number): AppendResult {
    const { conversationId, actorId, at } = input;
    const { id, clientId, body, replyTo, attachments } = input.message;
    this.st.bump.run(seq, at, conversationId);
    const message: Message = { id, conversationId, seq, senderId: actorId, clientId, body, createdAt: at };
    if (replyTo !== undefined) message.replyTo = replyTo;
    if (attachments !== undefined) message.attachments = attachments.map((a) => ({ ...a }));
    // The event's message is a copy: the result's message may be changed by the caller.
    const copy = { ...message };
    if (attachments !== undefined) copy.attachments = attachments.map((a) => ({ ...a }));
    const event: ConversationEvent = { conversationId, seq, kind: 'message.created', at, actorId, message: copy };
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
    this.st.react.run(Object.keys(reactions).length > 0 ? JSON.stringify(reactions) : null, input.messageId);
    return this.commit(
      input,
      seq,
      { messageId: input.messageId, reaction: input.reaction, active: input.active },
      this.current(input.messageId),
    );
  }

  /** The target message of a change: in this conversation and not deleted. */
  private liveMessage(input: { conversationId: string; messageId: string }): MessageRow {
    const row = this.st.message.get(input.messageId);
    if (!row || row.conversation_id !== input.conversationId) {
      throw new StoreError('not_found', 'No message with that id is in this conversation.');
    }
    if (row.deleted_at !== null) throw new StoreError('conflict', 'The message was deleted.');
    return row;
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

const notMember = (): StoreError => new StoreError('not_found', 'That user is not a member of this conversation.');
