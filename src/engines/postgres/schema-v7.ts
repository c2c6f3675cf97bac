/**
 * Migration 7 of the PostgreSQL store: push subscriptions (R12) and the
 * server-wide secrets every node shares (the VAPID key pair), the same tables
 * as the SQLite engine's migration 7. Numbered 7 because 6 and 8 belong to
 * features built alongside; the runner applies every missing version, so the
 * order they land in does not matter. Never edit this migration: add one.
 *
 * One subscription per (kind, address) in the whole store: a token registered
 * again moves to the device that registered it. Looked up by user (whom to
 * notify, their list) and by device (revocation removes them).
 */
export const SCHEMA_V7 = `
CREATE TABLE push_subscriptions (
  id         text COLLATE "C" PRIMARY KEY,
  user_id    text COLLATE "C" NOT NULL REFERENCES users (id),
  device_id  text COLLATE "C" NOT NULL REFERENCES devices (id),
  kind       text NOT NULL CHECK (kind IN ('webpush', 'apns', 'fcm')),
  address    text NOT NULL,
  p256dh     text,
  auth       text,
  topic      text,
  created_at bigint NOT NULL,
  UNIQUE (kind, address)
);
CREATE INDEX push_subscriptions_by_user ON push_subscriptions (user_id, id);
CREATE INDEX push_subscriptions_by_device ON push_subscriptions (device_id);
CREATE TABLE server_secrets (
  name       text PRIMARY KEY,
  value      text NOT NULL,
  created_at bigint NOT NULL
);
`;
