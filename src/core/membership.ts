/**
 * Who belongs to a conversation, with roles, cached so the hot path (send,
 * typing, receipts) checks membership without a database read. Any change is
 * announced on the bus (`membership`), and every node drops its copy.
 */
import type { ConversationKind, Id, Role } from '../protocol/model.js';
import type { ConversationStore } from './ports/store.js';
import { forbidden, notFound } from './errors.js';
import { LoadingCache } from './loading-cache.js';

export interface MembershipEntry {
  kind: ConversationKind;
  roles: Map<Id, Role>;
  /** End-to-end encrypted (R18): fixed at creation, so caching it is always right. */
  encrypted: boolean;
}

export class MembershipCache {
  private readonly cache: LoadingCache<Id, MembershipEntry | undefined>;

  constructor(
    private readonly store: ConversationStore,
    maxEntries = 50_000,
  ) {
    this.cache = new LoadingCache((id) => this.load(id), maxEntries);
  }

  /** Undefined when the conversation does not exist. */
  get(conversationId: Id): MembershipEntry | undefined | Promise<MembershipEntry | undefined> {
    return this.cache.get(conversationId);
  }

  private async load(conversationId: Id): Promise<MembershipEntry | undefined> {
    const conv = await this.store.get(conversationId);
    return conv && { kind: conv.kind, roles: new Map(conv.members.map((m) => [m.userId, m.role])), encrypted: conv.encrypted === true };
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
    this.cache.invalidate(conversationId);
  }
}
