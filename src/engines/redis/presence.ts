/**
 * Redis engine of the Presence port (contract in core/ports/presence.ts): the
 * record of engines/memory/presence.ts kept in Redis, each call one script
 * (presence-scripts.ts), so any node sees and changes the same state and a
 * change is reported once, by whichever call (or sweep, on any node) saw it.
 *
 * Cost: a call is O(log n) in the connections of its user; `sweep` is
 * O(expired) through each shard's `due` index.
 *
 * Users are spread over SHARDS hash tags. A user's keys and their shard's
 * `due` index share a tag, so every script touches one Redis Cluster slot
 * and stays atomic there; 16 tags spread over the masters of a cluster.
 */
import type { Redis } from 'ioredis';
import type { Presence, PresenceChange, PresenceSnapshot } from '../../core/ports/presence.js';
import type { Id, Millis, PresenceRequest, PresenceStatus } from '../../protocol/model.js';
import { close, connect, DEFAULT_PREFIX, openAll, type RedisEngineOptions } from './connection.js';
import { CONNECT, DISCONNECT, SET_STATUS, SWEEP, TOUCH } from './presence-scripts.js';
import { defineScript, type Script, type ScriptReply } from './scripts.js';

export interface RedisPresenceOptions extends RedisEngineOptions {
  /** How long the record of a user no call has touched is kept (requested status, lastActiveAt). @default 30 days */
  retainMs?: number;
}

/**
 * Part of the key layout: every node of a cluster must agree on it, and
 * changing it strands the connections indexed under the old shards. Hence a
 * constant, not an option.
 */
const SHARDS = 16;
/** Users settled per script run, so one sweep never blocks Redis for long. */
const SWEEP_BATCH = 500;
/** Runs per shard per sweep: bounds one sweep; what is left waits for the next. */
const SWEEP_ROUNDS = 20;
const DAY_MS = 86_400_000;

export class RedisPresence implements Presence {
  /** Connects; rejects if Redis does not answer within `openTimeoutMs`. */
  static async open(options: RedisPresenceOptions): Promise<RedisPresence> {
    const presence = new RedisPresence(options);
    await openAll(options, [presence.redis]);
    return presence;
  }

  private readonly redis: Redis;
  /** Key base of each shard: `<prefix>presence:{pN}:`. */
  private readonly bases: string[];
  private readonly retain: string;
  private readonly scripts: Record<'connect' | 'touch' | 'setStatus' | 'disconnect' | 'sweep', Script>;

  private constructor(options: RedisPresenceOptions) {
    const prefix = options.prefix ?? DEFAULT_PREFIX;
    this.bases = Array.from({ length: SHARDS }, (_, n) => `${prefix}presence:{p${n}}:`);
    this.retain = String(Math.ceil(options.retainMs ?? 30 * DAY_MS));
    this.redis = connect(options, 'parley-presence');
    this.scripts = {
      connect: defineScript(this.redis, 'parleyPresenceConnect', 3, CONNECT),
      touch: defineScript(this.redis, 'parleyPresenceTouch', 3, TOUCH),
      setStatus: defineScript(this.redis, 'parleyPresenceSetStatus', 3, SET_STATUS),
      disconnect: defineScript(this.redis, 'parleyPresenceDisconnect', 3, DISCONNECT),
      sweep: defineScript(this.redis, 'parleyPresenceSweep', 1, SWEEP),
    };
  }

  async connect(userId: Id, connectionId: string, at: Millis, ttlMs: number): Promise<PresenceChange | undefined> {
    const reply = await this.scripts.connect(this.keysOf(userId), [userId, connectionId, String(at), String(at + ttlMs), this.retain]);
    return changeOf(userId, reply);
  }

  touch(userId: Id, connectionId: string, at: Millis, ttlMs: number): Promise<void> {
    return this.scripts.touch(this.keysOf(userId), [userId, connectionId, String(at), String(at + ttlMs), this.retain]).then(() => undefined);
  }

  async setStatus(userId: Id, status: PresenceRequest, at: Millis): Promise<PresenceChange | undefined> {
    const reply = await this.scripts.setStatus(this.keysOf(userId), [userId, status, String(at), this.retain]);
    return changeOf(userId, reply);
  }

  async disconnect(userId: Id, connectionId: string, at: Millis): Promise<PresenceChange | undefined> {
    const reply = await this.scripts.disconnect(this.keysOf(userId), [userId, connectionId, String(at), this.retain]);
    return changeOf(userId, reply);
  }

  async sweep(now: Millis): Promise<PresenceChange[]> {
    const perShard = await Promise.all(this.bases.map((base) => this.sweepShard(base, String(now))));
    return perShard.flat();
  }

  async get(userIds: readonly Id[]): Promise<PresenceSnapshot[]> {
    if (userIds.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const userId of userIds) pipeline.hmget(this.userKey(userId), 'shown', 'last');
    const replies = (await pipeline.exec()) ?? [];
    return userIds.map((userId, i): PresenceSnapshot => {
      const [error, fields] = replies[i] ?? [new Error('presence: missing reply'), null];
      if (error) throw error;
      const [shown, last] = fields as (string | null)[];
      return shown ? { userId, status: shown as PresenceStatus, lastActiveAt: Number(last) } : { userId, status: 'offline' };
    });
  }

  async connectedAmong(userIds: readonly Id[], now: Millis): Promise<Id[]> {
    if (userIds.length === 0) return [];
    // A connection lapses at expiresAt <= now (the scripts' lapse): count those above it. Read only, so a
    // lapsed connection not swept yet is not counted, and nothing changes for sweep to report.
    const pipeline = this.redis.pipeline();
    for (const userId of userIds) pipeline.zcount(this.keysOf(userId)[1], `(${now}`, '+inf');
    const replies = (await pipeline.exec()) ?? [];
    return userIds.filter((_, i) => {
      const [error, n] = replies[i] ?? [new Error('presence: missing reply'), 0];
      if (error) throw error;
      return Number(n) > 0;
    });
  }

  /** False while Redis is unreachable; not part of the port, for readiness checks and metrics. */
  connected(): boolean {
    return this.redis.status === 'ready';
  }

  async close(): Promise<void> {
    await close(this.redis);
  }

  private async sweepShard(base: string, now: string): Promise<PresenceChange[]> {
    const changes: PresenceChange[] = [];
    for (let round = 0; round < SWEEP_ROUNDS; round++) {
      const reply = await this.scripts.sweep([`${base}due`], [now, SWEEP_BATCH, base]);
      const [looked, flat] = reply as [number, string[]];
      for (let i = 0; i + 2 < flat.length; i += 3) {
        changes.push({ userId: flat[i]!, status: flat[i + 1] as PresenceStatus, lastActiveAt: Number(flat[i + 2]) });
      }
      if (looked < SWEEP_BATCH) break;
    }
    return changes;
  }

  private keysOf(userId: Id): [user: string, conns: string, due: string] {
    const base = this.bases[shardOf(userId)]!;
    return [`${base}u:${userId}`, `${base}c:${userId}`, `${base}due`];
  }

  private userKey(userId: Id): string {
    return `${this.bases[shardOf(userId)]!}u:${userId}`;
  }
}

function changeOf(userId: Id, reply: ScriptReply): PresenceChange | undefined {
  if (!Array.isArray(reply)) return undefined;
  const [status, last] = reply as [PresenceStatus, string];
  return { userId, status, lastActiveAt: Number(last) };
}

/** FNV-1a over the UTF-16 units: cheap, stable across nodes and versions. */
function shardOf(userId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) {
    hash ^= userId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % SHARDS;
}
