/**
 * EventStore on PostgreSQL (contract: core/ports/store.ts).
 *
 * An append is one call of the `append_events` function (schema-v2.ts): one
 * round trip and one transaction (the statement's own) per batch of appends
 * (batcher.ts). Inside it, the conversation row is locked, the next seq taken,
 * the event written and its effect applied to the read models, so seqs are
 * gap-free and in commit order across every node, and a repeated clientId
 * finds the original even when the two raced from different nodes.
 *
 * Engine choices the port leaves open are the SQLite engine's (the store does
 * not authorise; updatedAt never moves back; a reply to an unknown message is
 * 'not_found', to another conversation's 'conflict'; edit, delete and react on
 * a deleted message are 'conflict'; deleting drops reactions and scrubs the
 * text from the log; a new member starts having read up to its join; a reused
 * message id is 'conflict').
 */
import { StoreError, type AppendInput, type AppendResult, type EventStore } from '../../core/ports/store.js';
import type { ConversationEvent, Message } from '../../protocol/model.js';
import { Batcher, type BatcherStats, type Settled } from './batcher.js';
import { isServerError, type Db } from './db.js';
import { eventFromRow, jsonParam, toEvent, translate, type EventRow, type MessageJson } from './rows.js';

/**
 * The log after a seq: two tables merged by seq (migration 2). A
 * `message.created` is its `messages` row, rebuilt as append_events returned
 * it (same fields, same order, the body as sent); every other kind is a row of
 * `events`. Each side reads at most `limit` rows from its primary key.
 */
const LOG_AFTER = `
  (SELECT conversation_id, seq, kind, actor_id, at, payload
     FROM events WHERE conversation_id = $1 AND seq > $2::bigint ORDER BY seq LIMIT $3)
  UNION ALL
  (SELECT m.conversation_id, m.seq, 'message.created', m.sender_id, m.created_at,
          json_build_object('message', json_strip_nulls(json_build_object(
            'id', m.id, 'conversationId', m.conversation_id, 'seq', m.seq, 'senderId', m.sender_id,
            'clientId', m.client_id, 'body', coalesce(m.created_body, m.body), 'replyTo', m.reply_to,
            'createdAt', m.created_at, 'attachments', m.attachments)))
     FROM messages m WHERE m.conversation_id = $1 AND m.seq > $2::bigint ORDER BY m.seq LIMIT $3)
  ORDER BY seq LIMIT $3`;

/** What append_events returns for one item. */
type Outcome =
  | { status: 'appended'; seq: number; payload: Record<string, unknown>; message: MessageJson | null }
  | { status: 'unchanged'; message: MessageJson | null }
  | { error: 'not_found' | 'conflict'; reason: string };

/**
 * Errors after which PostgreSQL has certainly rolled the whole batch back:
 * data exceptions (22: a NUL in a text), integrity violations (23: a race on a
 * message id the function's checks cannot see), transaction rollbacks (40).
 */
const ROLLED_BACK_CLASSES = new Set(['22', '23', '40']);

export interface EventStoreOptions {
  maxBatch: number;
  maxInFlight: number;
}

export class PostgresEventStore implements EventStore {
  private readonly batcher: Batcher<AppendInput, AppendResult>;

  constructor(
    private readonly db: Db,
    opts: EventStoreOptions,
  ) {
    this.batcher = new Batcher({
      key: (input) => input.conversationId,
      run: (batch) => this.run(batch),
      maxBatch: opts.maxBatch,
      maxInFlight: opts.maxInFlight,
    });
  }

  get stats(): BatcherStats {
    return this.batcher.stats;
  }

  /** Refuses new appends; resolves when every accepted one has settled. */
  close(): Promise<void> {
    return this.batcher.close();
  }

  append(input: AppendInput): Promise<AppendResult> {
    return this.batcher.submit(input);
  }

  async after(conversationId: string, afterSeq: number, limit: number): Promise<ConversationEvent[]> {
    const rows = await this.db.query<EventRow>(LOG_AFTER, [conversationId, afterSeq, limit]);
    return rows.map(eventFromRow);
  }

  async message(id: string): Promise<Message | undefined> {
    const [r] = await this.db.query<{ m: MessageJson }>('SELECT message_json(x) AS m FROM messages x WHERE x.id = $1', [id]);
    return r?.m;
  }

  /** With both `before` and `after`, the oldest `limit` between them. */
  async messages(
    conversationId: string,
    opts: { before?: number; after?: number; limit: number },
  ): Promise<{ messages: Message[]; hasMore: boolean }> {
    const n = opts.limit + 1;
    const select = 'SELECT message_json(x) AS m FROM messages x WHERE x.conversation_id = $1';
    let rows: { m: MessageJson }[];
    if (opts.after !== undefined) {
      rows = await this.db.query(
        `${select} AND x.seq > $2::bigint AND x.seq < $3::bigint ORDER BY x.seq LIMIT $4`,
        [conversationId, opts.after, opts.before ?? Number.MAX_SAFE_INTEGER, n],
      );
    } else {
      rows =
        opts.before !== undefined
          ? await this.db.query(`${select} AND x.seq < $2::bigint ORDER BY x.seq DESC LIMIT $3`, [conversationId, opts.before, n])
          : await this.db.query(`${select} ORDER BY x.seq DESC LIMIT $2`, [conversationId, n]);
      rows.reverse();
    }
    const hasMore = rows.length > opts.limit;
    if (hasMore) {
      // The extra row sits at the far end of the direction read.
      if (opts.after !== undefined) rows.pop();
      else rows.shift();
    }
    return { messages: rows.map((r) => r.m), hasMore };
  }

  // ---- the write path ----

  private async run(batch: readonly AppendInput[]): Promise<Settled<AppendResult>[]> {
    let outcomes: Outcome[];
    try {
      const rows = await this.db.query<{ r: Outcome }>('SELECT r FROM append_events($1::jsonb) AS r', [jsonParam(batch)]);
      outcomes = rows.map((row) => row.r);
    } catch (err) {
      if (batch.length > 1 && isServerError(err) && ROLLED_BACK_CLASSES.has(err.code?.slice(0, 2) ?? '')) {
        // One item broke the whole batch and nothing of it was kept: run each
        // alone, in order, so that only the culprit fails.
        const one: Settled<AppendResult>[] = [];
        for (const input of batch) {
          const [o] = await this.run([input]);
          one.push(o ?? { ok: false, error: new Error('append returned no outcome') });
        }
        return one;
      }
      // Unknown outcome (the link died, a timeout), which callers report as
      // `unavailable`, or a fault of ours (a wrong statement: `internal`, see
      // core/faults.ts); a retried send is safe thanks to its clientId.
      const error = translate(err, 'message');
      return batch.map(() => ({ ok: false, error }));
    }
    if (outcomes.length !== batch.length) throw new Error(`append_events returned ${outcomes.length} outcomes for ${batch.length} appends`);
    return outcomes.map((o, i) => settle(batch[i] as AppendInput, o));
  }
}

function settle(input: AppendInput, o: Outcome): Settled<AppendResult> {
  if ('error' in o) return { ok: false, error: new StoreError(o.error, o.reason) };
  if (o.status === 'unchanged') return { ok: true, value: o.message ? { status: 'unchanged', message: o.message } : { status: 'unchanged' } };
  // The event and the message are parsed from separate JSON values: the
  // caller may change one without changing the other.
  const event = toEvent(input.conversationId, o.seq, input.kind, input.actorId, input.at, o.payload);
  return { ok: true, value: o.message ? { status: 'appended', event, message: o.message } : { status: 'appended', event } };
}
