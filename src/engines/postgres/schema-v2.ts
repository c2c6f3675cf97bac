/**
 * Migration 2 of the PostgreSQL store: a message is written once.
 *
 * Until now a send wrote its message twice, as a `messages` row and again as
 * the payload of a `message.created` row of `events`, and each insert paid a
 * foreign-key check on the conversation. Per append that was seven statements
 * inside append_events; now it is four (lock the conversation, look the id
 * up, insert the message, move the conversation on). The SQLite engine made
 * the same change in its migration 2.
 *
 * - A `message.created` event is now read from its `messages` row (events.ts
 *   merges both tables by seq). `created_body` keeps the body as sent once an
 *   edit replaced it; a delete clears both, so the text leaves the log.
 * - Existing `message.created` rows of `events` move over: the first body of
 *   an edited message is copied to `created_body`, then the rows are dropped.
 * - `messages` loses its foreign key to `conversations`: append_events holds
 *   the conversation row locked while it inserts, which proves it exists, and
 *   no conversation is ever deleted. (`events` keeps its own; it is written
 *   for the rarer kinds only.)
 * - append_events is replaced by the version below. Never edit this migration
 *   once released: add one.
 */
export const SCHEMA_V2 = `
ALTER TABLE messages ADD COLUMN created_body text;

UPDATE messages m SET created_body = e.payload->'message'->>'body'
FROM events e
WHERE e.kind = 'message.created' AND e.conversation_id = m.conversation_id AND e.seq = m.seq
  AND m.edited_at IS NOT NULL AND m.deleted_at IS NULL;

DELETE FROM events WHERE kind = 'message.created';

ALTER TABLE messages DROP CONSTRAINT messages_conversation_id_fkey;

-- Appends a batch of events (a JSON array of the port's AppendInput) and
-- returns one JSON outcome per item, in order:
--   {"status":"appended","seq":n,"payload":{...},"message":{...}|null}
--   {"status":"unchanged","message":{...}|null}
--   {"error":"not_found"|"conflict","reason":"..."}
--
-- Runs with enable_seqscan off: each statement in it is a point lookup by a
-- key, and a plan cached while a table was small must not keep scanning it
-- once it has grown (plans live as long as the pooled session).
--
-- Items of one conversation must be adjacent (the caller sorts by conversation
-- id, which also makes every node lock conversations in the same order, so two
-- batches never deadlock). The first item of a conversation locks its row
-- until COMMIT: every appender of that conversation, on any node, waits here,
-- so seqs are gap-free and in commit order. Refusals are found by checks made
-- before anything is written, never by a failed statement: one refused item
-- does not abort the others, and no subtransaction is needed (many of them in
-- one transaction slow every other session's snapshots).
CREATE OR REPLACE FUNCTION append_events(items jsonb) RETURNS SETOF json
LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
DECLARE
  item       jsonb;
  conv       text;
  known      boolean := false;
  next_seq   integer;
  start_seq  integer;
  updated    bigint;
  new_title  text;
  retitled   boolean := false;
  kind_v     text;
  actor      text;
  at_v       bigint;
  m          messages;
  reply_conv text;
  payload_v  json;
  msg        json;
  was_set    boolean;
BEGIN
  FOR item IN SELECT t.e FROM jsonb_array_elements(items) WITH ORDINALITY AS t(e, i) ORDER BY t.i LOOP
    IF conv IS DISTINCT FROM item->>'conversationId' THEN
      IF known AND next_seq <> start_seq THEN
        UPDATE conversations c
        SET last_seq = next_seq, updated_at = updated, title = CASE WHEN retitled THEN new_title ELSE c.title END
        WHERE c.id = conv;
      END IF;
      conv := item->>'conversationId';
      -- NO KEY UPDATE, not UPDATE: foreign-key checks of other sessions
      -- (a new member, say) are not blocked by an append.
      SELECT c.last_seq, c.updated_at INTO next_seq, updated FROM conversations c WHERE c.id = conv FOR NO KEY UPDATE;
      known := FOUND;
      start_seq := next_seq;
      retitled := false;
    END IF;
    IF NOT known THEN
      RETURN NEXT json_build_object('error', 'not_found', 'reason', 'No conversation has that id.');
      CONTINUE;
    END IF;

    kind_v := item->>'kind';
    actor := item->>'actorId';
    at_v := (item->>'at')::bigint;
    msg := NULL;

    IF kind_v IN ('message.edited', 'message.deleted', 'message.reacted') THEN
      SELECT * INTO m FROM messages x WHERE x.id = item->>'messageId';
      IF NOT FOUND OR m.conversation_id <> conv THEN
        RETURN NEXT json_build_object('error', 'not_found', 'reason', 'No message with that id is in this conversation.');
        CONTINUE;
      END IF;
      IF m.deleted_at IS NOT NULL THEN
        RETURN NEXT json_build_object('error', 'conflict', 'reason', 'The message was deleted.');
        CONTINUE;
      END IF;
    END IF;

    CASE kind_v
    WHEN 'message.created' THEN
      -- Every lookup here goes through a unique index that nothing else could
      -- serve, so no plan can turn it into a scan of the conversation.
      SELECT * INTO m FROM messages x WHERE x.id = item#>>'{message,id}';
      IF FOUND THEN
        IF m.conversation_id = conv AND m.sender_id = actor AND m.client_id = item#>>'{message,clientId}' THEN
          RETURN NEXT json_build_object('status', 'unchanged', 'message', message_json(m));
        ELSE
          RETURN NEXT json_build_object('error', 'conflict', 'reason', 'That message already exists.');
        END IF;
        CONTINUE;
      END IF;
      IF item#>>'{message,replyTo}' IS NOT NULL THEN
        SELECT x.conversation_id INTO reply_conv FROM messages x WHERE x.id = item#>>'{message,replyTo}';
        IF NOT FOUND THEN
          RETURN NEXT json_build_object('error', 'not_found', 'reason', 'The message replied to does not exist.');
          CONTINUE;
        END IF;
        IF reply_conv <> conv THEN
          RETURN NEXT json_build_object('error', 'conflict', 'reason', 'The message replied to belongs to another conversation.');
          CONTINUE;
        END IF;
      END IF;
      -- Idempotency: the unique key decides. A clientId seen before (by a
      -- retry, possibly racing its original from another node: both hold the
      -- conversation lock in turn) returns the original row, unchanged, and
      -- the candidate seq is not used.
      INSERT INTO messages AS x (conversation_id, seq, id, sender_id, client_id, body, reply_to, created_at)
      VALUES (conv, next_seq + 1, item#>>'{message,id}', actor, item#>>'{message,clientId}', item#>>'{message,body}',
              item#>>'{message,replyTo}', at_v)
      ON CONFLICT (conversation_id, sender_id, client_id) DO UPDATE SET client_id = x.client_id
      RETURNING * INTO m;
      IF m.seq <> next_seq + 1 THEN
        RETURN NEXT json_build_object('status', 'unchanged', 'message', message_json(m));
        CONTINUE;
      END IF;
      next_seq := next_seq + 1;
      msg := json_strip_nulls(json_build_object(
        'id', m.id, 'conversationId', conv, 'seq', next_seq, 'senderId', actor, 'clientId', m.client_id,
        'body', m.body, 'replyTo', m.reply_to, 'createdAt', at_v));
      payload_v := json_build_object('message', msg);

    WHEN 'message.edited' THEN
      next_seq := next_seq + 1;
      -- The right-hand sides read the row as it was: the first edit keeps the body as sent.
      UPDATE messages x SET created_body = coalesce(x.created_body, x.body), body = item->>'body', edited_at = at_v,
        edit_seqs = x.edit_seqs || next_seq
      WHERE x.conversation_id = conv AND x.seq = m.seq
      RETURNING * INTO m;
      msg := message_json(m);
      payload_v := json_build_object('messageId', m.id, 'body', item->>'body');

    WHEN 'message.deleted' THEN
      next_seq := next_seq + 1;
      -- The text leaves the log too (the created event reads created_body or
      -- body), so a device catching up never sees it.
      UPDATE messages x SET body = '', created_body = NULL, deleted_at = at_v
      WHERE x.conversation_id = conv AND x.seq = m.seq
      RETURNING * INTO m;
      DELETE FROM reactions r WHERE r.conversation_id = conv AND r.message_seq = m.seq;
      IF cardinality(m.edit_seqs) > 0 THEN
        UPDATE events e SET payload = jsonb_set(e.payload::jsonb, '{body}', '""')::json
        WHERE e.conversation_id = conv AND e.seq = ANY (m.edit_seqs);
      END IF;
      msg := message_json(m);
      payload_v := json_build_object('messageId', m.id);

    WHEN 'message.reacted' THEN
      was_set := EXISTS (
        SELECT 1 FROM reactions r
        WHERE r.conversation_id = conv AND r.message_seq = m.seq AND r.reaction = item->>'reaction' AND r.user_id = actor);
      IF was_set = (item->>'active')::boolean THEN
        RETURN NEXT json_build_object('status', 'unchanged', 'message', message_json(m));
        CONTINUE;
      END IF;
      next_seq := next_seq + 1;
      IF was_set THEN
        DELETE FROM reactions r
        WHERE r.conversation_id = conv AND r.message_seq = m.seq AND r.reaction = item->>'reaction' AND r.user_id = actor;
      ELSE
        INSERT INTO reactions (conversation_id, message_seq, reaction, user_id, seq)
        VALUES (conv, m.seq, item->>'reaction', actor, next_seq);
      END IF;
      msg := message_json(m);
      payload_v := json_build_object('messageId', m.id, 'reaction', item->>'reaction', 'active', NOT was_set);

    WHEN 'member.joined' THEN
      IF EXISTS (SELECT 1 FROM members x WHERE x.conversation_id = conv AND x.user_id = item->>'userId') THEN
        RETURN NEXT json_build_object('status', 'unchanged', 'message', NULL);
        CONTINUE;
      END IF;
      IF NOT EXISTS (SELECT 1 FROM users u WHERE u.id = item->>'userId') THEN
        RETURN NEXT json_build_object('error', 'not_found', 'reason', 'That user refers to something that does not exist.');
        CONTINUE;
      END IF;
      next_seq := next_seq + 1;
      -- History before the join does not count as unread.
      INSERT INTO members (conversation_id, user_id, role, last_read_seq)
      VALUES (conv, item->>'userId', item->>'role', next_seq);
      payload_v := json_build_object('userId', item->>'userId', 'role', item->>'role');

    WHEN 'member.left' THEN
      DELETE FROM members x WHERE x.conversation_id = conv AND x.user_id = item->>'userId';
      IF NOT FOUND THEN
        RETURN NEXT json_build_object('error', 'not_found', 'reason', 'That user is not a member of this conversation.');
        CONTINUE;
      END IF;
      next_seq := next_seq + 1;
      payload_v := json_build_object('userId', item->>'userId');

    WHEN 'member.role' THEN
      UPDATE members x SET role = item->>'role' WHERE x.conversation_id = conv AND x.user_id = item->>'userId';
      IF NOT FOUND THEN
        RETURN NEXT json_build_object('error', 'not_found', 'reason', 'That user is not a member of this conversation.');
        CONTINUE;
      END IF;
      next_seq := next_seq + 1;
      payload_v := json_build_object('userId', item->>'userId', 'role', item->>'role');

    WHEN 'conversation.updated' THEN
      next_seq := next_seq + 1;
      new_title := item->>'title';
      retitled := true;
      payload_v := json_build_object('title', item->>'title');

    ELSE
      RAISE EXCEPTION 'unknown event kind %', kind_v;
    END CASE;

    -- A message.created is its messages row: written once, not again here.
    IF kind_v <> 'message.created' THEN
      INSERT INTO events (conversation_id, seq, kind, actor_id, at, payload)
      VALUES (conv, next_seq, kind_v, actor, at_v, payload_v);
    END IF;
    updated := greatest(updated, at_v);
    RETURN NEXT json_build_object('status', 'appended', 'seq', next_seq, 'payload', payload_v, 'message', msg);
  END LOOP;

  IF known AND next_seq <> start_seq THEN
    UPDATE conversations c
    SET last_seq = next_seq, updated_at = updated, title = CASE WHEN retitled THEN new_title ELSE c.title END
    WHERE c.id = conv;
  END IF;
END
$fn$;
`;
