/** Sending, editing, deleting and reacting to messages: the write path of a chat. */
import type { Attachment, ConversationEvent, Id, Message, Role } from '../protocol/model.js';
import type { AppendInput, Store } from './ports/store.js';
import type { IdGenerator } from './ids.js';
import type { MembershipCache, MembershipEntry } from './membership.js';
import type { BlockService } from './blocks.js';
import type { Fanout } from './fanout.js';
import type { RateLimits } from './limits.js';
import type { EnvelopeCheck } from './envelopes.js';
import { badRequest, codePoints, conflict, forbidden, notFound, refuseUnstorable, tooLarge } from './errors.js';
import { looksLikeEnvelope } from '../protocol/e2e.js';

export type WriteResult = { event: ConversationEvent } | { message: Message };

export interface MessagingObserver {
  /** Seconds the store took to make one append durable. */
  appended(seconds: number): void;
  /** A user sent a message (new or a retry), whatever the transport: they are no longer typing there. */
  sent(actorId: Id, conversationId: Id): void;
  /** A new message was appended (not a retry): the notifier notes it, without I/O. */
  created?(message: Message): void;
}

/** Turns a sender's upload ids into the references a message carries (core/attachments.ts). */
export interface AttachmentResolver {
  /** `encrypted`: the conversation is end-to-end encrypted, and so must every upload be (and only there). */
  forMessage(userId: Id, ids: readonly Id[], encrypted: boolean): Promise<Attachment[]>;
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
    /** Bodies of end-to-end encrypted conversations (R18); also bounds how long an envelope may be. */
    private readonly envelopes: EnvelopeCheck,
    private readonly observer?: MessagingObserver,
    private readonly attachments?: AttachmentResolver,
  ) {}

  /**
   * Idempotent on (conversation, sender, clientId): a retry returns the original message.
   * `deviceId`, the sending device, is checked against an encrypted body's sender device.
   * With `attachmentIds` (the sender's uploads, R14) the body may be empty.
   */
  async send(
    actorId: Id,
    conversationId: Id,
    clientId: string,
    body: string,
    replyTo?: Id,
    deviceId?: Id,
    attachmentIds?: readonly Id[],
  ): Promise<{ message: Message; created: boolean }> {
    const withFiles = attachmentIds !== undefined && attachmentIds.length > 0;
    this.checkBody(body, withFiles);
    // The clientId is stored and matched on retries: as sent, or not at all (a lone surrogate read back as U+FFFD).
    refuseUnstorable(clientId, 'clientId');
    await this.limits.write(actorId);
    const { entry } = await this.membership.require(conversationId, actorId);
    if (entry.kind === 'direct') {
      const pending = this.requireUnblocked(actorId, entry);
      if (pending) await pending;
    }
    // The envelope carries each file's key and real name, type and size: it may be that much longer.
    if (entry.encrypted) await this.envelopes.check(conversationId, actorId, deviceId, body, attachmentIds?.length ?? 0);
    else this.checkPlainLength(body);
    let attachments: Attachment[] | undefined;
    if (withFiles) {
      if (!this.attachments) throw badRequest('This server does not take attachments.');
      attachments = await this.attachments.forMessage(actorId, attachmentIds, entry.encrypted === true);
    }
    const message = {
      id: this.ids.next(),
      clientId,
      body,
      ...(replyTo === undefined ? {} : { replyTo }),
      ...(attachments === undefined ? {} : { attachments }),
    };
    const res = await this.append({ kind: 'message.created', conversationId, actorId, at: Date.now(), message });
    this.observer?.sent(actorId, conversationId);
    if (res.status === 'appended' && res.event.kind === 'message.created') {
      this.observer?.created?.(res.event.message);
      return { message: res.event.message, created: true };
    }
    if (res.message) return { message: res.message, created: false };
    throw new Error('store returned no message for message.created');
  }

  /** A message with attachments may be edited to an empty body; any other may not. */
  async edit(actorId: Id, messageId: Id, body: string, deviceId?: Id): Promise<ConversationEvent> {
    const empty = body.trim() === '';
    this.checkBody(body, empty);
    await this.limits.write(actorId);
    const { msg, entry } = await this.writable(actorId, messageId, true);
    if (msg.senderId !== actorId) throw forbidden('Only the sender can edit a message.');
    if (empty && !msg.attachments?.length) throw badRequest('The message body must not be empty.');
    // An edit's envelope carries the files' keys again: the edited body replaces the one that had them.
    if (entry.encrypted) await this.envelopes.check(msg.conversationId, actorId, deviceId, body, msg.attachments?.length ?? 0);
    else this.checkPlainLength(body);
    const res = await this.append({ kind: 'message.edited', conversationId: msg.conversationId, actorId, at: Date.now(), messageId, body });
    if (res.status !== 'appended') throw conflict('The message could not be edited.');
    return res.event;
  }

  async delete(actorId: Id, messageId: Id): Promise<ConversationEvent> {
    await this.limits.write(actorId);
    const { msg, role, entry } = await this.writable(actorId, messageId);
    if (msg.senderId !== actorId) {
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
    const { msg } = await this.writable(actorId, messageId, true);
    const res = await this.append({ kind: 'message.reacted', conversationId: msg.conversationId, actorId, at: Date.now(), messageId, reaction: r, active });
    if (res.status === 'appended') return { event: res.event };
    return { message: res.message ?? msg };
  }

  /**
   * A message the actor may act on: exists, in a conversation they belong to,
   * not deleted; with `reaches`, one whose change would reach the other member
   * of a direct conversation, which a block forbids (a delete does not need it).
   */
  private async writable(actorId: Id, messageId: Id, reaches = false): Promise<{ msg: Message; role: Role; entry: MembershipEntry }> {
    const msg = await this.store.events.message(messageId);
    if (!msg) throw notFound('No message has that id.');
    const { role, entry } = await this.membership.require(msg.conversationId, actorId);
    if (reaches && entry.kind === 'direct') await this.requireUnblocked(actorId, entry);
    if (msg.deletedAt !== undefined) throw conflict('The message was deleted.');
    return { msg, role, entry };
  }

  private requireUnblocked(actorId: Id, direct: MembershipEntry): void | Promise<void> {
    for (const userId of direct.roles.keys()) if (userId !== actorId) return this.blocks.requireNone(actorId, userId);
    return undefined;
  }

  /**
   * Checks that need no conversation: not blank (unless the message has
   * files), storable, and not longer than any body may be. A body shaped as an
   * encrypted envelope may be longer than plain text (it carries a key per
   * device); which limit applies is known once the conversation is
   * (checkPlainLength, EnvelopeCheck).
   */
  private checkBody(body: string, mayBeEmpty = false): void {
    if (!mayBeEmpty && body.trim() === '') throw badRequest('The message body must not be empty.');
    refuseUnstorable(body, 'message body');
    if (!looksLikeEnvelope(body)) this.checkPlainLength(body);
    else if (body.length > this.envelopes.maxEnvelopeChars) throw tooLarge(`The encrypted message is longer than ${this.envelopes.maxEnvelopeChars} characters.`);
  }

  private checkPlainLength(body: string): void {
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

