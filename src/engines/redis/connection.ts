/**
 * One Redis connection, set up so that an engine built on it fails fast and
 * heals by itself:
 *
 * - No offline queue: a command sent while the link is down rejects at once,
 *   so callers never pile up memory waiting for Redis to return.
 * - No retries per request and no resend after a reconnect: a command in
 *   flight when the link drops rejects at the drop (its fate is unknown; the
 *   callers' own rules decide what to do, e.g. clients fill bus gaps by sync).
 * - A command unanswered for `commandTimeoutMs` rejects; a socket that
 *   answers nothing for `socketTimeoutMs` is destroyed and reconnected. A PING
 *   every second keeps that check armed on idle links (a subscriber may hear
 *   nothing for minutes), so a hung server or a silent network cut is found in
 *   about two seconds instead of TCP keep-alive's minutes.
 * - Reconnects back off from 50 ms to at most 1 s, so a restarted Redis is
 *   used again within a second of it answering.
 * - 'error' always has a listener: a Redis outage never crashes the process.
 */
import { Redis } from 'ioredis';

export interface RedisEngineOptions {
  /** `redis://[user:password@]host:port[/db]` */
  url: string;
  /** Prefix of every key and pub/sub channel, so clusters and test runs sharing one Redis stay apart. @default 'parley:' */
  prefix?: string;
  /** Told of connection errors (refused, reset, timed out). They repeat while Redis is down. @default ignore */
  onError?: (error: Error, connection: string) => void;
  /** How long `open` waits for the first connection. @default 5000 */
  openTimeoutMs?: number;
  /** A command unanswered for this long rejects. @default 1000 */
  commandTimeoutMs?: number;
}

export const DEFAULT_PREFIX = 'parley:';

const PING_EVERY_MS = 1000;
const MAX_RECONNECT_DELAY_MS = 1000;

export function connect(options: RedisEngineOptions, name: string): Redis {
  const commandTimeout = options.commandTimeoutMs ?? 1000;
  const redis = new Redis(options.url, {
    connectionName: name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // The bus restores its own topics: ioredis' copy would also restore those dropped while down.
    autoResubscribe: false,
    commandTimeout,
    socketTimeout: commandTimeout * 2,
    connectTimeout: Math.max(commandTimeout, 1000),
    retryStrategy: (attempt) => Math.min(50 * 2 ** (attempt - 1), MAX_RECONNECT_DELAY_MS) + Math.floor(Math.random() * 50),
  });
  const onError = options.onError;
  redis.on('error', (error: Error) => onError?.(error, name));
  const pinger = setInterval(() => {
    if (redis.status === 'ready') redis.ping().catch(() => undefined);
  }, PING_EVERY_MS);
  pinger.unref();
  redis.once('end', () => clearInterval(pinger));
  return redis;
}

/** Resolves when the connection is ready; rejects (leaving it reconnecting) after `timeoutMs`. */
export function whenReady(redis: Redis, timeoutMs: number, url: string): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error(`Redis at ${describe(url)} was not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}

/** Opens the given connections together; on failure closes them all, so nothing keeps reconnecting. */
export async function openAll(options: RedisEngineOptions, connections: Redis[]): Promise<void> {
  try {
    await Promise.all(connections.map((c) => whenReady(c, options.openTimeoutMs ?? 5000, options.url)));
  } catch (error) {
    await Promise.all(connections.map(close));
    throw error;
  }
}

/** QUIT when the link is up (pending replies arrive first), else drop it; never rejects. */
export async function close(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  if (redis.status === 'ready') {
    try {
      await redis.quit();
      return;
    } catch {
      // Fall through: the link went down while quitting.
    }
  }
  redis.disconnect(false);
}

/** host:port of a Redis URL, without credentials, for messages and logs. */
export function describe(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}`;
  } catch {
    return 'an unparsable URL';
  }
}
