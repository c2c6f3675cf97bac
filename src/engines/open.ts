/**
 * Which engine sits behind each port, from the configuration: the embedded
 * ones (SQLite, in-process) for one machine, PostgreSQL and Redis when their
 * URLs are set. Nothing above this file knows which it got.
 */
import { join } from 'node:path';
import type { Config } from '../config.js';
import type { Engines } from '../core/core.js';
import type { Store } from '../core/ports/store.js';
import type { Logger } from '../observability/logger.js';
import { openSqliteStore } from './sqlite/store.js';
import { openPostgresStore } from './postgres/store.js';
import { MemoryBus } from './memory/bus.js';
import { MemoryPresence } from './memory/presence.js';
import { MemoryLimiter } from './memory/limiter.js';
import { MemoryRegistry } from './memory/registry.js';
import { openRedisEngines } from './redis/index.js';
import type { Blobs } from '../core/ports/blobs.js';
import { LocalBlobs } from './local/blobs.js';
import { S3Blobs } from './s3/blobs.js';
import { openNotifierEngines } from './push/open.js';

/** Connection errors repeat while a server is down; one line per this many ms is enough. */
const ERROR_LOG_EVERY_MS = 5000;

function throttledWarn(log: Logger, what: string): (err: unknown) => void {
  let last = -Infinity;
  return (err) => {
    const now = Date.now();
    if (now - last < ERROR_LOG_EVERY_MS) return;
    last = now;
    log.warn({ err }, what);
  };
}

async function openStore(config: Config, log: Logger): Promise<Store> {
  if (!config.databaseUrl) {
    return openSqliteStore({
      path: join(config.dataDir, 'parley.db'),
      synchronous: config.sqliteSynchronous,
      onSearchIndexError: throttledWarn(log, 'search indexer failed; search lags behind'),
    });
  }
  return openPostgresStore({
    url: config.databaseUrl,
    schema: config.databaseSchema,
    appendBatches: config.databaseAppendBatches,
    onPoolError: throttledWarn(log, 'PostgreSQL connection failed'),
  });
}

/** Attachments' files: the S3 store when one is set, else a folder on this machine. */
async function openBlobs(config: Config, log: Logger): Promise<Blobs> {
  if (config.s3Endpoint) {
    return new S3Blobs({
      endpoint: config.s3Endpoint,
      bucket: config.s3Bucket,
      region: config.s3Region,
      accessKeyId: config.s3AccessKeyId,
      secretAccessKey: config.s3SecretAccessKey,
      prefix: config.s3Prefix,
    });
  }
  const dir = config.mediaDir || join(config.dataDir, 'media');
  if (config.redisUrl) {
    log.warn(
      { mediaDir: dir },
      'cluster node with attachments in a local folder: nodes on other machines will not find these files; set PARLEY_S3_ENDPOINT (or share the folder)',
    );
  }
  return LocalBlobs.open(dir);
}

export async function openEngines(config: Config, log: Logger): Promise<Engines> {
  const store = await openStore(config, log);
  let blobs: Blobs;
  try {
    blobs = await openBlobs(config, log);
  } catch (err) {
    await store.close();
    throw err;
  }
  let notifier;
  try {
    notifier = await openNotifierEngines(config, store);
  } catch (err) {
    await store.close();
    await blobs.close();
    throw err;
  }
  if (!config.redisUrl) {
    return { store, blobs, bus: new MemoryBus(), presence: new MemoryPresence(), limiter: new MemoryLimiter(), registry: new MemoryRegistry(), notifier };
  }
  try {
    const redis = await openRedisEngines({
      url: config.redisUrl,
      prefix: config.redisPrefix,
      onError: throttledWarn(log, 'Redis connection failed'),
      onHandlerError: (err, topic) => log.error({ err, topic }, 'bus message handler failed'),
    });
    return { store, blobs, ...redis, notifier };
  } catch (err) {
    await store.close();
    await blobs.close();
    throw err;
  }
}
