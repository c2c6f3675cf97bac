/**
 * A design experiment, not the store: what one `message.created` costs SQLite
 * in two table layouts, written with raw statements in the same batches.
 * `node --import tsx bench/micro/sqlite-layouts.ts [--appends 100000]
 * [--stored 200000] [--convs 500] [--batch 19] [--recent 16384] [--rounds 2]`
 *
 * - `current`: what engines/sqlite/events.ts writes today. Each append lands in
 *   its conversation's leaf of `messages`, its leaf of `messages_by_client`, the
 *   right edge of `messages_by_id` and its conversation row. With appends
 *   spread over hundreds of conversations, a commit of a few dozen dirties about
 *   three pages per append, and every dirty page is copied whole into the WAL.
 * - `log`: an append goes to an insertion-ordered log table and a right-edge id
 *   table (a couple of pages per commit, whatever the spread) and into an
 *   in-memory table of recent messages. Past `--recent` rows, each commit moves
 *   the oldest conversations' recent rows into `messages` together, so a leaf
 *   of `messages` is written once for many rows; log rows below the oldest
 *   row still in memory are deleted by rowid range.
 * - `log-only`: the log without ever moving rows: the floor of the `log` layout.
 *
 * The layouts run in turns (`--rounds`), each on a fresh file prefilled with
 * `--stored` appends, and report CPU per append (user + system, this process)
 * and wall time. Pin it to one core (`taskset -c 0`) and run it under the bench
 * lock; docs/benchmarks.md says what it showed and why the store does not do
 * this yet.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';

type Layout = 'current' | 'log' | 'log-only';
const LAYOUTS: readonly Layout[] = ['current', 'log', 'log-only'];

interface Args {
  appends: number;
  stored: number;
  convs: number;
  batch: number;
  recent: number;
  rounds: number;
  layouts: Layout[];
}

function parse(argv: string[]): Args {
  const a: Args = { appends: 100_000, stored: 200_000, convs: 500, batch: 19, recent: 16_384, rounds: 2, layouts: [...LAYOUTS] };
  for (let i = 0; i < argv.length; i += 2) {
    const k = (argv[i] ?? '').replace(/^--/, '');
    const v = argv[i + 1] ?? '';
    if (k === 'layouts') a.layouts = v.split(',').filter((l): l is Layout => (LAYOUTS as readonly string[]).includes(l));
    else if (k === 'appends' || k === 'stored' || k === 'convs' || k === 'batch' || k === 'recent' || k === 'rounds') a[k] = Number(v);
    else throw new Error(`unknown option --${k} (--appends, --stored, --convs, --batch, --recent, --rounds, --layouts)`);
  }
  return a;
}

const SCHEMA = `
  CREATE TABLE conversations (id TEXT PRIMARY KEY, title TEXT, last_seq INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
  CREATE TABLE messages (conversation_id TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, sender_id TEXT NOT NULL,
    client_id TEXT NOT NULL, body TEXT NOT NULL, reply_to TEXT, created_at INTEGER NOT NULL, edited_at INTEGER,
    deleted_at INTEGER, reactions TEXT, created_body TEXT, PRIMARY KEY (conversation_id, seq)) WITHOUT ROWID;
  CREATE UNIQUE INDEX messages_by_client ON messages (conversation_id, sender_id, client_id);`;
const CURRENT_SCHEMA = `${SCHEMA}
  CREATE UNIQUE INDEX messages_by_id ON messages (id);`;
const LOG_SCHEMA = `${SCHEMA}
  CREATE TABLE message_ids (id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID;
  CREATE TABLE message_log (rid INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL,
    sender_id TEXT NOT NULL, client_id TEXT NOT NULL, body TEXT NOT NULL, reply_to TEXT, created_at INTEGER NOT NULL);`;

interface Row {
  rid: number;
  seq: number;
  id: string;
  sender: string;
  clientId: string;
  at: number;
}

const BODY = 'x'.repeat(64);
/** Time-sortable ids of one width, like core/ids.ts makes. */
const idOf = (n: number): string => (1e12 + n).toString(36).padStart(12, '0') + 'node01';

