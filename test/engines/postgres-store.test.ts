/**
 * The PostgreSQL Store engine against the machine's real PostgreSQL: the
 * shared Store suite, then what only a many-node engine has to show
 * (concurrent appenders on separate pools, idempotency raced across nodes,
 * concurrent migrations, failing fast and healing while the server is cut off
 * behind a TCP proxy of our own). Every run uses its own random schemas and
 * drops them at the end; the shared server itself is never touched.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { StoreError, type AppendInput, type AppendResult, type Store } from '../../src/core/ports/store.js';
import { openPostgresStore, migratePostgres, type PostgresStore } from '../../src/engines/postgres/store.js';
import { applyMigrations, MIGRATIONS } from '../../src/engines/postgres/migrations.js';
import { eventFromRow, type EventRow } from '../../src/engines/postgres/rows.js';
import { storeSuite } from '../ports/store.suite.js';
import { POSTGRES_URL, postgresMissing } from '../helpers/services.js';
import { testSchemas } from '../helpers/postgres-schemas.js';

const skip = await postgresMissing();
const T0 = 1_700_000_000_000;
const { fresh: freshSchema, inspect } = testSchemas(skip);

if (!skip) {
  const suiteSchema = freshSchema('suite');
  storeSuite(
    'postgres',
    () => openPostgresStore({ url: POSTGRES_URL, schema: suiteSchema, poolSize: 5 }),
    (s) => s.close(),
  );
}

const uid = (tag: string): string => `${tag}-${randomUUID()}`;

async function seed(s: Store, members = 1): Promise<{ conv: string; users: string[] }> {
  const users: string[] = [];
  for (let i = 0; i < members; i++) {
    const id = uid('user');
    await s.users.create({ id, username: `u${randomBytes(6).toString('hex')}`, displayName: 'U', createdAt: T0, passwordHash: 'h' });
    users.push(id);
  }
  const conv = uid('conv');
  await s.conversations.create({ id: conv, kind: 'group', title: 'T', members: users.map((userId) => ({ userId, role: 'member' as const })), at: T0 });
  return { conv, users };
}

function created(conv: string, actor: string, clientId = uid('c'), body = 'x'): AppendInput {
  return { kind: 'message.created', conversationId: conv, actorId: actor, at: Date.now(), message: { id: uid('m'), clientId, body } };
}

function seqOf(r: AppendResult): number {
  assert.equal(r.status, 'appended');
  return r.status === 'appended' ? r.event.seq : -1;
}

describe('PostgreSQL store engine', { skip }, () => {
  const opened: PostgresStore[] = [];
  const open = async (schema: string, more: Partial<Parameters<typeof openPostgresStore>[0]> = {}): Promise<PostgresStore> => {
    const s = await openPostgresStore({ url: POSTGRES_URL, schema, poolSize: 4, ...more });
    opened.push(s);
    return s;
  };
  after(async () => {
    await Promise.all(opened.map((s) => s.close()));
  });

  it('keeps seqs 1..2000 gap-free and in commit order with 8 writers on 3 nodes appending to one conversation', async () => {
    const schema = freshSchema('nodes');
    const nodes = [await open(schema), await open(schema), await open(schema)];
    const { conv, users } = await seed(nodes[0] as Store, 8);
    // Each writer keeps 5 appends in flight, so every node batches and the
    // three compete for the conversation's row lock all along.
    type Done = { seq: number; submitted: number; settled: number; writer: number; n: number };
    const done: Done[] = [];
    await Promise.all(
      users.map(async (actor, writer) => {
        const node = nodes[writer % nodes.length] as Store;
        for (let n = 0; n < 250; n += 5) {
          await Promise.all(
            [0, 1, 2, 3, 4].map(async (k) => {
              const submitted = performance.now();
              const r = await node.events.append(created(conv, actor, `w${writer}-${n + k}`));
              done.push({ seq: seqOf(r), submitted, settled: performance.now(), writer, n: n + k });
            }),
          );
        }
      }),
    );
    assert.equal(done.length, 2000);
    const bySeq = [...done].sort((a, b) => a.seq - b.seq);
    assert.deepEqual(bySeq.map((d) => d.seq), Array.from({ length: 2000 }, (_, i) => i + 1));
    // Commit order: an append that settled before another was submitted has the smaller seq.
    let earliestSettledAbove = Infinity;
    for (let i = bySeq.length - 1; i >= 0; i--) {
      const d = bySeq[i] as Done;
      assert.ok(earliestSettledAbove >= d.submitted, `seq ${d.seq} was submitted after a higher seq had already committed`);
      earliestSettledAbove = Math.min(earliestSettledAbove, d.settled);
    }
    // Each writer's successive rounds got increasing seqs.
    for (let w = 0; w < 8; w++) {
      const mine = done.filter((d) => d.writer === w).sort((a, b) => a.n - b.n);
      assert.equal(mine.length, 250);
      for (let i = 5; i < mine.length; i++) assert.ok((mine[i] as Done).seq > (mine[i - 5] as Done).seq);
    }
    const counts = await inspect(schema, async (c) => {
      const r = await c.query<{ events: string; messages: string; last: number; max: number }>(
        // A message.created is its messages row only (migration 2): events holds the other kinds.
        `SELECT (SELECT count(*) FROM events WHERE conversation_id = $1) AS events,
                (SELECT count(*) FROM messages WHERE conversation_id = $1) AS messages,
                (SELECT last_seq FROM conversations WHERE id = $1) AS last,
                (SELECT max(seq) FROM messages WHERE conversation_id = $1) AS max`,
        [conv],
      );
      return r.rows[0];
    });
    assert.deepEqual(counts, { events: '0', messages: '2000', last: 2000, max: 2000 });
    const logged: number[] = [];
    for (let afterSeq = 0; afterSeq < 2000; afterSeq += 500) {
      logged.push(...(await (nodes[2] as Store).events.after(conv, afterSeq, 500)).map((e) => e.seq));
    }
    assert.deepEqual(logged, Array.from({ length: 2000 }, (_, i) => i + 1));
    const batches = nodes.reduce((sum, n) => sum + n.stats().batches, 0);
    assert.ok(batches < 2000, `appends were batched (${batches} batches for 2000 appends)`);
  });

  it('keeps one message when two nodes race the same clientId', async () => {
    const schema = freshSchema('idem');
    const [s1, s2] = [await open(schema), await open(schema)];
    const { conv, users } = await seed(s1, 1);
    const actor = users[0] as string;
    for (let round = 0; round < 25; round++) {
      const clientId = uid('same');
      const [r1, r2] = await Promise.all([s1.events.append(created(conv, actor, clientId, 'a')), s2.events.append(created(conv, actor, clientId, 'b'))]);
      assert.deepEqual([r1.status, r2.status].sort(), ['appended', 'unchanged'], `round ${round}`);
      assert.ok(r1.message && r2.message);
      assert.equal(r1.message.id, r2.message.id, 'the loser gets the original message');
      assert.equal(r1.message.body, r2.message.body);
    }
    assert.equal((await s2.conversations.get(conv))?.lastSeq, 25);
    assert.equal((await s1.events.messages(conv, { limit: 100 })).messages.length, 25);
  });

  it('applies migrations once when three nodes open a new schema at the same moment', async () => {
    const schema = freshSchema('migrate');
    const stores = await Promise.all([open(schema), open(schema), open(schema)]);
    const versions = await inspect(schema, async (c) => (await c.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')).rows);
    assert.deepEqual(versions.map((v) => v.version), MIGRATIONS.map((m) => m.version));
    for (const s of stores) assert.equal(await s.ping(), true);
    // And the command's entry point: nothing left to do, twice at once.
    assert.deepEqual(await Promise.all([migratePostgres(POSTGRES_URL, schema), migratePostgres(POSTGRES_URL, schema)]), [[], []]);
    const fresh = freshSchema('cmd');
    const applied = await Promise.all([migratePostgres(POSTGRES_URL, fresh), migratePostgres(POSTGRES_URL, fresh), migratePostgres(POSTGRES_URL, fresh)]);
    assert.deepEqual(applied.flat(), MIGRATIONS.map((m) => m.version), 'exactly one of them applied each version');
  });

  it('reads a log written before migration 2 the same after it (a message written once)', async () => {
    const schema = freshSchema('v1');
    const conv = 'c-v1';
    const item = (kind: string, extra: object): object => ({ kind, conversationId: conv, actorId: 'ua', at: T0 + 1, ...extra });
    const created = (id: string, body: string, replyTo?: string): object =>
      item('message.created', { message: { id, clientId: `k-${id}`, body, ...(replyTo ? { replyTo } : {}) } });
    // Under migration 1 only, through its own append function.
    const before = await inspect(schema, async (c) => {
      await applyMigrations(c, schema, MIGRATIONS.filter((m) => m.version === 1));
      await c.query(`INSERT INTO users (id, username, display_name, password_hash, created_at) VALUES
        ('ua', 'ua', 'A', 'x', ${T0}), ('ub', 'ub', 'B', 'x', ${T0})`);
      await c.query(`INSERT INTO conversations (id, kind, created_at, updated_at) VALUES ('${conv}', 'group', ${T0}, ${T0})`);
      await c.query(`INSERT INTO members (conversation_id, user_id, role) VALUES ('${conv}', 'ua', 'owner')`);
      const items = [
        created('m1', 'first'),
        created('m2', 'second', 'm1'),
        item('message.edited', { messageId: 'm1', body: 'first, edited' }),
        item('message.edited', { messageId: 'm1', body: 'first, edited again' }),
        created('m3', 'gone soon'),
        item('message.edited', { messageId: 'm3', body: 'gone soon, edited' }),
        item('message.deleted', { messageId: 'm3' }),
        item('message.reacted', { messageId: 'm2', reaction: '👍', active: true }),
        item('member.joined', { userId: 'ub', role: 'member' }),
        created('m4', 'after the join'),
      ];
      for (const x of items) await c.query('SELECT append_events($1::jsonb)', [JSON.stringify([x])]);
      const log = await c.query<EventRow>(
        // float8: this plain client reads bigint as text; the store's pool reads it as a number.
        'SELECT conversation_id, seq, kind, actor_id, at::float8 AS at, payload FROM events WHERE conversation_id = $1 ORDER BY seq',
        [conv],
      );
      const msgs = await c.query<{ m: unknown }>('SELECT message_json(x) AS m FROM messages x WHERE conversation_id = $1 ORDER BY seq', [conv]);
      return { log: log.rows.map(eventFromRow), messages: msgs.rows.map((r) => r.m) };
    });
    assert.equal(before.log.length, 10);
    const store = await open(schema);
    try {
      const events = await inspect(schema, async (c) => (await c.query<{ n: string }>("SELECT count(*) AS n FROM events WHERE kind = 'message.created'")).rows[0]?.n);
      assert.equal(events, '0', 'the created events moved to their messages rows');
      assert.deepEqual(await store.events.after(conv, 0, 100), before.log);
      assert.deepEqual(await store.events.after(conv, 3, 4), before.log.slice(3, 7));
      assert.deepEqual((await store.events.messages(conv, { limit: 10 })).messages, before.messages);
      // And new writes after the migration read back in the same shape.
      const r = await store.events.append({ kind: 'message.edited', conversationId: conv, actorId: 'ua', at: T0 + 2, messageId: 'm4', body: 'after, edited' });
      assert.equal(r.status, 'appended');
      const tail = await store.events.after(conv, 9, 10);
      assert.deepEqual(tail.map((e) => e.kind), ['message.created', 'message.edited']);
      assert.equal(tail[0]?.kind === 'message.created' && tail[0].message.body, 'after the join', 'the created event keeps the body as sent');
    } finally {
      await store.close();
    }
  });

  it('keeps every table in its schema, keyed by conversation id first where hot', async () => {
    const schema = freshSchema('layout');
    await open(schema);
    const keys = await inspect(schema, async (c) => {
      const r = await c.query<{ table: string; key: string[] }>(
        `SELECT t.relname AS table, array_agg(a.attname::text ORDER BY k.i) AS key
         FROM pg_index x
         JOIN pg_class t ON t.oid = x.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, i)
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
         WHERE n.nspname = $1 AND x.indisprimary
         GROUP BY t.relname`,
        [schema],
      );
      return Object.fromEntries(r.rows.map((row) => [row.table, row.key]));
    });
    for (const table of ['events', 'messages', 'members', 'reactions', 'attachment_refs']) assert.equal(keys[table]?.[0], 'conversation_id', table);
    assert.deepEqual(keys.events, ['conversation_id', 'seq']);
    assert.equal(keys.blocks?.[0], 'blocker_id', 'blocks belong to users, not conversations');
    assert.deepEqual(keys.device_keys, ['device_id'], 'device keys belong to devices');
    assert.deepEqual(Object.keys(keys).sort(), [
      'attachment_refs', 'attachments', 'blocks', 'conversations', 'device_keys', 'devices', 'direct_pairs', 'events', 'members', 'messages', 'push_subscriptions', 'reactions', 'refresh_tokens', 'schema_migrations', 'server_secrets', 'users',
    ]);
  });

  it('refuses a schema name that is not a plain identifier', async () => {
    await assert.rejects(openPostgresStore({ url: POSTGRES_URL, schema: 'x; DROP TABLE users' }), /schema name/);
  });

  it('rejects references to rows that do not exist with not_found and text with NUL with conflict', async () => {
    const s = await open(freshSchema('errors'));
    const { conv, users } = await seed(s, 1);
    const actor = users[0] as string;
    await assert.rejects(s.devices.create({ id: uid('d'), userId: 'ghost', name: 'x', createdAt: T0, lastActiveAt: T0 }), isCode('not_found'));
    await assert.rejects(s.devices.addRefreshToken('hash', 'ghost-device', T0), isCode('not_found'));
    const c2 = uid('conv');
    await assert.rejects(s.conversations.create({ id: c2, kind: 'group', title: 'x', members: [{ userId: 'ghost', role: 'owner' }], at: T0 }), isCode('not_found'));
    assert.equal(await s.conversations.get(c2), undefined, 'a failed create leaves nothing behind');
    await assert.rejects(s.events.append({ kind: 'member.joined', conversationId: conv, actorId: actor, at: T0, userId: 'ghost', role: 'member' }), isCode('not_found'));
    // NUL cannot be stored in PostgreSQL text; the others of the same batch still commit.
    const [bad, good] = await Promise.allSettled([s.events.append(created(conv, actor, uid('c'), 'a\u0000b')), s.events.append(created(conv, actor, uid('c'), 'fine'))]);
    assert.equal(bad.status, 'rejected');
    if (bad.status === 'rejected') assert.ok(isCode('conflict')(bad.reason));
    assert.equal(good.status === 'fulfilled' && seqOf(good.value), 1);
    // A lone surrogate is stored as U+FFFD, as a text parameter would be.
    const lone = await s.events.append(created(conv, actor, uid('c'), 'a\ud800b'));
    assert.equal(lone.message?.body, 'a\ufffdb');
    assert.equal((await s.conversations.get(conv))?.lastSeq, 2);
  });

  it('keeps reactions in the order they were added, emoji and users alike', async () => {
    const s = await open(freshSchema('react'));
    const { conv, users } = await seed(s, 3);
    const [a, b, c] = users as [string, string, string];
    const m = await s.events.append(created(conv, a));
    const id = m.message?.id as string;
    const react = (actorId: string, reaction: string): Promise<AppendResult> =>
      s.events.append({ kind: 'message.reacted', conversationId: conv, actorId, at: T0, messageId: id, reaction, active: true });
    await react(c, '🎉');
    await react(a, '👍');
    await react(b, '🎉');
    const last = await react(a, '🎉');
    assert.deepEqual(Object.entries(last.message?.reactions ?? {}), [['🎉', [c, b, a]], ['👍', [a]]]);
    assert.deepEqual(Object.keys((await s.events.message(id))?.reactions ?? {}), ['🎉', '👍']);
  });

  it('batches a burst of appends into few round trips, seqs in submission order', async () => {
    const s = await open(freshSchema('burst'), { maxBatch: 300 });
    const { conv, users } = await seed(s, 1);
    const before = s.stats();
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => s.events.append(created(conv, users[0] as string, `k${i}`))));
    assert.deepEqual(results.map(seqOf), Array.from({ length: 1000 }, (_, i) => i + 1));
    const batches = s.stats().batches - before.batches;
    assert.equal(batches, 4, '1000 appends of one turn at 300 per batch');
  });

  it('rejects appends after close, and ping answers false', async () => {
    const s = await openPostgresStore({ url: POSTGRES_URL, schema: freshSchema('closed'), poolSize: 2 });
    const { conv, users } = await seed(s, 1);
    await s.close();
    await s.close();
    assert.equal(await s.ping(), false);
    await assert.rejects(s.events.append(created(conv, users[0] as string)), /closed/);
  });
});

describe('PostgreSQL store engine when the server is cut off', { skip }, () => {
  let proxy: CutProxy;
  let store: PostgresStore;
  let conv: string;
  let actor: string;
  let poolErrors = 0;
  before(async () => {
    const target = new URL(POSTGRES_URL);
    proxy = await CutProxy.start(target.hostname || '127.0.0.1', Number(target.port || 5432));
    const url = new URL(POSTGRES_URL);
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    store = await openPostgresStore({ url: url.toString(), schema: freshSchema('cut'), poolSize: 4, onPoolError: () => poolErrors++ });
    const seeded = await seed(store, 1);
    conv = seeded.conv;
    actor = seeded.users[0] as string;
  });
  after(async () => {
    proxy.restore();
    await store.close();
    await proxy.stop();
  });

  async function timed<T>(p: Promise<T>): Promise<{ ms: number; ok: boolean; error?: unknown }> {
    const t = performance.now();
    try {
      await p;
      return { ms: performance.now() - t, ok: true };
    } catch (error) {
      return { ms: performance.now() - t, ok: false, error };
    }
  }

  async function worksAgain(): Promise<void> {
    // No reopen: the very first calls after the link is back succeed.
    assert.equal(await store.ping(), true);
    const r = await store.events.append(created(conv, actor));
    assert.equal(r.status, 'appended');
    assert.ok((await store.conversations.get(conv))?.lastSeq);
    assert.equal((await store.events.after(conv, 0, 1)).length, 1);
  }

  for (const mode of ['reset', 'blackhole'] as const) {
    it(`fails fast while the link is cut (${mode}), says so in ping, and heals by itself`, async (t) => {
      // Warm the pool: parallel reads leave several connections idle, the ones the cut kills.
      await Promise.all(Array.from({ length: 8 }, () => store.events.append(created(conv, actor))));
      await Promise.all(Array.from({ length: 8 }, () => store.conversations.get(conv)));
      const seqBefore = (await store.conversations.get(conv))?.lastSeq ?? 0;
      const errorsBefore = poolErrors;
      proxy.cut(mode);
      try {
        await cutOff(mode, errorsBefore, t);
      } finally {
        proxy.restore();
      }
      const healing = performance.now();
      await worksAgain();
      t.diagnostic(`working again ${Math.round(performance.now() - healing)} ms after the link came back`);
      // Nothing that failed was half-written: the log stays gap-free.
      const seqs = (await store.events.after(conv, seqBefore - 1, 1000)).map((e) => e.seq);
      assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => seqBefore + i));
    });
  }

  async function cutOff(mode: 'reset' | 'blackhole', errorsBefore: number, t: TestContext): Promise<void> {
    if (mode === 'reset') {
      // Idle pooled connections die with the link: the pool reports them
      // (through onPoolError) instead of throwing, which would end the process.
      for (let i = 0; i < 50 && poolErrors === errorsBefore; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(poolErrors > errorsBefore, 'the pool reported its idle connections dying');
    }
    const started = performance.now();
    const attempts: { ms: number; ok: boolean; error?: unknown }[] = [];
    const pings: { ms: number; up: boolean }[] = [];
    // For ~3 s: appends one after another, a burst, reads and pings.
    while (performance.now() - started < 3000) {
      attempts.push(await timed(store.events.append(created(conv, actor))));
      attempts.push(...(await Promise.all(Array.from({ length: 5 }, () => timed(store.events.append(created(conv, actor)))))));
      attempts.push(await timed(store.conversations.get(conv)));
      const pinged = performance.now();
      const up = await store.ping();
      pings.push({ ms: performance.now() - pinged, up });
    }
    assert.ok(attempts.length >= 7);
    for (const a of attempts) {
      assert.equal(a.ok, false, 'nothing succeeds while the link is cut');
      assert.ok(a.ms < 2500, `a call took ${Math.round(a.ms)} ms to fail`);
      assert.ok(!(a.error instanceof StoreError), 'an outage is an engine fault (unavailable), not a refusal');
      assert.ok(a.error instanceof Error);
    }
    for (const p of pings) {
      assert.equal(p.up, false);
      assert.ok(p.ms < 1200, `ping took ${Math.round(p.ms)} ms`);
    }
    const worst = (xs: number[]): number => Math.round(Math.max(...xs));
    t.diagnostic(`${attempts.length} calls failed in at most ${worst(attempts.map((a) => a.ms))} ms; ${pings.length} pings false in at most ${worst(pings.map((p) => p.ms))} ms`);
  }
});

/**
 * Throughput and latency of appends, opt-in (PARLEY_PG_BENCH=1; run it under
 * flock /tmp/parley-bench.lock): 100 concurrent appenders on one store, into
 * one conversation and spread over 100. Besides the engine as shipped
 * (batched calls of append_events), two alternatives measured for the record:
 * one append_events call per append (maxBatch 1), and the plain way, one
 * transaction of separate statements per append (6 round trips).
 */
