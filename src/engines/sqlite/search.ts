/**
 * SearchStore on SQLite (contract: core/ports/store.ts): FTS5, migration 5.
 *
 * The index is filled by an indexer that runs beside the appends, not inside
 * them, so a send writes exactly the pages it wrote before search existed: an
 * FTS5 insert in the append would write its own segment at every group
 * commit, and at one or two messages per commit that is more pages than the
 * message itself. The indexer takes the messages newer than its cursor in id
 * order (ids sort by creation time and, on one node, by commit order: an id is
 * made right before its append is queued) and indexes up to `batch` of them
 * per transaction, through its own group committer behind the checkpoint gate
 * like every other write. A message is searchable within `intervalMs` of its
 * append while the indexer keeps up.
 *
 * A clock that stepped back between two runs would make ids lower than the
 * saved cursor; so a start goes back to at most a minute before now, and docs
 * are added with INSERT OR IGNORE, which skips what is already in.
 *
 * Messages of end-to-end encrypted conversations (R18, migration 8) are never
 * indexed: their bodies are ciphertext, and search is not offered there. With
 * no doc, the triggers below never index their edits either.
 *
 * Edits, deletes and retention clears keep the index true through triggers
 * (migration 5). Results are read from `messages`, so they are the messages as
 * they are now.
 *
 * One request reads at most `scanLimit` index entries, whatever it finds among
 * them: a common word searched by someone in few conversations would otherwise
 * walk the whole index. Such a page may hold fewer than `limit` messages, even
 * none, with a `next` to go on from.
 */
import type Database from 'better-sqlite3';
import { StoreError, type SearchPage, type SearchQuery, type SearchStore } from '../../core/ports/store.js';
import { idFloor } from '../../core/ids.js';
import { GroupCommit, eventLoopBusy, type TransactionGate } from './group-commit.js';
import { MESSAGE_COLUMNS, toMessage, type MessageRow } from './rows.js';

export interface SqliteSearchOptions {
  /** How often the indexer looks for new messages. @default 250 */
  intervalMs?: number;
  /** Messages indexed per transaction: about 1.3 ms of the event loop at 100 (measured: 12.6 µs per message). @default 100 */
  batch?: number;
  /** Batches per look, so a backlog (a first start on old data) is worked off in steps. @default 20 */
  batchesPerRun?: number;
  /**
   * Whether the event loop is too busy for more than one batch per look: then
   * sends come first and search falls behind, to catch up once the load drops.
   * @default four fifths of the last ~20 ms spent working
   */
  busy?: () => boolean;
  /** Index entries one search reads at most. @default 2000 */
  scanLimit?: number;
  now?: () => number;
  /** A round failed (the next one tries again). */
  onError?: (err: unknown) => void;
}

/** How far back a start re-reads, in case the clock stepped back since the last run. */
const RESTART_OVERLAP_MS = 60_000;
const CURSOR = /^[1-9][0-9]{0,15}$/;

/** An FTS5 string literal: the text in double quotes, inner quotes doubled. */
const quote = (s: string): string => `"${s.replaceAll('"', '""')}"`;

