/**
 * Who belongs to a conversation, with roles, cached so the hot path (send,
 * typing, receipts) checks membership without a database read. Any change is
 * announced on the bus (`membership`), and every node drops its copy.
 */
import type { ConversationKind, Id, Role } from '../protocol/model.js';
import type { ConversationStore } from './ports/store.js';
import { forbidden, notFound } from './errors.js';

export interface MembershipEntry {
  kind: ConversationKind;
  roles: Map<Id, Role>;
}

export class MembershipCache {
  private readonly entries = new Map<Id, MembershipEntry>();
  private readonly loading = new Map<Id, Promise<MembershipEntry | undefined>>();

  constructor(
    private readonly store: ConversationStore,
    private readonly maxEntries = 50_000,
  ) {}

  /** Undefined when the conversation does not exist. */
  get(conversationId: Id): MembershipEntry | undefined | Promise<MembershipEntry | undefined> {
    const hit = this.entries.get(conversationId);
    if (hit) return hit;
    let p = this.loading.get(conversationId);
    if (!p) {
      p = this.load(conversationId).finally(() => this.loading.delete(conversationId));
      this.loading.set(conversationId, p);
    }
    return p;
  }

  private async load(conversationId: Id): Promise<MembershipEntry | undefined> {
    const conv = await this.store.get(conversationId);
    if (!conv) return undefined;
    const entry: MembershipEntry = { kind: conv.kind, roles: new Map(conv.members.map((m) => [m.userId, m.role])) };
    // Invalidated while loading: do not cache a copy that may predate the change.
    if (!this.loading.has(conversationId)) return entry;
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(conversationId, entry);
    return entry;
  }

  /** The caller's role; not_found for an unknown conversation, forbidden for a non-member. */
  async require(conversationId: Id, userId: Id): Promise<{ role: Role; entry: MembershipEntry }> {
    const entry = await this.get(conversationId);
    if (!entry) throw notFound('No conversation has that id.');
    const role = entry.roles.get(userId);
    if (!role) throw forbidden('You are not a member of this conversation.');
    return { role, entry };
  }

  invalidate(conversationId: Id): void {
    this.entries.delete(conversationId);
    this.loading.delete(conversationId);
  }
}
