/**
 * How a search text becomes words (R15), shared by the server, which searches
 * with them, and clients, which mark them in the results.
 */

/** Longer words are cut to this: no word of a chat message needs more to be found. */
const MAX_TERM_CHARS = 64;

/**
 * A word as search compares it: lower case, accents dropped from Latin letters
 * only ("Café" is found by "cafe", as both engines index it). In other scripts
 * a mark is part of the letter (Devanagari vowel signs, Japanese voiced kana),
 * and Hangul is put back together after the decomposition, so a word stays as
 * it was written. PostgreSQL folds terms once more, as it folds the text
 * (engines/postgres/schema-v5.ts).
 */
export function foldSearchText(s: string): string {
  return s
    .normalize('NFKD')
    .replace(/(\p{Script=Latin})\p{M}+/gu, '$1')
    .normalize('NFC')
    .toLowerCase();
}

/**
 * The words of a search text, folded, split at everything that is not a
 * letter, a digit or a combining mark, as the indexes split messages;
 * duplicates dropped.
 */
export function searchTerms(q: string): string[] {
  const words = foldSearchText(q)
    .split(/[^\p{L}\p{N}\p{M}]+/u)
    .filter((w) => w !== '' && /[\p{L}\p{N}]/u.test(w))
    .map((w) => [...w].slice(0, MAX_TERM_CHARS).join(''));
  return [...new Set(words)];
}
