/**
 * Migration 6 of the PostgreSQL store: attachments (R14), as the SQLite
 * engine's migration 6. Never edit this migration: add one.
 *
 * - `attachments`: an upload's metadata (the bytes are in the blob store).
 *   `unreferenced_since` is set at upload, cleared by the first message that
 *   carries it, set again when the last such message goes (trigger below):
 *   the sweeper's index. `attached_at` tells a released upload (no one may
 *   read or attach it again) from a pending one.
 * - `attachment_refs`: which messages carry which upload, keyed like the
 *   other hot tables by conversation first. Written by append_events only for
 *   a message with attachments; a delete drops them, a retention clear
 *   (clear_history deletes the messages) cascades.
 * - `messages.attachments`: the references as the message shows them (json,
 *   written once with the row; NULL for every other message, which costs a
 *   send nothing: no index, no check).
 * - message_json and append_events are replaced: the versions below are
 *   those of migrations 1 and 2 plus attachments. A later migration that
 *   replaces them again must start from these.
 */
export const SCHEMA_V6 = `
CREATE TABLE attachments (
  id                 text COLLATE "C" PRIMARY KEY,
  uploader_id        text COLLATE "C" NOT NULL REFERENCES users (id),
  type               text NOT NULL,
  name               text NOT NULL,
  size               bigint NOT NULL,
  sha256             text NOT NULL,
  width              integer,
  height             integer,
  thumb_width        integer,
  thumb_height       integer,
  created_at         bigint NOT NULL,
  attached_at        bigint,
  unreferenced_since bigint
);
CREATE INDEX attachments_unreferenced ON attachments (unreferenced_since) WHERE unreferenced_since IS NOT NULL;

CREATE TABLE attachment_refs (
  conversation_id text COLLATE "C" NOT NULL,
  message_seq     integer NOT NULL,
  attachment_id   text COLLATE "C" NOT NULL REFERENCES attachments (id),
  PRIMARY KEY (conversation_id, message_seq, attachment_id),
  FOREIGN KEY (conversation_id, message_seq) REFERENCES messages (conversation_id, seq) ON DELETE CASCADE
);
CREATE INDEX attachment_refs_by_attachment ON attachment_refs (attachment_id, conversation_id);

ALTER TABLE messages ADD COLUMN attachments json;

-- An upload whose last reference went is released from now on.
CREATE FUNCTION attachment_refs_released() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  UPDATE attachments a SET unreferenced_since = (extract(epoch FROM clock_timestamp()) * 1000)::bigint
  WHERE a.id = OLD.attachment_id
    AND NOT EXISTS (SELECT 1 FROM attachment_refs r WHERE r.attachment_id = OLD.attachment_id);
  RETURN NULL;
END
$fn$;
CREATE TRIGGER attachment_refs_released AFTER DELETE ON attachment_refs
FOR EACH ROW EXECUTE FUNCTION attachment_refs_released();

-- A message as the protocol shows it (migration 1's, plus attachments).
CREATE OR REPLACE FUNCTION message_json(m messages) RETURNS json
LANGUAGE sql STABLE AS $fn$
  SELECT json_strip_nulls(json_build_object(
    'id', m.id, 'conversationId', m.conversation_id, 'seq', m.seq, 'senderId', m.sender_id,
    'clientId', m.client_id, 'body', m.body, 'replyTo', m.reply_to, 'createdAt', m.created_at,
    'attachments', m.attachments, 'editedAt', m.edited_at, 'deletedAt', m.deleted_at,
    'reactions', (
      SELECT json_object_agg(g.reaction, g.who ORDER BY g.first)
      FROM (
        SELECT r.reaction, json_agg(r.user_id ORDER BY r.seq) AS who, min(r.seq) AS first
        FROM reactions r
        WHERE r.conversation_id = m.conversation_id AND r.message_seq = m.seq
        GROUP BY r.reaction
      ) g)))
$fn$;

-- Migration 2's append_events, plus attachments on message.created (checked,
-- stored, referenced) and message.deleted (references dropped).
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
  atts       jsonb;
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
      -- Attachments (R14): every one the actor's upload, pending or attached,
      -- none twice. Checked before anything is written, like the reply.
      atts := item#>'{message,attachments}';
      IF atts IS NOT NULL AND (
        (SELECT count(DISTINCT e->>'id') FROM jsonb_array_elements(atts) e) <> jsonb_array_length(atts)
        OR (SELECT count(*) FROM attachments a
            WHERE a.id IN (SELECT e->>'id' FROM jsonb_array_elements(atts) e) AND a.uploader_id = actor
              AND (a.attached_at IS NULL OR a.unreferenced_since IS NULL)) <> jsonb_array_length(atts)
      ) THEN
        RETURN NEXT json_build_object('error', 'not_found', 'reason', 'An attachment of this message is not one of your uploads, or no longer exists.');
        CONTINUE;
      END IF;
      -- Idempotency: the unique key decides. A clientId seen before (by a
      -- retry, possibly racing its original from another node: both hold the
      -- conversation lock in turn) returns the original row, unchanged, and
      -- the candidate seq is not used.
      INSERT INTO messages AS x (conversation_id, seq, id, sender_id, client_id, body, reply_to, created_at, attachments)
      VALUES (conv, next_seq + 1, item#>>'{message,id}', actor, item#>>'{message,clientId}', item#>>'{message,body}',
              item#>>'{message,replyTo}', at_v, (item#>>'{message,attachments}')::json)
      ON CONFLICT (conversation_id, sender_id, client_id) DO UPDATE SET client_id = x.client_id
      RETURNING * INTO m;
      IF m.seq <> next_seq + 1 THEN
        RETURN NEXT json_build_object('status', 'unchanged', 'message', message_json(m));
        CONTINUE;
      END IF;
      next_seq := next_seq + 1;
      IF atts IS NOT NULL THEN
        -- A foreign key holds the upload: a sweeper deleting it at this very
        -- moment fails, or makes this insert fail (and the batch is retried
        -- one by one, when the check above refuses it).
        INSERT INTO attachment_refs (conversation_id, message_seq, attachment_id)
        SELECT conv, next_seq, e->>'id' FROM jsonb_array_elements(atts) e;
        UPDATE attachments a SET attached_at = coalesce(a.attached_at, at_v), unreferenced_since = NULL
        WHERE a.id IN (SELECT e->>'id' FROM jsonb_array_elements(atts) e);
      END IF;
      msg := json_strip_nulls(json_build_object(
        'id', m.id, 'conversationId', conv, 'seq', next_seq, 'senderId', actor, 'clientId', m.client_id,
        'body', m.body, 'replyTo', m.reply_to, 'createdAt', at_v, 'attachments', m.attachments));
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
      -- Its references go too (the trigger on attachment_refs releases an
      -- upload no other message carries).
      IF m.attachments IS NOT NULL THEN
        DELETE FROM attachment_refs r WHERE r.conversation_id = conv AND r.message_seq = m.seq;
      END IF;
      UPDATE messages x SET body = '', created_body = NULL, deleted_at = at_v, attachments = NULL
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
