/**
 * The cluster engines of the Bus, Presence, Limiter and Registry ports, on
 * one Redis. Each engine holds its own connections (the bus two, the others
 * one each): five per node, whatever the load.
 */
import type { RedisEngineOptions } from './connection.js';
import { RedisBus, type PublishBatching, type RedisBusOptions } from './bus.js';
import { RedisLimiter } from './limiter.js';
import { RedisPresence, type RedisPresenceOptions } from './presence.js';
import { RedisRegistry } from './registry.js';

export { RedisBus, RedisLimiter, RedisPresence, RedisRegistry };
export { DEFAULT_PREFIX, type RedisEngineOptions } from './connection.js';
export type { PublishBatching, RedisBusOptions, RedisPresenceOptions };

export interface RedisEngines {
  bus: RedisBus;
  presence: RedisPresence;
  limiter: RedisLimiter;
  registry: RedisRegistry;
}

/** Opens all four; if one fails, closes the others and rejects. */
export async function openRedisEngines(options: RedisEngineOptions & RedisBusOptions & RedisPresenceOptions): Promise<RedisEngines> {
  const opened = await Promise.allSettled([
    RedisBus.open(options),
    RedisPresence.open(options),
    RedisLimiter.open(options),
    RedisRegistry.open(options),
  ] as const);
  const [bus, presence, limiter, registry] = opened;
  if (bus.status === 'fulfilled' && presence.status === 'fulfilled' && limiter.status === 'fulfilled' && registry.status === 'fulfilled') {
    return { bus: bus.value, presence: presence.value, limiter: limiter.value, registry: registry.value };
  }
  await Promise.all(opened.map((o) => (o.status === 'fulfilled' ? o.value.close() : undefined)));
  const failed = opened.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  throw failed?.reason;
}
