/** Serialising server frames, once per frame whatever the number of recipients. */
import type { FrameRef, ServerFrame } from '../protocol/frames.js';
import type { ConversationEvent, Message } from '../protocol/model.js';

export const serializeFrame = (f: ServerFrame): string => JSON.stringify(f);

/**
 * JSON of messages whose `message.created` event frame was just made: the
 * sender's `ack` carries the same message object (messaging.ts returns the
 * event's), so it reuses the text instead of serialising the message again.
 * Weak, so nothing outlives the message.
 */
const messageJson = new WeakMap<Message, string>();

export function eventFrame(event: ConversationEvent): string {
  if (event.kind !== 'message.created') return `{"type":"event","event":${JSON.stringify(event)}}`;
  const m = JSON.stringify(event.message);
  messageJson.set(event.message, m);
  // The same fields in the same order as JSON.stringify(event) would give.
  const { conversationId, seq, at, actorId } = event;
  return `{"type":"event","event":{"conversationId":${JSON.stringify(conversationId)},"seq":${seq},"kind":"message.created","at":${at},"actorId":${JSON.stringify(actorId)},"message":${m}}}`;
}

/** `{type:"ack", ref, message}`, as serializeFrame would give it. */
export function messageAckFrame(ref: FrameRef | undefined, message: Message): string {
  const m = messageJson.get(message) ?? JSON.stringify(message);
  return ref === undefined ? `{"type":"ack","message":${m}}` : `{"type":"ack","ref":${JSON.stringify(ref)},"message":${m}}`;
}
