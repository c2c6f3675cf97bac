/**
 * Search (R15) on the PostgreSQL engine, against the machine's real
 * PostgreSQL, beyond the shared store suite's search tests: migration 5 on a
 * database that already holds messages (and with its index built beforehand
 * by hand), how words are split and folded next to the core's terms, the
 * keyset cursor under ties and concurrent sends, and terms the core would
 * never send. Every run uses its own random schemas and drops them at the
 * end; the shared server itself is never touched.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { StoreError, type SearchPage, type SearchQuery, type Store } from '../../src/core/ports/store.js';
import { searchTerms } from '../../src/protocol/search.js';
import { openPostgresStore, type PostgresStore } from '../../src/engines/postgres/store.js';
import { applyMigrations, MIGRATIONS } from '../../src/engines/postgres/migrations.js';
import { SCHEMA_V5 } from '../../src/engines/postgres/schema-v5.js';
import { POSTGRES_URL, postgresMissing } from '../helpers/services.js';
import { testSchemas } from '../helpers/postgres-schemas.js';

const skip = await postgresMissing();
const T0 = 1_700_000_000_000;
const { fresh: freshSchema, inspect } = testSchemas(skip);

const uid = (tag: string): string => `${tag}-${randomUUID()}`;
const bodies = (p: SearchPage): string[] => p.messages.map((m) => m.body);
const isNotFound = (e: unknown): boolean => e instanceof StoreError && e.code === 'not_found';

describe('PostgreSQL search', { skip }, () => {
  const opened: PostgresStore[] = [];
  const open = async (schema: string): Promise<PostgresStore> => {
    const s = await openPostgresStore({ url: POSTGRES_URL, schema, poolSize: 3 });
    opened.push(s);
    return s;
  };
  after(async () => {
    await Promise.all(opened.map((s) => s.close()));
  });

  let shared: PostgresStore | undefined;
  const store = async (): Promise<PostgresStore> => (shared ??= await open(freshSchema('search')));

  async function users(s: Store, n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const id = uid('user');
      await s.users.create({ id, username: `u${randomBytes(6).toString('hex')}`, displayName: 'U', createdAt: T0, passwordHash: 'h' });
      ids.push(id);
    }
    return ids;
  }
  async function group(s: Store, members: string[]): Promise<string> {
    const id = uid('conv');
    await s.conversations.create({ id, kind: 'group', title: 'T', members: members.map((userId) => ({ userId, role: 'member' as const })), at: T0 });
    return id;
  }
  async function send(s: Store, conv: string, actor: string, body: string, at: number, id = uid('m')): Promise<string> {
    const r = await s.events.append({ kind: 'message.created', conversationId: conv, actorId: actor, at, message: { id, clientId: uid('c'), body } });
    assert.equal(r.status, 'appended');
    return id;
  }
  const find = (s: Store, q: Partial<SearchQuery> & { userId: string; terms: string[] }): Promise<SearchPage> => s.search.search({ limit: 20, ...q });

  it('migrates a database that already holds messages: old messages are found by their text now, deleted ones never', async () => {
    const schema = freshSchema('migrate');
    const conv = 'c-old';
    const item = (kind: string, extra: object): object => ({ kind, conversationId: conv, actorId: 'ua', at: T0 + 1, ...extra });
    const created = (id: string, body: string): object => item('message.created', { message: { id, clientId: `k-${id}`, body } });
    await inspect(schema, async (c) => {
      await applyMigrations(c, schema, MIGRATIONS.filter((m) => m.version <= 4));
      await c.query(`INSERT INTO users (id, username, display_name, password_hash, created_at) VALUES ('ua', 'ua', 'A', 'x', ${T0}), ('ub', 'ub', 'B', 'x', ${T0})`);
      await c.query(`INSERT INTO conversations (id, kind, created_at, updated_at) VALUES ('${conv}', 'group', ${T0}, ${T0}), ('c-other', 'group', ${T0}, ${T0})`);
      await c.query(`INSERT INTO members (conversation_id, user_id, role) VALUES ('${conv}', 'ua', 'owner'), ('c-other', 'ub', 'owner')`);
      const items = [
        created('m1', 'Planning the quarterly offsite'),
        created('m2', 'Lunch at the café?'),
        item('message.edited', { messageId: 'm2', body: 'Dinner at the bistro?' }),
        created('m3', 'quarterly secret, delete me'),
        item('message.deleted', { messageId: 'm3' }),
        ...Array.from({ length: 300 }, (_, i) => created(`bulk${i}`, `bulk message number ${i} about quarterly numbers`)),
        { kind: 'message.created', conversationId: 'c-other', actorId: 'ub', at: T0 + 1, message: { id: 'mx', clientId: 'k-mx', body: 'quarterly elsewhere' } },
      ];
      await c.query('SELECT append_events($1::jsonb)', [JSON.stringify(items)]);
    });
    const s = await open(schema);
    const state = await inspect(schema, async (c) => {
      const r = await c.query<{ version: number; unfilled: string; valid: boolean; trigger: string }>(
        `SELECT (SELECT max(version) FROM schema_migrations) AS version,
                (SELECT count(*) FROM messages WHERE search_words IS NULL) AS unfilled,
                (SELECT i.indisvalid FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
                  WHERE x.relname = 'messages_search' AND x.relnamespace = $1::regnamespace) AS valid,
                (SELECT count(*) FROM pg_trigger t JOIN pg_class x ON x.oid = t.tgrelid
                  WHERE t.tgname = 'messages_search_words' AND x.relnamespace = $1::regnamespace) AS trigger`,
        [schema],
      );
      return r.rows[0];
    });
    assert.deepEqual(state, { version: Math.max(...MIGRATIONS.map((m) => m.version)), unfilled: '0', valid: true, trigger: '1' });
    assert.deepEqual(bodies(await find(s, { userId: 'ua', terms: ['plan'] })), ['Planning the quarterly offsite']);
    assert.deepEqual(bodies(await find(s, { userId: 'ua', terms: ['bistro'] })), ['Dinner at the bistro?']);
    assert.deepEqual(bodies(await find(s, { userId: 'ua', terms: ['cafe'] })), [], 'the text before the edit is not searchable');
    assert.deepEqual(bodies(await find(s, { userId: 'ua', terms: ['secret'] })), [], 'a deleted message is not found');
    // Every old message, across pages, and nothing of the other conversation.
    const ids: string[] = [];
    let next: string | undefined;
    do {
      const p = await find(s, { userId: 'ua', terms: ['quarterly'], limit: 50, ...(next === undefined ? {} : { after: next }) });
      ids.push(...p.messages.map((m) => m.id));
      next = p.next;
    } while (next !== undefined);
    assert.equal(ids.length, 301);
    assert.equal(new Set(ids).size, 301);
    assert.ok(!ids.includes('mx') && !ids.includes('m3'));
    // And what is sent after the migration.
    await send(s, conv, 'ua', 'quarterly review after the upgrade', T0 + 5);
    assert.deepEqual(bodies(await find(s, { userId: 'ua', terms: ['quarterly', 'upgrade'] })), ['quarterly review after the upgrade']);
  });

  it('keeps the words and an index built by hand before the migration (CREATE INDEX CONCURRENTLY), and records it as applied', async () => {
    const schema = freshSchema('prebuilt');
    const oid = await inspect(schema, async (c) => {
      await applyMigrations(c, schema, MIGRATIONS.filter((m) => m.version <= 4));
      await c.query(`SET search_path TO ${schema}`);
      await c.query(`INSERT INTO users (id, username, display_name, password_hash, created_at) VALUES ('ua', 'ua', 'A', 'x', ${T0})`);
      await c.query(`INSERT INTO conversations (id, kind, created_at, updated_at) VALUES ('c1', 'group', ${T0}, ${T0})`);
      await c.query(`INSERT INTO members (conversation_id, user_id, role) VALUES ('c1', 'ua', 'owner')`);
      const items = [{ kind: 'message.created', conversationId: 'c1', actorId: 'ua', at: T0, message: { id: 'm1', clientId: 'k1', body: 'prepared beforehand' } }];
      await c.query('SELECT append_events($1::jsonb)', [JSON.stringify(items)]);
      // What an operator does for a large table: the migration's statements by
      // hand, but the index without blocking writes.
      await c.query(SCHEMA_V5);
      await c.query('DROP INDEX messages_search');
      await c.query('CREATE INDEX CONCURRENTLY messages_search ON messages USING gin (search_words)');
      return (await c.query<{ oid: number }>(`SELECT '${schema}.messages_search'::regclass::oid AS oid`)).rows[0]?.oid;
    });
    const s = await open(schema);
    const after = await inspect(schema, async (c) => ({
      oid: (await c.query<{ oid: number }>(`SELECT '${schema}.messages_search'::regclass::oid AS oid`)).rows[0]?.oid,
      versions: (await c.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) => r.version),
    }));
    assert.equal(after.oid, oid, 'the index built by hand is kept, not built again');
    assert.deepEqual(after.versions, MIGRATIONS.map((m) => m.version));
    assert.equal((await find(s, { userId: 'ua', terms: ['prepared'] })).messages.length, 1);
  });

  it('matches every term as the start of a word, after splitting at punctuation as the core splits terms', async () => {
    const s = await store();
    const [a] = await users(s, 1);
    assert.ok(a);
    const conv = await group(s, [a]);
    await send(s, conv, a, 'Meeting notes: mail user@example.com, version 3.14, snake_case_name', T0 + 1);
    await send(s, conv, a, 'the plan was unmet', T0 + 2);
    const hits = async (terms: string[]): Promise<number> => (await find(s, { userId: a, terms })).messages.length;
    assert.equal(await hits(['meet']), 1, '"meet" finds "Meeting", not "unmet"');
    assert.equal(await hits(['met']), 0);
    for (const word of ['user', 'example', 'com', '3', '14', 'snake', 'case', 'name']) assert.equal(await hits([word]), 1, word);
    assert.equal(await hits(['meeting', 'unmet']), 0, 'all terms in one message');
  });

  it('folds the text the way the core folds terms: diacritics, marks of other scripts, final sigma', async () => {
    const s = await store();
    const [a] = await users(s, 1);
    assert.ok(a);
    const conv = await group(s, [a]);
    const texts = [
      'Café crème à Łódź',
      'Die Straße ist lang',
      'ΟΔΟΣ ΚΛΕΙΣΤΗ',
      'μια οδός',
      'नमस्ते दुनिया',
      'ガスの料金',
      'שָׁלוֹם עֲלֵיכֶם',
      'مَرْحَبًا',
      'Ёлка Ελληνικά Việt',
      'ﬁne ＡＢＣ x²',
    ];
    for (const [i, t] of texts.entries()) await send(s, conv, a, t, T0 + i);
    for (const t of texts) {
      // Whatever the user types, as the core turns it into terms, finds the message.
      const terms = searchTerms(t);
      assert.deepEqual(bodies(await find(s, { userId: a, terms })), [t], `${t} → ${terms.join(' ')}`);
    }
    const typed = async (q: string): Promise<string[]> => bodies(await find(s, { userId: a, terms: searchTerms(q) }));
    assert.deepEqual(await typed('cafe creme łodz'), ['Café crème à Łódź']);
    assert.deepEqual(await typed('lodz'), [], 'a letter that does not decompose stays, as in the core');
    assert.deepEqual(await typed('straße'), ['Die Straße ist lang']);
    assert.deepEqual(await typed('οδος'), ['μια οδός', 'ΟΔΟΣ ΚΛΕΙΣΤΗ'], 'final sigma, typed or in capitals');
    assert.deepEqual(await typed('ΟΔΟΣ'), ['μια οδός', 'ΟΔΟΣ ΚΛΕΙΣΤΗ']);
    assert.deepEqual(await typed('elka ellinika'), [], 'folding is not transliteration');
    assert.deepEqual(await typed('ΕΛΛΗΝΙΚΑ viet'), ['Ёлка Ελληνικά Việt']);
    assert.deepEqual(await typed('abc fine x2'), ['ﬁne ＡＢＣ x²']);
  });

  it('never returns messages of conversations the user is not in, whatever the filters say', async () => {
    const s = await store();
    const [a, b] = await users(s, 2);
    assert.ok(a && b);
    const mine = await group(s, [a, b]);
    const theirs = await group(s, [b]);
    const k = `w${randomBytes(4).toString('hex')}`;
    await send(s, mine, b, `${k} shared`, T0 + 1);
    await send(s, theirs, b, `${k} private`, T0 + 2);
    assert.deepEqual(bodies(await find(s, { userId: a, terms: [k] })), [`${k} shared`]);
    assert.deepEqual(bodies(await find(s, { userId: a, terms: [k], conversationId: theirs })), []);
    assert.deepEqual(bodies(await find(s, { userId: a, terms: [k], senderId: b })), [`${k} shared`]);
    assert.deepEqual(bodies(await find(s, { userId: 'nobody', terms: [k] })), [], 'a user with no conversations');
    await s.events.append({ kind: 'member.joined', conversationId: theirs, actorId: b, at: T0 + 3, userId: a, role: 'member' });
    assert.deepEqual(bodies(await find(s, { userId: a, terms: [k] })), [`${k} private`, `${k} shared`], 'membership is read at the time of the search');
  });

  it('finds an edited message by its new text only and a deleted one not at all, at once after the append', async () => {
    const s = await store();
    const [a] = await users(s, 1);
    assert.ok(a);
    const conv = await group(s, [a]);
    const k = `w${randomBytes(4).toString('hex')}`;
    const edited = await send(s, conv, a, `${k} original wording`, T0 + 1);
    const deleted = await send(s, conv, a, `${k} regrettable remark`, T0 + 2);
    await s.events.append({ kind: 'message.edited', conversationId: conv, actorId: a, at: T0 + 3, messageId: edited, body: `${k} revised wording` });
    await s.events.append({ kind: 'message.deleted', conversationId: conv, actorId: a, at: T0 + 4, messageId: deleted });
    // No indexed() call: the words were written by the append.
    assert.deepEqual(bodies(await find(s, { userId: a, terms: ['original'] })), []);
    const [hit] = (await find(s, { userId: a, terms: [k, 'revised'] })).messages;
    assert.deepEqual(hit, await s.events.message(edited), 'the message as EventStore.message() returns it');
    assert.equal(hit?.editedAt, T0 + 3);
    assert.deepEqual(bodies(await find(s, { userId: a, terms: ['regrettable'] })), []);
    assert.deepEqual(bodies(await find(s, { userId: a, terms: [k] })), [`${k} revised wording`]);
    await s.search.indexed();
  });

  it('filters by conversation, sender and time together', async () => {
    const s = await store();
    const [a, b] = await users(s, 2);
    assert.ok(a && b);
    const one = await group(s, [a, b]);
    const two = await group(s, [a, b]);
    const k = `w${randomBytes(4).toString('hex')}`;
    for (let i = 0; i < 8; i++) await send(s, i % 2 ? two : one, i % 4 < 2 ? a : b, `${k} ${i}`, T0 + i * 10);
    const got = async (q: Partial<SearchQuery>): Promise<string[]> => bodies(await find(s, { userId: a, terms: [k], ...q }));
    assert.deepEqual(await got({ conversationId: one }), [`${k} 6`, `${k} 4`, `${k} 2`, `${k} 0`]);
    assert.deepEqual(await got({ senderId: b }), [`${k} 7`, `${k} 6`, `${k} 3`, `${k} 2`]);
    assert.deepEqual(await got({ since: T0 + 20, until: T0 + 50 }), [`${k} 4`, `${k} 3`, `${k} 2`]);
    assert.deepEqual(await got({ conversationId: two, senderId: a, since: T0 + 10 }), [`${k} 5`, `${k} 1`]);
    assert.deepEqual(await got({ until: T0 }), []);
  });

  it('pages without a duplicate or a gap through messages sent in the same millisecond and while paging', async () => {
    const s = await store();
    const [a] = await users(s, 1);
    assert.ok(a);
    const conv = await group(s, [a]);
    const k = `w${randomBytes(4).toString('hex')}`;
    const sent: string[] = [];
    // 40 messages over 4 milliseconds: ties are broken by id.
    for (let i = 0; i < 40; i++) sent.push(await send(s, conv, a, `${k} ${i}`, T0 + Math.floor(i / 10), `m-${k}-${String(i).padStart(2, '0')}`));
    const seen: string[] = [];
    let next: string | undefined;
    for (let page = 0; page < 20; page++) {
      const p = await find(s, { userId: a, terms: [k], limit: 7, ...(next === undefined ? {} : { after: next }) });
      seen.push(...p.messages.map((m) => m.id));
      if (page === 1) await send(s, conv, a, `${k} newer, sent while paging`, T0 + 100);
      next = p.next;
      if (next === undefined) break;
    }
    assert.deepEqual(seen, [...sent].reverse(), 'newest first by time then id, each once, the newer message not slipped in');
    // A page that ends exactly at the last match says so.
    const all = await find(s, { userId: a, terms: [k], limit: 41 });
    assert.equal(all.messages.length, 41);
    assert.equal(all.next, undefined);
  });

  it('refuses a cursor it did not give out with not_found', async () => {
    const s = await store();
    const bad = ['', 'nope', '-1', '1.5', Buffer.from('[1,2]').toString('base64url'), Buffer.from('["x","y"]').toString('base64url'), Buffer.from('{}').toString('base64url')];
    for (const after of bad) await assert.rejects(find(s, { userId: 'u', terms: ['x'], after }), isNotFound, JSON.stringify(after));
  });

  it('treats terms the core would never send as text, not as query syntax', async () => {
    const s = await store();
    const [a] = await users(s, 1);
    assert.ok(a);
    const conv = await group(s, [a]);
    const k = `w${randomBytes(4).toString('hex')}`;
    await send(s, conv, a, `${k} it's a b&w photo`, T0 + 1);
    for (const term of ["it's", "'", "''", '\\', ':*', '&', '|', '!', '<->', 'b&w', "x') OR ('1'='1", '', ' ']) {
      const p = await find(s, { userId: a, terms: [k, term] });
      assert.ok(p.messages.length <= 1, JSON.stringify(term));
    }
    assert.equal((await find(s, { userId: a, terms: [k, 'b&w'] })).messages.length, 1, 'b&w is the words b and w');
    assert.equal((await find(s, { userId: a, terms: [] })).messages.length, 0, 'no term, no match');
  });

  it('stores a body longer than a tsvector holds, searchable by its start', async () => {
    const s = await store();
    const [a] = await users(s, 1);
    assert.ok(a);
    const conv = await group(s, [a]);
    // ~1.3 MB of distinct words: more than the 1 MB of lexemes a tsvector may hold.
    const words = Array.from({ length: 130_000 }, (_, i) => `w${i.toString(36)}x${randomBytes(2).toString('hex')}`);
    const body = words.join(' ');
    await send(s, conv, a, body, T0 + 1);
    assert.equal((await find(s, { userId: a, terms: [words[0] as string] })).messages.length, 1);
  });
});