const BENCH = process.env.PARLEY_PG_BENCH === '1';
describe('PostgreSQL append throughput (PARLEY_PG_BENCH=1)', { skip: skip ?? (BENCH ? false : 'set PARLEY_PG_BENCH=1') }, () => {
  const SECONDS = Number(process.env.PARLEY_PG_BENCH_SECONDS ?? 5);
  const APPENDERS = 100;

  type Append = (conv: string, actor: string) => Promise<unknown>;

  async function measure(label: string, conversations: string[], actor: string, append: Append): Promise<void> {
    const latencies: number[] = [];
    let stop = false;
    const warmUntil = performance.now() + 1000;
    const loops = Array.from({ length: APPENDERS }, async (_, i) => {
      const conv = conversations[i % conversations.length] as string;
      while (!stop) {
        const t = performance.now();
        await append(conv, actor);
        if (t >= warmUntil) latencies.push(performance.now() - t);
      }
    });
    await new Promise((r) => setTimeout(r, 1000));
    const started = performance.now();
    const counted = latencies.length;
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const n = latencies.length - counted;
    const elapsed = (performance.now() - started) / 1000;
    stop = true;
    await Promise.all(loops);
    latencies.sort((a, b) => a - b);
    const q = (p: number): string => (latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN).toFixed(1);
    console.log(`# ${label.padEnd(58)} ${Math.round(n / elapsed).toString().padStart(6)} appends/s  p50 ${q(0.5)} ms  p99 ${q(0.99)} ms`);
  }

  async function setup(s: Store): Promise<{ one: string[]; hundred: string[]; actor: string }> {
    const { conv, users } = await seed(s, 1);
    const actor = users[0] as string;
    const hundred: string[] = [];
    for (let i = 0; i < 100; i++) {
      const id = uid('conv');
      await s.conversations.create({ id, kind: 'group', title: 'b', members: [{ userId: actor, role: 'member' }], at: T0 });
      hundred.push(id);
    }
    return { one: [conv], hundred, actor };
  }

  it('measures appends/s and latency', async () => {
    const schema = freshSchema('bench');
    const batched = await openPostgresStore({ url: POSTGRES_URL, schema });
    const single = await openPostgresStore({ url: POSTGRES_URL, schema, maxBatch: 1 });
    const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 10, options: `-c search_path=${schema}` });
    try {
      const { one, hundred, actor } = await setup(batched);
      const viaStore = (s: Store): Append => (conv, a) => s.events.append(created(conv, a));
      // The plain way: one transaction of separate statements per append.
      const plain: Append = async (conv, a) => {
        const c = await pool.connect();
        try {
          await c.query('BEGIN');
          const { rows } = await c.query<{ last_seq: number }>(
            'UPDATE conversations SET last_seq = last_seq + 1, updated_at = greatest(updated_at, $2) WHERE id = $1 RETURNING last_seq',
            [conv, Date.now()],
          );
          const seq = rows[0]?.last_seq;
          const clientId = uid('c');
          await c.query('SELECT 1 FROM messages WHERE conversation_id = $1 AND sender_id = $2 AND client_id = $3', [conv, a, clientId]);
          const id = uid('m');
          await c.query(
            'INSERT INTO messages (conversation_id, seq, id, sender_id, client_id, body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
            [conv, seq, id, a, clientId, 'x', Date.now()],
          );
          await c.query('INSERT INTO events (conversation_id, seq, kind, actor_id, at, payload) VALUES ($1, $2, $3, $4, $5, $6)', [
            conv, seq, 'message.created', a, Date.now(), JSON.stringify({ message: { id, body: 'x' } }),
          ]);
          await c.query('COMMIT');
          c.release();
        } catch (err) {
          c.release(err as Error);
          throw err;
        }
      };
      for (const [name, convs] of [['1 conversation', one], ['100 conversations', hundred]] as const) {
        await measure(`engine (batched append_events), ${name}`, convs, actor, viaStore(batched));
        await measure(`one append_events call per append, ${name}`, convs, actor, viaStore(single));
        await measure(`plain transaction, 6 round trips, ${name}`, convs, actor, plain);
      }
      const st = batched.stats();
      console.log(`# engine batches: ${st.batches} for ${st.items} appends (${(st.items / st.batches).toFixed(1)} per batch)`);
    } finally {
      await batched.close();
      await single.close();
      await pool.end();
    }
  });
});