/** One layout on one fresh file. Returns CPU and wall µs per measured append. */
function runLayout(layout: Layout, args: Args): { cpuUs: number; wallUs: number; logRows: number } {
  const dir = mkdtempSync(join(tmpdir(), 'parley-layouts-'));
  const db = new Database(join(dir, 'x.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(layout === 'current' ? CURRENT_SCHEMA : LOG_SCHEMA);
    const convs = Array.from({ length: args.convs }, (_, i) => `c${((i * 7919) % 1_000_003).toString(36)}-${i}`);
    const addConv = db.prepare('INSERT INTO conversations (id, created_at, updated_at) VALUES (?, 0, 0)');
    for (const c of convs) addConv.run(c);

    const lastSeq = db.prepare<[string], { last_seq: number }>('SELECT last_seq FROM conversations WHERE id = ?');
    const bump = db.prepare('UPDATE conversations SET last_seq = ?, updated_at = max(updated_at, ?) WHERE id = ?');
    const byClient = db.prepare('SELECT 1 FROM messages WHERE conversation_id = ? AND sender_id = ? AND client_id = ?');
    const insertMessage = db.prepare(
      'INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, body, reply_to, created_at) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)',
    );
    const log =
      layout === 'current'
        ? undefined
        : {
            id: db.prepare('INSERT INTO message_ids (id, conversation_id, seq) VALUES (?, ?, ?)'),
            row: db.prepare(
              'INSERT INTO message_log (conversation_id, seq, id, sender_id, client_id, body, reply_to, created_at) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)',
            ),
            trim: db.prepare('DELETE FROM message_log WHERE rid < ?'),
          };

    // The in-memory side of the log layout: recent rows per conversation, oldest conversation first.
    const recent = new Map<string, Row[]>();
    const recentKeys = new Set<string>();
    let recentSize = 0;

    const append = (n: number): void => {
      const conv = convs[n % convs.length] as string;
      const sender = `u${n % (2 * convs.length)}`;
      const clientId = `k${n}`;
      const seq = (lastSeq.get(conv)?.last_seq ?? 0) + 1;
      const key = `${conv}\0${sender}\0${clientId}`;
      if (recentKeys.has(key) || byClient.get(conv, sender, clientId)) return;
      if (!log) {
        insertMessage.run(idOf(n), conv, seq, sender, clientId, BODY, n);
      } else {
        log.id.run(idOf(n), conv, seq);
        const rid = Number(log.row.run(conv, seq, idOf(n), sender, clientId, BODY, n).lastInsertRowid);
        let rows = recent.get(conv);
        if (!rows) recent.set(conv, (rows = []));
        rows.push({ rid, seq, id: idOf(n), sender, clientId, at: n });
        recentKeys.add(key);
        recentSize++;
      }
      bump.run(seq, n, conv);
    };

    const compact = (): void => {
      if (!log || layout === 'log-only' || recentSize <= args.recent) return;
      for (const [conv, rows] of recent) {
        if (recentSize <= args.recent) break;
        for (const r of rows) {
          insertMessage.run(r.id, conv, r.seq, r.sender, r.clientId, BODY, r.at);
          recentKeys.delete(`${conv}\0${r.sender}\0${r.clientId}`);
        }
        recentSize -= rows.length;
        recent.delete(conv);
      }
      const oldest = recent.values().next().value as Row[] | undefined;
      log.trim.run(oldest?.[0]?.rid ?? Number.MAX_SAFE_INTEGER);
    };

    let next = 0;
    const run = (count: number): void => {
      for (let done = 0; done < count; done += args.batch) {
        db.exec('BEGIN IMMEDIATE');
        for (let i = 0; i < args.batch; i++) append(next++);
        compact();
        db.exec('COMMIT');
      }
    };
    run(args.stored);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    run(args.appends);
    const cpu = process.cpuUsage(cpu0);
    const wallUs = ((performance.now() - t0) * 1000) / args.appends;
    const logRows = log ? (db.prepare<[], { n: number }>('SELECT count(*) AS n FROM message_log').get()?.n ?? 0) : 0;
    return { cpuUs: (cpu.user + cpu.system) / args.appends, wallUs, logRows };
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function main(): void {
  const args = parse(process.argv.slice(2));
  process.stdout.write(
    `${args.appends} appends after ${args.stored} stored, ${args.convs} conversations, ${args.batch} per commit, ` +
      `log layout keeps ${args.recent} recent rows in memory\n`,
  );
  const results = new Map<Layout, number[]>();
  for (let round = 0; round < args.rounds; round++) {
    // Each round starts at another layout, so a drift of the machine lands on all of them.
    for (let k = 0; k < args.layouts.length; k++) {
      const layout = args.layouts[(round + k) % args.layouts.length] as Layout;
      const r = runLayout(layout, args);
      results.set(layout, [...(results.get(layout) ?? []), r.cpuUs]);
      process.stdout.write(
        `round ${round + 1} ${layout.padEnd(8)} ${r.cpuUs.toFixed(1)} µs CPU per append, ${r.wallUs.toFixed(1)} µs wall` +
          (layout === 'current' ? '\n' : `, ${r.logRows} log rows left\n`),
      );
    }
  }
  const current = results.get('current');
  const base = current ? current.reduce((s, x) => s + x, 0) / current.length : NaN;
  for (const [layout, cpu] of results) {
    const mean = cpu.reduce((s, x) => s + x, 0) / cpu.length;
    process.stdout.write(`${layout.padEnd(8)} mean ${mean.toFixed(1)} µs per append, ${(mean / base).toFixed(2)}× current\n`);
  }
}

main();
