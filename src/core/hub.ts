/**
 * The node-local side of fan-out: which users have peers here, which
 * conversations they belong to, and the bus topics that follow from that.
 * Bus messages in, frames out to peers; it never reads the store on delivery.
 */
import type { Bus, BusMessage } from './ports/bus.js';
import { BROADCAST, convTopic, userTopic } from './ports/bus.js';
import type { ConversationEvent, Id } from '../protocol/model.js';
import { deliverEvent, type Peer } from './peer.js';
import { CLOSE } from '../protocol/errors.js';
import { serializeFrame } from './frames.js';

/**
 * A user with peers on this node. Kept small, there is one per connected user:
 * a lone peer is held as itself (a Set only from the second device on), the
 * conversation set is made on the first conversation, and the subscription
 * promise is dropped once it has resolved.
 */
interface LocalUser {
  peers: Peer | Set<Peer>;
  conversations: Set<Id> | undefined;
  /** Set while the user's topics are being subscribed; a second device waits on it. */
  ready: Promise<void> | undefined;
}

const NO_IDS: readonly Id[] = [];

function peerCount(u: LocalUser): number {
  return u.peers instanceof Set ? u.peers.size : 1;
}

export interface HubHooks {
  /** Conversation ids of a user; read once when their first peer arrives here. */
  conversationsOf(userId: Id): Promise<Id[]>;
  /** Membership changed somewhere: cached copies must go. */
  onMembershipChanged(conversationId: Id): void;
  /** A block between these users was made or lifted somewhere: cached relations must go. */
  onBlocksChanged(userIds: readonly Id[]): void;
  /** A device was revoked on some node: forget cached sessions of it. */
  onRevoked(deviceId: Id): void;
  /**
   * Called once per event that reaches this node, committed here or on another
   * node: for the delivery-latency metric and the known lastSeq of each conversation.
   */
  onEventDelivered?(event: ConversationEvent): void;
  /** Frames pushed to local peers, by frame type. */
  onDelivered?(type: string, count: number): void;
  /** The bus recovered from an outage and `peers` local peers are told to reconnect and sync. */
  onCatchUp?(peers: number): void;
}

export class Hub {
  private readonly users = new Map<Id, LocalUser>();
  /** Local users per conversation: who gets an event published on conv:<id>. */
  private readonly convUsers = new Map<Id, Set<Id>>();
  /** Presence frames already pushed, per recipient, in the current window (a user shares many conversations). */
  private presenceSeen = new Map<string, Set<Id>>();
  private readonly presenceTimer: NodeJS.Timeout;

  constructor(
    private readonly bus: Bus,
    private readonly hooks: HubHooks,
  ) {
    bus.onMessage((topic, msg) => this.onBus(topic, msg));
    bus.onRecovered(() => this.catchUpAll());
    this.presenceTimer = setInterval(() => (this.presenceSeen = new Map()), 2000).unref();
  }

  async start(): Promise<void> {
    await this.bus.subscribe(BROADCAST);
  }

  /** Registers a peer for live delivery; resolves once it will receive every event committed from now on. */
  async attach(peer: Peer): Promise<void> {
    let u = this.users.get(peer.userId);
    if (!u) {
      u = { peers: peer, conversations: undefined, ready: undefined };
      this.users.set(peer.userId, u);
      u.ready = this.subscribeUser(peer.userId, u);
    } else if (u.peers instanceof Set) u.peers.add(peer);
    else if (u.peers !== peer) u.peers = new Set([u.peers, peer]);
    const ready = u.ready;
    if (!ready) return;
    try {
      await ready;
      // A failed subscription stays, so that every peer waiting on it fails too.
      if (u.ready === ready) u.ready = undefined;
    } catch (err) {
      this.detach(peer);
      throw err;
    }
  }

  private async subscribeUser(userId: Id, entry: LocalUser): Promise<void> {
    await this.bus.subscribe(userTopic(userId));
    const convs = await this.hooks.conversationsOf(userId);
    await Promise.all(convs.map((c) => this.join(userId, c, entry)));
  }

  detach(peer: Peer): void {
    const u = this.users.get(peer.userId);
    if (!u) return;
    if (u.peers instanceof Set) {
      if (!u.peers.delete(peer) || u.peers.size > 1) return;
      const [last] = u.peers;
      if (last) {
        u.peers = last;
        return;
      }
    } else if (u.peers !== peer) return;
    this.users.delete(peer.userId);
    for (const c of u.conversations ?? NO_IDS) this.leave(peer.userId, c);
    void this.bus.unsubscribe(userTopic(peer.userId)).catch(() => undefined);
  }

  /** True while the user has a connection on this node (a socket or a long-poll mailbox). */
  connectedHere(userId: Id): boolean {
    return this.users.has(userId);
  }

  peersOf(userId: Id): Iterable<Peer> {
    const peers = this.users.get(userId)?.peers;
    return peers === undefined ? [] : peers instanceof Set ? peers : [peers];
  }

  localConversationsOf(userId: Id): Iterable<Id> | undefined {
    const u = this.users.get(userId);
    return u && (u.conversations ?? NO_IDS);
  }

