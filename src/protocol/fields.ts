/** Field schemas shared by the WebSocket frames and the HTTP API. */
import { Type } from '@sinclair/typebox';

/**
 * No id, search prefix or cursor contains U+0000: PostgreSQL cannot even
 * compare a text holding one (it answered `internal`), so such a field is
 * refused as malformed, on every engine alike.
 */
export const NO_NUL = '^[^\\u0000]*$';

export const IdStr = Type.String({ minLength: 1, maxLength: 64, pattern: NO_NUL });

/** Text the server looks things up by (a username prefix or cursor, a list of ids). */
export const LookupText = (opts: { minLength?: number; maxLength: number }) => Type.String({ ...opts, pattern: NO_NUL });

/** Extension (R14): most attachments one message may carry. */
export const MAX_ATTACHMENTS = 10;

/** Attachment ids of a message being sent: at most MAX_ATTACHMENTS. */
export const AttachmentIds = Type.Array(IdStr, { maxItems: MAX_ATTACHMENTS });
