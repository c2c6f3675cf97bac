/**
 * Message search (R15): what a user may search and how their text becomes
 * terms. The index itself is the store's (SearchStore); this decides who sees
 * what: only conversations the user is a member of now, which the store
 * enforces in the same query, and a named conversation is checked first so
 * that a stranger's search gets the same 403 or 404 as reading its history.
 * End-to-end encrypted conversations are never indexed (their bodies are
 * ciphertext); naming one is a 400 that says so.
 */
import type { Id, Message, Millis } from '../protocol/model.js';
import type { Store } from './ports/store.js';
import { StoreError } from './ports/store.js';
import type { MembershipCache } from './membership.js';
import type { RateLimits } from './limits.js';
import { badRequest } from './errors.js';
import { searchTerms } from '../protocol/search.js';

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

export class SearchService {
  constructor(
    private readonly store: Store,
    private readonly membership: MembershipCache,
    private readonly limits: RateLimits,
  ) {}

  async search(userId: Id, req: SearchRequest): Promise<SearchResult> {
    const terms = searchTerms(req.q);
    if (terms.length === 0) throw badRequest('The search text must contain at least one letter or digit.');
    if (terms.length > SEARCH_MAX_TERMS) throw badRequest(`The search text must have at most ${SEARCH_MAX_TERMS} words.`);
    if (req.since !== undefined && req.until !== undefined && req.since > req.until) throw badRequest('"since" must not be after "until".');
    const limit = req.limit ?? SEARCH_DEFAULT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > SEARCH_MAX_LIMIT) throw badRequest(`"limit" must be an integer from 1 to ${SEARCH_MAX_LIMIT}.`);
    // Only a search that would read the index spends the budget: a malformed one costs nothing anyway.
    await this.limits.search(userId);
    if (req.conversationId !== undefined) {
      const { entry } = await this.membership.require(req.conversationId, userId);
      // Not indexed, by design (R18): the server holds only ciphertext there.
      if (entry.encrypted) throw badRequest('Search is not available in an end-to-end encrypted conversation: the server cannot read its messages.');
    }
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
