/**
 * Migration 5 of the PostgreSQL store: full-text search over messages (R15).
 * Never edit this migration: add one.
 *
 * `messages.search_words` holds the words of the body as it is now, as a
 * tsvector (without positions: a prefix search needs none), and a GIN index
 * covers it. A trigger fills it whenever a row is inserted or its body set:
 * append_events writes it in the same statement as the message, so a message
 * is searchable the moment its append resolves; an edit replaces the words, a
 * delete (which empties the body) leaves none, a retention clear removes the
 * row.
 *
 * Words. The `simple` configuration: lower-case, no stemming, no stop words,
 * since chat is written in every language. Before parsing, the text is folded
 * (search_fold) and every ASCII punctuation mark becomes a space, so a word is
 * a run of letters and digits, as the core splits the user's terms:
 * "user@example.com" is user, example, com (PostgreSQL's parser alone keeps an
 * email, a host name or "3.14" as one lexeme, which "com" or "14" would not
 * find). A run of CJK characters stays one word, as in the core's split.
 *
 * Diacritics. search_fold folds text the way the core folds the terms
 * (core/search.ts: NFKD, every combining mark dropped, lower case), with
 * PostgreSQL's own functions; and final sigma as sigma, on both sides, since
 * JavaScript's toLowerCase writes "ΟΔΟΣ" as "οδος" and PostgreSQL's lower as
 * "οδοσ". "cafe" finds "Café", "muller" "Müller", "ελληνικα" "Ελληνικά",
 * and "नमस्ते" finds "नमस्ते" (both become "नमसत", vowel signs being marks);
 * full-width letters, ligatures ("ﬁ") and superscripts fold too. Letters
 * that do not decompose stay as they are ("łodz" finds "Łódź", "lodz" does
 * not), as in the core and the SQLite engine: spelling them out cost a third
 * of the folding. Not the unaccent extension, although this server has it:
 * - unaccent is STABLE (its rules are a file on the server), so it needs a
 *   wrapper that claims IMMUTABLE; rules that differ between servers, or
 *   change, would silently make stored words disagree with new ones. These
 *   functions are IMMUTABLE for real (only a new Unicode version in a major
 *   upgrade could move a rare character).
 * - An extension belongs to the database and lives in one schema, while a
 *   Parley store is a schema and several may share a database (the tests
 *   make and drop dozens): every store would depend on whichever schema got
 *   the extension first, and dropping that schema CASCADE would take the
 *   others' search with it. Installing it may also need rights the store's
 *   role lacks, or the contrib package.
 * - It folds differently from the core: it keeps "й", "ガ" and Hebrew
 *   points, which the core strips from a term, so the term would never meet
 *   the word. The terms go through the same functions here as the bodies
 *   (search_query), so a term meets the words folded the same way.
 * A database that is not UTF8 (normalize needs it) only lower-cases.
 *
 * A stored column, not an expression index. The planner may check the match
 * on rows it reads some other way (the messages of a user's few
 * conversations) instead of through the index, and it has no idea what that
 * costs: with an index over search_words(body), each such row recomputed its
 * words, about 25 µs, and a search for a common word by a member of 400
 * conversations (40,000 messages) took 1.2 s; reading a stored tsvector it
 * takes 40 ms. Raising the function's COST does not help: the planner then
 * charges it to the index plan as well (as a recheck of every row) and
 * switches JIT on. The price is space: the words take ~145 bytes a message
 * of ~100 characters (the body ~100), written by every append.
 *
 * A plain column filled by a trigger, not a generated column: adding a
 * generated column rewrites the whole table under an ACCESS EXCLUSIVE lock
 * (no read or append for its duration: 22 s for 200,000 messages here).
 *
 * Cost on an existing database, measured with 200,000 messages (39 MB, 20 MB
 * of indexes) on 2 cores: the column is added at once (no default, no
 * rewrite); the backfill took 13.5 s (~70 µs a message), reads and new
 * appends going on meanwhile (edits and deletes of older messages wait for
 * it); the index build took 1.2 s (~6 µs a message), during which writes to
 * `messages` wait (reads do not); so for 10 million messages, ~11 minutes and
 * then ~1 minute of appends waiting, and those that wait longer than the
 * statement timeout fail as `unavailable`, which clients retry. The backfill
 * leaves every old row version dead: right after it the table took 105 MB
 * and its indexes 47 MB; autovacuum makes the space reusable by later
 * appends, a REINDEX CONCURRENTLY shrinks the btrees. For a table too large
 * for that, run this migration's statements by hand first, the backfill in
 * batches (UPDATE ... WHERE id >= ... AND id < ...) and the index with CREATE
 * INDEX CONCURRENTLY: every step here finds its work already done (IF NOT
 * EXISTS, OR REPLACE, WHERE search_words IS NULL, a valid index of that name
 * kept). ANALYZE at the end: until the planner knows how common each word is
 * it takes the index for every search, ten times slower for a common word.
 *
 * The functions are SQL-standard bodies (PostgreSQL 14+), resolved when
 * created, so they do not depend on the caller's search_path; the trigger
 * function, like append_events, finds them through the store's. The ones
 * computed per row are not STRICT, so they inline into each other.
 *
 * What an append pays (append_events as the store calls it, chat-like bodies
 * of 10 to 20 words, one backend's CPU from /proc, runs alternated with the
 * same schema without the trigger, index and column, on a busy 2-core
 * machine): one message per call 804 → 909 µs (+105), 20 per call 198 → 269
 * µs a message (+71); the words themselves cost ~13 µs of it (~5 for an
 * all-ASCII body), the rest is the index and ~150 bytes more of heap.
 *
 * fastupdate stays on (the default), and it matters: an insert adds its
 * words to the index's pending list instead of updating a posting tree per
 * word. Without it the same runs cost +280 and +220 µs. The price: when the
 * list is full (gin_pending_list_limit, 4 MB: ~13,000 such messages) the
 * insert that finds it so merges it into the tree, ~100 ms here, so about one
 * append batch in 13,000 waits that long (20 a call: p99 12.8 → 19.2 ms,
 * p99.9 25 → 125 ms); autovacuum merges it too when it visits the table. A
 * 1 MB list merged as often in total and did not make the worst wait
 * clearly shorter. Every search also reads the whole pending list, which a
 * larger limit would make slower.
 */
