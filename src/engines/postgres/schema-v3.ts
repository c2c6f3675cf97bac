/**
 * Migration 3 of the PostgreSQL store: who blocks whom (R17), the same table
 * as the SQLite engine's migration 3. Keyed by the blocker (their list, and
 * "does A block B"); the second index answers "who blocks B". Never edit this
 * migration: add one.
 */
export const SCHEMA_V3 = `
CREATE TABLE blocks (
  blocker_id text COLLATE "C" NOT NULL REFERENCES users (id),
  blocked_id text COLLATE "C" NOT NULL REFERENCES users (id),
  created_at bigint NOT NULL,
  PRIMARY KEY (blocker_id, blocked_id)
);
CREATE INDEX blocks_by_blocked ON blocks (blocked_id, blocker_id);
`;
