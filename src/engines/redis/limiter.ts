/**
 * Redis engine of the Limiter port (contract in core/ports/limiter.ts): the
 * same GCRA as engines/memory/limiter.ts, one script per take, so a bucket
 * holds however many nodes share it. A bucket is one string, the time at which
 * it is full again, expiring a little after that time: an idle bucket costs
 * nothing. The margin is there because Redis expires by its own clock while
 * the bucket's times are the callers': a node whose clock runs behind must
 * not find a bucket gone that is not full yet by its clock.
 *
 * Time is the caller's `now` (as the port says); nodes sharing a bucket are
 * assumed NTP-synchronised, a skew of d ms moves a refill by d ms.
 */
import type { Redis } from 'ioredis';
import type { Limiter, RateRule, Taken } from '../../core/ports/limiter.js';
import { close, connect, DEFAULT_PREFIX, openAll, type RedisEngineOptions } from './connection.js';
import { defineScript, type Script } from './scripts.js';

/** Redis keeps a bucket this long after it is full again (see above). */
const EXPIRY_MARGIN_MS = 1000;

/**
 * The arithmetic is the memory engine's, step for step in doubles, so both
 * answer alike; the full-at time is stored with 17 digits to round-trip.
 * KEYS[1] bucket; ARGV now, cost, msPerToken, burst, expiry margin.
 */
const TAKE = `
local now = tonumber(ARGV[1])
local per = tonumber(ARGV[3])
local full_at = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
if full_at < now then full_at = now end
local full_after = full_at + tonumber(ARGV[2]) * per
local wait = full_after - tonumber(ARGV[4]) * per - now
if wait > 0.001 then return math.ceil(wait) end
redis.call('SET', KEYS[1], string.format('%.17g', full_after), 'PX', math.ceil(full_after - now) + tonumber(ARGV[5]))
return 0
`;

/**
 * takeUpTo: as many whole tokens as the bucket holds, at most ARGV[2].
 * KEYS[1] bucket; ARGV now, max, msPerToken, burst, expiry margin. Answers
 * {taken, wait}.
 */
const TAKE_UP_TO = `
local now = tonumber(ARGV[1])
local per = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local full_at = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
if full_at < now then full_at = now end
local held = math.floor((burst * per - (full_at - now) + 0.001) / per)
if held < 1 then return {0, math.ceil(full_at + per - burst * per - now)} end
local taken = math.min(held, tonumber(ARGV[2]))
local full_after = full_at + taken * per
redis.call('SET', KEYS[1], string.format('%.17g', full_after), 'PX', math.ceil(full_after - now) + tonumber(ARGV[5]))
return {taken, 0}
`;

export class RedisLimiter implements Limiter {
  /** Connects; rejects if Redis does not answer within `openTimeoutMs`. */
  static async open(options: RedisEngineOptions): Promise<RedisLimiter> {
    const limiter = new RedisLimiter(options);
    await openAll(options, [limiter.redis]);
    return limiter;
  }

  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly takeScript: Script;
  private readonly takeUpToScript: Script;

  private constructor(options: RedisEngineOptions) {
    this.prefix = `${options.prefix ?? DEFAULT_PREFIX}rl:`;
    this.redis = connect(options, 'parley-limiter');
    this.takeScript = defineScript(this.redis, 'parleyLimiterTake', 1, TAKE);
    this.takeUpToScript = defineScript(this.redis, 'parleyLimiterTakeUpTo', 1, TAKE_UP_TO);
  }

  /** @throws RangeError when `cost` exceeds `burst` (it could never pass) or the rate is not positive. */
  async take(key: string, cost: number, rule: RateRule, now: number): Promise<number> {
    if (!(cost <= rule.burst && rule.ratePerSec > 0)) {
      throw new RangeError(`cannot take ${cost} from a bucket of ${rule.burst} at ${rule.ratePerSec}/s`);
    }
    const wait = await this.takeScript([this.prefix + key], [String(now), String(cost), String(1000 / rule.ratePerSec), String(rule.burst), EXPIRY_MARGIN_MS]);
    return Number(wait);
  }

  /** @throws RangeError when `max` is below 1 or the rate is not positive. */
  async takeUpTo(key: string, max: number, rule: RateRule, now: number): Promise<Taken> {
    if (!(max >= 1 && rule.ratePerSec > 0)) throw new RangeError(`cannot take up to ${max} at ${rule.ratePerSec}/s`);
    const answer = await this.takeUpToScript([this.prefix + key], [String(now), String(Math.floor(max)), String(1000 / rule.ratePerSec), String(rule.burst), EXPIRY_MARGIN_MS]);
    const [taken, waitMs] = answer as [number, number];
    return { taken: Number(taken), waitMs: Number(waitMs) };
  }

  /**
   * One GET and the take's arithmetic here: a read needs no script, and a take
   * racing it is the same race a caller deciding on any answer already has.
   * @throws RangeError as `take` does.
   */
  async waitFor(key: string, cost: number, rule: RateRule, now: number): Promise<number> {
    if (!(cost <= rule.burst && rule.ratePerSec > 0)) {
      throw new RangeError(`cannot take ${cost} from a bucket of ${rule.burst} at ${rule.ratePerSec}/s`);
    }
    const stored = await this.redis.get(this.prefix + key);
    const per = 1000 / rule.ratePerSec;
    const wait = Math.max(stored === null ? now : Number(stored), now) + cost * per - rule.burst * per - now;
    return wait > 0.001 ? Math.ceil(wait) : 0;
  }

  /** False while Redis is unreachable; not part of the port, for readiness checks and metrics. */
  connected(): boolean {
    return this.redis.status === 'ready';
  }

  async close(): Promise<void> {
    await close(this.redis);
  }
}
