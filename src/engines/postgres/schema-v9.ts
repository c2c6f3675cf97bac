/**
 * Migration 9 of the PostgreSQL store: attachments in end-to-end encrypted
 * conversations (R14 × R18), the same column as the SQLite engine's migration
 * 9. Never edit this migration: add one.
 *
 * `attachments.encrypted`: the upload is ciphertext the server stores opaque
 * (no type, name, image facts or thumbnail); the core lets only such uploads
 * into an encrypted conversation and none into a plain one. Added with a
 * constant default, so no table rewrite (PostgreSQL 11+); existing uploads are
 * plain, as they were. append_events needs no change: it checks that the
 * uploads are the actor's and usable, and the core has checked the rest.
 */
export const SCHEMA_V9 = `
ALTER TABLE attachments ADD COLUMN encrypted boolean NOT NULL DEFAULT false;
`;
