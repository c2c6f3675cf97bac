/**
 * Versioned schema of the SQLite store. A migration is applied once, in order,
 * inside the same write transaction that records it in `schema_migrations`, so a
 * crash mid-way leaves the previous version and two processes opening the same
 * file at once cannot both apply it. Never edit a released migration: add one.
 */
import type Database from 'better-sqlite3';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE users (
        id            TEXT PRIMARY KEY,
        username      TEXT NOT NULL UNIQUE,
        display_name  TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_at    INTEGER NOT NULL
      );

      CREATE TABLE devices (
        id             TEXT PRIMARY KEY,
        user_id        TEXT NOT NULL REFERENCES users(id),
        name           TEXT NOT NULL,
        created_at     INTEGER NOT NULL,
        last_active_at INTEGER NOT NULL,
        revoked_at     INTEGER
      );
      CREATE INDEX devices_by_user ON devices (user_id, created_at DESC, id DESC);

      CREATE TABLE refresh_tokens (
        token_hash TEXT PRIMARY KEY,
        device_id  TEXT NOT NULL REFERENCES devices(id),
        expires_at INTEGER NOT NULL,
        spent_at   INTEGER
      ) WITHOUT ROWID;
      CREATE INDEX refresh_tokens_by_device ON refresh_tokens (device_id);

      -- direct_key is the sorted member pair: the UNIQUE constraint makes
      -- "one direct conversation per pair" hold across connections and processes.
      CREATE TABLE conversations (
        id         TEXT PRIMARY KEY,
        kind       TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
        title      TEXT,
        direct_key TEXT UNIQUE,
        last_seq   INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );

      CREATE TABLE members (
        conversation_id TEXT NOT NULL REFERENCES conversations(id),
        user_id         TEXT NOT NULL REFERENCES users(id),
        role            TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
        last_read_seq   INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (conversation_id, user_id)
      ) WITHOUT ROWID;
      CREATE INDEX members_by_user ON members (user_id, conversation_id);

      -- The log. Kind-specific fields live in payload (JSON) so a new event kind
      -- needs no migration.
      CREATE TABLE events (
        conversation_id TEXT NOT NULL REFERENCES conversations(id),
        seq             INTEGER NOT NULL,
        kind            TEXT NOT NULL,
        actor_id        TEXT NOT NULL,
        at              INTEGER NOT NULL,
        payload         TEXT NOT NULL,
        PRIMARY KEY (conversation_id, seq)
      ) WITHOUT ROWID;

      -- Read model of message.* events, current state of each message.
      CREATE TABLE messages (
        id              TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations(id),
        seq             INTEGER NOT NULL,
        sender_id       TEXT NOT NULL,
        client_id       TEXT NOT NULL,
        body            TEXT NOT NULL,
        reply_to        TEXT,
        created_at      INTEGER NOT NULL,
        edited_at       INTEGER,
        deleted_at      INTEGER,
        reactions       TEXT,
        UNIQUE (conversation_id, sender_id, client_id)
      );
      CREATE UNIQUE INDEX messages_by_seq ON messages (conversation_id, seq);
    `,
  },
  {
    // Fewer pages written per message: a message.created used to write six
    // B-trees (the event with the message again as JSON, the message row, its
    // rowid, id, client-id and seq indexes, the conversation). Now the message
    // row is keyed by (conversation_id, seq) and is itself the message.created
    // event of the log (events.ts reads the two tables back merged by seq), so
    // it writes three: the row, the client-id index, the conversation. The id
    // index is appended at its right edge (ids sort by time). created_body
    // keeps the body as sent once an edit replaces it, so the created event
    // still reads back as appended.
    version: 2,
    name: 'messages keyed by seq; message.created stored once',
    sql: `
      CREATE TABLE messages_v2 (
        conversation_id TEXT NOT NULL,
        seq             INTEGER NOT NULL,
        id              TEXT NOT NULL,
        sender_id       TEXT NOT NULL,
        client_id       TEXT NOT NULL,
        body            TEXT NOT NULL,
        reply_to        TEXT,
        created_at      INTEGER NOT NULL,
        edited_at       INTEGER,
        deleted_at      INTEGER,
        reactions       TEXT,
        created_body    TEXT,
        PRIMARY KEY (conversation_id, seq)
      ) WITHOUT ROWID;

      INSERT INTO messages_v2
        (conversation_id, seq, id, sender_id, client_id, body, reply_to, created_at, edited_at, deleted_at, reactions, created_body)
      SELECT m.conversation_id, m.seq, m.id, m.sender_id, m.client_id, m.body, m.reply_to, m.created_at,
             m.edited_at, m.deleted_at, m.reactions,
             nullif(json_extract(e.payload, '$.message.body'), m.body)
      FROM messages m
      LEFT JOIN events e ON e.conversation_id = m.conversation_id AND e.seq = m.seq AND e.kind = 'message.created';

      DROP TABLE messages;
      ALTER TABLE messages_v2 RENAME TO messages;
      CREATE UNIQUE INDEX messages_by_id ON messages (id);
      CREATE UNIQUE INDEX messages_by_client ON messages (conversation_id, sender_id, client_id);
      DELETE FROM events WHERE kind = 'message.created';
    `,
  },
  {
    // R17: who blocks whom. Keyed by the blocker (their list, and "does A
    // block B"); the second index answers "who blocks B" for the reverse check.
    version: 3,
    name: 'blocks',
    sql: `
      CREATE TABLE blocks (
        blocker_id TEXT NOT NULL REFERENCES users(id),
        blocked_id TEXT NOT NULL REFERENCES users(id),
        created_at INTEGER NOT NULL,
        PRIMARY KEY (blocker_id, blocked_id)
      ) WITHOUT ROWID;
      CREATE INDEX blocks_by_blocked ON blocks (blocked_id, blocker_id);
    `,
  },
  {
    version: 4,
    name: 'retention',
    sql: `
      ALTER TABLE conversations ADD COLUMN retention_days INTEGER CHECK (retention_days > 0);
      ALTER TABLE conversations ADD COLUMN cleared_through_seq INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    // R15: full-text search. The index is filled after the append, not in it
    // (search.ts), so a send writes no page more than before. An FTS5 row is
    // a message's words (body) and its conversation id (conv, so a search in
    // one conversation intersects two term lists instead of filtering every
    // match); the table keeps no copy of the text (content=''), results are
    // read from messages. search_docs maps the FTS rowid to the message id,
    // numbered in the order messages were indexed. The triggers keep it true
    // when a message changes or goes: an edit or a delete (which empties the
    // body) replaces or drops its words, a retention clear drops both rows.
    // They do nothing for a message not indexed yet: the indexer reads the
    // text as it is when it gets there.
    version: 5,
    name: 'message search',
    sql: `
      CREATE VIRTUAL TABLE message_search USING fts5(
        body, conv, content = '', contentless_delete = 1, prefix = '1 2 3', tokenize = 'unicode61 remove_diacritics 2'
      );
      CREATE TABLE search_docs (
        doc        INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE
      );
      CREATE TABLE search_state (
        k       INTEGER PRIMARY KEY CHECK (k = 1),
        last_id TEXT NOT NULL
      );
      INSERT INTO search_state (k, last_id) VALUES (1, '');
      CREATE TRIGGER messages_search_update AFTER UPDATE OF body ON messages BEGIN
        DELETE FROM message_search WHERE rowid = (SELECT doc FROM search_docs WHERE message_id = NEW.id);
        INSERT INTO message_search (rowid, body, conv)
          SELECT doc, NEW.body, NEW.conversation_id FROM search_docs WHERE message_id = NEW.id AND NEW.deleted_at IS NULL;
      END;
      CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
        DELETE FROM message_search WHERE rowid = (SELECT doc FROM search_docs WHERE message_id = OLD.id);
        DELETE FROM search_docs WHERE message_id = OLD.id;
      END;
    `,
  },
  {
    // R14: attachments. An upload's metadata (the bytes are in the blob
    // store); the messages that carry it (attachment_refs, written by the
    // append of such a message only, so other sends write nothing more);
    // and the references as the message shows them (messages.attachments,
    // JSON, read with the row as reactions are). A reference goes with its
    // message: the delete of a message drops its references (events.ts), a
    // retention clear cascades. unreferenced_since is set at upload, cleared
    // by the first reference, and set again by the trigger when the last one
    // goes: the sweeper's index. attached_at tells a released upload (no one
    // may read or attach it again) from a pending one.
    version: 6,
    name: 'attachments',
    sql: `
      CREATE TABLE attachments (
        id                 TEXT PRIMARY KEY,
        uploader_id        TEXT NOT NULL REFERENCES users(id),
        type               TEXT NOT NULL,
        name               TEXT NOT NULL,
        size               INTEGER NOT NULL,
        sha256             TEXT NOT NULL,
        width              INTEGER,
        height             INTEGER,
        thumb_width        INTEGER,
        thumb_height       INTEGER,
        created_at         INTEGER NOT NULL,
        attached_at        INTEGER,
        unreferenced_since INTEGER
      );
      CREATE INDEX attachments_unreferenced ON attachments (unreferenced_since) WHERE unreferenced_since IS NOT NULL;
      CREATE TABLE attachment_refs (
        conversation_id TEXT NOT NULL,
        message_seq     INTEGER NOT NULL,
        attachment_id   TEXT NOT NULL REFERENCES attachments(id),
        PRIMARY KEY (conversation_id, message_seq, attachment_id),
        FOREIGN KEY (conversation_id, message_seq) REFERENCES messages (conversation_id, seq) ON DELETE CASCADE
      ) WITHOUT ROWID;
      CREATE INDEX attachment_refs_by_attachment ON attachment_refs (attachment_id, conversation_id);
      ALTER TABLE messages ADD COLUMN attachments TEXT;
      CREATE TRIGGER attachment_refs_released AFTER DELETE ON attachment_refs
      WHEN NOT EXISTS (SELECT 1 FROM attachment_refs WHERE attachment_id = OLD.attachment_id)
      BEGIN
        UPDATE attachments SET unreferenced_since = CAST(unixepoch('subsec') * 1000 AS INTEGER) WHERE id = OLD.attachment_id;
      END;
    `,
  },
  {
    // R12: push subscriptions, one per (kind, address) in the whole store (a
    // token registered again moves to the device that registered it), looked
    // up by user (who to notify, their list) and by device (revocation). And
    // server-wide secrets every node must share: the VAPID key pair.
    // Version 7: 6 and 8 belong to features built alongside.
    version: 7,
    name: 'push subscriptions',
    sql: `
      CREATE TABLE push_subscriptions (
        id         TEXT PRIMARY KEY,
        user_id    TEXT NOT NULL REFERENCES users(id),
        device_id  TEXT NOT NULL REFERENCES devices(id),
        kind       TEXT NOT NULL CHECK (kind IN ('webpush', 'apns', 'fcm')),
        address    TEXT NOT NULL,
        p256dh     TEXT,
        auth       TEXT,
        topic      TEXT,
        created_at INTEGER NOT NULL,
        UNIQUE (kind, address)
      );
      CREATE INDEX push_subscriptions_by_user ON push_subscriptions (user_id, id);
      CREATE INDEX push_subscriptions_by_device ON push_subscriptions (device_id);
      CREATE TABLE server_secrets (
        name       TEXT PRIMARY KEY,
        value      TEXT NOT NULL,
        created_at INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    // R18: end-to-end encryption. Numbered while 6 and 7 were built alongside; a gap is
    // fine (migrations apply in order, each once). `encrypted` is set when a
    // conversation is created and never changes; the search indexer
    // (search.ts) never indexes the messages of such a conversation, whose
    // bodies are ciphertext anyway. A direct pair may have one plain and one
    // encrypted conversation: their direct_key differs (sql-rows.ts).
    // device_keys: each device's public keys, published once; a revoked
    // device's row stays but is never listed (the queries join devices).
    version: 8,
    name: 'end-to-end encryption',
    sql: `
      ALTER TABLE conversations ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0 CHECK (encrypted IN (0, 1));
      CREATE TABLE device_keys (
        device_id     TEXT PRIMARY KEY REFERENCES devices(id),
        user_id       TEXT NOT NULL REFERENCES users(id),
        identity_key  TEXT NOT NULL,
        agreement_key TEXT NOT NULL,
        signature     TEXT NOT NULL,
        created_at    INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX device_keys_by_user ON device_keys (user_id, created_at, device_id);
    `,
  },
  {
    // R14 × R18: attachments in end-to-end encrypted conversations. An
    // encrypted upload is ciphertext the server stores opaque (no type, name,
    // image facts or thumbnail); the core lets only such uploads into an
    // encrypted conversation and none into a plain one. Existing uploads are
    // plain (the default), as they were.
    version: 9,
    name: 'encrypted attachments',
    sql: `
      ALTER TABLE attachments ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0 CHECK (encrypted IN (0, 1));
    `,
  },
];

/** Applies every migration the file has not recorded, in version order. Returns the versions applied. */
export function migrate(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )`);
  const current = db.prepare<[], { version: number }>('SELECT version FROM schema_migrations');
  const record = db.prepare<[number, string, number]>('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  const run = db.transaction((): number[] => {
    // Read the versions inside the write lock: another process may have just migrated. Every migration not
    // recorded is applied, not only those above the highest: features are developed side by side and take
    // numbers ahead (a gap is fine), so a file may hold 8 before it meets 6.
    const done = new Set(current.all().map((r) => r.version));
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      db.exec(m.sql);
      record.run(m.version, m.name, Date.now());
      applied.push(m.version);
    }
    return applied;
  });
  return run.immediate();
}
