/**
 * ConversationStore on SQLite (contract: core/ports/store.ts).
 *
 * Engine choices the port leaves open:
 * - Members come back ordered by userId.
 * - A direct conversation has one or two distinct members (one: a note to
 *   self); its pair is a UNIQUE column, so concurrent creates, even from other
 *   processes, end with one row and the losers read it back.
 * - A member or id that does not exist is StoreError('not_found'); a taken
 *   conversation id or a user listed twice is 'conflict'.
 * - A `listForUser` cursor that this engine did not make is
 *   StoreError('not_found'): the port has no bad-request code.
 */
import type Database from 'better-sqlite3';
import type { ConversationPage, ConversationStore } from '../../core/ports/store.js';
import type { Conversation, ConversationKind, Member, Role } from '../../protocol/model.js';
import { MESSAGE_COLUMNS, toMessage, translate, type MessageRow } from './rows.js';
import { decodeCursor, directKey, encodeCursor } from '../sql-rows.js';

export interface ConversationRow {
  id: string;
  kind: ConversationKind;
  title: string | null;
  last_seq: number;
  created_at: number;
  updated_at: number;
  retention_days: number | null;
  cleared_through_seq: number;
  encrypted: number;
}

interface MemberRow {
  user_id: string;
  role: Role;
  last_read_seq: number;
}

const CONVERSATION_COLUMNS = 'c.id, c.kind, c.title, c.last_seq, c.created_at, c.updated_at, c.retention_days, c.cleared_through_seq, c.encrypted';

/** The unique key of a direct pair; JSON so no id can forge another pair's key. */

export class SqliteConversationStore implements ConversationStore {
  private readonly insertConversation;
  private readonly insertDirect;
  private readonly insertMember;
  private readonly selectOne;
  private readonly selectByDirectKey;
  private readonly selectMembers;
  private readonly selectIdsForUser;
  private readonly selectFirstPage;
  private readonly selectNextPage;
  private readonly countUnread;
  private readonly selectLastMessage;
  private readonly updateRead;
  private readonly createTx;

  constructor(db: Database.Database) {
    this.insertConversation = db.prepare<[string, ConversationKind, string | null, number, number, number]>(
      'INSERT INTO conversations (id, kind, title, created_at, updated_at, encrypted) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.insertDirect = db.prepare<[string, string | null, string, number, number, number]>(
      `INSERT INTO conversations (id, kind, title, direct_key, created_at, updated_at, encrypted) VALUES (?, 'direct', ?, ?, ?, ?, ?)
       ON CONFLICT (direct_key) DO NOTHING`,
    );
    this.insertMember = db.prepare<[string, string, Role]>('INSERT INTO members (conversation_id, user_id, role) VALUES (?, ?, ?)');
    this.selectOne = db.prepare<[string], ConversationRow>(`SELECT ${CONVERSATION_COLUMNS} FROM conversations c WHERE c.id = ?`);
    this.selectByDirectKey = db.prepare<[string], ConversationRow>(
      `SELECT ${CONVERSATION_COLUMNS} FROM conversations c WHERE c.direct_key = ?`,
    );
    this.selectMembers = db.prepare<[string], MemberRow>(
      'SELECT user_id, role, last_read_seq FROM members WHERE conversation_id = ? ORDER BY user_id',
    );
    this.selectIdsForUser = db.prepare<[string], { conversation_id: string }>(
      'SELECT conversation_id FROM members WHERE user_id = ? ORDER BY conversation_id',
    );
    const page = (where: string): string =>
      `SELECT ${CONVERSATION_COLUMNS}, m.last_read_seq
       FROM members m JOIN conversations c ON c.id = m.conversation_id
       WHERE m.user_id = @user ${where}
       ORDER BY c.updated_at DESC, c.id DESC
       LIMIT @limit`;
    type PageRow = ConversationRow & { last_read_seq: number };
    this.selectFirstPage = db.prepare<{ user: string; limit: number }, PageRow>(page(''));
    this.selectNextPage = db.prepare<{ user: string; limit: number; at: number; id: string }, PageRow>(
      page('AND (c.updated_at < @at OR (c.updated_at = @at AND c.id < @id))'),
    );
    this.countUnread = db.prepare<[string, number, string], { n: number }>(
      `SELECT count(*) AS n FROM messages
       WHERE conversation_id = ? AND seq > ? AND sender_id <> ? AND deleted_at IS NULL`,
    );
    this.selectLastMessage = db.prepare<[string], MessageRow>(
      `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND deleted_at IS NULL ORDER BY seq DESC LIMIT 1`,
    );
    this.updateRead = db.prepare<{ conv: string; user: string; seq: number }, { last_read_seq: number }>(
      `UPDATE members
       SET last_read_seq = min(@seq, (SELECT last_seq FROM conversations WHERE id = @conv))
       WHERE conversation_id = @conv AND user_id = @user
         AND last_read_seq < min(@seq, (SELECT last_seq FROM conversations WHERE id = @conv))
       RETURNING last_read_seq`,
    );
    this.createTx = db.transaction(this.createNow.bind(this));
  }

