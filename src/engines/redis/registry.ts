/**
 * Redis engine of the Registry port (contract in core/ports/registry.ts).
 *
 * Two keys under one hash tag (one Redis Cluster slot, so each script stays
 * atomic there too): a sorted set nodeId → expiresAt (the heartbeat's `at` +
 * ttl, on the sender's clock, as the memory engine) and a hash nodeId → the
 * NodeInfo JSON. `healthy` deletes what has expired and lists the rest.
 */
import type { Redis } from 'ioredis';
import { byLoad, type NodeInfo, type Registry } from '../../core/ports/registry.js';
import type { Millis } from '../../protocol/model.js';
import { close, connect, DEFAULT_PREFIX, openAll, type RedisEngineOptions } from './connection.js';
import { defineScript, type Script, type ScriptReply } from './scripts.js';

/**
 * KEYS expiry zset, info hash; ARGV nodeId, expiresAt, info JSON, keep (ms).
 * Both keys live `keep` past the last heartbeat (never shortened), so the
 * registry of a cluster that is gone for good leaves nothing behind.
 */
const HEARTBEAT = `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
local keep = tonumber(ARGV[4])
for _, key in ipairs(KEYS) do
  if redis.call('PTTL', key) < keep then redis.call('PEXPIRE', key, keep) end
end
`;

/**
 * Redis expires keys by its own clock, entries are judged by the nodes':
 * the keys outlive the last entry by a minute, so skew never loses a live one.
 */
const KEEP_MARGIN_MS = 60_000;

/** KEYS expiry zset, info hash; ARGV now. A cluster has tens of nodes, well under Lua's unpack limit. */
const HEALTHY = `
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #stale > 0 then
  redis.call('ZREM', KEYS[1], unpack(stale))
  redis.call('HDEL', KEYS[2], unpack(stale))
end
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
if #live == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(live))
`;

export class RedisRegistry implements Registry {
  /** Connects; rejects if Redis does not answer within `openTimeoutMs`. */
  static async open(options: RedisEngineOptions): Promise<RedisRegistry> {
    const registry = new RedisRegistry(options);
    await openAll(options, [registry.redis]);
    return registry;
  }

  private readonly redis: Redis;
  private readonly keys: [expiry: string, info: string];
  private readonly heartbeatScript: Script;
  private readonly healthyScript: Script;

  private constructor(options: RedisEngineOptions) {
    const base = `${options.prefix ?? DEFAULT_PREFIX}{registry}:`;
    this.keys = [`${base}expiry`, `${base}info`];
    this.redis = connect(options, 'parley-registry');
    this.heartbeatScript = defineScript(this.redis, 'parleyRegistryHeartbeat', 2, HEARTBEAT);
    this.healthyScript = defineScript(this.redis, 'parleyRegistryHealthy', 2, HEALTHY);
  }

  async heartbeat(info: NodeInfo, ttlMs: number): Promise<void> {
    const keep = Math.ceil(ttlMs) + KEEP_MARGIN_MS;
    await this.heartbeatScript(this.keys, [info.nodeId, String(info.at + ttlMs), JSON.stringify(info), String(keep)]);
  }

  async leave(nodeId: string): Promise<void> {
    await this.redis.multi().zrem(this.keys[0], nodeId).hdel(this.keys[1], nodeId).exec();
  }

  async healthy(now: Millis): Promise<NodeInfo[]> {
    const reply = await this.healthyScript(this.keys, [String(now)]);
    return infos(reply).sort(byLoad);
  }

  /** False while Redis is unreachable; not part of the port, for readiness checks and metrics. */
  connected(): boolean {
    return this.redis.status === 'ready';
  }

  async close(): Promise<void> {
    await close(this.redis);
  }
}

function infos(reply: ScriptReply): NodeInfo[] {
  if (!Array.isArray(reply)) throw new Error('registry: unexpected reply');
  const out: NodeInfo[] = [];
  // The script keeps both keys in step; a missing info (keys edited by hand)
  // is skipped rather than failing discovery.
  for (const json of reply) if (typeof json === 'string') out.push(JSON.parse(json) as NodeInfo);
  return out;
}
