/**
 * Migration 8 of the PostgreSQL store: end-to-end encryption (R18), the same
 * tables and columns as the SQLite engine's migration 8. (6 and 7 belong to
 * other features; a gap is fine.) Never edit this migration: add one.
 *
 * - `conversations.encrypted`: set at creation, never changed. Added with a
 *   constant default, so no table rewrite (PostgreSQL 11+); not indexed, so the
 *   per-append updates of the row stay HOT.
 * - `device_keys`: each device's public keys, published once. A revoked
 *   device's row stays; reads join `devices` and skip it.
 * - The search trigger of migration 5 no longer computes words for a message
 *   of an encrypted conversation: its body is ciphertext, and search is not
 *   offered there. The core refuses any body there that is not an envelope, and
 *   every envelope starts with '{"e2e":1,' (protocol/e2e.ts), so the
 *   conversation is looked up only for a body that starts so: a message of a
 *   plain conversation pays a comparison of its first nine characters, not a
 *   read. (A plain message that happens to start so costs one primary-key
 *   lookup of its conversation, on a row the append has just locked.)
 *
 * What a plain message pays, measured as the backend's CPU per message (20 per
 * append_events call, 20 runs of 3,000 alternated with migration 5's
 * function, on this busy 2-core machine): a median paired difference of -3.3
 * and +3.3 µs in two runs (~100-130 µs a message), where the same function
 * against itself gave -3.3 and +10: nothing beyond the noise. Two shapes that
 * were slower and dropped: one IF with `left(...) AND EXISTS (...)`, +35 µs (a
 * condition holding a subquery takes PL/pgSQL's full executor path on every
 * call); two triggers with WHEN clauses (plain / envelope-like), +25 to +33 µs
 * (the WHEN expressions are set up again for every INSERT append_events makes).
 */
export const SCHEMA_V8 = `
ALTER TABLE conversations ADD COLUMN encrypted boolean NOT NULL DEFAULT false;

CREATE TABLE device_keys (
  device_id     text COLLATE "C" PRIMARY KEY REFERENCES devices (id),
  user_id       text COLLATE "C" NOT NULL REFERENCES users (id),
  identity_key  text NOT NULL,
  agreement_key text NOT NULL,
  signature     text NOT NULL,
  created_at    bigint NOT NULL
);
CREATE INDEX device_keys_by_user ON device_keys (user_id, created_at, device_id);

CREATE OR REPLACE FUNCTION messages_search_words() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  -- Nested, not one IF with AND: a condition holding a subquery takes PL/pgSQL's
  -- full executor path on every call, a plain comparison its fast path.
  IF left(NEW.body, 9) = '{"e2e":1,' THEN
    IF EXISTS (SELECT 1 FROM conversations c WHERE c.id = NEW.conversation_id AND c.encrypted) THEN
      NEW.search_words := NULL;
      RETURN NEW;
    END IF;
  END IF;
  NEW.search_words := search_words(NEW.body);
  RETURN NEW;
END
$fn$;
`;
