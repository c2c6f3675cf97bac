/**
 * The embedded Store engine: one SQLite file, one connection, opened
 * synchronously (better-sqlite3 is synchronous; every port method still returns
 * a promise, as the contract in core/ports/store.ts says).
 *
 * - WAL journal, so readers in other processes never block the writer.
 * - `synchronous`: NORMAL (default) makes a commit durable against a crash of
 *   the process but not of the machine (the WAL is synced at checkpoints);
 *   FULL syncs the WAL on every commit. Group commit (group-commit.ts) makes
 *   FULL affordable: one sync per event-loop turn, not per message.
 * - Foreign keys on; busy_timeout so another process holding the write lock
 *   makes us wait instead of fail.
 * - Statements are prepared once, when the store opens.
 * - Checkpoints run in a worker thread (checkpointer.ts), not inside a COMMIT
 *   on the event loop.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Store } from '../../core/ports/store.js';
import { SqliteBlockStore } from './blocks.js';
import { SqliteConversationStore } from './conversations.js';
import { SqliteDeviceStore } from './devices.js';
import { SqliteDeviceKeyStore } from './keys.js';
import { SqliteEventStore } from './events.js';
import { Checkpointer, type CheckpointStats } from './checkpointer.js';
import type { GroupCommitStats } from './group-commit.js';
import { migrate } from './migrations.js';
import { SqliteUserStore } from './users.js';
import { SqliteRetentionStore } from './retention.js';
import { SqliteSearchStore, type SqliteSearchOptions } from './search.js';
import { SqliteAttachmentStore } from './attachments.js';
import { SqlitePushStore } from './push.js';

export interface SqliteStoreOptions {
  /** A file path (its folder is created), or ':memory:' for a private in-memory database. */
  path: string;
  /** @default 'normal' */
  synchronous?: 'normal' | 'full';
  /** How long to wait for a write lock held by another connection. @default 5000 */
  busyTimeoutMs?: number;
  /** Told when the search indexer fails (it tries again on its next round); search only lags behind. @default silent */
  onSearchIndexError?: (err: unknown) => void;
  /** The search indexer's pace, for tests and benchmarks. */
  search?: Omit<SqliteSearchOptions, 'onError'>;
}

export interface SqliteStore extends Store {
  events: SqliteEventStore;
  /** Group-commit counters, for metrics and tests. */
  stats(): GroupCommitStats;
  /** Checkpointer counters; undefined for an in-memory database (it has no WAL). */
  checkpoints(): CheckpointStats | undefined;
  /** The connection's settings as SQLite reports them, for diagnostics and tests. */
  settings(): { journalMode: string; synchronous: 'normal' | 'full' | 'other'; foreignKeys: boolean; busyTimeoutMs: number };
}

export function openSqliteStore(opts: SqliteStoreOptions): SqliteStore {
  const memory = opts.path === ':memory:' || opts.path === '';
  if (!memory) mkdirSync(dirname(opts.path), { recursive: true });
  const db = new Database(opts.path, { timeout: opts.busyTimeoutMs ?? 5000 });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${opts.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
    migrate(db);
  } catch (err) {
    db.close();
    throw err;
  }
  const ping = db.prepare('SELECT 1');
  let checkpointer: Checkpointer | undefined;
  try {
    checkpointer = memory ? undefined : new Checkpointer(db, { path: opts.path, synchronous: opts.synchronous ?? 'normal' });
  } catch (err) {
    db.close();
    throw err;
  }
  const events = new SqliteEventStore(db, checkpointer?.gate);
  const retention = new SqliteRetentionStore(db, checkpointer?.gate);
  const search = new SqliteSearchStore(db, checkpointer?.gate, {
    ...opts.search,
    ...(opts.onSearchIndexError ? { onError: opts.onSearchIndexError } : {}),
  });
  return {
    users: new SqliteUserStore(db),
    devices: new SqliteDeviceStore(db),
    keys: new SqliteDeviceKeyStore(db),
    conversations: new SqliteConversationStore(db),
    events,
    blocks: new SqliteBlockStore(db),
    retention,
    search,
    attachments: new SqliteAttachmentStore(db),
    push: new SqlitePushStore(db),
    stats: () => ({ ...events.stats }),
    checkpoints: () => checkpointer && { ...checkpointer.stats },
    settings: () => {
      const sync = Number(db.pragma('synchronous', { simple: true }));
      return {
        journalMode: String(db.pragma('journal_mode', { simple: true })),
        synchronous: sync === 1 ? 'normal' : sync === 2 ? 'full' : 'other',
        foreignKeys: Number(db.pragma('foreign_keys', { simple: true })) === 1,
        busyTimeoutMs: Number(db.pragma('busy_timeout', { simple: true })),
      };
    },
    async close() {
      if (!db.open) return;
      events.close();
      retention.close();
      search.close();
      await checkpointer?.close();
      db.close();
    },
    async ping() {
      try {
        return ping.get() !== undefined;
      } catch {
        return false;
      }
    },
  };
}
