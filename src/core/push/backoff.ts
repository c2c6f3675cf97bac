/** Retry delays of the push queue: exponential, with jitter, never shorter than what the provider asked. */
import type { PushOutcome } from '../ports/notifier.js';

/** The longest a Retry-After is honoured; past it the provider is treated as asking for the default. */
export const MAX_RETRY_AFTER_MS = 3_600_000;

/**
 * Delay before attempt `attempt + 1` after `attempt` failed (attempt ≥ 1):
 * base·2^(attempt−1) capped at `maxMs`, of which a random half ("equal
 * jitter": retries of one burst spread out, yet none comes back at once), and
 * at least the provider's Retry-After.
 */
export function retryDelay(attempt: number, baseMs: number, maxMs: number, retryAfterMs?: number, random: () => number = Math.random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  const jittered = exp / 2 + random() * (exp / 2);
  const asked = retryAfterMs !== undefined && retryAfterMs <= MAX_RETRY_AFTER_MS ? retryAfterMs : 0;
  return Math.round(Math.max(jittered, asked));
}

/** A Retry-After header (delta seconds or an HTTP date) in ms from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  // An IMF-fixdate ("Wed, 21 Oct 2015 07:28:00 GMT"); Date.parse alone takes "-5" for a year.
  if (!/GMT\s*$/.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** A provider's "try again" (429, 5xx…), with the wait its Retry-After header asks for, if any. */
export function retryOutcome(reason: string, retryAfter: string | string[] | undefined): PushOutcome {
  const after = parseRetryAfter(retryAfter);
  return after === undefined ? { status: 'retry', reason } : { status: 'retry', reason, retryAfterMs: after };
}