  private async join(userId: Id, conversationId: Id, entry = this.users.get(userId)): Promise<void> {
    if (!entry || entry.conversations?.has(conversationId)) return;
    (entry.conversations ??= new Set()).add(conversationId);
    let set = this.convUsers.get(conversationId);
    if (!set) {
      set = new Set();
      this.convUsers.set(conversationId, set);
      set.add(userId);
      await this.bus.subscribe(convTopic(conversationId));
    } else set.add(userId);
  }

  private leave(userId: Id, conversationId: Id): void {
    this.users.get(userId)?.conversations?.delete(conversationId);
    const set = this.convUsers.get(conversationId);
    if (!set) return;
    set.delete(userId);
    if (set.size === 0) {
      this.convUsers.delete(conversationId);
      void this.bus.unsubscribe(convTopic(conversationId)).catch(() => undefined);
    }
  }

  private onBus(_topic: string, msg: BusMessage): void {
    switch (msg.t) {
      case 'event':
        return this.onEvent(msg);
      case 'ephemeral': {
        const users = this.convUsers.get(msg.conversationId);
        if (!users) return;
        let n = 0;
        for (const uid of users) {
          if (uid === msg.skipUserId || msg.hideFrom?.includes(uid)) continue;
          for (const p of this.peersOf(uid)) {
            if (p.connId === msg.skipConnId) continue;
            p.push(msg.frame);
            n++;
          }
        }
        this.hooks.onDelivered?.('ephemeral', n);
        return;
      }
      case 'presence':
        return this.onPresence(msg);
      case 'conversation': {
        if (!this.users.has(msg.userId)) return;
        const stillMember = msg.conversation.members.some((m) => m.userId === msg.userId);
        const apply = stillMember ? this.join(msg.userId, msg.conversation.id) : Promise.resolve(this.leave(msg.userId, msg.conversation.id));
        const frame = serializeFrame({ type: 'conversation', conversation: msg.conversation });
        void apply.then(() => this.pushToUser(msg.userId, frame, 'conversation'));
        return;
      }
      case 'frame':
        return this.pushToUser(msg.userId, msg.frame, 'frame');
      case 'revoke':
        this.hooks.onRevoked(msg.deviceId);
        for (const p of [...this.peersOf(msg.userId)]) if (p.deviceId === msg.deviceId) p.close(CLOSE.unauthorized, 'session revoked');
        return;
      case 'membership':
        this.hooks.onMembershipChanged(msg.conversationId);
        return;
      case 'blocks':
        this.hooks.onBlocksChanged(msg.userIds);
        return;
    }
  }

  /** Every local device of one user. */
  private pushToUser(userId: Id, frame: string, type: string): void {
    let n = 0;
    for (const p of this.peersOf(userId)) {
      p.push(frame);
      n++;
    }
    this.hooks.onDelivered?.(type, n);
  }

  private onEvent(msg: Extract<BusMessage, { t: 'event' }>): void {
    const ev = msg.event;
    this.hooks.onEventDelivered?.(ev);
    const users = this.convUsers.get(ev.conversationId);
    if (users) {
      let n = 0;
      for (const uid of users) {
        const u = this.users.get(uid);
        if (!u) continue;
        const peers = u.peers;
        if (peers instanceof Set) for (const p of peers) deliverEvent(p, ev.conversationId, ev.seq, msg.frame);
        else deliverEvent(peers, ev.conversationId, ev.seq, msg.frame);
        n += peerCount(u);
      }
      this.hooks.onDelivered?.('event', n);
    }
    // The event reached the removed member above; now they stop following it.
    if (ev.kind === 'member.left') this.leave(ev.userId, ev.conversationId);
    else if (ev.kind === 'member.joined' && this.users.has(ev.userId)) void this.join(ev.userId, ev.conversationId);
  }

  private onPresence(msg: Extract<BusMessage, { t: 'presence' }>): void {
    const users = this.convUsers.get(msg.conversationId);
    if (!users) return;
    // The same change arrives once per shared conversation; push it once per recipient.
    let seen = this.presenceSeen.get(msg.frame);
    if (!seen) this.presenceSeen.set(msg.frame, (seen = new Set()));
    let n = 0;
    for (const uid of users) {
      if (uid === msg.userId || seen.has(uid) || msg.hideFrom?.includes(uid)) continue;
      seen.add(uid);
      for (const p of this.peersOf(uid)) {
        p.push(msg.frame);
        n++;
      }
    }
    this.hooks.onDelivered?.('presence', n);
  }

  /**
   * The bus was down: events published meanwhile never reached these peers,
   * and a client only notices a gap when a later event comes. Every local peer
   * is asked to reconnect (4010), which makes it sync; the closes are spread
   * over a second so the peers do not all come back in the same instant.
   */
  private catchUpAll(): void {
    const peers: Peer[] = [];
    for (const u of this.users.values()) {
      if (u.peers instanceof Set) peers.push(...u.peers);
      else peers.push(u.peers);
    }
    this.hooks.onCatchUp?.(peers.length);
    const slices = 10;
    const per = Math.ceil(peers.length / slices);
    for (let i = 0; i < slices && i * per < peers.length; i++) {
      const slice = peers.slice(i * per, (i + 1) * per);
      setTimeout(() => {
        for (const p of slice) p.close(CLOSE.draining, 'message routing was interrupted; reconnect and sync');
      }, i * 100).unref();
    }
  }

  close(): void {
    clearInterval(this.presenceTimer);
  }
}
