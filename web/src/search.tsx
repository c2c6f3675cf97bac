import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { foldSearchText as fold, searchTerms, type Id, type Message, type ParleyClient } from '../../src/client/index.js';
import { Close, Search } from './icons.js';
import { conversationTitle, displayName, errorText, listTime } from './util.js';

/** Results asked per request, and requests made in a row while pages come back short or empty. */
const PAGE = 20;
const MAX_ROUNDS = 5;
const DEBOUNCE_MS = 250;

/**
 * The body with every word that starts with one of `terms` marked on that start, as the server
 * matches (word prefixes, case and accents aside). Text nodes only: a body is never HTML.
 */
export function highlight(body: string, terms: readonly string[]): ComponentChildren[] {
  if (!terms.length) return [body];
  const out: ComponentChildren[] = [];
  let last = 0;
  // Combining marks belong to their word (a decomposed "é" is one letter and its accent).
  for (const m of body.matchAll(/[\p{L}\p{N}][\p{L}\p{N}\p{M}]*/gu)) {
    const word = m[0];
    const start = m.index;
    const folded = fold(word);
    const term = terms.filter((t) => folded.startsWith(t)).sort((a, b) => b.length - a.length)[0];
    if (!term) continue;
    // The shortest start of the word (in whole characters) whose folded form covers the term.
    const chars = [...word];
    let k = 0;
    while (k < chars.length && fold(chars.slice(0, k).join('')).length < term.length) k++;
    // Take the marks that follow too, so an accent is not split from its letter.
    while (k < chars.length && /^\p{M}$/u.test(chars[k] as string)) k++;
    const len = chars.slice(0, k).join('').length;
    if (start > last) out.push(body.slice(last, start));
    out.push(<mark key={start}>{word.slice(0, len)}</mark>);
    last = start + len;
  }
  if (last < body.length) out.push(body.slice(last));
  return out;
}

export interface JumpTarget {
  conversationId: Id;
  messageId: Id;
  seq: number;
  /** A new value for every click, so that clicking the same result again jumps again. */
  nonce: number;
}

type Status = 'idle' | 'loading' | 'done' | 'error';

/**
 * Message search (R15), in the sidebar: searches as one types (or on Enter), newest first, every
 * match highlighted; optionally only in the open conversation; "Load more" follows `next` (a page
 * may be short or empty while more follow). Search needs the server: offline, it says so and
 * searches again when the connection is back.
 */