/**
 * Every combining mark (Unicode's category M: accents, but also the vowel
 * signs of Indic scripts, Hebrew and Arabic points, the Japanese voicing
 * marks of NFKD) as ranges for a PostgreSQL regular expression, which has no
 * \p{M}: the core strips /\p{M}+/u from the terms after NFKD
 * (core/search.ts), so the index must strip the same or "नमस्ते" and "ガス"
 * could not be found. Generated once from Node 20's tables (Unicode 17.0)
 * and written out here so the migration never changes; a mark that some
 * later Unicode adds stays in both the index and a term typed with it.
 * Backslashes doubled: the regular expression, not the E'' string, reads
 * the escapes.
 */
const MARKS = [
  String.raw`\\u0300-\\u036f\\u0483-\\u0489\\u0591-\\u05bd\\u05bf\\u05c1-\\u05c2\\u05c4-\\u05c5\\u05c7`,
  String.raw`\\u0610-\\u061a\\u064b-\\u065f\\u0670\\u06d6-\\u06dc\\u06df-\\u06e4\\u06e7-\\u06e8\\u06ea-\\u06ed`,
  String.raw`\\u0711\\u0730-\\u074a\\u07a6-\\u07b0\\u07eb-\\u07f3\\u07fd\\u0816-\\u0819\\u081b-\\u0823`,
  String.raw`\\u0825-\\u0827\\u0829-\\u082d\\u0859-\\u085b\\u0897-\\u089f\\u08ca-\\u08e1\\u08e3-\\u0903`,
  String.raw`\\u093a-\\u093c\\u093e-\\u094f\\u0951-\\u0957\\u0962-\\u0963\\u0981-\\u0983\\u09bc\\u09be-\\u09c4`,
  String.raw`\\u09c7-\\u09c8\\u09cb-\\u09cd\\u09d7\\u09e2-\\u09e3\\u09fe\\u0a01-\\u0a03\\u0a3c\\u0a3e-\\u0a42`,
  String.raw`\\u0a47-\\u0a48\\u0a4b-\\u0a4d\\u0a51\\u0a70-\\u0a71\\u0a75\\u0a81-\\u0a83\\u0abc\\u0abe-\\u0ac5`,
  String.raw`\\u0ac7-\\u0ac9\\u0acb-\\u0acd\\u0ae2-\\u0ae3\\u0afa-\\u0aff\\u0b01-\\u0b03\\u0b3c\\u0b3e-\\u0b44`,
  String.raw`\\u0b47-\\u0b48\\u0b4b-\\u0b4d\\u0b55-\\u0b57\\u0b62-\\u0b63\\u0b82\\u0bbe-\\u0bc2\\u0bc6-\\u0bc8`,
  String.raw`\\u0bca-\\u0bcd\\u0bd7\\u0c00-\\u0c04\\u0c3c\\u0c3e-\\u0c44\\u0c46-\\u0c48\\u0c4a-\\u0c4d`,
  String.raw`\\u0c55-\\u0c56\\u0c62-\\u0c63\\u0c81-\\u0c83\\u0cbc\\u0cbe-\\u0cc4\\u0cc6-\\u0cc8\\u0cca-\\u0ccd`,
  String.raw`\\u0cd5-\\u0cd6\\u0ce2-\\u0ce3\\u0cf3\\u0d00-\\u0d03\\u0d3b-\\u0d3c\\u0d3e-\\u0d44\\u0d46-\\u0d48`,
  String.raw`\\u0d4a-\\u0d4d\\u0d57\\u0d62-\\u0d63\\u0d81-\\u0d83\\u0dca\\u0dcf-\\u0dd4\\u0dd6\\u0dd8-\\u0ddf`,
  String.raw`\\u0df2-\\u0df3\\u0e31\\u0e34-\\u0e3a\\u0e47-\\u0e4e\\u0eb1\\u0eb4-\\u0ebc\\u0ec8-\\u0ece`,
  String.raw`\\u0f18-\\u0f19\\u0f35\\u0f37\\u0f39\\u0f3e-\\u0f3f\\u0f71-\\u0f84\\u0f86-\\u0f87\\u0f8d-\\u0f97`,
  String.raw`\\u0f99-\\u0fbc\\u0fc6\\u102b-\\u103e\\u1056-\\u1059\\u105e-\\u1060\\u1062-\\u1064\\u1067-\\u106d`,
  String.raw`\\u1071-\\u1074\\u1082-\\u108d\\u108f\\u109a-\\u109d\\u135d-\\u135f\\u1712-\\u1715\\u1732-\\u1734`,
  String.raw`\\u1752-\\u1753\\u1772-\\u1773\\u17b4-\\u17d3\\u17dd\\u180b-\\u180d\\u180f\\u1885-\\u1886\\u18a9`,
  String.raw`\\u1920-\\u192b\\u1930-\\u193b\\u1a17-\\u1a1b\\u1a55-\\u1a5e\\u1a60-\\u1a7c\\u1a7f\\u1ab0-\\u1add`,
  String.raw`\\u1ae0-\\u1aeb\\u1b00-\\u1b04\\u1b34-\\u1b44\\u1b6b-\\u1b73\\u1b80-\\u1b82\\u1ba1-\\u1bad`,
  String.raw`\\u1be6-\\u1bf3\\u1c24-\\u1c37\\u1cd0-\\u1cd2\\u1cd4-\\u1ce8\\u1ced\\u1cf4\\u1cf7-\\u1cf9`,
  String.raw`\\u1dc0-\\u1dff\\u20d0-\\u20f0\\u2cef-\\u2cf1\\u2d7f\\u2de0-\\u2dff\\u302a-\\u302f\\u3099-\\u309a`,
  String.raw`\\ua66f-\\ua672\\ua674-\\ua67d\\ua69e-\\ua69f\\ua6f0-\\ua6f1\\ua802\\ua806\\ua80b\\ua823-\\ua827`,
  String.raw`\\ua82c\\ua880-\\ua881\\ua8b4-\\ua8c5\\ua8e0-\\ua8f1\\ua8ff\\ua926-\\ua92d\\ua947-\\ua953`,
  String.raw`\\ua980-\\ua983\\ua9b3-\\ua9c0\\ua9e5\\uaa29-\\uaa36\\uaa43\\uaa4c-\\uaa4d\\uaa7b-\\uaa7d\\uaab0`,
  String.raw`\\uaab2-\\uaab4\\uaab7-\\uaab8\\uaabe-\\uaabf\\uaac1\\uaaeb-\\uaaef\\uaaf5-\\uaaf6\\uabe3-\\uabea`,
  String.raw`\\uabec-\\uabed\\ufb1e\\ufe00-\\ufe0f\\ufe20-\\ufe2f\\U000101fd\\U000102e0\\U00010376-\\U0001037a`,
  String.raw`\\U00010a01-\\U00010a03\\U00010a05-\\U00010a06\\U00010a0c-\\U00010a0f\\U00010a38-\\U00010a3a`,
  String.raw`\\U00010a3f\\U00010ae5-\\U00010ae6\\U00010d24-\\U00010d27\\U00010d69-\\U00010d6d`,
  String.raw`\\U00010eab-\\U00010eac\\U00010efa-\\U00010eff\\U00010f46-\\U00010f50\\U00010f82-\\U00010f85`,
  String.raw`\\U00011000-\\U00011002\\U00011038-\\U00011046\\U00011070\\U00011073-\\U00011074`,
  String.raw`\\U0001107f-\\U00011082\\U000110b0-\\U000110ba\\U000110c2\\U00011100-\\U00011102`,
  String.raw`\\U00011127-\\U00011134\\U00011145-\\U00011146\\U00011173\\U00011180-\\U00011182`,
  String.raw`\\U000111b3-\\U000111c0\\U000111c9-\\U000111cc\\U000111ce-\\U000111cf\\U0001122c-\\U00011237`,
  String.raw`\\U0001123e\\U00011241\\U000112df-\\U000112ea\\U00011300-\\U00011303\\U0001133b-\\U0001133c`,
  String.raw`\\U0001133e-\\U00011344\\U00011347-\\U00011348\\U0001134b-\\U0001134d\\U00011357`,
  String.raw`\\U00011362-\\U00011363\\U00011366-\\U0001136c\\U00011370-\\U00011374\\U000113b8-\\U000113c0`,
  String.raw`\\U000113c2\\U000113c5\\U000113c7-\\U000113ca\\U000113cc-\\U000113d0\\U000113d2`,
  String.raw`\\U000113e1-\\U000113e2\\U00011435-\\U00011446\\U0001145e\\U000114b0-\\U000114c3`,
  String.raw`\\U000115af-\\U000115b5\\U000115b8-\\U000115c0\\U000115dc-\\U000115dd\\U00011630-\\U00011640`,
  String.raw`\\U000116ab-\\U000116b7\\U0001171d-\\U0001172b\\U0001182c-\\U0001183a\\U00011930-\\U00011935`,
  String.raw`\\U00011937-\\U00011938\\U0001193b-\\U0001193e\\U00011940\\U00011942-\\U00011943`,
  String.raw`\\U000119d1-\\U000119d7\\U000119da-\\U000119e0\\U000119e4\\U00011a01-\\U00011a0a`,
  String.raw`\\U00011a33-\\U00011a39\\U00011a3b-\\U00011a3e\\U00011a47\\U00011a51-\\U00011a5b`,
  String.raw`\\U00011a8a-\\U00011a99\\U00011b60-\\U00011b67\\U00011c2f-\\U00011c36\\U00011c38-\\U00011c3f`,
  String.raw`\\U00011c92-\\U00011ca7\\U00011ca9-\\U00011cb6\\U00011d31-\\U00011d36\\U00011d3a`,
  String.raw`\\U00011d3c-\\U00011d3d\\U00011d3f-\\U00011d45\\U00011d47\\U00011d8a-\\U00011d8e`,
  String.raw`\\U00011d90-\\U00011d91\\U00011d93-\\U00011d97\\U00011ef3-\\U00011ef6\\U00011f00-\\U00011f01`,
  String.raw`\\U00011f03\\U00011f34-\\U00011f3a\\U00011f3e-\\U00011f42\\U00011f5a\\U00013440`,
  String.raw`\\U00013447-\\U00013455\\U0001611e-\\U0001612f\\U00016af0-\\U00016af4\\U00016b30-\\U00016b36`,
  String.raw`\\U00016f4f\\U00016f51-\\U00016f87\\U00016f8f-\\U00016f92\\U00016fe4\\U00016ff0-\\U00016ff1`,
  String.raw`\\U0001bc9d-\\U0001bc9e\\U0001cf00-\\U0001cf2d\\U0001cf30-\\U0001cf46\\U0001d165-\\U0001d169`,
  String.raw`\\U0001d16d-\\U0001d172\\U0001d17b-\\U0001d182\\U0001d185-\\U0001d18b\\U0001d1aa-\\U0001d1ad`,
  String.raw`\\U0001d242-\\U0001d244\\U0001da00-\\U0001da36\\U0001da3b-\\U0001da6c\\U0001da75\\U0001da84`,
  String.raw`\\U0001da9b-\\U0001da9f\\U0001daa1-\\U0001daaf\\U0001e000-\\U0001e006\\U0001e008-\\U0001e018`,
  String.raw`\\U0001e01b-\\U0001e021\\U0001e023-\\U0001e024\\U0001e026-\\U0001e02a\\U0001e08f`,
  String.raw`\\U0001e130-\\U0001e136\\U0001e2ae\\U0001e2ec-\\U0001e2ef\\U0001e4ec-\\U0001e4ef`,
  String.raw`\\U0001e5ee-\\U0001e5ef\\U0001e6e3\\U0001e6e6\\U0001e6ee-\\U0001e6ef\\U0001e6f5`,
  String.raw`\\U0001e8d0-\\U0001e8d6\\U0001e944-\\U0001e94a\\U000e0100-\\U000e01ef`,
].join('');

