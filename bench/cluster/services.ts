/**
 * The shared Redis and PostgreSQL a cluster bench runs on: one fresh schema and
 * one key prefix per run, both removed at the end, so a run leaves nothing
 * behind and never sees another run's data. The servers themselves are the
 * machine's and are never stopped, restarted or reconfigured.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env.PARLEY_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const DATABASE_URL = process.env.PARLEY_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface Isolation {
  schema: string;
  prefix: string;
  redisUrl: string;
  databaseUrl: string;
}

export function newIsolation(runId: string): Isolation {
  const tag = `${runId}_${randomBytes(3).toString('hex')}`;
  return { schema: `parley_bench_${tag}`, prefix: `parley-bench-${tag}:`, redisUrl: REDIS_URL, databaseUrl: DATABASE_URL };
}

/** Fails early, with the reason, when a server is not there: a bench without them measures nothing. */
export async function checkServices(iso: Isolation): Promise<{ redisVersion: string; postgresVersion: string }> {
  const r = new Redis(iso.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2000 });
  let redisVersion: string;
  try {
    await r.connect();
    redisVersion = /redis_version:(\S+)/.exec(await r.info('server'))?.[1] ?? '?';
  } catch (e) {
    throw new Error(`Redis at ${iso.redisUrl} is not reachable: ${(e as Error).message}`, { cause: e });
  } finally {
    r.disconnect();
  }
  const c = new pg.Client({ connectionString: iso.databaseUrl, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    const v = await c.query<{ server_version: string }>('SHOW server_version');
    return { redisVersion, postgresVersion: v.rows[0]?.server_version ?? '?' };
  } catch (e) {
    throw new Error(`PostgreSQL at ${iso.databaseUrl} is not reachable: ${(e as Error).message}`, { cause: e });
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Drops the run's schema and deletes its Redis keys; returns how many keys went. */
export async function cleanup(iso: Isolation): Promise<{ keys: number }> {
  // The schema name is ours (letters, digits, underscores), so it is safe to splice in.
  if (!/^parley_bench_[a-z0-9_]+$/.test(iso.schema)) throw new Error(`refusing to drop ${iso.schema}`);
  const c = new pg.Client({ connectionString: iso.databaseUrl });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS ${iso.schema} CASCADE`);
  } finally {
    await c.end();
  }
  const r = new Redis(iso.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  let keys = 0;
  try {
    await r.connect();
    let cursor = '0';
    // Bounded: SCAN visits every key once, and the prefix is unique to this run.
    for (let i = 0; i < 1_000_000; i++) {
      const [next, found] = await r.scan(cursor, 'MATCH', `${iso.prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (found.length) keys += await r.del(...found);
      if (cursor === '0') break;
    }
  } finally {
    r.disconnect();
  }
  return { keys };
}

/**
 * PIDs of the machine's redis-server and postgres processes. They are shared
 * with other tenants, so their CPU during a step is an upper bound of what the
 * bench cost them; it shows where cluster time goes beyond the nodes.
 */
export function servicePids(): { redis: number[]; postgres: number[] } {
  const out = { redis: [] as number[], postgres: [] as number[] };
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let comm: string;
    try {
      comm = readFileSync(`/proc/${d}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    if (comm === 'redis-server') out.redis.push(Number(d));
    else if (comm === 'postgres') out.postgres.push(Number(d));
  }
  return out;
}
