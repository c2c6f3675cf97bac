/**
 * Bus port: carries messages between chat nodes. Topics name who needs them:
 * `conv:<id>` (events, typing, receipts of a conversation) and `user:<id>`
 * (things addressed to one user: new conversations, session revocation, presence
 * of contacts). A node subscribes to the topics its connected users need and
 * unsubscribes when the last one leaves.
 *
 * Contract:
 * - At-most-once delivery to each subscribed node, in publish order per topic
 *   from one publisher. Clients restore order by seq and fill gaps with sync.
 * - A message carries everything a receiving node needs to push it: it never
 *   reads the database. `frame` is the serialised server frame, made once.
 * - `publish` resolves when the broker accepted the message (the in-process
 *   engine delivers synchronously before resolving), or when the engine kept
 *   it to send as soon as its link to the broker is back (bounded in count
 *   and age; a message older than that is dropped, and the nodes' catch-up
 *   after an outage covers it).
 * - Handlers must not mutate payloads: the in-process engine shares them.
 */
import type { ConversationEvent, Conversation, Id, PresenceStatus, Millis } from '../../protocol/model.js';

export type BusMessage =
  | { t: 'event'; event: ConversationEvent; frame: string }
  /**
   * Typing and receipts: not in the log. Skips every device of skipUserId, or the one connection skipConnId,
   * and every user of hideFrom (a block stands between them and the sender, core/blocks.ts).
   */
  | { t: 'ephemeral'; conversationId: Id; skipUserId?: Id; skipConnId?: string; hideFrom?: Id[]; frame: string }
  | { t: 'conversation'; userId: Id; conversation: Conversation }
  /** Published on the conv topic of each (not too large) conversation of userId; nodes dedupe per recipient. */
  | { t: 'presence'; conversationId: Id; userId: Id; status: PresenceStatus; lastActiveAt: Millis; hideFrom?: Id[]; frame: string }
  | { t: 'revoke'; userId: Id; deviceId: Id }
  /** A frame for every device of one user, published on user:<id>. */
  | { t: 'frame'; userId: Id; frame: string }
  /** Membership of a conversation changed: drop cached copies. Published on BROADCAST. */
  | { t: 'membership'; conversationId: Id }
  /** A block between these users was made or lifted: drop cached relations. Published on BROADCAST. */
  | { t: 'blocks'; userIds: Id[] };

/** The topic every node subscribes to. */
export const BROADCAST = 'all';
export const convTopic = (id: Id): string => `conv:${id}`;
export const userTopic = (id: Id): string => `user:${id}`;

export type BusHandler = (topic: string, message: BusMessage) => void;

export interface Bus {
  publish(topic: string, message: BusMessage): Promise<void>;
  /** Idempotent per topic. The node's handler receives its messages. */
  subscribe(topic: string): Promise<void>;
  unsubscribe(topic: string): Promise<void>;
  /** One handler per node; set once at start. */
  onMessage(handler: BusHandler): void;
  /** False while the broker is unreachable. */
  healthy(): boolean;
  /**
   * `listener` runs each time the broker link comes back after a drop, once
   * every subscription is live again. What was published meanwhile may never
   * have reached this node, so the node has its clients catch up (they sync).
   */
  onRecovered(listener: () => void): void;
  close(): Promise<void>;
}
