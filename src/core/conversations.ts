/** Creating conversations and changing who is in them and what they are called. */
import type { Conversation, Id, Role } from '../protocol/model.js';
import type { AppendInput, Store } from './ports/store.js';
import type { IdGenerator } from './ids.js';
import type { MembershipCache } from './membership.js';
import type { Fanout } from './fanout.js';
import type { BlockService } from './blocks.js';
import { badRequest, codePoints, forbidden, notFound, refuseUnstorable, tooLarge } from './errors.js';
import { MAX_ENCRYPTED_MEMBERS } from '../protocol/e2e.js';

const MAX_TITLE = 200;
const MAX_INITIAL_MEMBERS = 10_000;

export class ConversationService {
  constructor(
    private readonly store: Store,
    private readonly ids: IdGenerator,
    private readonly membership: MembershipCache,
    private readonly fanout: Fanout,
    private readonly blocks: BlockService,
  ) {}

  /** One per pair, and one more that is end-to-end encrypted (R18) when asked with `encrypted`. */
  async createDirect(actorId: Id, otherId: Id, encrypted = false): Promise<{ conversation: Conversation; created: boolean }> {
    if (otherId === actorId) throw badRequest('A direct conversation needs another user.');
    if (!(await this.store.users.byId(otherId))) throw notFound('No user has that id.');
    const existing = await this.store.conversations.findDirect(actorId, otherId, encrypted);
    if (existing) return { conversation: existing, created: false };
    await this.blocks.requireNone(actorId, otherId);
    const res = await this.store.conversations.create({
      id: this.ids.next(),
      kind: 'direct',
      members: [
        { userId: actorId, role: 'member' },
        { userId: otherId, role: 'member' },
      ],
      at: Date.now(),
      ...(encrypted ? { encrypted } : {}),
    });
    if (res.created) await this.announce(res.conversation, [actorId, otherId]);
    return res;
  }

  async createGroup(actorId: Id, title: string, memberIds: readonly Id[], encrypted = false): Promise<Conversation> {
    const t = checkTitle(title);
    const others = [...new Set(memberIds)].filter((id) => id !== actorId);
    if (others.length + 1 > MAX_INITIAL_MEMBERS) throw badRequest(`A group starts with at most ${MAX_INITIAL_MEMBERS} members.`);
    if (encrypted) checkEncryptedSize(others.length + 1);
    await this.requireUsers(others);
    await this.refuseBlockers(actorId, others);
    const { conversation } = await this.store.conversations.create({
      id: this.ids.next(),
      kind: 'group',
      title: t,
      members: [{ userId: actorId, role: 'owner' }, ...others.map((userId) => ({ userId, role: 'member' as Role }))],
      at: Date.now(),
      ...(encrypted ? { encrypted } : {}),
    });
    await this.announce(conversation, [actorId, ...others]);
    return conversation;
  }

  async get(actorId: Id, conversationId: Id): Promise<Conversation> {
    await this.membership.require(conversationId, actorId);
    const conv = await this.store.conversations.getFor(conversationId, actorId);
    if (!conv) throw notFound('No conversation has that id.');
    return conv;
  }

  list(actorId: Id, limit: number, after?: string): ReturnType<Store['conversations']['listForUser']> {
    return this.store.conversations.listForUser(actorId, limit, after);
  }

  async addMembers(actorId: Id, conversationId: Id, userIds: readonly Id[]): Promise<Conversation> {
    const { role, entry } = await this.membership.require(conversationId, actorId);
    if (entry.kind !== 'group') throw badRequest('Members of a direct conversation cannot change.');
    if (role === 'member') throw forbidden('Only owners and admins add members.');
    const fresh = [...new Set(userIds)].filter((id) => !entry.roles.has(id));
    if (entry.encrypted) checkEncryptedSize(entry.roles.size + fresh.length);
    await this.requireUsers(fresh);
    await this.refuseBlockers(actorId, fresh);
    for (const userId of fresh) {
      await this.append({ kind: 'member.joined', conversationId, actorId, at: Date.now(), userId, role: 'member' });
    }
    const conv = await this.afterMembershipChange(conversationId);
    if (fresh.length === 0) return conv;
    // New members learn of it on their own topic (which also makes their node follow the conversation); the
    // members already there on the conversation's. A lone new member is skipped there, as they may already
    // follow it; several new members of one request may get the same snapshot twice.
    await Promise.all([
      ...fresh.map((u) => this.fanout.conversation(u, conv)),
      this.fanout.conversationChanged(conv, fresh.length === 1 ? { userId: fresh[0] } : {}),
    ]);
    return conv;
  }

