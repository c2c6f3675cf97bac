/**
 * The cluster Store engine: PostgreSQL through a pool of connections (db.ts),
 * every table in one schema, migrations applied at open (migrations.ts),
 * appends batched per conversation (batcher.ts, events.ts).
 *
 * Any number of nodes may open the same database and schema at once.
 * While PostgreSQL is unreachable every call fails within about
 * `statementTimeoutMs` + 0.5 s (usually at once) with a plain Error, which the
 * core reports as `unavailable`; the pool reconnects by itself when the
 * server is back.
 */
import type { Store } from '../../core/ports/store.js';
import type { BatcherStats } from './batcher.js';
import { PostgresConversationStore } from './conversations.js';
import { Db, checkSchemaName, createPool } from './db.js';
import { PostgresDeviceStore } from './devices.js';
import { PostgresDeviceKeyStore } from './keys.js';
import { PostgresEventStore } from './events.js';
import { migratePostgres } from './migrations.js';
import { PostgresUserStore } from './users.js';
import { PostgresBlockStore } from './blocks.js';
import { PostgresRetentionStore } from './retention.js';
import { PostgresSearchStore } from './search.js';
import { PostgresAttachmentStore } from './attachments.js';
import { PostgresPushStore } from './push.js';
import { withTimeout } from '../../shared/timeout.js';

export { migratePostgres } from './migrations.js';

export interface PostgresStoreOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  /** Schema holding every table; created when missing. @default 'public' */
  schema?: string;
  /** Connections in the pool. @default 10 */
  poolSize?: number;
  /** Longest wait to open a connection or get one from the pool. @default 1000 */
  connectTimeoutMs?: number;
  /** Server-side limit on one statement, lock waits included; the client gives up 500 ms later. @default 1500 */
  statementTimeoutMs?: number;
  /** Most appends sent in one batch. @default 500 */
  maxBatch?: number;
  /** Most append batches in flight at once; capped at poolSize - 1. @default 1 */
  appendBatches?: number;
  /** Told about connections that failed while idle in the pool (the pool has replaced them). */
  onPoolError?: (err: Error) => void;
}

export interface PostgresStore extends Store {
  events: PostgresEventStore;
  readonly schema: string;
  /** Append batching counters, for metrics and tests. */
  stats(): BatcherStats;
}

/** How long ping() waits for an answer before it says false. */
const PING_TIMEOUT_MS = 1000;
/** How long close() waits for the pool's connections to end (a dead link never answers). */
const END_TIMEOUT_MS = 2000;

export async function openPostgresStore(opts: PostgresStoreOptions): Promise<PostgresStore> {
  const schema = checkSchemaName(opts.schema ?? 'public');
  const poolSize = Math.max(1, Math.floor(opts.poolSize ?? 10));
  const connectTimeoutMs = opts.connectTimeoutMs ?? 1000;
  // On a connection of its own, without the pool's timeouts: another node may
  // hold the migration lock for as long as its migration takes.
  await migratePostgres(opts.url, schema, connectTimeoutMs);
  const pool = createPool({
    url: opts.url,
    schema,
    poolSize,
    connectTimeoutMs,
    statementTimeoutMs: opts.statementTimeoutMs ?? 1500,
    onError: opts.onPoolError ?? (() => undefined),
  });
  const db = new Db(pool);
  // One connection stays free of append batches, so reads and /readyz pings
  // never queue behind a burst of writes.
  const appendBatches = Math.max(1, Math.min(poolSize - 1, Math.floor(opts.appendBatches ?? 1)));
  const events = new PostgresEventStore(db, { maxBatch: Math.max(1, opts.maxBatch ?? 500), maxInFlight: appendBatches });
  let closing: Promise<void> | undefined;

  return {
    schema,
    users: new PostgresUserStore(db),
    devices: new PostgresDeviceStore(db),
    keys: new PostgresDeviceKeyStore(db),
    conversations: new PostgresConversationStore(db),
    events,
    blocks: new PostgresBlockStore(db),
    retention: new PostgresRetentionStore(db),
    search: new PostgresSearchStore(db),
    attachments: new PostgresAttachmentStore(db),
    push: new PostgresPushStore(db),
    stats: () => ({ ...events.stats }),
    close() {
      closing ??= (async () => {
        await events.close();
        await withTimeout(pool.end(), END_TIMEOUT_MS).catch(() => undefined);
      })();
      return closing;
    },
    async ping() {
      if (closing) return false;
      const answer = db.query('SELECT 1 AS one').then(
        (rows) => rows.length === 1,
        () => false,
      );
      return (await withTimeout(answer, PING_TIMEOUT_MS).catch(() => false)) === true;
    },
  };
}
