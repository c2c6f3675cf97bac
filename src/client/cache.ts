/**
 * The local state of one conversation: its metadata, the messages held in seq
 * order, and the position of its event log applied so far. No I/O here: the
 * client feeds events in and does the networking this decides on.
 *
 * Invariants:
 * - `position` is the highest seq applied; every event up to it has been applied
 *   once (an event at or below it is a duplicate and is dropped).
 * - An event beyond position + 1 waits in `pending` until the gap is filled.
 * - Every kind of event sets state rather than toggling it, so replaying a
 *   suffix of the log over a snapshot that already includes part of it
 *   converges to the same state; this is what makes snapshots from HTTP safe.
 */
import type { Conversation, ConversationEvent, Id, Member, Message, ReceiptKind } from '../protocol/model.js';
import type { Json } from './storage.js';

export interface IngestResult {
  /** Events applied now, in seq order (possibly several when a gap closed). */
  applied: ConversationEvent[];
  /** The event was at or below the position: already applied. */
  duplicate: boolean;
  /** Events wait beyond a gap that someone must fill with a sync. */
  gap: boolean;
}

export interface MemberReceipts {
  delivered: number;
  read: number;
}

/** What is kept on disk for one conversation. */
export interface PersistedConversation {
  conversation: Conversation;
  position: number;
  messages: Message[];
  hasMoreBefore: boolean;
  loaded: boolean;
  unread: number;
  receipts: Record<Id, MemberReceipts>;
}

const ORPHAN_LIMIT = 200;

export class ConversationState {
  conversation: Conversation;
  position: number;
  /** Ascending seq. */
  messages: Message[] = [];
  private readonly byId = new Map<Id, Message>();
  readonly pending = new Map<number, ConversationEvent>();
  /** Edits, deletes and reactions of messages not held yet, replayed when they arrive from HTTP. */
  private orphans: ConversationEvent[] = [];
  /** False until the newest page of history was fetched; live messages may be held before that. */
  loaded = false;
  hasMoreBefore = true;
  unread: number;
  readonly receipts = new Map<Id, MemberReceipts>();

  constructor(
    conversation: Conversation,
    readonly me: Id,
    position = conversation.lastSeq,
  ) {
    this.conversation = { ...conversation };
    this.position = position;
    this.unread = conversation.unreadCount ?? 0;
    this.syncMemberReceipts();
  }

  static restore(p: PersistedConversation, me: Id): ConversationState {
    const s = new ConversationState(p.conversation, me, p.position);
    s.insertSnapshot(p.messages);
    s.hasMoreBefore = p.hasMoreBefore;
    s.loaded = p.loaded;
    s.unread = p.unread;
    for (const [userId, r] of Object.entries(p.receipts)) s.receipts.set(userId, { ...r });
    return s;
  }

  persist(maxMessages: number): PersistedConversation {
    const kept = this.messages.slice(-maxMessages);
    return {
      conversation: this.conversation,
      position: this.position,
      messages: kept,
      hasMoreBefore: this.hasMoreBefore || kept.length < this.messages.length,
      loaded: this.loaded,
      unread: this.unread,
      receipts: Object.fromEntries(this.receipts),
    };
  }

  get id(): Id {
    return this.conversation.id;
  }

  message(id: Id): Message | undefined {
    return this.byId.get(id);
  }

  /** The newest message that is not deleted. */
  lastMessage(): Message | undefined {
    for (let i = this.messages.length - 1; i >= 0; i--) {
      const m = this.messages[i] as Message;
      if (!m.deletedAt) return m;
    }
    return this.conversation.lastMessage;
  }

  get myReadSeq(): number {
    return this.conversation.members.find((m) => m.userId === this.me)?.lastReadSeq ?? 0;
  }

  /** Feeds one event, live or from a sync, in any order. */
  ingest(event: ConversationEvent): IngestResult {
    if (event.seq <= this.position) return { applied: [], duplicate: true, gap: this.pending.size > 0 };
    if (event.seq > this.position + 1) {
      const dup = this.pending.has(event.seq);
      this.pending.set(event.seq, event);
      // Show a new message at once, sorted by seq; its effects (unread, receipts) wait for the gap.
      if (event.kind === 'message.created') this.insertSnapshot([event.message]);
      return { applied: [], duplicate: dup, gap: true };
    }
    const applied: ConversationEvent[] = [];
    this.applyInOrder(event);
    applied.push(event);
    for (let next = this.pending.get(this.position + 1); next; next = this.pending.get(this.position + 1)) {
      this.pending.delete(next.seq);
      this.applyInOrder(next);
      applied.push(next);
    }
    return { applied, duplicate: false, gap: this.pending.size > 0 };
  }