function isCode(code: StoreError['code']): (err: unknown) => boolean {
  return (err) => err instanceof StoreError && err.code === code;
}

/**
 * A TCP relay between the store and PostgreSQL that can cut the link in two
 * ways: 'reset' closes every connection and refuses new ones (a server restart
 * or failover), 'blackhole' keeps sockets open but carries nothing (a network
 * partition: no error ever comes back, only timeouts tell).
 */
class CutProxy {
  private mode: 'open' | 'reset' | 'blackhole' = 'open';
  private readonly pairs = new Set<[Socket, Socket | undefined]>();

  private constructor(
    private readonly server: Server,
    private readonly host: string,
    private readonly targetPort: number,
  ) {
    server.on('connection', (client) => this.accept(client));
  }

  static async start(host: string, port: number): Promise<CutProxy> {
    const server = createServer();
    const proxy = new CutProxy(server, host, port);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    if (this.mode === 'reset') {
      client.destroy();
      return;
    }
    if (this.mode === 'blackhole') {
      // Accepted, then silence: the client's connect timeout has to notice.
      client.pause();
      this.pairs.add([client, undefined]);
      return;
    }
    const upstream = connect(this.targetPort, this.host);
    upstream.on('error', () => client.destroy());
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const drop = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  cut(mode: 'reset' | 'blackhole'): void {
    this.mode = mode;
    for (const pair of [...this.pairs]) {
      const [client, upstream] = pair;
      if (mode === 'reset') {
        client.resetAndDestroy();
        upstream?.destroy();
        this.pairs.delete(pair);
      } else if (upstream) {
        // Stop carrying bytes both ways; the sockets stay open.
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    }
  }

  /**
   * Carries traffic again. As when a partition heals, connections that lived
   * through it carry on (bytes held meanwhile are delivered, late); those
   * accepted during it never reached the server and are closed.
   */
  restore(): void {
    if (this.mode === 'blackhole') {
      for (const pair of [...this.pairs]) {
        const [client, upstream] = pair;
        if (upstream) {
          client.pipe(upstream);
          upstream.pipe(client);
        } else {
          client.destroy();
          this.pairs.delete(pair);
        }
      }
    }
    this.mode = 'open';
  }

  async stop(): Promise<void> {
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream?.destroy();
    }
    this.pairs.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
