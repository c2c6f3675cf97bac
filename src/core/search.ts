/**
 * Message search (R15): what a user may search and how their text becomes
 * terms. The index itself is the store's (SearchStore); this decides who sees
 * what: only conversations the user is a member of now, which the store
 * enforces in the same query, and a named conversation is checked first so
 * that a stranger's search gets the same 403 or 404 as reading its history.
 */
import type { Id, Message, Millis } from '../protocol/model.js';
import type { Store } from './ports/store.js';
import { StoreError } from './ports/store.js';
import type { MembershipCache } from './membership.js';
import { badRequest } from './errors.js';

export interface SearchRequest {
  /** What the user typed. */
  q: string;
  conversationId?: Id;
  senderId?: Id;
  since?: Millis;
  until?: Millis;
  limit?: number;
  /** The `next` of the previous page. */
  after?: string;
}

export interface SearchResult {
  /** Newest first. A page may hold fewer than `limit`, even none, and still have a `next`: one request reads a bounded part of the index. */
  messages: Message[];
  next: string | null;
}

export const SEARCH_DEFAULT_LIMIT = 20;
export const SEARCH_MAX_LIMIT = 50;
export const SEARCH_MAX_TERMS = 10;
/** Longer words are cut to this: no word of a chat message needs more to be found. */
const MAX_TERM_CHARS = 64;

/**
 * The words of a search text: lower-case, split at everything that is not a
 * letter, a digit or a combining mark, as the indexes split messages;
 * duplicates dropped. Accents are dropped from Latin letters only ("Café" is
 * found by "cafe", as both engines index it); in other scripts a mark is part
 * of the letter (Devanagari vowel signs, Japanese voiced kana), and Hangul is
 * put back together after the decomposition, so a term is written as the
 * message was. PostgreSQL folds the terms once more, the same way it folds
 * the text (engines/postgres/schema-v5.ts).
 */
export function searchTerms(q: string): string[] {
  const words = q
    .normalize('NFKD')
    .replace(/(\p{Script=Latin})\p{M}+/gu, '$1')
    .normalize('NFC')
    .toLowerCase()
    .split(/[^\p{L}\p{N}\p{M}]+/u)
    .filter((w) => w !== '' && /[\p{L}\p{N}]/u.test(w))
    .map((w) => [...w].slice(0, MAX_TERM_CHARS).join(''));
  return [...new Set(words)];
}

export class SearchService {
  constructor(
    private readonly store: Store,
    private readonly membership: MembershipCache,
  ) {}

  async search(userId: Id, req: SearchRequest): Promise<SearchResult> {
    const terms = searchTerms(req.q);
    if (terms.length === 0) throw badRequest('The search text must contain at least one letter or digit.');
    if (terms.length > SEARCH_MAX_TERMS) throw badRequest(`The search text must have at most ${SEARCH_MAX_TERMS} words.`);
    if (req.since !== undefined && req.until !== undefined && req.since > req.until) throw badRequest('"since" must not be after "until".');
    const limit = req.limit ?? SEARCH_DEFAULT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > SEARCH_MAX_LIMIT) throw badRequest(`"limit" must be an integer from 1 to ${SEARCH_MAX_LIMIT}.`);
    if (req.conversationId !== undefined) await this.membership.require(req.conversationId, userId);
    try {
      const page = await this.store.search.search({
        userId,
        terms,
        limit,
        ...(req.conversationId === undefined ? {} : { conversationId: req.conversationId }),
        ...(req.senderId === undefined ? {} : { senderId: req.senderId }),
        ...(req.since === undefined ? {} : { since: req.since }),
        ...(req.until === undefined ? {} : { until: req.until }),
        ...(req.after === undefined ? {} : { after: req.after }),
      });
      return { messages: page.messages, next: page.next ?? null };
    } catch (err) {
      if (err instanceof StoreError && err.code === 'not_found') throw badRequest('The "after" cursor is not one this server gave out.');
      throw err;
    }
  }
}
