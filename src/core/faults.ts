/**
 * Telling a defect from an outage. Anything thrown below the core that is not a
 * StoreError is either an engine that is down, overloaded or timing out (the
 * client should retry: `unavailable`, 503) or a defect of this server — a bug,
 * or a schema that does not match the code — that a retry will meet again
 * (`internal`, 500).
 *
 * Engines mostly signal outages with plain Errors (their own "no answer within
 * …", "Redis is not connected", pg's "Connection terminated", socket errors
 * such as ECONNREFUSED), so an unknown error stays an outage. Only what is
 * recognisably a defect becomes `internal`: the errors the JavaScript runtime
 * raises for a bug, failed assertions, and the engine errors that mean the
 * statement itself is wrong. The engines are recognised by the shape of their
 * errors, so the core does not import them.
 */

/** The runtime's own error classes: a bug in our code (or a library's), never an outage. */
const RUNTIME_DEFECTS: readonly (abstract new (...args: never[]) => Error)[] = [
  TypeError,
  ReferenceError,
  RangeError,
  SyntaxError,
  EvalError,
  URIError,
];

/** better-sqlite3 reports a closed handle as a TypeError; that is a store going away (shutdown), not a bug. */
const CLOSED_HANDLE = /database connection is not open/i;

/**
 * PostgreSQL SQLSTATE classes that say the statement is wrong, not the server
 * unwell: 21 cardinality, 22 data exception, 23 integrity constraint (those a
 * caller can cause are StoreErrors already), 26 statement name, 2F/39 routine,
 * 34 cursor, 42 syntax error or access rule (undefined table, column,
 * function…), 44 check option, 0A feature not supported, P0 PL/pgSQL RAISE.
 * Every other class (08 connection, 40 rollback, 53 resources, 55 lock, 57
 * operator intervention and statement timeout, 58 system, XX internal) is an
 * outage. https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
const PG_DEFECT_CLASSES = new Set(['21', '22', '23', '26', '2F', '34', '39', '42', '44', '0A', 'P0']);

/**
 * SQLite primary result codes of a wrong statement or misuse; the rest (BUSY,
 * LOCKED, IOERR, FULL, CANTOPEN, READONLY, NOMEM, CORRUPT…) are outages.
 * https://www.sqlite.org/rescode.html
 */
const SQLITE_DEFECT_CODES = new Set(['SQLITE_ERROR', 'SQLITE_CONSTRAINT', 'SQLITE_MISMATCH', 'SQLITE_RANGE', 'SQLITE_MISUSE', 'SQLITE_TOOBIG']);

/** Redis replies that mean the command is wrong (a bug in a script or a call), not that Redis is unwell. */
const REDIS_DEFECT = /^(WRONGTYPE|NOSCRIPT|ERR (unknown command|wrong number of arguments|syntax error|Error running script|user_script))/;

/** True when `err` is a defect of this server rather than an engine that is down or slow. */
export function isDefect(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (RUNTIME_DEFECTS.some((C) => err instanceof C)) return !CLOSED_HANDLE.test(err.message);
  const code = (err as { code?: unknown }).code;
  // node:assert and invariant checks.
  if (code === 'ERR_ASSERTION') return true;
  if (typeof code === 'string') {
    // pg's DatabaseError: a five-character SQLSTATE the server sent.
    if (err.constructor.name === 'DatabaseError' && /^[0-9A-Z]{5}$/.test(code)) return PG_DEFECT_CLASSES.has(code.slice(0, 2));
    // better-sqlite3's SqliteError: SQLITE_<PRIMARY>[_<EXTENDED>].
    if (code.startsWith('SQLITE_')) {
      const primary = code.split('_', 2).join('_');
      return SQLITE_DEFECT_CODES.has(primary);
    }
  }
  // ioredis's ReplyError: the server's own error text.
  if (err.name === 'ReplyError') return REDIS_DEFECT.test(err.message);
  return false;
}
