/** Serialising server frames, once per frame whatever the number of recipients. */
import type { ServerFrame } from '../protocol/frames.js';
import type { ConversationEvent } from '../protocol/model.js';

export const serializeFrame = (f: ServerFrame): string => JSON.stringify(f);

export const eventFrame = (event: ConversationEvent): string => `{"type":"event","event":${JSON.stringify(event)}}`;