  /**
   * Gives up on the seqs missing below the lowest pending event (the server no
   * longer has them, e.g. after retention), so the conversation does not stall.
   */
  skipGap(): ConversationEvent[] {
    const lowest = Math.min(...this.pending.keys());
    if (!Number.isFinite(lowest)) return [];
    this.position = lowest - 1;
    const first = this.pending.get(lowest) as ConversationEvent;
    return this.ingest(first).applied;
  }

  /**
   * The server deleted every event up to `through` (retention, R8): the
   * messages go from here too, and the log continues after them. Returns the
   * held events that this made applicable.
   */
  applyRetention(through: number): ConversationEvent[] {
    const gone = this.messages.filter((m) => m.seq <= through);
    if (gone.length) {
      const read = this.myReadSeq;
      for (const m of gone) this.byId.delete(m.id);
      this.messages = this.messages.slice(gone.length);
      const unreadGone = gone.filter((m) => m.senderId !== this.me && m.seq > read && !m.deletedAt).length;
      this.unread = Math.max(0, this.unread - unreadGone);
    }
    for (const seq of this.pending.keys()) if (seq <= through) this.pending.delete(seq);
    if (this.position >= through) return [];
    this.position = through;
    const next = this.pending.get(through + 1);
    if (!next) return [];
    this.pending.delete(next.seq);
    return this.ingest(next).applied;
  }

  private applyInOrder(e: ConversationEvent): void {
    this.position = e.seq;
    const c = this.conversation;
    c.lastSeq = Math.max(c.lastSeq, e.seq);
    c.updatedAt = Math.max(c.updatedAt, e.at);
    switch (e.kind) {
      case 'message.created': {
        const existing = this.byId.get(e.message.id);
        if (!existing) this.insertSnapshot([e.message]);
        if (e.message.senderId !== this.me && e.seq > this.myReadSeq && !e.message.deletedAt) this.unread++;
        if (e.message.senderId === this.me) {
          // Sending implies having read everything before it.
          this.setMyRead(e.seq);
        }
        break;
      }
      case 'message.edited':
      case 'message.deleted':
      case 'message.reacted':
        if (!this.mutate(e)) this.rememberOrphan(e);
        break;
      case 'member.joined':
        this.upsertMember({ userId: e.userId, role: e.role, lastReadSeq: 0 });
        break;
      case 'member.role':
        this.upsertMember({ userId: e.userId, role: e.role, lastReadSeq: this.memberOf(e.userId)?.lastReadSeq ?? 0 });
        break;
      case 'member.left':
        c.members = c.members.filter((m) => m.userId !== e.userId);
        this.receipts.delete(e.userId);
        break;
      case 'conversation.updated':
        c.title = e.title;
        break;
    }
  }

  private mutate(e: ConversationEvent): boolean {
    if (e.kind !== 'message.edited' && e.kind !== 'message.deleted' && e.kind !== 'message.reacted') return false;
    const m = this.byId.get(e.messageId);
    if (!m) return false;
    let next: Message;
    if (e.kind === 'message.edited') {
      if (m.deletedAt) return true;
      // An encrypted edit carries what the SDK made of it (client/e2e/): read or not, it replaces the message's.
      // Its files too: a device that could not read the message it edits learns their keys from the edit.
      next = { ...m, body: e.body, editedAt: e.at, ...(e.e2e ? { e2e: e.e2e } : {}), ...(e.e2e?.ok && e.attachments ? { attachments: e.attachments } : {}) };
    } else if (e.kind === 'message.deleted') {
      next = { ...m, body: '', deletedAt: m.deletedAt ?? e.at };
      delete next.reactions;
      delete next.attachments;
    } else {
      const reactions: Record<string, Id[]> = { ...(m.reactions ?? {}) };
      const users = (reactions[e.reaction] ?? []).filter((u) => u !== e.actorId);
      if (e.active) users.push(e.actorId);
      if (users.length) reactions[e.reaction] = users;
      else delete reactions[e.reaction];
      next = { ...m, reactions };
      if (Object.keys(reactions).length === 0) delete next.reactions;
    }
    this.replace(next);
    if (e.kind === 'message.deleted' && m.senderId !== this.me && m.seq > this.myReadSeq && !m.deletedAt) {
      this.unread = Math.max(0, this.unread - 1);
    }
    return true;
  }

  private rememberOrphan(e: ConversationEvent): void {
    this.orphans.push(e);
    if (this.orphans.length > ORPHAN_LIMIT) this.orphans = this.orphans.slice(-ORPHAN_LIMIT);
  }

  /**
   * Inserts messages fetched over HTTP (or from disk). A message already held
   * is kept as is: ours has every event up to `position` applied, while the
   * snapshot may be older.
   */
  insertSnapshot(msgs: readonly Message[]): Message[] {
    const added: Message[] = [];
    for (const m of msgs) {
      if (m.conversationId !== this.conversation.id || this.byId.has(m.id)) continue;
      this.byId.set(m.id, m);
      const i = this.indexFor(m.seq);
      this.messages.splice(i, 0, m);
      added.push(m);
    }
    if (added.length && this.orphans.length) {
      const ids = new Set(added.map((m) => m.id));
      for (const e of this.orphans) {
        if ('messageId' in e && ids.has(e.messageId)) this.mutate(e);
      }
    }
    return added;
  }