export class SqliteSearchStore implements SearchStore {
  private readonly st;
  private readonly committer: GroupCommit<number, { last: string; full: boolean } | undefined>;
  private cursor: string;
  private readonly batch: number;
  private readonly batchesPerRun: number;
  private readonly busy: () => boolean;
  private readonly scanLimit: number;
  private readonly timer: NodeJS.Timeout;
  /** The run in progress; runs never overlap, so the cursor moves only after its commit. */
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(db: Database.Database, gate?: TransactionGate, opts: SqliteSearchOptions = {}) {
    this.batch = opts.batch ?? 100;
    this.batchesPerRun = opts.batchesPerRun ?? 20;
    this.busy = opts.busy ?? eventLoopBusy(0.8, 20);
    this.scanLimit = opts.scanLimit ?? 2000;
    const now = opts.now ?? Date.now;
    this.st = {
      saved: db.prepare<[], { last_id: string }>('SELECT last_id FROM search_state WHERE k = 1'),
      save: db.prepare<[string]>('UPDATE search_state SET last_id = ? WHERE k = 1'),
      // Ids only: the id index alone answers it.
      next: db.prepare<[string, number], { id: string }>('SELECT id FROM messages WHERE id > ? ORDER BY id LIMIT ?'),
      newest: db.prepare<[], { id: string }>('SELECT id FROM messages ORDER BY id DESC LIMIT 1'),
      lastDoc: db.prepare<[], { doc: number | null }>('SELECT max(doc) AS doc FROM search_docs'),
      addDocs: db.prepare<[string, string]>(
        `INSERT OR IGNORE INTO search_docs (message_id)
         SELECT m.id FROM messages m
         WHERE m.id > ? AND m.id <= ? AND m.deleted_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.id = m.conversation_id AND c.encrypted = 1)
         ORDER BY m.id`,
      ),
      addWords: db.prepare<[number]>(
        `INSERT INTO message_search (rowid, body, conv)
         SELECT d.doc, m.body, m.conversation_id FROM search_docs d JOIN messages m ON m.id = d.message_id WHERE d.doc > ?`,
      ),
      search: db.prepare<
        { match: string; before: number | null; scan: number; user: string; conv: string | null; sender: string | null; since: number | null; until: number | null; limit: number },
        MessageRow & { doc: number }
      >(
        `WITH hits AS (
           SELECT rowid AS doc FROM message_search
           WHERE message_search MATCH @match AND (@before IS NULL OR rowid < @before)
           ORDER BY rowid DESC LIMIT @scan
         )
         SELECT ${MESSAGE_COLUMNS.split(', ').map((c) => `m.${c}`).join(', ')}, h.doc
         FROM hits h
         JOIN search_docs d ON d.doc = h.doc
         JOIN messages m ON m.id = d.message_id
         WHERE m.deleted_at IS NULL
           AND (@conv IS NULL OR m.conversation_id = @conv)
           AND (@sender IS NULL OR m.sender_id = @sender)
           AND (@since IS NULL OR m.created_at >= @since)
           AND (@until IS NULL OR m.created_at < @until)
           AND EXISTS (SELECT 1 FROM members mb WHERE mb.conversation_id = m.conversation_id AND mb.user_id = @user)
         ORDER BY h.doc DESC LIMIT @limit`,
      ),
      window: db.prepare<{ match: string; before: number | null; scan: number }, { n: number; doc: number | null }>(
        `SELECT count(*) AS n, min(doc) AS doc FROM (
           SELECT rowid AS doc FROM message_search
           WHERE message_search MATCH @match AND (@before IS NULL OR rowid < @before)
           ORDER BY rowid DESC LIMIT @scan
         )`,
      ),
    };
    const saved = this.st.saved.get()?.last_id ?? '';
    const floor = idFloor(now() - RESTART_OVERLAP_MS);
    this.cursor = saved < floor ? saved : floor;
    this.committer = new GroupCommit(db, (max: number) => this.indexNow(max), { gate, savepoint: () => false });
    const onError = opts.onError ?? ((): void => undefined);
    this.timer = setInterval(() => void this.run().catch(onError), opts.intervalMs ?? 250);
    this.timer.unref();
  }

  async search(q: SearchQuery): Promise<SearchPage> {
    if (q.after !== undefined && !CURSOR.test(q.after)) throw new StoreError('not_found', 'The "after" cursor is not one this server gave out.');
    const words = q.terms.map((t) => `body : ${quote(t)}*`);
    if (q.conversationId !== undefined) words.push(`conv : ${quote(q.conversationId)}`);
    const window = { match: words.join(' AND '), before: q.after === undefined ? null : Number(q.after), scan: this.scanLimit };
    const rows = this.st.search.all({
      ...window,
      user: q.userId,
      conv: q.conversationId ?? null,
      sender: q.senderId ?? null,
      since: q.since ?? null,
      until: q.until ?? null,
      limit: q.limit + 1,
    });
    if (rows.length > q.limit) {
      rows.length = q.limit;
      return { messages: rows.map(toMessage), next: String((rows[rows.length - 1] as { doc: number }).doc) };
    }
    // Fewer than asked: the index has no more, or this request read all it may and more may lie beyond.
    const seen = this.st.window.get(window);
    const more = seen !== undefined && seen.n >= this.scanLimit && seen.doc !== null;
    return { messages: rows.map(toMessage), ...(more ? { next: String(seen.doc) } : {}) };
  }

  async indexed(): Promise<void> {
    const target = this.st.newest.get()?.id;
    while (target !== undefined && this.cursor < target && !this.closed) await this.run(true);
  }

  /** Indexes what is queued and stops. */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.committer.close();
  }

  /** One look: batches until the indexer is caught up or has done its share. */
  private run(asked = false): Promise<void> {
    if (!this.running) {
      const done = this.look(asked).finally(() => {
        if (this.running === done) this.running = undefined;
      });
      this.running = done;
    }
    return this.running;
  }

  private async look(asked: boolean): Promise<void> {
    const batches = asked || !this.busy() ? this.batchesPerRun : 1;
    for (let i = 0; i < batches && !this.closed; i++) {
      // A read first: with nothing new, no transaction.
      if (this.st.next.get(this.cursor, 1) === undefined) return;
      const done = await this.committer.submit(this.batch);
      if (done === undefined) return;
      this.cursor = done.last;
      if (!done.full) return;
    }
  }

  /** In the indexer's transaction: indexes up to `max` messages after the cursor; returns the new cursor, and whether `max` were read. */
  private indexNow(max: number): { last: string; full: boolean } | undefined {
    const ids = this.st.next.all(this.cursor, max);
    const last = ids[ids.length - 1]?.id;
    if (last === undefined) return undefined;
    const before = this.st.lastDoc.get()?.doc ?? 0;
    this.st.addDocs.run(this.cursor, last);
    this.st.addWords.run(before);
    this.st.save.run(last);
    return { last, full: ids.length >= max };
  }
}