export function SearchPanel({
  client,
  openId,
  inputRef,
  onClose,
  onPick,
}: {
  client: ParleyClient;
  openId: Id | undefined;
  inputRef: { current: HTMLInputElement | null };
  onClose: () => void;
  onPick: (m: Message) => void;
}) {
  const [q, setQ] = useState('');
  const [onlyHere, setOnlyHere] = useState(false);
  const [results, setResults] = useState<Message[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [status, setStatus] = useState<Status>('idle');
  const [error, setError] = useState('');
  const [searched, setSearched] = useState('');
  const listRef = useRef<HTMLUListElement>(null);
  const run = useRef(0);
  const offline = client.state === 'offline';
  const here = openId ? client.conversation(openId) : undefined;
  // Not indexed (R18): the server cannot read an end-to-end encrypted conversation, so it is not offered.
  const hereEncrypted = here?.conversation.encrypted === true;
  const scope = onlyHere && !hereEncrypted ? openId : undefined;
  const terms = searchTerms(q);
  const wanted = terms.length > 0;

  /** Fetches from `after` (or the start) until a page's worth came back, no more follow, or MAX_ROUNDS. */
  const fetchFrom = useCallback(
    async (text: string, conversationId: Id | undefined, after: string | undefined, token: number, keep: Message[]): Promise<void> => {
      setStatus('loading');
      setError('');
      let got = keep;
      let cursor = after;
      try {
        for (let round = 0; round < MAX_ROUNDS; round++) {
          const page = await client.searchMessages({ q: text, limit: PAGE, ...(conversationId ? { conversationId } : {}), ...(cursor ? { after: cursor } : {}) });
          if (token !== run.current) return;
          const seen = new Set(got.map((m) => m.id));
          got = [...got, ...page.messages.filter((m) => !seen.has(m.id))];
          cursor = page.next ?? undefined;
          setResults(got);
          setNext(page.next);
          if (!page.next || got.length - keep.length >= PAGE) break;
        }
        setSearched(text);
        setStatus('done');
      } catch (e) {
        if (token !== run.current) return;
        setError(errorText(e, 'Search failed. Please try again.'));
        setStatus('error');
      }
    },
    [client],
  );

  const start = useCallback(
    (text: string, conversationId: Id | undefined): void => {
      const token = ++run.current;
      setResults([]);
      setNext(null);
      if (!searchTerms(text).length || client.state === 'offline') {
        setStatus('idle');
        setError('');
        return;
      }
      void fetchFrom(text, conversationId, undefined, token, []);
    },
    [client, fetchFrom],
  );

  // Search as one types, a moment after the last key; at once when the scope or the connection changes.
  const key = `${q}\u0000${scope ?? ''}\u0000${offline ? 'off' : 'on'}`;
  const lastKey = useRef('');
  useEffect(() => {
    if (key === lastKey.current) return undefined;
    const onlyTyped = lastKey.current.split('\u0000').slice(1).join('\u0000') === key.split('\u0000').slice(1).join('\u0000');
    lastKey.current = key;
    const t = setTimeout(() => start(q, scope), onlyTyped ? DEBOUNCE_MS : 0);
    return () => clearTimeout(t);
  }, [key, q, scope, start]);

  const searchNow = (): void => {
    lastKey.current = key;
    start(q, scope);
  };
  const loadMore = (): void => {
    if (!next) return;
    void fetchFrom(searched || q, scope, next, run.current, results);
  };

  const focusables = (): HTMLElement[] => [...(listRef.current?.querySelectorAll<HTMLElement>('.search-result') ?? [])];
  const onInputKey = (e: KeyboardEvent): void => {
    if (e.key === 'Enter') {
      e.preventDefault();
      searchNow();
    } else if (e.key === 'ArrowDown') {
      e.preventDefault();
      focusables()[0]?.focus();
    }
  };
  const onListKey = (e: KeyboardEvent): void => {
    const items = focusables();
    const i = items.indexOf(document.activeElement as HTMLElement);
    if (i < 0) return;
    if (e.key === 'ArrowDown') items[Math.min(items.length - 1, i + 1)]?.focus();
    else if (e.key === 'ArrowUp') (i === 0 ? inputRef.current : items[i - 1])?.focus();
    else if (e.key === 'Home') items[0]?.focus();
    else if (e.key === 'End') items.at(-1)?.focus();
    else return;
    e.preventDefault();
  };

  const empty = status === 'done' && results.length === 0;
  const anyEncrypted = client.conversations().some((c) => c.conversation.encrypted);
  return (
    <section
      class="search-panel"
      aria-label="Message search"
      onKeyDown={(e) => {
        if (e.key === 'Escape') {
          e.preventDefault();
          onClose();
        }
      }}
    >
      <div class="side-search message-search">
        <Search size={16} />
        <input
          ref={inputRef}
          type="search"
          placeholder="Search messages"
          aria-label="Search messages"
          aria-controls="search-results"
          autoComplete="off"
          maxLength={500}
          value={q}
          onInput={(e) => setQ(e.currentTarget.value)}
          onKeyDown={onInputKey}
        />
        <button class="icon-btn small" aria-label="Close search" title="Close search (Esc)" onClick={onClose}>
          <Close size={16} />
        </button>
      </div>
      {here && hereEncrypted && (
        <p class="search-scope search-e2e" data-testid="search-e2e">
          Search is not available in {conversationTitle(client, here)}: it is end-to-end encrypted, so the server cannot read its messages.
        </p>
      )}
      {here && !hereEncrypted && (
        <label class="search-scope">
          <input type="checkbox" checked={onlyHere} onChange={(e) => setOnlyHere(e.currentTarget.checked)} />
          <span>Only in {conversationTitle(client, here)}</span>
        </label>
      )}
      <div class="search-status" role="status" aria-live="polite" data-testid="search-status">
        {offline && wanted
          ? 'You are offline. Search needs a connection to the server; it will run when you are back online.'
          : status === 'error'
            ? ''
            : !wanted
              ? q.trim()
                ? 'Type a word with a letter or a digit.'
                : anyEncrypted
                  ? 'Find messages in all your conversations except end-to-end encrypted ones.'
                  : 'Find messages in all your conversations.'
              : status === 'loading' && results.length === 0
                ? 'Searching…'
                : empty
                  ? next
                    ? 'No matches yet.'
                    : 'No messages match.'
                  : ''}
      </div>
      {status === 'error' && !offline && (
        <div class="notice search-error" role="alert">
          <span>{error}</span>
          <button class="link" onClick={searchNow}>
            Try again
          </button>
        </div>
      )}
      {results.length > 0 && !offline && (
        <ul class="search-results" id="search-results" ref={listRef} aria-label="Search results" aria-busy={status === 'loading'} onKeyDown={onListKey}>
          {results.map((m) => (
            <SearchResult key={m.id} client={client} m={m} terms={searchTerms(searched || q)} onPick={onPick} />
          ))}
        </ul>
      )}
      {next && !offline && status !== 'error' && (wanted || results.length > 0) && (
        <button class="btn search-more" disabled={status === 'loading'} onClick={loadMore}>
          {status === 'loading' ? 'Searching…' : results.length ? 'Load more' : 'Keep searching'}
        </button>
      )}
    </section>
  );
}

function SearchResult({ client, m, terms, onPick }: { client: ParleyClient; m: Message; terms: string[]; onPick: (m: Message) => void }) {
  const conv = client.conversation(m.conversationId);
  const title = conv ? conversationTitle(client, conv) : 'A conversation';
  const who = m.senderId === client.user?.id ? 'You' : displayName(client, m.senderId);
  return (
    <li>
      <button class="search-result" data-message-id={m.id} data-conversation={m.conversationId} onClick={() => onPick(m)}>
        <span class="search-top">
          <span class="search-conv">{title}</span>
          <time class="search-time" dateTime={new Date(m.createdAt).toISOString()} title={new Date(m.createdAt).toLocaleString()}>
            {listTime(m.createdAt)}
          </time>
        </span>
        <span class="search-sender">{who}</span>
        <span class="search-body">{highlight(m.body, terms)}</span>
      </button>
    </li>
  );
}
