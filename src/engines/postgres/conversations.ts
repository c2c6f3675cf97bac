/**
 * ConversationStore on PostgreSQL (contract: core/ports/store.ts).
 *
 * Engine choices are the SQLite engine's: members ordered by userId; a direct
 * conversation has one or two distinct members and one row per pair even
 * under concurrent creates on many nodes (the pair is the key of
 * `direct_pairs`); an unknown member is 'not_found', a taken id or a user
 * listed twice 'conflict'; a list cursor this engine did not make is
 * 'not_found'. Each method is one statement, so one round trip, and creation
 * is atomic without an explicit transaction.
 */
import type { ConversationPage, ConversationStore } from '../../core/ports/store.js';
import type { Conversation, ConversationKind, Member } from '../../protocol/model.js';
import type { Db } from './db.js';
import { jsonParam, translate, type MessageJson } from './rows.js';
import { decodeCursor, directKey, encodeCursor } from '../sql-rows.js';

interface ConversationRow {
  id: string;
  kind: ConversationKind;
  title: string | null;
  last_seq: number;
  created_at: number;
  updated_at: number;
  retention_days: number | null;
  cleared_through_seq: number;
  encrypted: boolean;
  members: Member[];
}

interface ForUserRow extends ConversationRow {
  unread: number | null;
  last_message: MessageJson | null;
}

type CreateInput = Parameters<ConversationStore['create']>[0];

/** The unique key of a direct pair; JSON so no id can forge another pair's key. */

const MEMBERS_OF = (conv: string): string => `(
  SELECT coalesce(json_agg(json_build_object('userId', mm.user_id, 'role', mm.role, 'lastReadSeq', mm.last_read_seq) ORDER BY mm.user_id), '[]')
  FROM members mm WHERE mm.conversation_id = ${conv}) AS members`;

/** The newest non-deleted message, for list previews. */
const LAST_MESSAGE_OF = (conv: string): string => `(
  SELECT message_json(x) FROM messages x WHERE x.conversation_id = ${conv} AND x.deleted_at IS NULL ORDER BY x.seq DESC LIMIT 1
) AS last_message`;

/** Messages from others after the member's lastReadSeq, deleted ones left out. */
const UNREAD_OF = (conv: string, user: string, lastRead: string): string => `(
  SELECT count(*) FROM messages x
  WHERE x.conversation_id = ${conv} AND x.seq > ${lastRead} AND x.sender_id <> ${user} AND x.deleted_at IS NULL
)`;

/** The columns of a Conversation, for a row of conversations named `t`. */
const COLUMNS = (t: string): string =>
  `${t}.id, ${t}.kind, ${t}.title, ${t}.last_seq, ${t}.created_at, ${t}.updated_at, ${t}.retention_days, ${t}.cleared_through_seq, ${t}.encrypted`;

const GET = `SELECT ${COLUMNS('c')}, ${MEMBERS_OF('c.id')} FROM conversations c`;

/** An unread count only for a member (me is NULL for anyone else). */
const GET_FOR = `
  SELECT ${COLUMNS('c')}, ${MEMBERS_OF('c.id')}, ${LAST_MESSAGE_OF('c.id')},
         CASE WHEN me.user_id IS NULL THEN NULL ELSE ${UNREAD_OF('c.id', 'me.user_id', 'me.last_read_seq')} END AS unread
  FROM conversations c LEFT JOIN members me ON me.conversation_id = c.id AND me.user_id = $2
  WHERE c.id = $1`;

/**
 * One page of a user's conversations. The page is cut first (LIMIT in the inner
 * query), so members, unread counts and previews are computed for its rows only.
 */
const LIST = (keyset: boolean): string => `
  SELECT ${COLUMNS('p')}, ${MEMBERS_OF('p.id')},
         ${UNREAD_OF('p.id', '$1', 'p.last_read_seq')} AS unread, ${LAST_MESSAGE_OF('p.id')}
  FROM (
    SELECT c.*, m.last_read_seq
    FROM members m JOIN conversations c ON c.id = m.conversation_id
    WHERE m.user_id = $1 ${keyset ? 'AND (c.updated_at, c.id) < ($3, $4)' : ''}
    ORDER BY c.updated_at DESC, c.id DESC
    LIMIT $2
  ) p
  ORDER BY p.updated_at DESC, p.id DESC`;

const CREATE_GROUP = `
  WITH conv AS (
    INSERT INTO conversations (id, kind, title, created_at, updated_at, encrypted) VALUES ($1, $2, $3, $4, $4, $6) RETURNING id
  )
  INSERT INTO members (conversation_id, user_id, role)
  SELECT conv.id, m.user_id, m.role FROM conv, jsonb_to_recordset($5::jsonb) AS m(user_id text, role text)`;

/**
 * Claims the pair first: ON CONFLICT waits for a concurrent claim of the same
 * pair to commit and then does nothing, so the losers of a race write nothing
 * and read the winner's conversation afterwards.
 */
const CREATE_DIRECT = `
  WITH pair AS (
    INSERT INTO direct_pairs (pair_key, conversation_id) VALUES ($7, $1) ON CONFLICT (pair_key) DO NOTHING RETURNING conversation_id
  ), conv AS (
    INSERT INTO conversations (id, kind, title, created_at, updated_at, encrypted) SELECT $1, $2, $3, $4, $4, $6 FROM pair RETURNING id
  ), mem AS (
    INSERT INTO members (conversation_id, user_id, role)
    SELECT conv.id, m.user_id, m.role FROM conv, jsonb_to_recordset($5::jsonb) AS m(user_id text, role text)
  )
  SELECT count(*) AS created FROM pair`;

