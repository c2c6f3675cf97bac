/**
 * The newest seq of each conversation as far as this node knows, so that a
 * `delivered` receipt can be bounded by `lastSeq` without a store read on the
 * hot path. Every event that reaches this node's hub is noted (receipts come
 * from local members, so their conversations' events reach it, wherever they
 * were committed); a seq above what is known (a conversation not seen since
 * start) is checked against the store once, and the answer is remembered. lastSeq never goes down, so a known value is a safe
 * lower bound: a seq at or below it exists.
 */
import type { Id } from '../protocol/model.js';
import type { ConversationStore, EventStore } from './ports/store.js';

/** The two reads LastSeqs makes. */
export interface LastSeqReads {
  events: Pick<EventStore, 'after'>;
  conversations: Pick<ConversationStore, 'get'>;
}

export class LastSeqs {
  private readonly known = new Map<Id, number>();

  constructor(
    private readonly store: LastSeqReads,
    private readonly maxEntries = 50_000,
  ) {}

  /** An event with this seq was committed. */
  note(conversationId: Id, seq: number): void {
    const cur = this.known.get(conversationId);
    if (cur !== undefined && cur >= seq) return;
    // Oldest-first eviction: a dropped conversation costs one store read later, not a miss.
    if (cur === undefined && this.known.size >= this.maxEntries) {
      const oldest = this.known.keys().next().value;
      if (oldest !== undefined) this.known.delete(oldest);
    }
    this.known.set(conversationId, seq);
  }

  /** min(seq, lastSeq) of the conversation: 0 when its log is empty. */
  async bound(conversationId: Id, seq: number): Promise<number> {
    const cur = this.known.get(conversationId);
    if (cur !== undefined && seq <= cur) return seq;
    // Usually the event exists and was committed elsewhere: one indexed read of it settles it.
    const [ev] = await this.store.events.after(conversationId, seq - 1, 1);
    if (ev) {
      this.note(conversationId, ev.seq);
      return seq;
    }
    // Beyond the log: read lastSeq itself (this costs more, and only a confused or hostile client pays it).
    const last = (await this.store.conversations.get(conversationId))?.lastSeq ?? 0;
    if (last > 0) this.note(conversationId, last);
    return Math.min(seq, last);
  }
}
