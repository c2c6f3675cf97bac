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
];

/** Applies every migration newer than the file's version. Returns the versions applied. */
export function migrate(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )`);
  const current = db.prepare<[], { v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
  const record = db.prepare<[number, string, number]>('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  const run = db.transaction((): number[] => {
    // Read the version inside the write lock: another process may have just migrated.
    const from = current.get()?.v ?? 0;
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (m.version <= from) continue;
      db.exec(m.sql);
      record.run(m.version, m.name, Date.now());
      applied.push(m.version);
    }
    return applied;
  });
  return run.immediate();
}
