/**
 * What a push notification says about a message. The one place that decides
 * whether a notification shows the text at all: a conversation whose messages
 * the server cannot or must not show (end-to-end encrypted, R18) returns no
 * preview here, and clients show a generic line instead.
 */
import type { Conversation, Message } from '../../protocol/model.js';
import type { PushNotification } from '../../protocol/push.js';

/** Characters of the message in a preview; push payloads are small (4 KB for APNs and FCM). */
export const PREVIEW_MAX_CHARS = 120;

/** The message's text for a notification, shortened; undefined to withhold it. */
export function previewText(conversation: Conversation, message: Message): string | undefined {
  // The body of an end-to-end encrypted conversation is an envelope (R18): nothing in it is the server's to show.
  if (conversation.encrypted) return undefined;
  const text = message.body.replace(/\s+/gu, ' ').trim();
  if (!text) return undefined;
  const chars = Array.from(text);
  return chars.length <= PREVIEW_MAX_CHARS ? text : `${chars.slice(0, PREVIEW_MAX_CHARS - 1).join('').trimEnd()}…`;
}

/** The notification for `count` messages of one conversation, `newest` the latest of them. */
export function buildNotification(conversation: Conversation, newest: Message, senderName: string, count: number): PushNotification {
  const text = previewText(conversation, newest);
  const group = conversation.kind === 'group';
  const n: PushNotification = {
    type: 'message',
    conversationId: conversation.id,
    messageId: newest.id,
    seq: newest.seq,
    title: group ? conversation.title || 'Group' : senderName,
    senderId: newest.senderId,
    senderName,
    count,
    at: newest.createdAt,
  };
  if (text !== undefined) n.body = group ? `${senderName}: ${text}` : text;
  return n;
}
