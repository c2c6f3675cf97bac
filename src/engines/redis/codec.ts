/**
 * Bus messages on the wire: the JSON of everything but the frame, a newline,
 * then the frame as it is. A frame is already JSON and usually most of the
 * bytes; nesting it as a JSON string would escape every quote on publish and
 * unescape it on every receiving node. JSON.stringify never emits a raw
 * newline, so the first one always ends the head.
 */
import type { BusMessage } from '../../core/ports/bus.js';

const SEPARATOR = '\n';

export function encodeBusMessage(message: BusMessage): string {
  if (!('frame' in message)) return JSON.stringify(message);
  const { frame, ...head } = message;
  return JSON.stringify(head) + SEPARATOR + frame;
}

/** @throws SyntaxError on a payload that is not one of ours. */
export function decodeBusMessage(payload: string): BusMessage {
  const cut = payload.indexOf(SEPARATOR);
  if (cut < 0) return checked(JSON.parse(payload));
  const head = checked(JSON.parse(payload.slice(0, cut))) as BusMessage & { frame: string };
  head.frame = payload.slice(cut + 1);
  return head;
}

function checked(value: unknown): BusMessage {
  if (typeof value !== 'object' || value === null || typeof (value as { t?: unknown }).t !== 'string') {
    throw new SyntaxError('not a bus message');
  }
  return value as BusMessage;
}