export class PostgresConversationStore implements ConversationStore {
  constructor(private readonly db: Db) {}

  private static toConversation(r: ConversationRow): Conversation {
    const c: Conversation = {
      id: r.id,
      kind: r.kind,
      members: r.members,
      lastSeq: r.last_seq,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
    if (r.title !== null) c.title = r.title;
    // Optional fields are left out, not set to undefined.
    if (r.retention_days !== null) c.retentionDays = r.retention_days;
    if (r.cleared_through_seq > 0) c.clearedThroughSeq = r.cleared_through_seq;
    if (r.encrypted) c.encrypted = true;
    return c;
  }

  private static withExtras(r: ForUserRow): Conversation {
    const c = PostgresConversationStore.toConversation(r);
    if (r.unread !== null) c.unreadCount = r.unread;
    if (r.last_message !== null) c.lastMessage = r.last_message;
    return c;
  }

  async findDirect(a: string, b: string, encrypted = false): Promise<Conversation | undefined> {
    const [r] = await this.db.query<ConversationRow>(
      `${GET} WHERE c.id = (SELECT d.conversation_id FROM direct_pairs d WHERE d.pair_key = $1)`,
      [directKey(a, b, encrypted)],
    );
    return r && PostgresConversationStore.toConversation(r);
  }

  async create(input: CreateInput): Promise<{ conversation: Conversation; created: boolean }> {
    const title = input.title ?? null;
    const members = jsonParam(input.members.map((m) => ({ user_id: m.userId, role: m.role })));
    const encrypted = input.encrypted === true;
    const params = [input.id, input.kind, title, input.at, members, encrypted];
    try {
      if (input.kind === 'direct') {
        const users = [...new Set(input.members.map((m) => m.userId))];
        const [a, b] = users;
        if (a === undefined || users.length > 2) throw new Error('a direct conversation has one or two members');
        const [r] = await this.db.query<{ created: number }>(CREATE_DIRECT, [...params, directKey(a, b ?? a, encrypted)]);
        if (r?.created !== 1) {
          const existing = await this.findDirect(a, b ?? a, encrypted);
          if (!existing) throw new Error(`direct conversation ${directKey(a, b ?? a, encrypted)} vanished`);
          return { conversation: existing, created: false };
        }
      } else {
        await this.db.query(CREATE_GROUP, params);
      }
    } catch (err) {
      throw translate(err, 'conversation');
    }
    // Exactly what was written: no read back needed.
    const conversation: Conversation = {
      id: input.id,
      kind: input.kind,
      members: input.members
        .map((m) => ({ userId: m.userId, role: m.role, lastReadSeq: 0 }))
        .sort((x, y) => (x.userId < y.userId ? -1 : x.userId > y.userId ? 1 : 0)),
      lastSeq: 0,
      createdAt: input.at,
      updatedAt: input.at,
    };
    if (input.title !== undefined) conversation.title = input.title;
    if (encrypted) conversation.encrypted = true;
    return { conversation, created: true };
  }

  async get(id: string): Promise<Conversation | undefined> {
    const [r] = await this.db.query<ConversationRow>(`${GET} WHERE c.id = $1`, [id]);
    return r && PostgresConversationStore.toConversation(r);
  }

  async getFor(id: string, userId: string): Promise<Conversation | undefined> {
    const [r] = await this.db.query<ForUserRow>(GET_FOR, [id, userId]);
    return r && PostgresConversationStore.withExtras(r);
  }

  async members(id: string): Promise<Member[]> {
    const rows = await this.db.query<{ user_id: string; role: Member['role']; last_read_seq: number }>(
      'SELECT user_id, role, last_read_seq FROM members WHERE conversation_id = $1 ORDER BY user_id',
      [id],
    );
    return rows.map((m) => ({ userId: m.user_id, role: m.role, lastReadSeq: m.last_read_seq }));
  }

  async idsForUser(userId: string): Promise<string[]> {
    const rows = await this.db.query<{ conversation_id: string }>(
      'SELECT conversation_id FROM members WHERE user_id = $1 ORDER BY conversation_id',
      [userId],
    );
    return rows.map((r) => r.conversation_id);
  }

  async listForUser(userId: string, limit: number, after?: string): Promise<ConversationPage> {
    // One row more than asked tells whether a next page exists without a count.
    const rows =
      after === undefined
        ? await this.db.query<ForUserRow>(LIST(false), [userId, limit + 1])
        : await this.db.query<ForUserRow>(LIST(true), [userId, limit + 1, ...decodeCursor(after)]);
    const more = rows.length > limit;
    const conversations = rows.slice(0, limit).map((r) => PostgresConversationStore.withExtras(r));
    const tail = conversations[conversations.length - 1];
    const page: ConversationPage = { conversations };
    if (more && tail) page.next = encodeCursor(tail.updatedAt, tail.id);
    return page;
  }

  async markRead(conversationId: string, userId: string, seq: number): Promise<number | undefined> {
    const [r] = await this.db.query<{ last_read_seq: number }>(
      `UPDATE members m SET last_read_seq = least($3::bigint, c.last_seq)
       FROM conversations c
       WHERE c.id = m.conversation_id AND m.conversation_id = $1 AND m.user_id = $2
         AND m.last_read_seq < least($3::bigint, c.last_seq)
       RETURNING m.last_read_seq`,
      [conversationId, userId, seq],
    );
    return r?.last_read_seq;
  }
}