export const SCHEMA_V5 = String.raw`
DO $check$
BEGIN
  IF current_setting('server_version_num')::integer < 140000 THEN
    RAISE EXCEPTION 'message search (store migration 5) needs PostgreSQL 14 or later; this server is %', current_setting('server_version');
  END IF;
END
$check$;

-- How text is compared for search: lower case, without combining marks.
-- Text that is all ASCII (one byte per character) has nothing more to fold
-- than its case and skips the rest. (E'' strings: their backslashes mean the
-- same whatever standard_conforming_strings says.)
DO $fold$
BEGIN
  IF getdatabaseencoding() = 'UTF8' THEN
    CREATE OR REPLACE FUNCTION search_fold(t text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN octet_length(t) = char_length(t) THEN lower(t)
      ELSE replace(regexp_replace(lower(normalize(t, NFKD)), E'[${MARKS}]+', '', 'g'), 'ς', 'σ') END;
  ELSE
    CREATE OR REPLACE FUNCTION search_fold(t text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN lower(t);
  END IF;
END
$fold$;

-- Folded text with ASCII punctuation turned into spaces: words are runs of
-- letters and digits. Cut where its words would still fit a tsvector (1 MB
-- of lexemes, at most 4 bytes a character): a body longer than that (only an
-- operator's much raised body limit allows one) is searchable by its first
-- 250,000 characters instead of failing its append.
CREATE OR REPLACE FUNCTION search_text(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN left(regexp_replace(search_fold(t), E'[\\x21-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7e]+', ' ', 'g'), 250000);

-- The words of a body, without positions.
CREATE OR REPLACE FUNCTION search_words(body text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN strip(to_tsvector('pg_catalog.simple', search_text(body)));

-- Every term as a word prefix, all of them required: 'meet':* & 'plan':*.
-- A term becomes words exactly as a body does (search_words), so it is
-- folded and split the same way; a term the core would never send, such as
-- "b&w", is the words b and w, each a prefix (not a phrase: the stored words
-- have no positions). The lexemes go to tsquery's input quoted, any quote or
-- backslash doubled, so nothing in a term is read as an operator. No word
-- left: NULL, which matches nothing.
CREATE OR REPLACE FUNCTION search_query(terms text[]) RETURNS tsquery
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN (
  SELECT string_agg('''' || replace(replace(w, E'\\', E'\\\\'), '''', '''''') || ''':*', ' & ')::tsquery
  FROM unnest(terms) AS t, unnest(tsvector_to_array(search_words(t))) AS w);

ALTER TABLE messages ADD COLUMN IF NOT EXISTS search_words tsvector;

CREATE OR REPLACE FUNCTION messages_search_words() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  NEW.search_words := search_words(NEW.body);
  RETURN NEW;
END
$fn$;

CREATE OR REPLACE TRIGGER messages_search_words BEFORE INSERT OR UPDATE OF body ON messages
FOR EACH ROW EXECUTE FUNCTION messages_search_words();

UPDATE messages SET search_words = search_words(body) WHERE search_words IS NULL;

-- Built unless a valid index of that name is already there.
DO $index$
BEGIN
  IF NOT EXISTS (
    SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE c.relname = 'messages_search' AND c.relnamespace = current_schema()::regnamespace AND i.indisvalid
  ) THEN
    DROP INDEX IF EXISTS messages_search;
    CREATE INDEX messages_search ON messages USING gin (search_words);
  END IF;
END
$index$;

ANALYZE messages (search_words);
`;
