/** Request schemas of the HTTP API (docs/protocol.md), shared by the server's validation and the SDK's types. */
import { Type, type Static } from '@sinclair/typebox';
import { AttachmentIds, IdStr, LookupText } from './fields.js';

const Limit = (max: number) => Type.Optional(Type.Integer({ minimum: 1, maximum: max }));

export const RegisterBody = Type.Object({
  username: Type.String({ maxLength: 64 }),
  password: Type.String({ maxLength: 1024 }),
  displayName: Type.Optional(Type.String({ maxLength: 256 })),
});
export const LoginBody = Type.Object({
  username: Type.String({ maxLength: 64 }),
  password: Type.String({ maxLength: 1024 }),
  deviceName: Type.Optional(Type.String({ maxLength: 256 })),
});
export const RefreshBody = Type.Object({ refreshToken: Type.String({ minLength: 1, maxLength: 512 }) });

export const UsersQuery = Type.Object({ q: Type.Optional(LookupText({ maxLength: 64 })), limit: Limit(100), after: Type.Optional(LookupText({ maxLength: 64 })) });
export const IdParams = Type.Object({ id: IdStr });
/** Extension (R15). Empty values of the optional fields mean "not given", as a search form sends them. */
export const SearchQuery = Type.Object({
  q: LookupText({ maxLength: 500 }),
  conversationId: Type.Optional(LookupText({ maxLength: 64 })),
  senderId: Type.Optional(LookupText({ maxLength: 64 })),
  since: Type.Optional(Type.Integer({ minimum: 0 })),
  until: Type.Optional(Type.Integer({ minimum: 0 })),
  limit: Limit(50),
  after: Type.Optional(LookupText({ maxLength: 64 })),
});

/** `encrypted` is an extension (R18): an end-to-end encrypted conversation. */
export const CreateConversationBody = Type.Union([
  Type.Object({ kind: Type.Literal('direct'), members: Type.Array(IdStr, { minItems: 1, maxItems: 1 }), encrypted: Type.Optional(Type.Boolean()) }),
  // No length bound on titles here: the core refuses one over 200 characters with too_large, however long it is.
  Type.Object({ kind: Type.Literal('group'), title: Type.String(), members: Type.Array(IdStr, { maxItems: 10_000 }), encrypted: Type.Optional(Type.Boolean()) }),
]);
/**
 * Extension (R18): the calling device's public keys. Nothing else: a device
 * publishes only its own keys, so a userId or deviceId field is refused.
 */
export const PutKeysBody = Type.Object(
  {
    identityKey: Type.String({ maxLength: 128 }),
    agreementKey: Type.String({ maxLength: 128 }),
    signature: Type.String({ maxLength: 128 }),
  },
  { additionalProperties: false },
);
export const ListConversationsQuery = Type.Object({ after: Type.Optional(Type.String({ maxLength: 256 })), limit: Limit(200) });
export const UpdateConversationBody = Type.Object({
  title: Type.Optional(Type.String()),
  /** Extension (R8): days to keep, or null for the server's default. */
  retentionDays: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 36_500 }), Type.Null()])),
});
export const AddMembersBody = Type.Object({ userIds: Type.Array(IdStr, { minItems: 1, maxItems: 10_000 }) });
export const MemberParams = Type.Object({ id: IdStr, userId: IdStr });
export const SetRoleBody = Type.Object({ role: Type.Union([Type.Literal('admin'), Type.Literal('member')]) });

export const MessagesQuery = Type.Object({
  before: Type.Optional(Type.Integer({ minimum: 1 })),
  after: Type.Optional(Type.Integer({ minimum: 0 })),
  limit: Limit(200),
});
export const EventsQuery = Type.Object({ after: Type.Optional(Type.Integer({ minimum: 0 })), limit: Limit(1000) });
export const SendBody = Type.Object({
  clientId: Type.String({ minLength: 1, maxLength: 128 }),
  body: Type.String(),
  replyTo: Type.Optional(IdStr),
  /** Extension (R14): ids of the sender's uploads. */
  attachments: Type.Optional(AttachmentIds),
});
export const EditBody = Type.Object({ body: Type.String() });
export const ReactBody = Type.Object({ reaction: Type.String({ minLength: 1, maxLength: 32 }) });
export const ReactionParams = Type.Object({ id: IdStr, reaction: Type.String({ minLength: 1, maxLength: 32 }) });
export const ReadBody = Type.Object({ seq: Type.Integer({ minimum: 0 }) });
export const SessionParams = Type.Object({ deviceId: IdStr });
export const SessionsQuery = Type.Object({ after: Type.Optional(Type.String({ maxLength: 256 })), limit: Limit(100) });
export const BlockBody = Type.Object({ userId: IdStr });
export const BlockParams = Type.Object({ userId: IdStr });
export const BlocksQuery = Type.Object({ after: Type.Optional(IdStr), limit: Limit(200) });
export const PresenceQuery = Type.Object({ userIds: LookupText({ minLength: 1, maxLength: 10_000 }) });
export const PollQuery = Type.Object({
  cursor: Type.Optional(Type.Integer({ minimum: 0 })),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 30_000 })),
});

/**
 * Extension (R14): `POST /v1/attachments?name=`; the body is the file itself.
 * `encrypted=1` (R18): the body is ciphertext for an end-to-end encrypted conversation, stored opaque.
 */
export const UploadQuery = Type.Object({
  name: Type.Optional(Type.String({ maxLength: 1024 })),
  encrypted: Type.Optional(Type.Union([Type.Literal('1'), Type.Literal('0')])),
});

export type RegisterBody = Static<typeof RegisterBody>;
export type LoginBody = Static<typeof LoginBody>;
export type CreateConversationBody = Static<typeof CreateConversationBody>;
export type SendBody = Static<typeof SendBody>;
