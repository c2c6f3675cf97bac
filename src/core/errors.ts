import { StoreError } from './ports/store.js';
import { isDefect } from './faults.js';
import type { ErrorCode } from '../protocol/errors.js';

/** An error meant for the client: a protocol code and one readable sentence. */
export class ParleyError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'ParleyError';
  }
}

export const badRequest = (m: string): ParleyError => new ParleyError('bad_request', m);

const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Text no engine can store as sent is refused in every stored field: U+0000
 * (PostgreSQL cannot store it) and a lone UTF-16 surrogate (it has no UTF-8
 * form). An engine must never decide what a message may contain.
 */
export function refuseUnstorable(value: string, what: string): void {
  if (value.includes('\u0000')) throw badRequest(`The ${what} must not contain the character U+0000.`);
  // Sent as a JSON escape like "\ud800" with no partner; stored, it would read back as U+FFFD, not what the ack showed.
  if (LONE_SURROGATE.test(value)) throw badRequest(`The ${what} must be valid Unicode text (it has an unpaired surrogate).`);
}

/** Characters as the protocol counts them (docs/protocol.md §1): Unicode code points, not UTF-16 units. */
export function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) i++;
    n++;
  }
  return n;
}

export const forbidden = (m: string): ParleyError => new ParleyError('forbidden', m);
export const notFound = (m: string): ParleyError => new ParleyError('not_found', m);
export const tooLarge = (m: string): ParleyError => new ParleyError('too_large', m);
export const conflict = (m: string): ParleyError => new ParleyError('conflict', m);
export const unauthorized = (m: string): ParleyError => new ParleyError('unauthorized', m);

/**
 * Maps anything thrown below the core to a client error. Engine faults become
 * `unavailable`, so a client retries instead of assuming its write was refused;
 * a defect of the server (a bug, a statement the engine rejects as wrong, see
 * faults.ts) is `internal`, which a client should not retry in a loop.
 */
export function toParleyError(err: unknown): ParleyError {
  if (err instanceof ParleyError) return err;
  if (err instanceof StoreError) return new ParleyError(err.code, err.message);
  if (isDefect(err)) return new ParleyError('internal', 'The server failed unexpectedly; the failure was logged.');
  return new ParleyError('unavailable', 'The server could not complete the request; retry shortly.');
}