  private toConversation(r: ConversationRow): Conversation {
    const c: Conversation = {
      id: r.id,
      kind: r.kind,
      members: this.membersNow(r.id),
      lastSeq: r.last_seq,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
    if (r.title !== null) c.title = r.title;
    if (r.retention_days !== null) c.retentionDays = r.retention_days;
    if (r.cleared_through_seq > 0) c.clearedThroughSeq = r.cleared_through_seq;
    if (r.encrypted) c.encrypted = true;
    return c;
  }

  private membersNow(id: string): Member[] {
    return this.selectMembers.all(id).map((m) => ({ userId: m.user_id, role: m.role, lastReadSeq: m.last_read_seq }));
  }

  private createNow(input: Parameters<ConversationStore['create']>[0]): { conversation: Conversation; created: boolean } {
    const title = input.title ?? null;
    const encrypted = input.encrypted ? 1 : 0;
    if (input.kind === 'direct') {
      const users = [...new Set(input.members.map((m) => m.userId))];
      const [a, b] = users;
      if (a === undefined || users.length > 2) throw new Error('a direct conversation has one or two members');
      const key = directKey(a, b ?? a, input.encrypted);
      if (this.insertDirect.run(input.id, title, key, input.at, input.at, encrypted).changes === 0) {
        const existing = this.selectByDirectKey.get(key);
        if (!existing) throw new Error(`direct conversation ${key} vanished`);
        return { conversation: this.toConversation(existing), created: false };
      }
    } else {
      this.insertConversation.run(input.id, input.kind, title, input.at, input.at, encrypted);
    }
    for (const m of input.members) this.insertMember.run(input.id, m.userId, m.role);
    const row = this.selectOne.get(input.id);
    if (!row) throw new Error(`conversation ${input.id} vanished`);
    return { conversation: this.toConversation(row), created: true };
  }

  async findDirect(a: string, b: string, encrypted = false): Promise<Conversation | undefined> {
    const r = this.selectByDirectKey.get(directKey(a, b, encrypted));
    return r && this.toConversation(r);
  }

  async create(input: Parameters<ConversationStore['create']>[0]): Promise<{ conversation: Conversation; created: boolean }> {
    try {
      return this.createTx.immediate(input);
    } catch (err) {
      throw translate(err, 'conversation');
    }
  }

  async get(id: string): Promise<Conversation | undefined> {
    const r = this.selectOne.get(id);
    return r && this.toConversation(r);
  }

  async members(id: string): Promise<Member[]> {
    return this.membersNow(id);
  }

  async idsForUser(userId: string): Promise<string[]> {
    return this.selectIdsForUser.all(userId).map((r) => r.conversation_id);
  }

  async getFor(id: string, userId: string): Promise<Conversation | undefined> {
    const c = await this.get(id);
    if (!c) return undefined;
    const me = c.members.find((m) => m.userId === userId);
    if (me) c.unreadCount = this.countUnread.get(id, me.lastReadSeq, userId)?.n ?? 0;
    const last = this.selectLastMessage.get(id);
    if (last) c.lastMessage = toMessage(last);
    return c;
  }

  async listForUser(userId: string, limit: number, after?: string): Promise<ConversationPage> {
    // One row more than asked tells whether a next page exists without a count.
    const rows =
      after === undefined
        ? this.selectFirstPage.all({ user: userId, limit: limit + 1 })
        : (() => {
            const [at, id] = decodeCursor(after);
            return this.selectNextPage.all({ user: userId, limit: limit + 1, at, id });
          })();
    const more = rows.length > limit;
    const conversations = rows.slice(0, limit).map((r) => {
      const c = this.toConversation(r);
      c.unreadCount = this.countUnread.get(r.id, r.last_read_seq, userId)?.n ?? 0;
      const last = this.selectLastMessage.get(r.id);
      if (last) c.lastMessage = toMessage(last);
      return c;
    });
    const tail = conversations[conversations.length - 1];
    const page: ConversationPage = { conversations };
    if (more && tail) page.next = encodeCursor(tail.updatedAt, tail.id);
    return page;
  }

  async markRead(conversationId: string, userId: string, seq: number): Promise<number | undefined> {
    return this.updateRead.get({ conv: conversationId, user: userId, seq })?.last_read_seq;
  }
}
