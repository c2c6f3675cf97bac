/**
 * Migration 4 of the PostgreSQL store: retention (R8), the same columns as
 * the SQLite engine's migration 4, and the function that clears a prefix of a
 * conversation's log. Never edit this migration: add one.
 *
 * - `retention_days`: the conversation's own policy; NULL when the server's
 *   default applies (keep forever unless the operator set one).
 * - `cleared_through_seq`: seqs at or below it were removed. `integer`, as
 *   `last_seq` and every seq column are. Neither column is indexed, so
 *   updating them (like last_seq) stays a HOT update.
 * - Adding a column with a constant default rewrites nothing (PostgreSQL 11+).
 */
export const SCHEMA_V4 = `
ALTER TABLE conversations
  ADD COLUMN retention_days integer CHECK (retention_days > 0),
  ADD COLUMN cleared_through_seq integer NOT NULL DEFAULT 0;

-- Removes the oldest events of a conversation that happened before before_at,
-- at most max_events of them, as a prefix of its log: it stops at the first
-- event at or after before_at. Returns the new cleared_through_seq, or NULL
-- when nothing was removed (unknown conversation included).
--
-- One statement, so one round trip and one transaction, and the conversation
-- row stays locked only while this runs. The lock is the one append_events
-- takes (FOR NO KEY UPDATE: foreign-key checks of other sessions still pass):
-- appends to the conversation and other clears of it, on any node, wait for
-- this one, and every statement below (each with a snapshot of its own, taken
-- after the lock) sees the log as the last append left it. Appends only add
-- seqs above last_seq, so nothing they do could move the cut.
--
-- The log is two tables (migration 2): message.created rows in messages (time
-- in created_at), every other kind in events (time in at); each seq of
-- 1..last_seq is in exactly one. The first max_events rows of each after the
-- cleared prefix cover every seq up to cleared + max_events, so the first
-- event at or after the cutoff within the cap is found without reading more
-- of a large conversation.
--
-- reactions reference messages by foreign key: the reactions of a removed
-- message go first. reply_to and edit_seqs are plain values: a reply may now
-- name a message that is gone, and edits always have higher seqs than their
-- message.
CREATE FUNCTION clear_history(conv text, before_at bigint, max_events bigint) RETURNS integer
LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
DECLARE
  cleared   integer;
  last_s    integer;
  first_new integer;
  through   bigint;
BEGIN
  IF max_events < 1 THEN
    RETURN NULL;
  END IF;
  SELECT c.cleared_through_seq, c.last_seq INTO cleared, last_s FROM conversations c WHERE c.id = conv FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  SELECT least(
    (SELECT min(x.seq) FROM (
       SELECT m.seq, m.created_at FROM messages m WHERE m.conversation_id = conv AND m.seq > cleared ORDER BY m.seq LIMIT max_events
     ) x WHERE x.created_at >= before_at),
    (SELECT min(y.seq) FROM (
       SELECT e.seq, e.at FROM events e WHERE e.conversation_id = conv AND e.seq > cleared ORDER BY e.seq LIMIT max_events
     ) y WHERE y.at >= before_at))
  INTO first_new;
  through := least(coalesce(first_new - 1, last_s), last_s, cleared::bigint + max_events);
  IF through <= cleared THEN
    RETURN NULL;
  END IF;
  DELETE FROM reactions r WHERE r.conversation_id = conv AND r.message_seq > cleared AND r.message_seq <= through;
  DELETE FROM messages m WHERE m.conversation_id = conv AND m.seq > cleared AND m.seq <= through;
  DELETE FROM events e WHERE e.conversation_id = conv AND e.seq > cleared AND e.seq <= through;
  UPDATE conversations c SET cleared_through_seq = through WHERE c.id = conv;
  RETURN through;
END
$fn$;
`;
