/**
 * Migration 1 of the PostgreSQL store: tables, the message read-model helper
 * and the append function. Applied with search_path set to the store's schema,
 * so nothing here names a schema. Never edit it once released: add a migration.
 *
 * Layout (docs/scaling.md, "PostgreSQL and distributed SQL"):
 * - Every hot table (events, messages, members, reactions) has the
 *   conversation id as the first column of its primary key, so one
 *   conversation's rows sit together and the tables can be partitioned or
 *   distributed by it.
 * - Ids and other keys compared as strings use COLLATE "C": byte order, the
 *   same on every server whatever its locale, and what keyset cursors and
 *   prefix ranges rely on.
 * - Times are bigint milliseconds, as in the protocol.
 */
export const SCHEMA_V1 = `
CREATE TABLE users (
  id            text COLLATE "C" PRIMARY KEY,
  username      text COLLATE "C" NOT NULL UNIQUE,
  display_name  text NOT NULL,
  password_hash text NOT NULL,
  created_at    bigint NOT NULL
);

CREATE TABLE devices (
  id             text COLLATE "C" PRIMARY KEY,
  user_id        text COLLATE "C" NOT NULL REFERENCES users (id),
  name           text NOT NULL,
  created_at     bigint NOT NULL,
  last_active_at bigint NOT NULL,
  revoked_at     bigint
);
CREATE INDEX devices_by_user ON devices (user_id, created_at DESC, id DESC);

CREATE TABLE refresh_tokens (
  token_hash text COLLATE "C" PRIMARY KEY,
  device_id  text COLLATE "C" NOT NULL REFERENCES devices (id),
  expires_at bigint NOT NULL,
  spent_at   bigint
);
CREATE INDEX refresh_tokens_by_device ON refresh_tokens (device_id);

-- last_seq and updated_at change on every append: room left in each page
-- lets those updates stay HOT (no index writes, no page hops).
CREATE TABLE conversations (
  id         text COLLATE "C" PRIMARY KEY,
  kind       text NOT NULL CHECK (kind IN ('direct', 'group')),
  title      text,
  last_seq   integer NOT NULL DEFAULT 0,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL
) WITH (fillfactor = 70);

-- One direct conversation per pair of users. Its own table, keyed by the
-- pair, rather than a unique column of conversations: a unique key that is not
-- the conversation id could not be enforced once conversations are
-- distributed by id.
CREATE TABLE direct_pairs (
  pair_key        text COLLATE "C" PRIMARY KEY,
  conversation_id text COLLATE "C" NOT NULL REFERENCES conversations (id)
);

CREATE TABLE members (
  conversation_id text COLLATE "C" NOT NULL REFERENCES conversations (id),
  user_id         text COLLATE "C" NOT NULL REFERENCES users (id),
  role            text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  last_read_seq   integer NOT NULL DEFAULT 0,
  PRIMARY KEY (conversation_id, user_id)
) WITH (fillfactor = 80);
CREATE INDEX members_by_user ON members (user_id, conversation_id);

-- The log. Kind-specific fields live in payload so a new event kind needs no
-- migration; json (not jsonb) keeps the keys in the order they were written.
CREATE TABLE events (
  conversation_id text COLLATE "C" NOT NULL REFERENCES conversations (id),
  seq             integer NOT NULL,
  kind            text NOT NULL,
  actor_id        text COLLATE "C" NOT NULL,
  at              bigint NOT NULL,
  payload         json NOT NULL,
  PRIMARY KEY (conversation_id, seq)
);

-- Read model of message.* events: the current state of each message.
-- edit_seqs lists the seqs of its message.edited events, so a delete can scrub
-- their text from the log without scanning it.
CREATE TABLE messages (
  conversation_id text COLLATE "C" NOT NULL REFERENCES conversations (id),
  seq             integer NOT NULL,
  id              text COLLATE "C" NOT NULL,
  sender_id       text COLLATE "C" NOT NULL,
  client_id       text COLLATE "C" NOT NULL,
  body            text NOT NULL,
  reply_to        text COLLATE "C",
  created_at      bigint NOT NULL,
  edited_at       bigint,
  deleted_at      bigint,
  edit_seqs       integer[] NOT NULL DEFAULT '{}',
  PRIMARY KEY (conversation_id, seq),
  UNIQUE (conversation_id, sender_id, client_id)
);
-- Message ids are global (events.message(id) has no conversation id).
CREATE UNIQUE INDEX messages_by_id ON messages (id);

-- Who reacted with what; seq is that of the message.reacted event that added
-- the row, which orders the reactors of an emoji and the emoji themselves.
CREATE TABLE reactions (
  conversation_id text COLLATE "C" NOT NULL,
  message_seq     integer NOT NULL,
  reaction        text COLLATE "C" NOT NULL,
  user_id         text COLLATE "C" NOT NULL,
  seq             integer NOT NULL,
  PRIMARY KEY (conversation_id, message_seq, reaction, user_id),
  FOREIGN KEY (conversation_id, message_seq) REFERENCES messages (conversation_id, seq)
);

-- A message as the protocol shows it: optional fields absent, reactions as
-- { emoji: [userId, ...] } in the order they were added.
CREATE FUNCTION message_json(m messages) RETURNS json
LANGUAGE sql STABLE AS $fn$
  SELECT json_strip_nulls(json_build_object(
    'id', m.id, 'conversationId', m.conversation_id, 'seq', m.seq, 'senderId', m.sender_id,
    'clientId', m.client_id, 'body', m.body, 'replyTo', m.reply_to, 'createdAt', m.created_at,
    'editedAt', m.edited_at, 'deletedAt', m.deleted_at,
    'reactions', (
      SELECT json_object_agg(g.reaction, g.who ORDER BY g.first)
      FROM (
        SELECT r.reaction, json_agg(r.user_id ORDER BY r.seq) AS who, min(r.seq) AS first
        FROM reactions r
        WHERE r.conversation_id = m.conversation_id AND r.message_seq = m.seq
        GROUP BY r.reaction
      ) g)))
$fn$;

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
CREATE FUNCTION append_events(items jsonb) RETURNS SETOF json
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
      UPDATE messages x SET body = item->>'body', edited_at = at_v, edit_seqs = x.edit_seqs || next_seq
      WHERE x.conversation_id = conv AND x.seq = m.seq
      RETURNING * INTO m;
      msg := message_json(m);
      payload_v := json_build_object('messageId', m.id, 'body', item->>'body');

    WHEN 'message.deleted' THEN
      next_seq := next_seq + 1;
      UPDATE messages x SET body = '', deleted_at = at_v
      WHERE x.conversation_id = conv AND x.seq = m.seq
      RETURNING * INTO m;
      DELETE FROM reactions r WHERE r.conversation_id = conv AND r.message_seq = m.seq;
      -- The text leaves the log too, so a device catching up never sees it.
      UPDATE events e SET payload = jsonb_set(e.payload::jsonb, '{message,body}', '""')::json
      WHERE e.conversation_id = conv AND e.seq = m.seq;
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

    INSERT INTO events (conversation_id, seq, kind, actor_id, at, payload)
    VALUES (conv, next_seq, kind_v, actor, at_v, payload_v);
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
