/**
 * A real Parley cluster for tests: nodes as child processes (the real CLI)
 * behind nginx, on the machine's Redis and PostgreSQL, isolated by a random
 * PostgreSQL schema and Redis prefix that are removed afterwards.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import { startCluster, type Cluster } from '../../src/cluster/launcher.js';
import { POSTGRES_URL, REDIS_URL } from './services.js';

export interface TestCluster extends Cluster {
  readonly schema: string;
  readonly prefix: string;
  readonly dataDir: string;
  /** Stops every process, drops the schema, deletes the Redis keys. Safe to call twice. */
  close(): Promise<void>;
}

export interface TestClusterOptions {
  nodes?: number;
  /** Defaults to the machine's Redis; a test that restarts Redis passes its private one. */
  redisUrl?: string;
  /** Defaults to the machine's PostgreSQL; a fault test passes a proxy in front of it. */
  databaseUrl?: string;
  env?: NodeJS.ProcessEnv;
}

/** Settings every cluster test wants: cheap password hashing, no limiter in the way, quick heartbeats. */
export const CLUSTER_TEST_ENV: NodeJS.ProcessEnv = {
  PARLEY_ARGON2_MEMORY_KIB: '1024',
  PARLEY_ARGON2_TIME_COST: '1',
  PARLEY_RATE_USER: '100000',
  PARLEY_RATE_USER_BURST: '100000',
  PARLEY_RATE_CONN: '100000',
  PARLEY_RATE_CONN_BURST: '100000',
  PARLEY_LOG_LEVEL: 'warn',
  PARLEY_REGISTRY_HEARTBEAT_MS: '500',
};

export async function deleteRedisPrefix(url: string, prefix: string): Promise<void> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await r.connect();
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}

export async function dropSchema(url: string, schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await c.end();
  }
}

export async function startTestCluster(o: TestClusterOptions = {}): Promise<TestCluster> {
  const tag = randomBytes(4).toString('hex');
  const schema = `parley_cluster_${tag}`;
  const prefix = `parley-test-${tag}:`;
  const redisUrl = o.redisUrl ?? REDIS_URL;
  const databaseUrl = o.databaseUrl ?? POSTGRES_URL;
  const dataDir = await mkdtemp(join(tmpdir(), 'parley-cluster-'));
  let cluster: Cluster;
  const cleanup = async (): Promise<void> => {
    await dropSchema(POSTGRES_URL, schema).catch(() => undefined);
    await deleteRedisPrefix(redisUrl, prefix).catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    cluster = await startCluster({
      nodes: o.nodes ?? 3,
      host: '127.0.0.1',
      port: 0,
      redisUrl,
      databaseUrl,
      dataDir,
      env: { ...CLUSTER_TEST_ENV, PARLEY_DATABASE_SCHEMA: schema, PARLEY_REDIS_PREFIX: prefix, ...o.env },
    });
  } catch (err) {
    await cleanup();
    throw err;
  }
  let closed: Promise<void> | undefined;
  return {
    ...cluster,
    schema,
    prefix,
    dataDir,
    stop: () => cluster.stop(),
    close: () =>
      (closed ??= (async () => {
        try {
          await cluster.stop();
        } finally {
          await cleanup();
        }
      })()),
  };
}
