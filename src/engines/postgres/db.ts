/**
 * The connection pool of the PostgreSQL store and the one way its aggregates
 * run a statement.
 *
 * Failing fast is the point of most settings here: while PostgreSQL is
 * unreachable a caller must get an error within a second or two (the core
 * turns it into `unavailable` and the client retries), never a hang, and the
 * pool must heal by itself once the server is back.
 * - `connectTimeoutMs` bounds both opening a connection and waiting for a free
 *   one in the pool.
 * - `statement_timeout` makes the server give up on a statement (lock waits
 *   included); the client-side `query_timeout` fires a little later and covers
 *   a server that no longer answers at all (a dead link sends no RST).
 * - A client whose statement failed for any reason other than an error the
 *   server reported is dropped from the pool, so a broken link is never reused.
 */
import pg from 'pg';

export interface PoolSettings {
  url: string;
  schema: string;
  poolSize: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  onError: (err: Error) => void;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Schema names go into SQL and a startup option unquoted, so only plain lower-case identifiers are accepted. */
export function checkSchemaName(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) {
    throw new Error(`PostgreSQL schema name ${JSON.stringify(schema)} must match ${SCHEMA_NAME.source}`);
  }
  return schema;
}

const INT8 = 20;

/**
 * bigint columns hold milliseconds and counts, all far below 2^53: read them as
 * numbers. Set per pool, not on pg's global registry, so nothing else in the
 * process changes.
 */
export const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 && format !== 'binary' ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

export function createPool(s: PoolSettings): pg.Pool {
  const pool = new pg.Pool({
    connectionString: s.url,
    max: s.poolSize,
    connectionTimeoutMillis: s.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    // Every table, type and function of the store is looked up in its schema.
    options: `-c search_path=${checkSchemaName(s.schema)}`,
    statement_timeout: s.statementTimeoutMs,
    query_timeout: s.statementTimeoutMs + 500,
    // A client that dies inside a transaction must not keep its row locks.
    idle_in_transaction_session_timeout: 10_000,
    application_name: 'parley',
    types: TYPES,
  });
  // An idle client whose connection drops emits 'error' on the pool; without a
  // listener that would crash the process. The pool has already dropped it.
  pool.on('error', s.onError);
  return pool;
}

/** True when PostgreSQL itself refused the statement: the connection is still usable. */
export function isServerError(err: unknown): err is pg.DatabaseError {
  return err instanceof pg.DatabaseError;
}

export class Db {
  constructor(readonly pool: pg.Pool) {}

  /** Runs one statement on a pooled connection and returns its rows. */
  async query<R extends object>(text: string, values?: unknown[]): Promise<R[]> {
    const client = await this.pool.connect();
    // Between statements a checked-out client has no listener of the pool's;
    // a connection dying right then must not become an uncaught 'error'.
    let broken: Error | undefined;
    const onError = (err: Error): void => {
      broken = err;
    };
    client.on('error', onError);
    try {
      const res = await client.query<R>(text, values);
      return res.rows;
    } catch (err) {
      // A server-reported error (constraint, timeout, cancel) leaves the link in
      // a known state; anything else (timeout on our side, reset) may not.
      if (!isServerError(err)) broken = err instanceof Error ? err : new Error(String(err));
      throw err;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }
}
