/**
 * What the two SQL engines (sqlite/, postgres/) share: they use the same column
 * names for users, devices, blocks and retention targets, the same key for a
 * direct pair and the same conversation-list cursor, so these are written once.
 */
import { StoreError, type BlockRecord, type DeviceKeyRecord, type DeviceRecord, type RetentionTarget } from '../core/ports/store.js';
import type { User } from '../protocol/model.js';

export interface UserRow {
  id: string;
  username: string;
  display_name: string;
  password_hash: string;
  created_at: number;
}

export const toUser = (r: UserRow): User => ({ id: r.id, username: r.username, displayName: r.display_name, createdAt: r.created_at });

/**
 * The highest code point: with a byte-order (binary / "C") collation, every
 * string that starts with a prefix sorts below prefix + this (except names
 * continuing with U+10FFFF itself, which are not real usernames).
 */
export const TOP_CODE_POINT = String.fromCodePoint(0x10ffff);

export interface DeviceRow {
  id: string;
  user_id: string;
  name: string;
  created_at: number;
  last_active_at: number;
  revoked_at: number | null;
}

export function toDevice(r: DeviceRow): DeviceRecord {
  const d: DeviceRecord = { id: r.id, userId: r.user_id, name: r.name, createdAt: r.created_at, lastActiveAt: r.last_active_at };
  if (r.revoked_at !== null) d.revokedAt = r.revoked_at;
  return d;
}

export interface BlockRow {
  blocker_id: string;
  blocked_id: string;
  created_at: number;
}

export const toBlock = (r: BlockRow): BlockRecord => ({ blockerId: r.blocker_id, blockedId: r.blocked_id, createdAt: Number(r.created_at) });

/** A conversation as the retention sweeper reads it (RetentionStore.scan). */
export const RETENTION_TARGET_COLUMNS = 'id, retention_days, cleared_through_seq, last_seq';

export interface RetentionTargetRow {
  id: string;
  retention_days: number | null;
  cleared_through_seq: number;
  last_seq: number;
}

export const toRetentionTarget = (r: RetentionTargetRow): RetentionTarget => ({
  id: r.id,
  retentionDays: r.retention_days,
  clearedThroughSeq: r.cleared_through_seq,
  lastSeq: r.last_seq,
});

/**
 * The unique key of a direct conversation: the pair in a fixed order, whoever
 * creates it; an end-to-end encrypted one (R18) is another key of the pair.
 */
export function directKey(a: string, b: string, encrypted = false): string {
  const pair = a < b ? [a, b] : [b, a];
  return JSON.stringify(encrypted ? [...pair, 'e2e'] : pair);
}

export interface DeviceKeyRow {
  device_id: string;
  user_id: string;
  identity_key: string;
  agreement_key: string;
  signature: string;
  created_at: number;
}

export const toDeviceKeys = (r: DeviceKeyRow): DeviceKeyRecord => ({
  userId: r.user_id,
  deviceId: r.device_id,
  identityKey: r.identity_key,
  agreementKey: r.agreement_key,
  signature: r.signature,
  createdAt: Number(r.created_at),
});

/** The conversation-list cursor: the last item's (updatedAt, id), opaque to clients. */
export function encodeCursor(updatedAt: number, id: string): string {
  return Buffer.from(JSON.stringify([updatedAt, id])).toString('base64url');
}

export function decodeCursor(cursor: string): [number, string] {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && Number.isSafeInteger(v[0]) && typeof v[1] === 'string') {
      return [v[0] as number, v[1]];
    }
  } catch {
    // falls through to the error below
  }
  throw new StoreError('not_found', 'The conversation list cursor is not one this server made.');
}
