/**
 * In-memory engine of the Presence port (see core/ports/presence.ts for the
 * contract), for one process.
 *
 * Each user is one record: the requested status, the status last reported to
 * others (`shown`), lastActiveAt, and connectionId → expiresAt. Every call
 * first lapses the user's expired connections, then compares the effective
 * status with `shown`, so a change is reported once, by whichever call saw it.
 * A Redis engine keeps the same record as a hash plus a sorted set of
 * connections by expiry, and runs the same steps in one script.
 *
 * Choices the contract leaves open:
 * - The requested status outlives the user's connections: a user who set
 *   `busy` is busy again on the next connect.
 * - Activity while invisible does not move lastActiveAt, so an invisible user
 *   looks like someone who left at the moment they went invisible.
 * - `touch` on an unknown connection does nothing (it would be a change that
 *   touch may not report); on a lapsed but unswept one it revives it.
 * - Records of offline users are kept for their lastActiveAt: memory grows with
 *   the number of users seen, not with connections or time.
 */
import type { Presence, PresenceChange, PresenceSnapshot } from '../../core/ports/presence.js';
import type { Id, Millis, PresenceRequest, PresenceStatus } from '../../protocol/model.js';

interface UserPresence {
  readonly userId: Id;
  requested: PresenceRequest;
  shown: PresenceStatus;
  lastActiveAt: Millis;
  readonly connections: Map<string, Millis>;
}

const done: Promise<void> = Promise.resolve();

export class MemoryPresence implements Presence {
  private readonly users = new Map<Id, UserPresence>();
  /** Users with at least one connection: all that `sweep` has to look at. */
  private readonly connected = new Set<UserPresence>();

  async connect(userId: Id, connectionId: string, at: Millis, ttlMs: number): Promise<PresenceChange | undefined> {
    const user = this.record(userId, at);
    this.lapse(user, at);
    user.connections.set(connectionId, at + ttlMs);
    this.connected.add(user);
    markActive(user, at);
    return settle(user);
  }

  /** Allocation-free: it runs for every frame a client sends. */
  touch(userId: Id, connectionId: string, at: Millis, ttlMs: number): Promise<void> {
    const user = this.users.get(userId);
    if (user?.connections.has(connectionId)) {
      user.connections.set(connectionId, at + ttlMs);
      markActive(user, at);
    }
    return done;
  }

  async setStatus(userId: Id, status: PresenceRequest, at: Millis): Promise<PresenceChange | undefined> {
    const user = this.record(userId, at);
    this.lapse(user, at);
    // Both sides of the switch: going invisible is the last visible activity,
    // coming back the first.
    markActive(user, at);
    user.requested = status;
    markActive(user, at);
    return settle(user);
  }

  async disconnect(userId: Id, connectionId: string, at: Millis): Promise<PresenceChange | undefined> {
    const user = this.users.get(userId);
    if (!user) return undefined;
    if (user.connections.delete(connectionId)) markActive(user, at);
    this.lapse(user, at);
    return settle(user);
  }

  async sweep(now: Millis): Promise<PresenceChange[]> {
    const changes: PresenceChange[] = [];
    for (const user of this.connected) {
      this.lapse(user, now);
      const change = settle(user);
      if (change) changes.push(change);
    }
    return changes;
  }

  async get(userIds: readonly Id[]): Promise<PresenceSnapshot[]> {
    return userIds.map((userId) => {
      const user = this.users.get(userId);
      return user ? { userId, status: user.shown, lastActiveAt: user.lastActiveAt } : { userId, status: 'offline' };
    });
  }

  async connectedAmong(userIds: readonly Id[], now: Millis): Promise<Id[]> {
    return userIds.filter((userId) => {
      const user = this.users.get(userId);
      if (!user) return false;
      for (const expiresAt of user.connections.values()) if (expiresAt > now) return true;
      return false;
    });
  }

  async close(): Promise<void> {
    this.users.clear();
    this.connected.clear();
  }

  private record(userId: Id, at: Millis): UserPresence {
    let user = this.users.get(userId);
    if (!user) {
      user = { userId, requested: 'online', shown: 'offline', lastActiveAt: at, connections: new Map() };
      this.users.set(userId, user);
    }
    return user;
  }

  private lapse(user: UserPresence, now: Millis): void {
    for (const [connectionId, expiresAt] of user.connections) {
      if (expiresAt <= now) user.connections.delete(connectionId);
    }
    if (user.connections.size === 0) this.connected.delete(user);
  }
}

function markActive(user: UserPresence, at: Millis): void {
  if (user.requested !== 'invisible' && at > user.lastActiveAt) user.lastActiveAt = at;
}

/** Reports the effective status if it differs from what others last saw. */
function settle(user: UserPresence): PresenceChange | undefined {
  const status: PresenceStatus =
    user.connections.size === 0 || user.requested === 'invisible' ? 'offline' : user.requested;
  if (status === user.shown) return undefined;
  user.shown = status;
  return { userId: user.userId, status, lastActiveAt: user.lastActiveAt };
}
