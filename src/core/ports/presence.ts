/**
 * Presence port: which users are connected, with what status, and when they
 * were last active. A user is online while any of their connections, on any
 * node, has a live TTL; status is per user (the last device to set it wins).
 *
 * Contract:
 * - Calls return a PresenceChange only when the user's effective status (what
 *   others see) changed, so the caller can fan it out without diffing.
 * - `invisible` shows as `offline` to others.
 * - A connection whose TTL lapses without `touch` counts as gone; `sweep`
 *   returns the users that this made offline (any node may sweep; each lapse is
 *   reported once).
 */
import type { Id, Millis, PresenceRequest, PresenceStatus } from '../../protocol/model.js';

export interface PresenceChange {
  userId: Id;
  status: PresenceStatus;
  lastActiveAt: Millis;
}

export interface PresenceSnapshot {
  userId: Id;
  status: PresenceStatus;
  lastActiveAt?: Millis;
}

export interface Presence {
  connect(userId: Id, connectionId: string, at: Millis, ttlMs: number): Promise<PresenceChange | undefined>;
  /** Extends the TTL and lastActiveAt. Hot path: cheap, no change reported. */
  touch(userId: Id, connectionId: string, at: Millis, ttlMs: number): Promise<void>;
  setStatus(userId: Id, status: PresenceRequest, at: Millis): Promise<PresenceChange | undefined>;
  disconnect(userId: Id, connectionId: string, at: Millis): Promise<PresenceChange | undefined>;
  sweep(now: Millis): Promise<PresenceChange[]>;
  get(userIds: readonly Id[]): Promise<PresenceSnapshot[]>;
  /**
   * Extension (R12): those of `userIds` with at least one connection whose TTL
   * has not lapsed at `now`, whatever their status (invisible included): who
   * has a device that receives messages live, and so needs no push.
   */
  connectedAmong(userIds: readonly Id[], now: Millis): Promise<Id[]>;
  close(): Promise<void>;
}
