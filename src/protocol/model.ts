/**
 * The objects of Parley protocol v1 as they appear on the wire (docs/protocol.md).
 * Browser-safe: no Node imports, shared by the server, the SDK and the web app.
 */

import type { E2eFileKey, E2eStatus } from './e2e.js';

export type Id = string;
/** Milliseconds since the Unix epoch. */
export type Millis = number;

export interface User {
  id: Id;
  username: string;
  displayName: string;
  createdAt: Millis;
}

export type Role = 'owner' | 'admin' | 'member';
export type ConversationKind = 'direct' | 'group';

export interface Member {
  userId: Id;
  role: Role;
  lastReadSeq: number;
}

export interface Conversation {
  id: Id;
  kind: ConversationKind;
  title?: string;
  members: Member[];
  /** Seq of the newest event in the conversation's log (0 when empty). */
  lastSeq: number;
  createdAt: Millis;
  updatedAt: Millis;
  /** Extension: messages from others after the caller's lastReadSeq. Only in answers to a member. */
  unreadCount?: number;
  /** Extension: the newest non-deleted message, for list previews. */
  lastMessage?: Message;
  /**
   * Extension (R8): this conversation's own retention, in days; absent when the
   * server's default applies (keep forever unless the operator set one).
   */
  retentionDays?: number;
  /** Extension (R8): events at or below this seq were removed by retention; absent when none were. */
  clearedThroughSeq?: number;
  /** Extension (R18): end-to-end encrypted (set at creation, never changes); absent when not. */
  encrypted?: true;
}

/** emoji → ids of the users who reacted with it, in the order they did. */
export type Reactions = Record<string, Id[]>;

export interface Message {
  id: Id;
  conversationId: Id;
  seq: number;
  senderId: Id;
  clientId: string;
  /** "" once deleted. */
  body: string;
  replyTo?: Id;
  createdAt: Millis;
  editedAt?: Millis;
  deletedAt?: Millis;
  /** Extension: absent when nobody reacted. */
  reactions?: Reactions;
  /** Set by the SDK, never by a server: how it read an end-to-end encrypted body (protocol/e2e.ts). */
  e2e?: E2eStatus;
  /** Extension (R14): files sent with the message, as references; absent when none (and once deleted). */
  attachments?: Attachment[];
}

/**
 * Extension (R14): a file as a message carries it: the reference and what a
 * client needs to show it before fetching anything. The bytes are at
 * `GET /v1/attachments/:id`, an image's thumbnail at `GET /v1/attachments/:id/thumbnail`.
 */
export interface Attachment {
  id: Id;
  /** Media type, such as `image/png` (for an image, the format it really is). */
  type: string;
  /** File name, as uploaded (without any folder). */
  name: string;
  /** Bytes. */
  size: number;
  /** Images: pixels, as displayed (EXIF rotation applied). */
  width?: number;
  height?: number;
  /** Images: a WebP of at most 320×320 pixels, of this size. */
  thumbnail?: { width: number; height: number };
  /**
   * Extension (R18): an encrypted upload (`POST /v1/attachments?encrypted=1`).
   * The server's reference then says nothing of the file: `type` is
   * application/octet-stream, `name` is "file", `size` that of the ciphertext.
   * The SDK replaces them with what the message's envelope says, and sets `e2e`.
   */
  encrypted?: true;
  /** Set by the SDK, never by a server: the key to an encrypted file's bytes, from the message's envelope. */
  e2e?: E2eFileKey;
}

/** Extension (R14): what this server accepts, as `GET /v1/attachments/limits` tells it. */
export interface AttachmentLimits {
  /** Largest file, in bytes. */
  maxBytes: number;
  /** Media types that may be attached: exact ones, `type/*` families, or `*\/*` for anything. */
  types: string[];
  /** Most attachments per message. */
  maxPerMessage: number;
}

/** Extension (R14): an upload as `POST /v1/attachments` answers it. */
export interface UploadedAttachment extends Attachment {
  createdAt: Millis;
}

interface EventBase {
  conversationId: Id;
  seq: number;
  at: Millis;
  actorId: Id;
}

export type ConversationEvent =
  | (EventBase & { kind: 'message.created'; message: Message })
  | (EventBase & {
      kind: 'message.edited';
      messageId: Id;
      body: string;
      e2e?: E2eStatus;
      /** Set by the SDK, never by a server: an encrypted edit's files, read from its envelope (which carries their keys again). */
      attachments?: Attachment[];
    })
  | (EventBase & { kind: 'message.deleted'; messageId: Id })
  | (EventBase & { kind: 'message.reacted'; messageId: Id; reaction: string; active: boolean })
  | (EventBase & { kind: 'member.joined'; userId: Id; role: Role })
  | (EventBase & { kind: 'member.left'; userId: Id })
  | (EventBase & { kind: 'member.role'; userId: Id; role: Role })
  | (EventBase & { kind: 'conversation.updated'; title: string });

export type EventKind = ConversationEvent['kind'];

/** An event before the store has given it a seq. */
export type NewEvent = ConversationEvent extends infer E
  ? E extends ConversationEvent
    ? Omit<E, 'seq'>
    : never
  : never;

export type PresenceStatus = 'online' | 'away' | 'busy' | 'offline';
export type PresenceRequest = 'online' | 'away' | 'busy' | 'invisible';
export type ReceiptKind = 'delivered' | 'read';

/** Someone the caller blocks (R17), as `GET /v1/blocks` lists them. */
export interface Block {
  user: User;
  createdAt: Millis;
}

export interface Session {
  deviceId: Id;
  deviceName: string;
  createdAt: Millis;
  lastActiveAt: Millis;
  current: boolean;
}
