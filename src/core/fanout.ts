/**
 * Everything the core announces goes through here onto the bus; the hub on
 * each node turns it into frames for local peers. Frames are serialised once.
 */
import type { Bus } from './ports/bus.js';
import { BROADCAST, convTopic, userTopic } from './ports/bus.js';
import type { Conversation, ConversationEvent, Id } from '../protocol/model.js';
import type { ServerFrame } from '../protocol/frames.js';
import { eventFrame, serializeFrame } from './frames.js';

export class Fanout {
  constructor(private readonly bus: Bus) {}

  event(event: ConversationEvent): Promise<void> {
    return this.bus.publish(convTopic(event.conversationId), { t: 'event', event, frame: eventFrame(event) });
  }

  ephemeral(conversationId: Id, frame: ServerFrame, skip: { userId?: Id; connId?: string; hideFrom?: Id[] }): Promise<void> {
    return this.bus.publish(convTopic(conversationId), {
      t: 'ephemeral',
      conversationId,
      skipUserId: skip.userId,
      skipConnId: skip.connId,
      ...(skip.hideFrom ? { hideFrom: skip.hideFrom } : {}),
      frame: serializeFrame(frame),
    });
  }

  /** Tells one user about a conversation they joined, left or that changed. */
  conversation(userId: Id, conversation: Conversation): Promise<void> {
    return this.bus.publish(userTopic(userId), { t: 'conversation', userId, conversation });
  }

  /**
   * Tells every member online now that a conversation they stay in changed
   * (title, roles, members). One message on the conversation's topic, after the
   * change's events on that same topic, so it arrives after them; a member who
   * just left no longer follows the topic and gets `conversation()` instead.
   * Sent as an `ephemeral` bus message: it is a frame for whoever is online,
   * serialised once, not a log entry.
   */
  conversationChanged(conversation: Conversation, skip: { userId?: Id } = {}): Promise<void> {
    return this.ephemeral(conversation.id, { type: 'conversation', conversation }, skip);
  }

  /** One frame to every device of one user, wherever they are connected. */
  toUser(userId: Id, frame: ServerFrame): Promise<void> {
    return this.bus.publish(userTopic(userId), { t: 'frame', userId, frame: serializeFrame(frame) });
  }

  membershipChanged(conversationId: Id): Promise<void> {
    return this.bus.publish(BROADCAST, { t: 'membership', conversationId });
  }

  blocksChanged(userIds: Id[]): Promise<void> {
    return this.bus.publish(BROADCAST, { t: 'blocks', userIds });
  }

  revoke(userId: Id, deviceId: Id): Promise<void> {
    return this.bus.publish(BROADCAST, { t: 'revoke', userId, deviceId });
  }
}
