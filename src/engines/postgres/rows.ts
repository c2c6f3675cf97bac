/** Row shapes, row → model mapping and error translation shared by the PostgreSQL aggregates. */
import { StoreError } from '../../core/ports/store.js';
import type { ConversationEvent, Message } from '../../protocol/model.js';
import { isServerError } from './db.js';

/** SQLSTATEs a caller can cause (https://www.postgresql.org/docs/current/errcodes-appendix.html). */
export const SQLSTATE = {
  uniqueViolation: '23505',
  foreignKeyViolation: '23503',
  /** A NUL character in a text parameter. */
  characterNotInRepertoire: '22021',
  /** A \u0000 escape in a json/jsonb parameter. */
  untranslatableCharacter: '22P05',
} as const;

/**
 * Turns errors the caller can cause into StoreErrors, as the SQLite engine
 * does: a taken unique key is `conflict`, a reference to a row that does not
 * exist is `not_found`. PostgreSQL cannot store NUL in text; that is refused as
 * `conflict` (the port has no bad-request code) so a client does not retry it
 * for ever as it would an `unavailable`. Anything else stays an engine fault.
 */
export function translate(err: unknown, what: string): unknown {
  if (!isServerError(err)) return err;
  switch (err.code) {
    case SQLSTATE.uniqueViolation:
      return new StoreError('conflict', `That ${what} already exists.`);
    case SQLSTATE.foreignKeyViolation:
      return new StoreError('not_found', `That ${what} refers to something that does not exist.`);
    case SQLSTATE.characterNotInRepertoire:
    case SQLSTATE.untranslatableCharacter:
      return new StoreError('conflict', 'Text containing a NUL character cannot be stored.');
    default:
      return err;
  }
}

/** A `message_json(m)` value: already in the protocol's shape. */
export type MessageJson = Message;

export interface EventRow {
  conversation_id: string;
  seq: number;
  kind: ConversationEvent['kind'];
  actor_id: string;
  at: number;
  payload: Record<string, unknown>;
}

export function toEvent(conversationId: string, seq: number, kind: string, actorId: string, at: number, payload: object): ConversationEvent {
  return { conversationId, seq, kind, at, actorId, ...payload } as ConversationEvent;
}

export const eventFromRow = (r: EventRow): ConversationEvent => toEvent(r.conversation_id, r.seq, r.kind, r.actor_id, r.at, r.payload);

// Lone UTF-16 surrogates: JSON.stringify writes them as \udXXX escapes, which
// PostgreSQL's json parser refuses. Text parameters already turn them into
// U+FFFD (Node's UTF-8 encoder does), so json parameters do the same.
const SURROGATE = /[\ud800-\udfff]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** JSON for a json/jsonb parameter, with every string well-formed. */
export function jsonParam(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'string' && SURROGATE.test(v) ? v.replace(LONE_SURROGATE, '\ufffd') : v,
  );
}
