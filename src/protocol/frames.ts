/**
 * WebSocket frames of protocol v1. Client frames are TypeBox schemas, so the
 * server validates them with compiled checkers and the SDK gets the same types.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type {
  Conversation,
  ConversationEvent,
  Id,
  Message,
  Millis,
  PresenceStatus,
  ReceiptKind,
  User,
} from './model.js';
import type { ErrorCode } from './errors.js';
import { AttachmentIds, IdStr, NO_NUL } from './fields.js';

const Ref = Type.Union([Type.String({ maxLength: 128 }), Type.Integer()]);
/** A seq: JSON numbers past 2^53 are not exact, and past 2^63 no engine takes them (PostgreSQL answered `internal`). */
const Seq = (minimum: number) => Type.Integer({ minimum, maximum: Number.MAX_SAFE_INTEGER });
const ClientId = Type.String({ minLength: 1, maxLength: 128 });
/** Length limits on bodies are configurable and checked by the core (too_large), not here. */
const Body = Type.String();
const Reaction = Type.String({ minLength: 1, maxLength: 32 });

export const ClientFrameSchemas = {
  auth: Type.Object({ type: Type.Literal('auth'), ref: Type.Optional(Ref), token: Type.String({ minLength: 1, maxLength: 4096 }) }),
  send: Type.Object({
    type: Type.Literal('send'),
    ref: Type.Optional(Ref),
    conversationId: IdStr,
    clientId: ClientId,
    body: Body,
    replyTo: Type.Optional(IdStr),
    /** Extension (R14): ids of the sender's uploads. */
    attachments: Type.Optional(AttachmentIds),
  }),
  edit: Type.Object({ type: Type.Literal('edit'), ref: Type.Optional(Ref), messageId: IdStr, body: Body }),
  delete: Type.Object({ type: Type.Literal('delete'), ref: Type.Optional(Ref), messageId: IdStr }),
  react: Type.Object({ type: Type.Literal('react'), ref: Type.Optional(Ref), messageId: IdStr, reaction: Reaction }),
  unreact: Type.Object({ type: Type.Literal('unreact'), ref: Type.Optional(Ref), messageId: IdStr, reaction: Reaction }),
  sync: Type.Object({
    type: Type.Literal('sync'),
    ref: Type.Optional(Ref),
    positions: Type.Record(Type.String({ pattern: NO_NUL }), Seq(0), { additionalProperties: false }),
  }),
  typing: Type.Object({ type: Type.Literal('typing'), ref: Type.Optional(Ref), conversationId: IdStr, active: Type.Boolean() }),
  receipt: Type.Object({
    type: Type.Literal('receipt'),
    ref: Type.Optional(Ref),
    conversationId: IdStr,
    seq: Seq(1),
    kind: Type.Union([Type.Literal('delivered'), Type.Literal('read')]),
  }),
  presence: Type.Object({
    type: Type.Literal('presence'),
    ref: Type.Optional(Ref),
    status: Type.Union([Type.Literal('online'), Type.Literal('away'), Type.Literal('busy'), Type.Literal('invisible')]),
  }),
  ping: Type.Object({ type: Type.Literal('ping'), ref: Type.Optional(Ref) }),
} satisfies Record<string, TSchema>;

export type ClientFrameType = keyof typeof ClientFrameSchemas;
export type ClientFrameOf<T extends ClientFrameType> = Static<(typeof ClientFrameSchemas)[T]>;
export type ClientFrame = { [K in ClientFrameType]: ClientFrameOf<K> }[ClientFrameType];
export type FrameRef = string | number;

export type ServerFrame =
  | { type: 'ready'; ref?: FrameRef; user: User; deviceId: Id; heartbeatMs: number }
  | { type: 'ack'; ref?: FrameRef; message: Message }
  | { type: 'ack'; ref?: FrameRef; event: ConversationEvent }
  | { type: 'event'; event: ConversationEvent }
  | { type: 'conversation'; conversation: Conversation }
  | { type: 'synced'; ref?: FrameRef }
  | { type: 'typing'; conversationId: Id; userId: Id; active: boolean }
  | { type: 'receipt'; conversationId: Id; userId: Id; seq: number; kind: ReceiptKind }
  | { type: 'presence'; userId: Id; status: PresenceStatus; lastActiveAt: Millis }
  | { type: 'pong'; ref?: FrameRef }
  | { type: 'error'; ref?: FrameRef; code: ErrorCode; message: string; retryAfterMs?: number };

export type ServerFrameType = ServerFrame['type'];