  private replace(m: Message): void {
    this.byId.set(m.id, m);
    const i = this.indexFor(m.seq);
    if (this.messages[i]?.id === m.id) this.messages[i] = m;
    else {
      const j = this.messages.findIndex((x) => x.id === m.id);
      if (j >= 0) this.messages[j] = m;
    }
  }

  /** First index whose seq is >= `seq` (binary search). */
  private indexFor(seq: number): number {
    let lo = 0;
    let hi = this.messages.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.messages[mid] as Message).seq < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  oldestSeq(): number | undefined {
    return this.messages[0]?.seq;
  }

  private memberOf(userId: Id): Member | undefined {
    return this.conversation.members.find((m) => m.userId === userId);
  }

  private upsertMember(m: Member): void {
    const c = this.conversation;
    const i = c.members.findIndex((x) => x.userId === m.userId);
    if (i >= 0) c.members[i] = m;
    else c.members = [...c.members, m];
    this.syncMemberReceipts();
  }

  /** Read positions of members are state on the conversation; receipts never move back. */
  private syncMemberReceipts(): void {
    for (const m of this.conversation.members) {
      const r = this.receipts.get(m.userId) ?? { delivered: 0, read: 0 };
      r.read = Math.max(r.read, m.lastReadSeq);
      r.delivered = Math.max(r.delivered, r.read);
      this.receipts.set(m.userId, r);
    }
  }

  /** Applies a receipt frame; returns true when something changed. */
  receipt(userId: Id, seq: number, kind: ReceiptKind): boolean {
    const r = this.receipts.get(userId) ?? { delivered: 0, read: 0 };
    const before = `${r.delivered}/${r.read}`;
    if (kind === 'read') r.read = Math.max(r.read, seq);
    r.delivered = Math.max(r.delivered, seq, r.read);
    this.receipts.set(userId, r);
    if (kind === 'read') {
      const m = this.memberOf(userId);
      if (m && seq > m.lastReadSeq) m.lastReadSeq = seq;
      if (userId === this.me) this.recountUnread();
    }
    return before !== `${r.delivered}/${r.read}`;
  }

  setMyRead(seq: number): boolean {
    const m = this.memberOf(this.me);
    if (!m || seq <= m.lastReadSeq) return false;
    m.lastReadSeq = seq;
    this.receipt(this.me, seq, 'read');
    this.recountUnread();
    return true;
  }

  /** Counts unread from held messages when they reach back to the read position. */
  private recountUnread(): void {
    const readSeq = this.myReadSeq;
    const oldest = this.oldestSeq();
    const covered = !this.hasMoreBefore || (oldest !== undefined && oldest <= readSeq + 1);
    const held = this.messages.filter((m) => m.seq > readSeq && m.senderId !== this.me && !m.deletedAt).length;
    if (covered || held >= this.unread || readSeq >= this.position) this.unread = held;
  }

  /** Takes metadata from a newer conversation object (a `conversation` frame or HTTP). */
  updateFrom(c: Conversation): void {
    const prevLastSeq = this.conversation.lastSeq;
    const mine = this.myReadSeq;
    this.conversation = {
      ...c,
      lastSeq: Math.max(prevLastSeq, c.lastSeq, this.position),
      members: c.members.map((m) => (m.userId === this.me ? { ...m, lastReadSeq: Math.max(m.lastReadSeq, mine) } : m)),
    };
    this.syncMemberReceipts();
    if (c.unreadCount !== undefined) {
      // The server counted up to its lastSeq; add what we applied beyond it.
      const beyond = this.messages.filter((m) => m.seq > c.lastSeq && m.senderId !== this.me && !m.deletedAt && m.seq > this.myReadSeq).length;
      this.unread = c.unreadCount + beyond;
      if (this.myReadSeq >= this.position) this.unread = 0;
    }
  }

  /** For a message of mine: has every other member got it / read it? */
  tick(m: Message): 'sent' | 'delivered' | 'read' {
    const others = this.conversation.members.filter((x) => x.userId !== this.me);
    if (others.length === 0) return 'sent';
    const rs = others.map((o) => this.receipts.get(o.userId) ?? { delivered: 0, read: 0 });
    if (rs.every((r) => r.read >= m.seq)) return 'read';
    if (rs.every((r) => r.delivered >= m.seq)) return 'delivered';
    return 'sent';
  }
}

export function asJson(value: unknown): Json {
  return JSON.parse(JSON.stringify(value)) as Json;
}
