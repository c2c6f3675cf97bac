/**
 * Keyset pages of a user's sessions, newest first. The store hands over every
 * active device of the account (a handful: one per signed-in device, and
 * revoked ones are not listed), so the page is cut here; the cursor still names
 * a position, (createdAt, deviceId) of the last session of the page, never an
 * offset, so a session signed in or revoked between two requests neither
 * repeats nor hides another.
 */
import type { Id, Millis, Session } from '../protocol/model.js';
import type { DeviceRecord } from './ports/store.js';
import { badRequest } from './errors.js';

export interface SessionPage {
  sessions: Session[];
  /** Cursor of the next page; null at the end. */
  next: string | null;
}

type Key = [Millis, Id];

/** Newest first: createdAt descending, then deviceId descending. Negative when a comes first. */
function compare(a: Key, b: Key): number {
  if (a[0] !== b[0]) return b[0] - a[0];
  return a[1] < b[1] ? 1 : a[1] > b[1] ? -1 : 0;
}

const encode = (k: Key): string => Buffer.from(JSON.stringify(k)).toString('base64url');

function decode(cursor: string): Key {
  let k: unknown;
  try {
    k = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    k = undefined;
  }
  if (!Array.isArray(k) || k.length !== 2 || !Number.isSafeInteger(k[0]) || typeof k[1] !== 'string') {
    throw badRequest('The "after" cursor is not one this server gave out.');
  }
  return [k[0] as number, k[1] as string];
}

export function pageSessions(devices: readonly DeviceRecord[], currentDeviceId: Id, limit: number, after?: string): SessionPage {
  const from = after ? decode(after) : undefined;
  const rows = devices
    .map((d): [Key, DeviceRecord] => [[d.createdAt, d.id], d])
    .filter(([k]) => !from || compare(k, from) > 0)
    .sort(([a], [b]) => compare(a, b));
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    sessions: page.map(([, d]) => ({ deviceId: d.id, deviceName: d.name, createdAt: d.createdAt, lastActiveAt: d.lastActiveAt, current: d.id === currentDeviceId })),
    next: rows.length > limit && last ? encode(last[0]) : null,
  };
}
