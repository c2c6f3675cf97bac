/**
 * Store port: everything durable. Split per aggregate so that an engine (SQLite,
 * PostgreSQL) implements small interfaces, and tests can replace one part.
 *
 * Contract shared by every engine:
 * - Errors a caller should turn into protocol errors are thrown as `StoreError`
 *   with a protocol code (`conflict`, `not_found`); anything else is a fault of
 *   the engine and surfaces as `unavailable`, or as `internal` when it shows a
 *   defect such as a wrong statement (see core/faults.ts).
 * - Every read returns plain objects owned by the caller.
 */
import type {
  Attachment,
  Conversation,
  ConversationEvent,
  ConversationKind,
  Id,
  Member,
  Message,
  Millis,
  Role,
  User,
} from '../../protocol/model.js';
import type { DeviceKeys } from '../../protocol/e2e.js';

export class StoreError extends Error {
  constructor(
    readonly code: 'conflict' | 'not_found',
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

export interface UserRecord extends User {
  passwordHash: string;
}

export interface UserStore {
  /** Throws StoreError('conflict') when the username is taken. */
  create(user: UserRecord): Promise<User>;
  byId(id: Id): Promise<User | undefined>;
  byIds(ids: readonly Id[]): Promise<User[]>;
  /** With the password hash, for login only. Usernames are stored lower-case. */
  byUsername(username: string): Promise<UserRecord | undefined>;
  /** Usernames starting with `prefix`, ascending, keyset after `afterUsername`. */
  search(prefix: string, limit: number, afterUsername?: string): Promise<User[]>;
}

export interface DeviceRecord {
  id: Id;
  userId: Id;
  name: string;
  createdAt: Millis;
  lastActiveAt: Millis;
  revokedAt?: Millis;
}

export type RefreshOutcome =
  | { outcome: 'ok'; deviceId: Id }
  /** The token was already rotated: someone replays it. The caller revokes the device. */
  | { outcome: 'reused'; deviceId: Id }
  | { outcome: 'expired'; deviceId: Id };

export interface DeviceStore {
  create(device: DeviceRecord): Promise<void>;
  get(id: Id): Promise<DeviceRecord | undefined>;
  /** Devices of a user that are not revoked, newest first. */
  listActive(userId: Id): Promise<DeviceRecord[]>;
  /** Also removes the device's push subscriptions (PushStore). */
  revoke(id: Id, at: Millis): Promise<void>;
  touch(id: Id, at: Millis): Promise<void>;
  /** Stores only the hash of a refresh token. */
  addRefreshToken(tokenHash: string, deviceId: Id, expiresAt: Millis): Promise<void>;
  /**
   * Atomically marks the token spent and tells what it was. Exactly one of many
   * concurrent callers with the same token gets 'ok'. Unknown hash → undefined.
   */
  spendRefreshToken(tokenHash: string, at: Millis): Promise<RefreshOutcome | undefined>;
}

/** A block as stored: `blockerId` blocks `blockedId` since `createdAt`. */
export interface BlockRecord {
  blockerId: Id;
  blockedId: Id;
  createdAt: Millis;
}

/**
 * Who blocks whom (R17). A block is one-way in the table and two-way in its
 * effect (core/blocks.ts): neither user of the pair reaches the other.
 */
export interface BlockStore {
  /**
   * Records that `blockerId` blocks `blockedId`. created=false when it already
   * did; the record then keeps its first createdAt. Throws
   * StoreError('not_found') when either user does not exist.
   */
  add(blockerId: Id, blockedId: Id, at: Millis): Promise<{ block: BlockRecord; created: boolean }>;
  /** Lifts the block. False when there was none. */
  remove(blockerId: Id, blockedId: Id): Promise<boolean>;
  /** Whom `blockerId` blocks, ascending by blockedId, keyset after `afterBlockedId`. */
  list(blockerId: Id, limit: number, afterBlockedId?: Id): Promise<BlockRecord[]>;
  /** Whom `userId` blocks and who blocks them (a user may be in both). */
  related(userId: Id): Promise<{ blocks: Id[]; blockedBy: Id[] }>;
}

export interface ConversationPage {
  conversations: Conversation[];
  /** Opaque keyset cursor for the next page, or undefined at the end. */
  next?: string;
}

export interface ConversationStore {
  /**
   * The direct conversation between two users, or undefined. A pair has at
   * most one plain and one end-to-end encrypted direct conversation.
   */
  findDirect(a: Id, b: Id, encrypted?: boolean): Promise<Conversation | undefined>;
  /**
   * Creates a conversation with its initial members (no log events: creation is
   * announced by `conversation` frames). For `direct`, creating a pair that
   * exists returns the existing one with created=false, even under races.
   */
  create(input: {
    id: Id;
    kind: ConversationKind;
    title?: string;
    members: { userId: Id; role: Role }[];
    at: Millis;
    /** End-to-end encrypted (R18): kept for the conversation's life. */
    encrypted?: boolean;
  }): Promise<{ conversation: Conversation; created: boolean }>;
  get(id: Id): Promise<Conversation | undefined>;
  /** As `get`, plus unreadCount and lastMessage as that member sees them (as in listForUser). */
  getFor(id: Id, userId: Id): Promise<Conversation | undefined>;
  members(id: Id): Promise<Member[]>;
  /** Ids of every conversation the user belongs to. */
  idsForUser(userId: Id): Promise<Id[]>;
  /**
   * The user's conversations, most recently active first (updatedAt desc, id desc),
   * each with unreadCount and lastMessage for that user. Keyset, never OFFSET.
   */
  listForUser(userId: Id, limit: number, after?: string): Promise<ConversationPage>;
  /**
   * Moves the member's lastReadSeq forward to min(seq, lastSeq). Returns the new
   * value, or undefined when it did not move (already there, or not a member).
   */
  markRead(conversationId: Id, userId: Id, seq: number): Promise<number | undefined>;
}

/**
 * What a caller asks the log to record. The store gives it the next seq and
 * applies its effect to the read models (messages, members, title) in the same
 * atomic step.
 */
export type AppendInput =
  | {
      kind: 'message.created';
      conversationId: Id;
      actorId: Id;
      at: Millis;
      /** `attachments`: uploads of the actor (AttachmentStore), as the message will carry them. */
      message: { id: Id; clientId: string; body: string; replyTo?: Id; attachments?: Attachment[] };
    }
  | { kind: 'message.edited'; conversationId: Id; actorId: Id; at: Millis; messageId: Id; body: string }
  | { kind: 'message.deleted'; conversationId: Id; actorId: Id; at: Millis; messageId: Id }
  | { kind: 'message.reacted'; conversationId: Id; actorId: Id; at: Millis; messageId: Id; reaction: string; active: boolean }
  | { kind: 'member.joined'; conversationId: Id; actorId: Id; at: Millis; userId: Id; role: Role }
  | { kind: 'member.left'; conversationId: Id; actorId: Id; at: Millis; userId: Id }
  | { kind: 'member.role'; conversationId: Id; actorId: Id; at: Millis; userId: Id; role: Role }
  | { kind: 'conversation.updated'; conversationId: Id; actorId: Id; at: Millis; title: string };

export type AppendResult =
  /** A new event was committed with the next seq. `message` is the message it created or changed. */
  | { status: 'appended'; event: ConversationEvent; message?: Message }
  /**
   * Nothing new was written: a `message.created` whose (conversationId, actorId,
   * clientId) was seen before (`message` is the original, in its current state),
   * a reaction already in that state, or a join of an existing member.
   */
  | { status: 'unchanged'; message?: Message };

export interface EventStore {
  /**
   * Appends one event. Seqs are gap-free per conversation and in commit order
   * under any concurrency; resolving the promise means the event is durable.
   * Engines may batch concurrent appends into one commit (group commit).
   * Throws StoreError('not_found') for an unknown conversation, message (not in
   * that conversation) or member; StoreError('conflict') for a change to a
   * deleted message or a reply to a message of another conversation.
   */
  append(input: AppendInput): Promise<AppendResult>;
  /** Events with seq > afterSeq, ascending, at most `limit`. */
  after(conversationId: Id, afterSeq: number, limit: number): Promise<ConversationEvent[]>;
  /** A message by id, in its current state. */
  message(id: Id): Promise<Message | undefined>;
  /**
   * Messages of a conversation, ascending seq. With `before`, the newest `limit`
   * below it; with `after`, the oldest `limit` above it; with neither, the newest.
   * hasMore tells whether more exist beyond the page in the direction read.
   */
  messages(conversationId: Id, opts: { before?: number; after?: number; limit: number }): Promise<{ messages: Message[]; hasMore: boolean }>;
}

/** A conversation as the retention sweeper walks it. */
export interface RetentionTarget {
  id: Id;
  /** The conversation's own policy; null when the server's default applies. */
  retentionDays: number | null;
  clearedThroughSeq: number;
  lastSeq: number;
}

/**
 * Retention (R8): history is kept forever unless a policy says otherwise; the
 * oldest events then go, as a prefix of the log, so what stays is still gap-free
 * from `clearedThroughSeq + 1` on.
 */
export interface RetentionStore {
  /**
   * Sets a conversation's own policy (days), or drops it (null: the server's
   * default applies). Returns false for an unknown conversation.
   */
  setPolicy(conversationId: Id, days: number | null): Promise<boolean>;
  /**
   * Conversations with at least one event not yet cleared, ascending by id,
   * keyset after `afterId`; with `withPolicyOnly`, only those with a policy of
   * their own (all a sweep needs when the server's default keeps everything).
   */
  scan(limit: number, afterId?: Id, opts?: { withPolicyOnly?: boolean }): Promise<RetentionTarget[]>;
  /**
   * Removes, in one atomic step, the oldest events of a conversation (messages
   * and every other kind) that happened before `before`, at most `maxEvents`:
   * it stops at the first event at or after `before`. Returns the new
   * clearedThroughSeq, or undefined when nothing was removed.
   */
  clear(conversationId: Id, before: Millis, maxEvents: number): Promise<number | undefined>;
}

/** What to find (R15). Built by the core, which has already checked and normalised it. */
export interface SearchQuery {
  /** Only messages of conversations this user is a member of now. */
  userId: Id;
  /**
   * 1–10 words, lower-case, of letters, digits and combining marks (the core
   * splits the text the user typed; core/search.ts). A message matches when
   * every term starts one of its words: `meet` finds "Meeting", not "unmet".
   * Latin letters come without their accents, which the engines ignore in
   * the text too; other scripts come as written.
   */
  terms: string[];
  conversationId?: Id;
  senderId?: Id;
  /** Messages created at or after. */
  since?: Millis;
  /** Messages created before. */
  until?: Millis;
  limit: number;
  /** The `next` of the previous page. */
  after?: string;
}

export interface SearchPage {
  /** Newest first. */
  messages: Message[];
  /** Present when more may follow: pass it back as `after`. */
  next?: string;
}

/**
 * Full-text search over messages (R15). Never returns a deleted message, nor
 * one retention cleared; an edited message is found by its text now, not its
 * old one. Engines may index shortly after the append rather than in it, to
 * keep the send path as it is: `indexed()` waits for that. To find what is
 * new they may rely on message ids sorting by creation time, as the core's
 * ids do (core/ids.ts), give or take a clock that steps back a little.
 */
export interface SearchStore {
  /** Throws StoreError('not_found') for an `after` cursor this engine did not give out. */
  search(query: SearchQuery): Promise<SearchPage>;
  /** Resolves once every message appended before the call is searchable. */
  indexed(): Promise<void>;
}

/** A device's public keys for end-to-end encryption (R18), as published. */
export type DeviceKeyRecord = DeviceKeys;

/**
 * The public keys of devices (R18). A device publishes its keys once; they
 * stay its keys for its life and go with it: a revoked device's keys are never
 * listed again.
 */
export interface DeviceKeyStore {
  /**
   * Publishes a device's keys: 'created' the first time, 'same' when the device
   * already has these identity and agreement keys (the first signature is
   * kept), 'different' when it has others (nothing is written). Throws
   * StoreError('not_found') for an unknown device.
   */
  put(record: DeviceKeyRecord): Promise<'created' | 'same' | 'different'>;
  /** Keys of the users' devices that are not revoked, by userId, then oldest device first. */
  forUsers(userIds: readonly Id[]): Promise<DeviceKeyRecord[]>;
  /** Keys of the devices, not revoked, of the conversation's members now; same order. */
  forConversation(conversationId: Id): Promise<DeviceKeyRecord[]>;
}

/** An upload as stored (R14): the metadata of a blob the core put. */
export interface AttachmentRecord {
  id: Id;
  uploaderId: Id;
  type: string;
  name: string;
  size: number;
  /** SHA-256 of the bytes, lower-case hex. */
  sha256: string;
  width?: number;
  height?: number;
  thumbnail?: { width: number; height: number };
  /** R18: ciphertext for an end-to-end encrypted conversation (type and name say nothing); absent when not. */
  encrypted?: true;
  createdAt: Millis;
}

/**
 * Uploads and who may see them (R14). An upload is referenced by the messages
 * that carry it (EventStore.append of a `message.created` with attachments
 * adds the references, in the same atomic step; deleting the message or
 * clearing it by retention drops them). It is *pending* until a first message
 * carries it, *attached* while one does, and *released* once none does any
 * more: a released upload is no one's to read or attach again, and waits for
 * the sweeper like a pending one.
 *
 * `append` refuses a `message.created` whose attachments are not all the
 * actor's and pending or attached with StoreError('not_found').
 */
export interface AttachmentStore {
  /** Records a new, pending upload. Throws StoreError('not_found') for an unknown uploader. */
  create(record: AttachmentRecord): Promise<void>;
  /**
   * The upload if `userId` may read it now: they uploaded it and it is not
   * released, or they are a member of a conversation where a message carries it.
   */
  readable(id: Id, userId: Id): Promise<AttachmentRecord | undefined>;
  /** Those of `ids` that `uploaderId` uploaded and may attach (pending or attached), in any order. */
  usable(uploaderId: Id, ids: readonly Id[]): Promise<AttachmentRecord[]>;
  /**
   * Ids of uploads nothing references since before `before` (pending since
   * their upload, released since their last reference went), at most `limit`,
   * oldest first.
   */
  unreferenced(before: Millis, limit: number): Promise<Id[]>;
  /**
   * Deletes the record of an upload that is still unreferenced since before
   * `before`; false when it is not (any more), even when a message carrying it
   * is being appended at the same moment, on any node.
   */
  remove(id: Id, before: Millis): Promise<boolean>;
}

/** Extension (R12): where a device wants push notifications, as the core checked and stored it. */
export interface PushSubscriptionRecord {
  id: Id;
  userId: Id;
  deviceId: Id;
  kind: 'webpush' | 'apns' | 'fcm';
  /** Web Push: the endpoint URL; APNs and FCM: the device token. One per kind in the whole store. */
  address: string;
  /** Web Push only: the browser's P-256 key and auth secret, base64url. */
  p256dh?: string;
  auth?: string;
  /** APNs only: the app's bundle id, when not the server's default topic. */
  topic?: string;
  createdAt: Millis;
}

/**
 * Push subscriptions (R12) and the server-wide secrets they need (the VAPID
 * key pair). A subscription belongs to a device: revoking the device
 * (`devices.revoke`) removes its subscriptions in the same step, and no read
 * here returns one of a revoked device.
 */
export interface PushStore {
  /**
   * Stores a subscription, or takes over the one with the same (kind,
   * address): a token registered again belongs to the device that registered
   * it last (a phone that changed hands must not get the old owner's
   * notifications). The record keeps its id then; created tells which.
   * Throws StoreError('not_found') for an unknown user or device.
   */
  put(sub: PushSubscriptionRecord): Promise<{ subscription: PushSubscriptionRecord; created: boolean }>;
  get(id: Id): Promise<PushSubscriptionRecord | undefined>;
  /** The user's subscriptions, ascending by id, keyset after `afterId`. */
  listForUser(userId: Id, limit: number, afterId?: Id): Promise<PushSubscriptionRecord[]>;
  countForDevice(deviceId: Id): Promise<number>;
  /** Every subscription of these users (any number of them). */
  forUsers(userIds: readonly Id[]): Promise<PushSubscriptionRecord[]>;
  /** False when there was none. */
  remove(id: Id): Promise<boolean>;
  /**
   * A value shared by every node: stores `value` under `name` unless one is
   * there, and returns the one stored (the first writer's, under races).
   */
  ensureSecret(name: string, value: string): Promise<string>;
}

export interface Store {
  users: UserStore;
  devices: DeviceStore;
  keys: DeviceKeyStore;
  conversations: ConversationStore;
  events: EventStore;
  blocks: BlockStore;
  retention: RetentionStore;
  search: SearchStore;
  attachments: AttachmentStore;
  push: PushStore;
  /** Resolves when every accepted write is durable; then releases resources. */
  close(): Promise<void>;
  /** Cheap liveness probe for /readyz. */
  ping(): Promise<boolean>;
}