  async removeMember(actorId: Id, conversationId: Id, userId: Id): Promise<void> {
    const { role, entry } = await this.membership.require(conversationId, actorId);
    if (entry.kind !== 'group') throw badRequest('Members of a direct conversation cannot change.');
    const target = entry.roles.get(userId);
    if (!target) throw notFound('That user is not a member of this conversation.');
    if (userId !== actorId) {
      if (role === 'member') throw forbidden('Only owners and admins remove members.');
      if (target === 'owner' || (target === 'admin' && role !== 'owner')) {
        throw forbidden('Your role cannot remove that member.');
      }
    }
    if (target === 'owner') {
      // A group is never left without someone to manage it: the owner's role passes to an admin, else to a member.
      const rest = [...entry.roles].filter(([u]) => u !== userId);
      const heir = rest.find(([, r]) => r === 'admin') ?? rest[0];
      if (heir) await this.append({ kind: 'member.role', conversationId, actorId, at: Date.now(), userId: heir[0], role: 'owner' });
    }
    await this.append({ kind: 'member.left', conversationId, actorId, at: Date.now(), userId });
    const conv = await this.afterMembershipChange(conversationId);
    await Promise.all([
      this.fanout.conversation(userId, conv),
      conv.members.length > 0 ? this.fanout.conversationChanged(conv, { userId }) : undefined,
    ]);
  }

  async setTitle(actorId: Id, conversationId: Id, title: string): Promise<Conversation> {
    const { role, entry } = await this.membership.require(conversationId, actorId);
    if (entry.kind !== 'group') throw badRequest('A direct conversation has no title.');
    if (role === 'member') throw forbidden('Only owners and admins rename a group.');
    await this.append({ kind: 'conversation.updated', conversationId, actorId, at: Date.now(), title: checkTitle(title) });
    const conv = await this.current(conversationId);
    await this.fanout.conversationChanged(conv);
    return conv;
  }

  async setRole(actorId: Id, conversationId: Id, userId: Id, newRole: Role): Promise<Conversation> {
    const { role, entry } = await this.membership.require(conversationId, actorId);
    if (entry.kind !== 'group') throw badRequest('A direct conversation has no roles.');
    if (role !== 'owner') throw forbidden('Only the owner changes roles.');
    if (newRole === 'owner') throw badRequest('The role must be admin or member.');
    const target = entry.roles.get(userId);
    if (!target) throw notFound('That user is not a member of this conversation.');
    if (target === 'owner') throw badRequest("The owner's role cannot change.");
    if (target === newRole) return this.current(conversationId);
    await this.append({ kind: 'member.role', conversationId, actorId, at: Date.now(), userId, role: newRole });
    const conv = await this.afterMembershipChange(conversationId);
    await this.fanout.conversationChanged(conv);
    return conv;
  }

  private async append(input: AppendInput): Promise<void> {
    const res = await this.store.events.append(input);
    if (res.status === 'appended') await this.fanout.event(res.event);
  }

  private async afterMembershipChange(conversationId: Id): Promise<Conversation> {
    this.membership.invalidate(conversationId);
    await this.fanout.membershipChanged(conversationId);
    return this.current(conversationId);
  }

  private async current(conversationId: Id): Promise<Conversation> {
    const conv = await this.store.conversations.get(conversationId);
    if (!conv) throw notFound('No conversation has that id.');
    return conv;
  }

  private async requireUsers(ids: readonly Id[]): Promise<void> {
    if (ids.length === 0) return;
    const found = await this.store.users.byIds(ids);
    if (found.length !== ids.length) throw notFound('One or more users do not exist.');
  }

  /** Nobody is put into a group by someone they block. */
  private async refuseBlockers(actorId: Id, ids: readonly Id[]): Promise<void> {
    const blockers = await this.blocks.blockersAmong(actorId, ids);
    if (blockers.length > 0) throw forbidden(`${blockers.length === 1 ? 'One user' : `${blockers.length} users`} you are adding do not accept that from you.`);
  }

  private async announce(conv: Conversation, userIds: readonly Id[]): Promise<void> {
    await Promise.all(userIds.map((u) => this.fanout.conversation(u, conv)));
  }
}

/** Every encrypted message carries its key once per device of every member: the group size is bounded. */
function checkEncryptedSize(members: number): void {
  if (members > MAX_ENCRYPTED_MEMBERS) throw badRequest(`An end-to-end encrypted group has at most ${MAX_ENCRYPTED_MEMBERS} members.`);
}

function checkTitle(title: string): string {
  const t = title.trim();
  if (!t) throw badRequest('The title must not be empty.');
  refuseUnstorable(t, 'title');
  if (t.length > MAX_TITLE && codePoints(t) > MAX_TITLE) throw tooLarge(`The title is longer than ${MAX_TITLE} characters.`);
  return t;
}

