/** Sending, editing, deleting and reacting to messages: the write path of a chat. */
import type { ConversationEvent, Id, Message } from '../protocol/model.js';
import type { AppendInput, Store } from './ports/store.js';
import type { IdGenerator } from './ids.js';
import type { MembershipCache, MembershipEntry } from './membership.js';
import type { BlockService } from './blocks.js';
import type { Fanout } from './fanout.js';
import type { RateLimits } from './limits.js';
import { badRequest, codePoints, conflict, forbidden, notFound, refuseUnstorable, tooLarge } from './errors.js';

export type WriteResult = { event: ConversationEvent } | { message: Message };

export interface MessagingObserver {
  /** Seconds the store took to make one append durable. */
  appended(seconds: number): void;
  /** A user sent a message (new or a retry), whatever the transport: they are no longer typing there. */
  sent(actorId: Id, conversationId: Id): void;
}

export class MessagingService {
  constructor(
    private readonly store: Store,
    private readonly ids: IdGenerator,
    private readonly membership: MembershipCache,
    private readonly blocks: BlockService,
    private readonly fanout: Fanout,
    private readonly limits: RateLimits,
    private readonly maxBodyChars: number,
    private readonly observer?: MessagingObserver,
  ) {}

  /** Idempotent on (conversation, sender, clientId): a retry returns the original message. */
  async send(actorId: Id, conversationId: Id, clientId: string, body: string, replyTo?: Id): Promise<{ message: Message; created: boolean }> {
    this.checkBody(body);
    // The clientId is stored and matched on retries: as sent, or not at all (a lone surrogate read back as U+FFFD).
    refuseUnstorable(clientId, 'clientId');
    await this.limits.write(actorId);
    const { entry } = await this.membership.require(conversationId, actorId);
    if (entry.kind === 'direct') {
      const pending = this.requireUnblocked(actorId, entry);
      if (pending) await pending;
    }
    const message = { id: this.ids.next(), clientId, body, ...(replyTo === undefined ? {} : { replyTo }) };
    const res = await this.append({ kind: 'message.created', conversationId, actorId, at: Date.now(), message });
    this.observer?.sent(actorId, conversationId);
    if (res.status === 'appended' && res.event.kind === 'message.created') return { message: res.event.message, created: true };
    if (res.message) return { message: res.message, created: false };
    throw new Error('store returned no message for message.created');
  }

  async edit(actorId: Id, messageId: Id, body: string): Promise<ConversationEvent> {
    this.checkBody(body);
    await this.limits.write(actorId);
    const msg = await this.writable(actorId, messageId, true);
    if (msg.senderId !== actorId) throw forbidden('Only the sender can edit a message.');
    const res = await this.append({ kind: 'message.edited', conversationId: msg.conversationId, actorId, at: Date.now(), messageId, body });
    if (res.status !== 'appended') throw conflict('The message could not be edited.');
    return res.event;
  }

  async delete(actorId: Id, messageId: Id): Promise<ConversationEvent> {
    await this.limits.write(actorId);
    const msg = await this.writable(actorId, messageId);
    if (msg.senderId !== actorId) {
      const { role, entry } = await this.membership.require(msg.conversationId, actorId);
      if (entry.kind !== 'group' || role === 'member') throw forbidden("Only the sender, or a group's owner or admin, can delete a message.");
    }
    const res = await this.append({ kind: 'message.deleted', conversationId: msg.conversationId, actorId, at: Date.now(), messageId });
    if (res.status !== 'appended') throw conflict('The message was already deleted.');
    return res.event;
  }

  async react(actorId: Id, messageId: Id, reaction: string, active: boolean): Promise<WriteResult> {
    const r = reaction.trim();
    if (!r) throw badRequest('The reaction must not be empty.');
    refuseUnstorable(r, 'reaction');
    await this.limits.write(actorId);
    const msg = await this.writable(actorId, messageId, true);
    const res = await this.append({ kind: 'message.reacted', conversationId: msg.conversationId, actorId, at: Date.now(), messageId, reaction: r, active });
    if (res.status === 'appended') return { event: res.event };
    return { message: res.message ?? msg };
  }

  /**
   * A message the actor may act on: exists, in a conversation they belong to,
   * not deleted; with `reaches`, one whose change would reach the other member
   * of a direct conversation, which a block forbids (a delete does not need it).
   */
  private async writable(actorId: Id, messageId: Id, reaches = false): Promise<Message> {
    const msg = await this.store.events.message(messageId);
    if (!msg) throw notFound('No message has that id.');
    const { entry } = await this.membership.require(msg.conversationId, actorId);
    if (reaches && entry.kind === 'direct') await this.requireUnblocked(actorId, entry);
    if (msg.deletedAt !== undefined) throw conflict('The message was deleted.');
    return msg;
  }

  private requireUnblocked(actorId: Id, direct: MembershipEntry): void | Promise<void> {
    for (const userId of direct.roles.keys()) if (userId !== actorId) return this.blocks.requireNone(actorId, userId);
    return undefined;
  }

  private checkBody(body: string): void {
    if (body.trim() === '') throw badRequest('The message body must not be empty.');
    refuseUnstorable(body, 'message body');
    // UTF-16 length bounds the count of characters from above; count code points only when it matters.
    if (body.length > this.maxBodyChars && codePoints(body) > this.maxBodyChars) {
      throw tooLarge(`The message body is longer than ${this.maxBodyChars} characters.`);
    }
  }

  private async append(input: AppendInput): ReturnType<Store['events']['append']> {
    const t0 = performance.now();
    const res = await this.store.events.append(input);
    this.observer?.appended((performance.now() - t0) / 1000);
    if (res.status === 'appended') void this.fanout.event(res.event).catch(() => undefined);
    return res;
  }
}

