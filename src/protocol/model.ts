/**
 * The objects of Parley protocol v1 as they appear on the wire (docs/protocol.md).
 * Browser-safe: no Node imports, shared by the server, the SDK and the web app.
 */

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
}

interface EventBase {
  conversationId: Id;
  seq: number;
  at: Millis;
  actorId: Id;
}

export type ConversationEvent =
  | (EventBase & { kind: 'message.created'; message: Message })
  | (EventBase & { kind: 'message.edited'; messageId: Id; body: string })
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
