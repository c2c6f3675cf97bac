/**
 * ParleyClient: one signed-in user on one device. Keeps a socket open
 * (reconnecting with jittered exponential backoff), syncs conversations from
 * the positions it holds, sends through a persisted outbox, and presents each
 * conversation's messages in seq order with gaps filled and duplicates dropped.
 *
 * Isomorphic: the browser's WebSocket/fetch/IndexedDB by default; Node passes
 * `ws` and a file store (see node.ts).
 */
import { CLOSE } from '../protocol/errors.js';
import type { ClientFrame, FrameRef, ServerFrame } from '../protocol/frames.js';
import type {
  Attachment,
  AttachmentLimits,
  UploadedAttachment,
  Block,
  Conversation,
  ConversationEvent,
  Id,
  Message,
  PresenceRequest,
  PresenceStatus,
  ReceiptKind,
  User,
} from '../protocol/model.js';
import { ConversationState, asJson, type PersistedConversation } from './cache.js';
import { Emitter } from './emitter.js';
import { ParleyError } from './errors.js';
import { HttpApi, type AttachmentFetch, type AuthResult, type FetchLike, type MessageSearch, type UploadBody, type UploadOptions } from './http.js';
import type { PushSubscription, PushSubscriptionInput, PushVapidInfo } from '../protocol/push.js';
import { IndexedDbStore } from './idb.js';
import { Outbox, newClientId, type OutboxItem } from './outbox.js';
import { OPEN, dropSocket, frameText, globalSocketFactory, type SocketFactory, type SocketLike } from './socket.js';
import { MemoryStore, ScopedStore, type KeyValueStore } from './storage.js';
import { E2eSession, isEncryptedBody } from './e2e/session.js';
import { E2E_SIZES, type EnvelopeContext, type EnvelopeFile } from '../protocol/e2e.js';
import { decryptFile, E2eFileError, encryptFile, envelopeFiles, fileType, sealedAttachment } from './e2e/files.js';
import { TypePolicy } from '../protocol/media-types.js';

export type ConnectionState = 'connecting' | 'online' | 'offline' | 'reconnecting';

export interface ClientOptions {
  /** Base URL of the server, e.g. `http://127.0.0.1:8080`; '' means the page's own origin. */
  url: string;
  /** WebSocket URL; derived from `url` when absent. */
  wsUrl?: string;
  socketFactory?: SocketFactory;
  fetch?: FetchLike;
  /** Where session, outbox and cache live. IndexedDB in browsers, memory otherwise. */
  storage?: KeyValueStore;
  deviceName?: string;
  /** Reconnect backoff: first delay and cap, in ms. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** How long a request waits for its answer on the socket. */
  requestTimeoutMs?: number;
  /** At most one `typing active` frame per conversation in this window. */
  typingThrottleMs?: number;
  /** Messages kept on disk per conversation. */
  cacheMessages?: number;
  /** Send `delivered` receipts for messages of others as they arrive. */
  autoDelivered?: boolean;
  /** Waits this long for a missing seq to arrive by itself before asking for a sync. */
  gapWaitMs?: number;
  /**
   * Longest text, in characters, of a message in an end-to-end encrypted conversation: the server
   * cannot count what it cannot read, so the SDK holds the text to the server's limit itself.
   * @default 4000 (PARLEY_MAX_BODY's default)
   */
  maxBodyChars?: number;
  /**
   * Before each connect, ask `GET /v1/discovery` at `url` for the least-loaded
   * healthy node and open the socket there. A discovered node that fails before
   * `ready` is not asked for again: the next attempt goes to `wsUrl` (the
   * balancer), so a dead node still listed for a few heartbeats costs one try.
   */
  discovery?: boolean;
}

export interface PresenceEntry {
  status: PresenceStatus;
  lastActiveAt?: number;
}

export interface TypingEntry {
  conversationId: Id;
  userId: Id;
  active: boolean;
}

export interface ClientEvents {
  state: ConnectionState;
  /** Signed in or out (null). */
  session: User | null;
  ready: { user: User; deviceId: Id };
  /** The first sync after a (re)connect finished. */
  synced: { reconnect: boolean };
  /** The list of conversations or the metadata of one changed. */
  conversations: undefined;
  /** The timeline (messages, ticks, outbox items) of one conversation changed. */
  timeline: { conversationId: Id };
  /** A new message was applied, in seq order, from anyone (ours included). */
  message: Message;
  /** Every durable event applied, in seq order per conversation. */
  event: ConversationEvent;
  typing: TypingEntry;
  receipt: { conversationId: Id; userId: Id; seq: number; kind: ReceiptKind };
  presence: { userId: Id; status: PresenceStatus; lastActiveAt?: number };
  /** The set of users this account blocks changed (block, unblock, or loaded with `loadBlocks`). */
  blocks: undefined;
  /** A failure the app may show (a refused send, a lost session). */
  error: ParleyError;
  /** Every frame from the server, before the SDK handles it. */
  frame: ServerFrame;
}

interface StoredSession {
  accessToken: string;
  refreshToken: string;
  expiresAt: number;
  issuedAt: number;
  deviceId: Id;
  user: User;
}

interface PendingRequest {
  resolve: (f: ServerFrame) => void;
  reject: (e: ParleyError) => void;
  timer: ReturnType<typeof setTimeout>;
}

type RequestFrame = ClientFrame extends infer F ? (F extends ClientFrame ? Omit<F, 'ref'> : never) : never;

const SESSION_KEY = 'session';
const TYPING_SHOWN_MS = 7000;
const TYPING_IDLE_MS = 4000;
/** Tries of one message the server answers with `internal` before it is marked failed (retry() sends it again). */
const MAX_INTERNAL_ATTEMPTS = 3;

export class ParleyClient extends Emitter<ClientEvents> {
  readonly api: HttpApi;
  private readonly opts: Required<Omit<ClientOptions, 'wsUrl' | 'socketFactory' | 'fetch' | 'storage' | 'deviceName' | 'discovery'>> & {
    deviceName: string;
  };
  private readonly wsUrl: string;
  private readonly discovery: boolean;
  /** The last discovered node failed before ready: skip discovery once. */
  private discoveredFailed = false;
  /** The socket URL of the current attempt, and whether discovery chose it. */
  private attemptDiscovered = false;
  /** Node the current socket reached through discovery, for apps and tests. */
  connectedNode: string | undefined;
  private readonly socketFactory: SocketFactory;
  private readonly rootStore: KeyValueStore;
  private store: KeyValueStore | undefined;

  private session: StoredSession | undefined;
  private refreshing: Promise<boolean> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;

  private ws: SocketLike | undefined;
  private socketReady = false;
  private connState: ConnectionState = 'offline';
  private running = false;
  private everReady = false;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private lastFrameAt = 0;
  private refreshedForAuth = false;
  private browserOffline = false;
  private readonly detachBrowser: (() => void)[] = [];

  private nextRef = 1;
  private readonly requests = new Map<FrameRef, PendingRequest>();

  private readonly convs = new Map<Id, ConversationState>();
  /** Events of conversations we do not hold yet, kept until their metadata arrives. */
  private readonly orphanEvents = new Map<Id, ConversationEvent[]>();
  private readonly adopting = new Set<Id>();
  private readonly loadingLatest = new Map<Id, Promise<void>>();
  private outboxStore: Outbox | undefined;
  private limitsAsked: Promise<AttachmentLimits> | undefined;
  /** Conversations whose outbox is being sent, with the token of the loop doing it. */
  private readonly sendingConvs = new Map<Id, symbol>();
  private dirty = new Set<Id>();
  private persistTimer: ReturnType<typeof setTimeout> | undefined;
  private lastFlush: Promise<void> | undefined;

  /** Conversations inside a sync that has not answered `synced` yet. */
  private readonly syncing = new Set<Id>();
  private fullSyncInFlight = false;
  private readonly gapTimers = new Map<Id, ReturnType<typeof setTimeout>>();
  private readonly gapRetries = new Map<Id, number>();

  private readonly pendingDelivered = new Map<Id, number>();
  private deliveredTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly pendingRead = new Map<Id, number>();

  private readonly presence = new Map<Id, PresenceEntry>();
  /** Users this account blocks, as far as this client knows: filled by loadBlocks, block and unblock. */
  private readonly blocked = new Set<Id>();
  private myStatus: PresenceRequest = 'online';
  private readonly typingIn = new Map<Id, Map<Id, ReturnType<typeof setTimeout>>>();
  private readonly typingOut = new Map<Id, { lastSent: number; idle: ReturnType<typeof setTimeout> | undefined }>();
  private readonly users = new Map<Id, User>();
  private readonly userFetches = new Map<Id, Promise<User | undefined>>();

  /** End-to-end encryption of this device (R18); undefined before start, or where WebCrypto is missing. */
  private e2e: E2eSession | undefined;
  /** Frames waiting to be applied, in arrival order, behind one that is being decrypted. */
  private frameQueue: Promise<void> | undefined;

  constructor(options: ClientOptions) {
    super();
    this.opts = {
      url: options.url.replace(/\/$/, ''),
      backoffMinMs: options.backoffMinMs ?? 500,
      backoffMaxMs: options.backoffMaxMs ?? 30_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      typingThrottleMs: options.typingThrottleMs ?? 3000,
      cacheMessages: options.cacheMessages ?? 200,
      autoDelivered: options.autoDelivered ?? true,
      gapWaitMs: options.gapWaitMs ?? 250,
      maxBodyChars: options.maxBodyChars ?? 4000,
      deviceName: options.deviceName ?? defaultDeviceName(),
    };
    this.wsUrl = options.wsUrl ?? deriveWsUrl(this.opts.url);
    this.discovery = options.discovery ?? false;
    const factory = options.socketFactory ?? globalSocketFactory();
    if (!factory) throw new Error('no WebSocket available: pass socketFactory (Node: use createNodeClient from node.ts)');
    this.socketFactory = factory;
    this.rootStore = options.storage ?? (IndexedDbStore.available() ? new IndexedDbStore() : new MemoryStore());
    this.api = new HttpApi(
      this.opts.url,
      {
        accessToken: () => this.validAccessToken(),
        unauthorized: () => this.refresh(),
      },
      options.fetch,
    );
  }

  // ---------------------------------------------------------------- session

  get user(): User | undefined {
    return this.session?.user;
  }
  get deviceId(): Id | undefined {
    return this.session?.deviceId;
  }
  get state(): ConnectionState {
    return this.connState;
  }

  async register(username: string, password: string, displayName?: string): Promise<User> {
    return (await this.api.register(username, password, displayName)).user;
  }

  /** Signs in and starts the connection. */
  async login(username: string, password: string): Promise<User> {
    const res = await this.api.login(username, password, this.opts.deviceName);
    await this.adoptSession(res);
    await this.start();
    return res.user;
  }

  /** Resumes a session kept in storage (a page reload). False when there is none. */
  async restore(): Promise<boolean> {
    const raw = (await this.rootStore.get(SESSION_KEY)) as unknown as StoredSession | undefined;
    if (!raw || typeof raw.refreshToken !== 'string') return false;
    this.session = raw;
    this.rememberUser(raw.user);
    this.emit('session', raw.user);
    await this.start();
    return true;
  }

  async logout(): Promise<void> {
    try {
      if (this.session) await this.api.logout();
    } catch {
      // Signing out locally matters more than telling a server we cannot reach.
    }
    await this.endSession(true);
  }

  private async adoptSession(res: AuthResult): Promise<void> {
    const now = Date.now();
    this.session = {
      accessToken: res.accessToken,
      refreshToken: res.refreshToken,
      expiresAt: now + res.expiresIn * 1000,
      issuedAt: now,
      deviceId: res.deviceId,
      user: res.user,
    };
    this.rememberUser(res.user);
    await this.rootStore.set(SESSION_KEY, asJson(this.session));
    this.scheduleRefresh();
    this.emit('session', res.user);
  }

  private async endSession(wipe: boolean): Promise<void> {
    const userId = this.session?.user.id;
    this.stop();
    this.session = undefined;
    await this.rootStore.delete(SESSION_KEY).catch(() => undefined);
    if (wipe && userId && this.store) {
      for (const k of await this.store.keys('')) await this.store.delete(k).catch(() => undefined);
    }
    this.convs.clear();
    this.blocked.clear();
    this.e2e = undefined;
    this.store = undefined;
    this.outboxStore = undefined;
    this.emit('session', null);
    this.emit('conversations', undefined);
  }

  private scheduleRefresh(): void {
    clearTimeout(this.refreshTimer);
    const s = this.session;
    if (!s || !this.running) return;
    const ttl = s.expiresAt - s.issuedAt;
    // Refresh at 80% of the lifetime (at most a minute early), so a request never carries a dead token.
    const at = s.expiresAt - Math.min(60_000, ttl * 0.2);
    this.refreshTimer = setTimeout(() => void this.refresh(), Math.max(1000, at - Date.now()));
  }

  private async validAccessToken(): Promise<string | undefined> {
    const s = this.session;
    if (!s) return undefined;
    if (Date.now() > s.expiresAt - 5000) await this.refresh();
    return this.session?.accessToken;
  }

  /** One refresh at a time; false when it failed. A refused refresh token ends the session. */
  refresh(): Promise<boolean> {
    this.refreshing ??= (async () => {
      const s = this.session;
      if (!s) return false;
      try {
        const res = await this.api.refresh(s.refreshToken);
        if (this.session !== s) return false;
        await this.adoptSession(res);
        return true;
      } catch (err) {
        const e = err instanceof ParleyError ? err : new ParleyError('network', String(err));
        if (!e.transient) {
          this.emit('error', new ParleyError('unauthorized', 'Your session has ended; please sign in again.', 401));
          await this.endSession(false);
        } else this.refreshTimer = setTimeout(() => void this.refresh(), 5000);
        return false;
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  // ------------------------------------------------------------- lifecycle

  /** Loads the cache and outbox of the signed-in user and connects. */
  async start(): Promise<void> {
    const s = this.session;
    if (!s) throw new Error('not signed in');
    if (this.running) return;
    this.running = true;
    this.store = new ScopedStore(this.rootStore, `u/${s.user.id}/`);
    await this.openE2e(s);
    await this.loadCache(s.user.id);
    this.outboxStore = new Outbox(this.store);
    await this.outboxStore.load();
    this.emit('conversations', undefined);
    this.watchBrowser();
    this.scheduleRefresh();
    this.connect();
  }

  /** Closes the connection and stops every timer; the cache stays. */
  stop(): void {
    this.running = false;
    for (const d of this.detachBrowser.splice(0)) d();
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.refreshTimer);
    clearTimeout(this.deliveredTimer);
    for (const t of this.gapTimers.values()) clearTimeout(t);
    this.gapTimers.clear();
    for (const m of this.typingIn.values()) for (const t of m.values()) clearTimeout(t);
    this.typingIn.clear();
    for (const t of this.typingOut.values()) clearTimeout(t.idle);
    this.typingOut.clear();
    this.closeSocket();
    if (this.persistTimer) {
      clearTimeout(this.persistTimer);
      this.persistTimer = undefined;
      this.lastFlush = this.flushCache();
    }
    this.setState('offline');
  }

  /**
   * stop(), then waits until the cache, outbox and session writes already
   * started have reached the store: after this the store's files can be moved
   * or removed.
   */
  async close(): Promise<void> {
    this.stop();
    await this.lastFlush?.catch(() => undefined);
    await this.rootStore.settled?.();
  }

  private watchBrowser(): void {
    const w = (globalThis as { window?: Window }).window;
    if (!w?.addEventListener) return;
    this.browserOffline = typeof navigator !== 'undefined' && navigator.onLine === false;
    const off = (): void => {
      this.browserOffline = true;
      this.closeSocket();
      this.setState('offline');
    };
    const on = (): void => {
      this.browserOffline = false;
      this.attempt = 0;
      clearTimeout(this.reconnectTimer);
      if (this.running && !this.ws) this.connect();
    };
    // Background pages run timers late (aligned to seconds), so a debounced write may not happen before the page goes.
    const hide = (): void => {
      if (this.persistTimer) {
        clearTimeout(this.persistTimer);
        this.persistTimer = undefined;
      }
      void this.flushCache();
    };
    w.addEventListener('offline', off);
    w.addEventListener('online', on);
    w.addEventListener('pagehide', hide);
    this.detachBrowser.push(() => {
      w.removeEventListener('offline', off);
      w.removeEventListener('online', on);
      w.removeEventListener('pagehide', hide);
    });
  }

  private setState(s: ConnectionState): void {
    if (this.connState === s) return;
    this.connState = s;
    this.emit('state', s);
  }

  private connect(): void {
    if (!this.running || this.ws) return;
    if (this.browserOffline) {
      this.setState('offline');
      return;
    }
    this.setState(this.everReady ? 'reconnecting' : 'connecting');
    if (!this.discovery || this.discoveredFailed) {
      this.discoveredFailed = false;
      this.open(this.wsUrl, undefined);
      return;
    }
    this.discovering ??= this.api.discovery().then(
      (d) => this.open(d.wsUrl, d.nodeId),
      () => this.open(this.wsUrl, undefined),
    ).finally(() => (this.discovering = undefined));
  }

  private discovering: Promise<void> | undefined;

  private open(url: string, nodeId: string | undefined): void {
    if (!this.running || this.ws) return;
    this.attemptDiscovered = nodeId !== undefined;
    this.connectedNode = nodeId;
    let ws: SocketLike;
    try {
      ws = this.socketFactory(url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.socketReady = false;
    this.connectTimer = setTimeout(() => {
      if (this.ws === ws && !this.socketReady) this.socketLost(ws, 0);
    }, this.opts.requestTimeoutMs + 5000);
    ws.onopen = () => void this.authenticate(ws);
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      const text = frameText(ev.data);
      if (text === undefined) return;
      let frame: ServerFrame;
      try {
        frame = JSON.parse(text) as ServerFrame;
      } catch {
        return;
      }
      this.lastFrameAt = Date.now();
      this.handleFrame(frame);
    };
    ws.onclose = (ev) => {
      if (this.ws === ws) this.socketLost(ws, ev.code);
    };
    ws.onerror = () => {
      // A close event follows; `ws` in Node emits error without close for a refused connection.
      setTimeout(() => {
        if (this.ws === ws && ws.readyState !== OPEN) this.socketLost(ws, 0);
      }, 0);
    };
  }

  private async authenticate(ws: SocketLike): Promise<void> {
    const token = await this.validAccessToken();
    if (this.ws !== ws) return;
    if (!token) {
      this.socketLost(ws, CLOSE.unauthorized);
      return;
    }
    try {
      const ready = await this.request({ type: 'auth', token });
      if (ready.type !== 'ready' || this.ws !== ws) return;
      this.onReady(ws, ready);
    } catch {
      // A 4001 close or a timeout: socketLost takes it from there.
      if (this.ws === ws && ws.readyState === OPEN) this.socketLost(ws, 0);
    }
  }

  private onReady(ws: SocketLike, ready: Extract<ServerFrame, { type: 'ready' }>): void {
    clearTimeout(this.connectTimer);
    const reconnect = this.everReady;
    this.socketReady = true;
    this.everReady = true;
    this.attempt = 0;
    this.refreshedForAuth = false;
    if (this.session) {
      this.session.user = ready.user;
      this.rememberUser(ready.user);
    }
    this.setState('online');
    this.emit('ready', { user: ready.user, deviceId: ready.deviceId });
    this.startHeartbeat(ws, ready.heartbeatMs);
    if (this.myStatus !== 'online') this.fire({ type: 'presence', status: this.myStatus });
    void this.fullSync(reconnect);
    void this.e2e?.publish().catch(() => undefined);
    for (const id of new Set(this.outbox().map((i) => i.conversationId))) void this.pump(id);
    for (const [id, seq] of this.pendingRead) this.fire({ type: 'receipt', conversationId: id, seq, kind: 'read' });
    this.pendingRead.clear();
    this.flushDelivered();
  }

  private startHeartbeat(ws: SocketLike, heartbeatMs: number): void {
    clearInterval(this.heartbeatTimer);
    const every = Math.max(1000, heartbeatMs || 25_000);
    let lastPingAt = Date.now();
    this.lastFrameAt = Date.now();
    this.heartbeatTimer = setInterval(() => {
      if (this.ws !== ws) return;
      // Nothing at all since the previous ping (not even its pong): the link is dead.
      if (this.lastFrameAt < lastPingAt) {
        this.socketLost(ws, 0);
        return;
      }
      lastPingAt = Date.now();
      this.fire({ type: 'ping', ref: this.ref() });
    }, every);
  }

  private closeSocket(): void {
    const ws = this.ws;
    this.ws = undefined;
    this.socketReady = false;
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.connectTimer);
    if (ws) dropSocket(ws);
    this.failRequests();
    this.outboxStore?.requeue();
    this.sendingConvs.clear();
    this.syncing.clear();
    this.fullSyncInFlight = false;
    // Without a connection we no longer know who is online; refreshed after the next sync.
    if (this.presence.size) {
      this.presence.clear();
      this.emit('conversations', undefined);
    }
  }

  private socketLost(ws: SocketLike, code: number): void {
    if (this.ws !== ws) return;
    if (this.attemptDiscovered && !this.socketReady) this.discoveredFailed = true;
    this.closeSocket();
    for (const id of new Set(this.outbox().map((i) => i.conversationId))) this.emit('timeline', { conversationId: id });
    if (!this.running) return;
    if (code === CLOSE.unauthorized) {
      // The token expired or was revoked: refresh once, then reconnect; a second refusal ends the session.
      if (this.refreshedForAuth) {
        this.emit('error', new ParleyError('unauthorized', 'The server refused this session.', 401));
        void this.endSession(false);
        return;
      }
      this.refreshedForAuth = true;
      this.setState('reconnecting');
      void this.refresh().then((ok) => {
        if (ok) this.connect();
        else if (this.running) this.scheduleReconnect();
      });
      return;
    }
    if (code === CLOSE.draining) {
      // The node is going away on purpose; another one is ready, so do not back off.
      this.attempt = 0;
      this.setState('reconnecting');
      this.reconnectTimer = setTimeout(() => this.connect(), Math.random() * 250);
      return;
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (!this.running) return;
    this.setState(this.browserOffline ? 'offline' : this.everReady ? 'reconnecting' : 'connecting');
    clearTimeout(this.reconnectTimer);
    const cap = Math.min(this.opts.backoffMaxMs, this.opts.backoffMinMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    // Full jitter: spreads a crowd of clients that lost the same node.
    const delay = this.opts.backoffMinMs / 2 + Math.random() * cap;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  /** Reconnects now (a "retry" button, or a test). */
  reconnectNow(): void {
    if (!this.running) return;
    this.attempt = 0;
    clearTimeout(this.reconnectTimer);
    if (this.ws) {
      const ws = this.ws;
      this.socketLost(ws, 0);
      clearTimeout(this.reconnectTimer);
    }
    this.connect();
  }

  // ------------------------------------------------------------- requests

  private ref(): string {
    return `c${this.nextRef++}`;
  }

  /** Sends a frame that needs no answer; dropped when not connected. */
  private fire(frame: ClientFrame): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) return false;
    if (frame.type !== 'auth' && !this.socketReady) return false;
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** Sends a request frame and waits for the frame that answers its ref. */
  request(frame: RequestFrame, timeoutMs = this.opts.requestTimeoutMs): Promise<ServerFrame> {
    const ref = this.ref();
    const full = { ...frame, ref } as ClientFrame;
    return new Promise<ServerFrame>((resolve, reject) => {
      if (!this.fire(full)) {
        reject(new ParleyError('network', 'not connected'));
        return;
      }
      const timer = setTimeout(() => {
        this.requests.delete(ref);
        reject(new ParleyError('timeout', `no answer to ${frame.type} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.requests.set(ref, { resolve, reject, timer });
    });
  }

  private failRequests(): void {
    for (const [ref, p] of this.requests) {
      clearTimeout(p.timer);
      this.requests.delete(ref);
      p.reject(new ParleyError('network', 'connection lost'));
    }
  }

  // ---------------------------------------------------------------- frames

  /**
   * Handles one frame from the server. Public so that tests can feed frames
   * in any order or twice; the app never calls it.
   */
  handleFrame(frame: ServerFrame): void {
    this.emit('frame', frame);
    const readable = this.readableFrame(frame);
    if (!readable && !this.frameQueue) {
      this.applyFrame(frame);
      return;
    }
    // Decryption is asynchronous; frames still take effect in the order they came (an ack after its events,
    // `synced` after the sync's events), so every frame waits behind one being decrypted.
    const queued = (this.frameQueue ?? Promise.resolve()).then(async () => this.applyFrame(readable ? await readable : frame));
    this.frameQueue = queued;
    void queued.finally(() => {
      if (this.frameQueue === queued) this.frameQueue = undefined;
    });
  }

  private applyFrame(frame: ServerFrame): void {
    const ref = 'ref' in frame ? frame.ref : undefined;
    if (ref !== undefined) {
      const p = this.requests.get(ref);
      if (p) {
        this.requests.delete(ref);
        clearTimeout(p.timer);
        if (frame.type === 'error') p.reject(new ParleyError(frame.code, frame.message, 0, frame.retryAfterMs));
        else p.resolve(frame);
      }
    }
    switch (frame.type) {
      case 'event':
        this.ingest(frame.event);
        break;
      case 'ack':
        if ('message' in frame) this.ingestMessage(frame.message);
        else this.ingest(frame.event);
        break;
      case 'conversation':
        this.upsertConversation(frame.conversation);
        break;
      case 'typing':
        this.onTyping(frame.conversationId, frame.userId, frame.active);
        break;
      case 'receipt': {
        const c = this.convs.get(frame.conversationId);
        if (c?.receipt(frame.userId, frame.seq, frame.kind)) {
          this.markDirty(c.id);
          this.emit('timeline', { conversationId: c.id });
          if (frame.userId === this.user?.id) this.emit('conversations', undefined);
        }
        this.emit('receipt', { conversationId: frame.conversationId, userId: frame.userId, seq: frame.seq, kind: frame.kind });
        break;
      }
      case 'presence':
        this.presence.set(frame.userId, { status: frame.status, lastActiveAt: frame.lastActiveAt });
        this.emit('presence', { userId: frame.userId, status: frame.status, lastActiveAt: frame.lastActiveAt });
        break;
      case 'error':
        if (ref === undefined) this.emit('error', new ParleyError(frame.code, frame.message, 0, frame.retryAfterMs));
        break;
      default:
        break;
    }
  }

  /** A message known to be committed (an ack, or a POST answer) enters like its creation event. */
  private ingestMessage(m: Message): void {
    const c = this.convs.get(m.conversationId);
    // Shown at once even if earlier seqs are still on their way; ordering is by seq anyway.
    if (c && c.insertSnapshot([m]).length) {
      this.markDirty(c.id);
      this.emit('timeline', { conversationId: c.id });
    }
    this.ingest({ conversationId: m.conversationId, seq: m.seq, kind: 'message.created', at: m.createdAt, actorId: m.senderId, message: m });
  }

  private ingest(e: ConversationEvent): void {
    const c = this.convs.get(e.conversationId);
    if (!c) {
      const list = this.orphanEvents.get(e.conversationId) ?? [];
      if (list.length < 1000) list.push(e);
      this.orphanEvents.set(e.conversationId, list);
      void this.adoptById(e.conversationId);
      return;
    }
    const r = c.ingest(e);
    if (r.applied.length) this.afterApplied(c, r.applied);
    if (r.gap) this.scheduleGapFill(c.id);
    else this.clearGap(c.id);
  }

  private afterApplied(c: ConversationState, applied: ConversationEvent[]): void {
    const me = this.user?.id;
    let leftMe = false;
    for (const e of applied) {
      this.emit('event', e);
      if (e.kind === 'message.created') {
        this.stopShowingTyping(c.id, e.message.senderId);
        this.emit('message', e.message);
        if (e.message.senderId !== me) this.queueDelivered(c.id, e.seq);
      }
      if (e.kind === 'member.left' && e.userId === me) leftMe = true;
      if (e.kind === 'member.joined' || e.kind === 'member.left') this.e2e?.membersChanged(c.id);
    }
    if (leftMe) {
      this.convs.delete(c.id);
      void this.store?.delete(`c/${c.id}`);
      this.emit('conversations', undefined);
      return;
    }
    this.markDirty(c.id);
    this.emit('timeline', { conversationId: c.id });
    this.emit('conversations', undefined);
  }

  private upsertConversation(conv: Conversation): void {
    const me = this.user?.id;
    if (!me) return;
    if (!conv.members.some((m) => m.userId === me)) {
      // We were removed; forget it.
      if (this.convs.delete(conv.id)) {
        void this.store?.delete(`c/${conv.id}`);
        this.emit('conversations', undefined);
      }
      return;
    }
    const c = this.convs.get(conv.id);
    if (c) {
      this.refreshHeld(c, conv);
      this.emit('conversations', undefined);
      this.emit('timeline', { conversationId: c.id });
      return;
    }
    this.adopt(conv);
  }

  /** Starts holding a conversation we did not know, at the server's current position. */
  private adopt(conv: Conversation): ConversationState {
    const me = this.user?.id as Id;
    const existing = this.convs.get(conv.id);
    if (existing) return existing;
    const c = new ConversationState(conv, me);
    this.convs.set(conv.id, c);
    const held = this.orphanEvents.get(conv.id) ?? [];
    this.orphanEvents.delete(conv.id);
    held.sort((a, b) => a.seq - b.seq);
    for (const e of held) {
      const r = c.ingest(e);
      if (r.applied.length) this.afterApplied(c, r.applied);
    }
    if (c.pending.size) this.scheduleGapFill(c.id);
    this.markDirty(c.id, true);
    this.emit('conversations', undefined);
    const unknown = c.conversation.members.map((m) => m.userId).filter((u) => u !== me && !this.presence.has(u));
    if (unknown.length && this.socketReady) void this.refreshPresence(unknown);
    if (c.conversation.lastSeq > 0) void this.loadLatest(c.id);
    else {
      c.loaded = true;
      c.hasMoreBefore = false;
    }
    return c;
  }

  private async adoptById(id: Id): Promise<void> {
    if (this.adopting.has(id) || this.convs.has(id)) return;
    this.adopting.add(id);
    try {
      const { conversation } = await this.api.conversation(id);
      const readable = await this.readableConversation(conversation);
      if (!this.convs.has(id)) this.adopt(readable);
    } catch {
      this.orphanEvents.delete(id);
    } finally {
      this.adopting.delete(id);
    }
  }

  // ------------------------------------------------------------------ sync

  private async fullSync(reconnect: boolean): Promise<void> {
    const positions: Record<Id, number> = {};
    for (const c of this.convs.values()) {
      positions[c.id] = c.position;
      this.syncing.add(c.id);
    }
    this.fullSyncInFlight = true;
    try {
      await this.request({ type: 'sync', positions }, Math.max(this.opts.requestTimeoutMs, 30_000));
    } catch {
      return;
    } finally {
      this.fullSyncInFlight = false;
      for (const id of Object.keys(positions)) this.syncing.delete(id);
    }
    for (const c of this.convs.values()) if (c.pending.size) this.scheduleGapFill(c.id, 0);
    this.emit('synced', { reconnect });
    void this.refreshConversationList();
    void this.refreshPresence();
  }

  private scheduleGapFill(id: Id, wait = this.opts.gapWaitMs): void {
    if (this.gapTimers.has(id)) return;
    this.gapTimers.set(
      id,
      setTimeout(() => {
        this.gapTimers.delete(id);
        void this.fillGap(id);
      }, wait),
    );
  }

  private clearGap(id: Id): void {
    const t = this.gapTimers.get(id);
    if (t) {
      clearTimeout(t);
      this.gapTimers.delete(id);
    }
    this.gapRetries.delete(id);
  }

  /** Asks the server for what follows our position in one conversation. */
  private async fillGap(id: Id): Promise<void> {
    const c = this.convs.get(id);
    if (!c || this.syncing.has(id)) return;
    if (!this.socketReady || this.fullSyncInFlight) return; // the sync after the next ready covers it
    const tries = (this.gapRetries.get(id) ?? 0) + 1;
    this.gapRetries.set(id, tries);
    if (tries > 3) {
      // The server does not have the missing seqs (retention): move on rather than stall forever.
      const applied = c.skipGap();
      if (applied.length) this.afterApplied(c, applied);
      this.gapRetries.delete(id);
      return;
    }
    this.syncing.add(id);
    try {
      await this.request({ type: 'sync', positions: { [id]: c.position } });
    } catch {
      // Lost connection: the full sync after reconnect covers it.
    } finally {
      this.syncing.delete(id);
    }
    if (c.pending.size || c.conversation.lastSeq > c.position) this.scheduleGapFill(id, this.opts.gapWaitMs * tries);
    else this.gapRetries.delete(id);
  }

  /** Metadata (titles, members, unread counts, previews) of every conversation, from HTTP. */
  async refreshConversationList(): Promise<void> {
    try {
      let after: string | undefined;
      for (let page = 0; page < 50; page++) {
        const res = await this.api.conversations(after, 100);
        for (const conv of await Promise.all(res.conversations.map((c) => this.readableConversation(c)))) this.upsertConversation(conv);
        if (!res.next) break;
        after = res.next;
      }
    } catch (err) {
      if (err instanceof ParleyError && !err.transient) this.emit('error', err);
    }
  }

  /** Presence of the given users, or of everyone we share a conversation with. */
  private async refreshPresence(userIds?: Id[]): Promise<void> {
    const me = this.user?.id;
    const ids = new Set<Id>(userIds);
    if (!userIds) for (const c of this.convs.values()) for (const m of c.conversation.members) if (m.userId !== me) ids.add(m.userId);
    const all = [...ids];
    try {
      for (let i = 0; i < all.length; i += 100) {
        const { presence } = await this.api.presence(all.slice(i, i + 100));
        for (const p of presence) {
          this.presence.set(p.userId, { status: p.status, lastActiveAt: p.lastActiveAt });
          this.emit('presence', { userId: p.userId, status: p.status, lastActiveAt: p.lastActiveAt });
        }
      }
    } catch {
      // Presence is decoration; live frames still arrive.
    }
  }

  // ----------------------------------------------------------------- reads

  /** Conversations, most recently active first. */
  conversations(): ConversationState[] {
    return [...this.convs.values()].sort(
      (a, b) => (b.lastMessage()?.createdAt ?? b.conversation.updatedAt) - (a.lastMessage()?.createdAt ?? a.conversation.updatedAt),
    );
  }

  conversation(id: Id): ConversationState | undefined {
    return this.convs.get(id);
  }

  /** Messages of a conversation in seq order (not including the outbox). */
  messages(id: Id): readonly Message[] {
    return this.convs.get(id)?.messages ?? [];
  }

  outbox(conversationId?: Id): OutboxItem[] {
    return this.outboxStore?.all(conversationId) ?? [];
  }

  presenceOf(userId: Id): PresenceEntry | undefined {
    return this.presence.get(userId);
  }

  /**
   * Blocks a user (R17): from now on neither of you can message the other
   * directly, they cannot add you to groups, and neither sees the other's
   * presence or typing. Their presence is shown as unknown from here on.
   */
  async block(userId: Id): Promise<Block> {
    const { block } = await this.api.block(userId);
    this.blocked.add(userId);
    this.presence.delete(userId);
    this.emit('blocks', undefined);
    return block;
  }

  async unblock(userId: Id): Promise<void> {
    await this.api.unblock(userId);
    this.blocked.delete(userId);
    this.emit('blocks', undefined);
    void this.refreshPresence([userId]);
  }

  /** Every user this account blocks, read page by page from the server. */
  async loadBlocks(): Promise<Block[]> {
    const all: Block[] = [];
    let after: string | undefined;
    do {
      const page = await this.api.blocks(after, 200);
      all.push(...page.blocks);
      after = page.next ?? undefined;
    } while (after);
    this.blocked.clear();
    for (const b of all) {
      this.blocked.add(b.user.id);
      this.users.set(b.user.id, b.user);
    }
    this.emit('blocks', undefined);
    return all;
  }

  /** True when this account blocks the user (as of the last loadBlocks, block or unblock). */
  isBlocked(userId: Id): boolean {
    return this.blocked.has(userId);
  }

  /** Users typing in a conversation now (not us). */
  typingUsers(conversationId: Id): Id[] {
    return [...(this.typingIn.get(conversationId)?.keys() ?? [])];
  }

  /** Sent / delivered / read for a message of ours. */
  tick(m: Message): 'sent' | 'delivered' | 'read' {
    return this.convs.get(m.conversationId)?.tick(m) ?? 'sent';
  }

  /** A user's profile, from cache or the server. */
  userById(id: Id): User | undefined {
    const u = this.users.get(id);
    if (!u) void this.fetchUser(id);
    return u;
  }

  fetchUser(id: Id): Promise<User | undefined> {
    const known = this.users.get(id);
    if (known) return Promise.resolve(known);
    let p = this.userFetches.get(id);
    if (!p) {
      p = this.api
        .user(id)
        .then(({ user }) => {
          this.rememberUser(user);
          this.emit('conversations', undefined);
          return user;
        })
        .catch(() => undefined)
        .finally(() => {
          // Leave a failure cached for a while so a list render does not hammer the server.
          setTimeout(() => this.userFetches.delete(id), 30_000);
        });
      this.userFetches.set(id, p);
    }
    return p;
  }

  private rememberUser(u: User): void {
    this.users.set(u.id, u);
  }

  async searchUsers(q: string): Promise<User[]> {
    const { users } = await this.api.searchUsers(q, 20);
    for (const u of users) this.rememberUser(u);
    return users;
  }

  /**
   * Messages with every word of `q` (each as a word prefix) in the user's
   * conversations, newest first; pass `next` back as `after` for more. A page
   * may be short, even empty, while `next` is set. Online only: the server
   * holds the index.
   */
  async searchMessages(q: MessageSearch): Promise<{ messages: Message[]; next: string | null }> {
    return this.api.searchMessages(q);
  }

  // --------------------------------------------------------------- push (R12)

  /** The server's VAPID public key (`applicationServerKey` for `PushManager.subscribe`) and the push kinds it delivers. */
  pushVapid(): Promise<PushVapidInfo> {
    return this.api.pushVapid();
  }

  /**
   * Asks the server to notify this device through a push service while it has
   * no connection: a browser's `PushSubscription.toJSON()` with `kind:
   * "webpush"`, or an APNs or FCM token. Registering the same one again
   * returns the same subscription. It ends when this session logs out or is
   * revoked.
   */
  async registerPush(input: PushSubscriptionInput): Promise<PushSubscription> {
    return (await this.api.registerPush(input)).subscription;
  }

  /** The push subscriptions of every device of this user (`current` marks this one's). */
  async pushSubscriptions(): Promise<PushSubscription[]> {
    const out: PushSubscription[] = [];
    let after: string | undefined;
    do {
      const page = await this.api.pushSubscriptions(after, 100);
      out.push(...page.subscriptions);
      after = page.next ?? undefined;
    } while (after);
    return out;
  }

  /** Stops one subscription (of any of this user's devices). */
  unregisterPush(id: Id): Promise<void> {
    return this.api.unregisterPush(id);
  }

  // --------------------------------------------------------------- history

  /** Makes sure the newest page of a conversation is held (call when opening it). */
  loadLatest(id: Id): Promise<void> {
    const c = this.convs.get(id);
    if (!c || c.loaded) return Promise.resolve();
    let p = this.loadingLatest.get(id);
    if (!p) {
      p = (async () => {
        try {
          const res = await this.api.messages(id, { limit: 50 });
          const oldestBefore = c.oldestSeq();
          c.insertSnapshot(await this.readableMessages(c.conversation, res.messages));
          const first = res.messages[0];
          // What we held may already reach further back than this page.
          c.hasMoreBefore = res.hasMore && (oldestBefore === undefined || first === undefined || first.seq <= oldestBefore);
          if (!res.hasMore) c.hasMoreBefore = false;
          c.loaded = true;
          this.markDirty(id);
          this.emit('timeline', { conversationId: id });
          this.emit('conversations', undefined);
        } catch {
          // Offline: what is cached stays readable; retried on the next open.
        } finally {
          this.loadingLatest.delete(id);
        }
      })();
      this.loadingLatest.set(id, p);
    }
    return p;
  }

  /** Loads the page of history before the oldest held message; false when there is no more. */
  async loadOlder(id: Id, limit = 50): Promise<boolean> {
    const c = this.convs.get(id);
    if (!c) return false;
    if (!c.loaded) await this.loadLatest(id);
    if (!c.hasMoreBefore) return false;
    const oldest = c.oldestSeq();
    const res = await this.api.messages(id, oldest === undefined ? { limit } : { before: oldest, limit });
    c.insertSnapshot(await this.readableMessages(c.conversation, res.messages));
    c.hasMoreBefore = res.hasMore;
    this.markDirty(id);
    this.emit('timeline', { conversationId: id });
    return res.hasMore;
  }

  // ---------------------------------------------------------------- writes

  /**
   * Queues a message; it is on disk when this resolves, and is sent now or
   * whenever the connection returns, with the same clientId until acknowledged.
   */
  async send(conversationId: Id, body: string, opts: { replyTo?: Id; attachments?: Attachment[] } = {}): Promise<OutboxItem> {
    const ob = this.outboxStore;
    if (!ob) throw new Error('not started');
    const item: OutboxItem = {
      clientId: newClientId(),
      conversationId,
      body,
      createdAt: Date.now(),
      state: 'queued',
      attempts: 0,
    };
    if (opts.replyTo) item.replyTo = opts.replyTo;
    if (opts.attachments?.length) item.attachments = opts.attachments.map((a) => ({ ...a }));
    await ob.add(item);
    this.stopTyping(conversationId);
    this.emit('timeline', { conversationId });
    void this.pump(conversationId);
    return item;
  }

  /** Sends the outbox of one conversation, one message at a time, in compose order. */
  private async pump(conversationId: Id): Promise<void> {
    const ob = this.outboxStore;
    if (!ob || this.sendingConvs.has(conversationId)) return;
    // A loop from before a reconnect may still be unwinding; only the current one may clear the mark.
    const token = Symbol(conversationId);
    this.sendingConvs.set(conversationId, token);
    try {
      for (let item = ob.next(conversationId); item && this.socketReady; item = ob.next(conversationId)) {
        const ok = await this.sendOne(ob, item);
        if (!ok || this.sendingConvs.get(conversationId) !== token) break;
      }
    } finally {
      if (this.sendingConvs.get(conversationId) === token) this.sendingConvs.delete(conversationId);
    }
  }

  /** False when sending should pause (connection trouble); true to go on with the next. */
  private async sendOne(ob: Outbox, item: OutboxItem): Promise<boolean> {
    await ob.update(item.clientId, { state: 'sending', attempts: item.attempts + 1 });
    this.emit('timeline', { conversationId: item.conversationId });
    try {
      const ack = await this.withFreshKeys(item.conversationId, async (refresh) => {
        const frame: RequestFrame = {
          type: 'send',
          conversationId: item.conversationId,
          clientId: item.clientId,
          body: await this.wireBody(item.conversationId, { kind: 'send', clientId: item.clientId }, item.body, refresh, item.attachments),
          ...(item.replyTo ? { replyTo: item.replyTo } : {}),
          ...(item.attachments?.length ? { attachments: item.attachments.map((a) => a.id) } : {}),
        };
        return this.request(frame);
      });
      if (ack.type === 'ack' && 'message' in ack) {
        // handleFrame already put the message in the timeline; only now may the outbox forget it.
        await ob.remove(item.clientId);
        this.emit('timeline', { conversationId: item.conversationId });
      }
      return true;
    } catch (err) {
      const e = err instanceof ParleyError ? err : new ParleyError('internal', String(err));
      // A server defect may be this message's own (it meets the same bug every time): after a few
      // tries it fails like a refusal, so it cannot hold the conversation's later messages forever.
      const givenUp = e.code === 'internal' && item.attempts + 1 >= MAX_INTERNAL_ATTEMPTS;
      if (e.transient && !givenUp) {
        await ob.update(item.clientId, { state: 'queued' });
        this.emit('timeline', { conversationId: item.conversationId });
        if (e.code === 'rate_limited' || e.code === 'unavailable' || e.code === 'internal') {
          const wait = e.retryAfterMs ?? Math.min(10_000, this.opts.backoffMaxMs, this.opts.backoffMinMs * 2 ** Math.min(item.attempts, 5));
          setTimeout(() => void this.pump(item.conversationId), wait);
        } else if (e.code === 'timeout' && this.ws) {
          // No answer at all: the link is probably dead; start over on a new socket.
          this.socketLost(this.ws, 0);
        }
        return false;
      }
      await ob.update(item.clientId, { state: 'failed', error: e.message });
      this.emit('error', e);
      this.emit('timeline', { conversationId: item.conversationId });
      return true;
    }
  }

  /**
   * Uploads a file (R14); pass the answer in `send(…, { attachments })`.
   * Needs the connection only for the token, not the socket: it goes over HTTP.
   *
   * With `conversationId` of an end-to-end encrypted conversation (R18), the
   * file is encrypted here first and the server gets only ciphertext; the
   * answer then holds the file's real name, type and size and its key
   * (`e2e`), which the message's envelope will carry. Such an upload may be
   * sent only to an encrypted conversation, and a plain one only to a plain one.
   */
  async upload(body: UploadBody, opts: ClientUploadOptions = {}): Promise<UploadedAttachment> {
    const { conversationId, width, height, ...http } = opts;
    if (conversationId !== undefined && this.convs.get(conversationId)?.conversation.encrypted === true) {
      return this.uploadEncrypted(body, http, { width, height });
    }
    return (await this.api.uploadAttachment(body, http)).attachment;
  }

  private async uploadEncrypted(body: UploadBody, opts: UploadOptions, size: { width: number | undefined; height: number | undefined }): Promise<UploadedAttachment> {
    if (!this.e2e) throw new ParleyError('bad_request', 'This device cannot encrypt (no WebCrypto): the file was not sent.');
    const blob = typeof Blob !== 'undefined' && body instanceof Blob ? body : undefined;
    const type = fileType(opts.type || blob?.type);
    const name = opts.name ?? (blob && 'name' in blob ? String((blob as { name: unknown }).name) : undefined);
    // The server cannot see what the file is: the limits it would check are checked here.
    const limits = await this.attachmentLimits();
    if (!new TypePolicy(limits.types.join(',')).allows(type)) throw new ParleyError('bad_request', `Files of type ${type} cannot be attached on this server.`);
    const plain = await bytesOf(body);
    if (plain.length === 0) throw new ParleyError('bad_request', 'The file is empty.');
    if (plain.length + E2E_SIZES.tag > limits.maxBytes) throw new ParleyError('too_large', `The file is larger than the ${limits.maxBytes} bytes this server accepts.`);
    const measured = size.width === undefined && type.startsWith('image/') ? await imageSize(blob ?? new Blob([plain], { type })) : size;
    const sealed = await encryptFile(plain);
    const { attachment } = await this.api.uploadAttachment(sealed.ciphertext, { ...opts, encrypted: true });
    return { ...sealedAttachment(attachment.id, plain.length, { name, type, ...measured }, sealed.key), createdAt: attachment.createdAt };
  }

  /**
   * The file of an attachment as a Blob. An encrypted one (R18, `e2e` set by
   * this SDK) is downloaded, decrypted and checked against its envelope (GCM
   * tag and SHA-256); throws E2eFileError when the bytes are not that file's.
   */
  async openAttachment(a: Attachment, opts: { signal?: AbortSignal } = {}): Promise<Blob> {
    if (!a.e2e) {
      if (a.encrypted) throw new E2eFileError('no-key', 'This encrypted file cannot be read on this device (its message could not be decrypted).');
      return this.fetchAttachment(a.id, opts);
    }
    const res = await this.api.attachment(a.id, opts);
    const plain = await decryptFile(await res.arrayBuffer(), a.e2e);
    return new Blob([plain], { type: a.type });
  }

  /** What the server accepts as attachments (size, types, count per message), asked once per session. */
  attachmentLimits(): Promise<AttachmentLimits> {
    const p = (this.limitsAsked ??= this.api.attachmentLimits().then((r) => r.limits));
    // A failed ask is asked again next time.
    p.catch(() => {
      if (this.limitsAsked === p) this.limitsAsked = undefined;
    });
    return p;
  }

  /** An attachment (or its thumbnail) as a Blob, fetched with the access token in a header. */
  async fetchAttachment(id: Id, opts: AttachmentFetch = {}): Promise<Blob> {
    return (await this.api.attachment(id, opts)).blob();
  }

  /** Sends a failed message again (same clientId). */
  async retry(clientId: string): Promise<void> {
    const ob = this.outboxStore;
    const item = ob?.get(clientId);
    if (!ob || !item) return;
    await ob.update(clientId, { state: 'queued', error: '' });
    this.emit('timeline', { conversationId: item.conversationId });
    void this.pump(item.conversationId);
  }

  /** Drops a message from the outbox (only sensible for failed ones). */
  async discard(clientId: string): Promise<void> {
    const item = this.outboxStore?.get(clientId);
    if (!item || item.state === 'sending') return;
    await this.outboxStore?.remove(clientId);
    this.emit('timeline', { conversationId: item.conversationId });
  }

  async edit(messageId: Id, body: string): Promise<void> {
    const conversationId = [...this.convs.values()].find((c) => c.message(messageId))?.id;
    if (conversationId === undefined) {
      await this.write({ type: 'edit', messageId, body }, () => this.api.editMessage(messageId, body));
      return;
    }
    // The edited body replaces the envelope that held the files' keys: the new one holds them again.
    const files = this.convs.get(conversationId)?.message(messageId)?.attachments;
    await this.withFreshKeys(conversationId, async (refresh) => {
      const wire = await this.wireBody(conversationId, { kind: 'edit', messageId }, body, refresh, files);
      await this.write({ type: 'edit', messageId, body: wire }, () => this.api.editMessage(messageId, wire));
    });
  }

  async deleteMessage(messageId: Id): Promise<void> {
    await this.write({ type: 'delete', messageId }, () => this.api.deleteMessage(messageId));
  }

  async react(messageId: Id, reaction: string): Promise<void> {
    await this.write({ type: 'react', messageId, reaction }, () => this.reactHttp(messageId, reaction, true));
  }

  async unreact(messageId: Id, reaction: string): Promise<void> {
    await this.write({ type: 'unreact', messageId, reaction }, () => this.reactHttp(messageId, reaction, false));
  }

  /** Adds our reaction if absent, removes it if present. */
  async toggleReaction(m: Message, reaction: string): Promise<void> {
    const me = this.user?.id;
    const mine = !!me && (this.messageById(m.conversationId, m.id)?.reactions?.[reaction] ?? []).includes(me);
    await (mine ? this.unreact(m.id, reaction) : this.react(m.id, reaction));
  }

  messageById(conversationId: Id, id: Id): Message | undefined {
    return this.convs.get(conversationId)?.message(id);
  }

  private async reactHttp(messageId: Id, reaction: string, active: boolean): Promise<{ event?: ConversationEvent; message?: Message }> {
    const path = `/v1/messages/${encodeURIComponent(messageId)}/reactions`;
    return active
      ? this.api.request(path, { method: 'POST', body: { reaction } })
      : this.api.request(`${path}/${encodeURIComponent(reaction)}`, { method: 'DELETE' });
  }

  /** Over the socket when connected (the ack carries the event), else over HTTP. */
  private async write(
    frame: RequestFrame,
    http: () => Promise<{ event?: ConversationEvent; message?: Message }>,
  ): Promise<void> {
    if (this.socketReady) {
      // handleFrame applies the ack's event.
      await this.request(frame);
      return;
    }
    const res = await http();
    if (res.event) this.ingest(await this.readableEvent(res.event));
  }

  /** The direct conversation with a user; with `encrypted`, the pair's end-to-end encrypted one (R18). */
  async startDirect(userId: Id, opts: { encrypted?: boolean } = {}): Promise<ConversationState> {
    const { conversation } = await this.api.createDirect(userId, opts.encrypted === true);
    return this.takeConversation(conversation);
  }

  async createGroup(title: string, memberIds: Id[], opts: { encrypted?: boolean } = {}): Promise<ConversationState> {
    const { conversation } = await this.api.createGroup(title, memberIds, opts.encrypted === true);
    return this.takeConversation(conversation);
  }

  async addMembers(conversationId: Id, userIds: Id[]): Promise<void> {
    const { conversation } = await this.api.addMembers(conversationId, userIds);
    this.takeConversation(conversation);
  }

  async leave(conversationId: Id): Promise<void> {
    const me = this.user?.id;
    if (!me) return;
    await this.api.removeMember(conversationId, me);
    this.convs.delete(conversationId);
    void this.store?.delete(`c/${conversationId}`);
    this.emit('conversations', undefined);
  }

  private takeConversation(conv: Conversation): ConversationState {
    const known = this.convs.get(conv.id);
    if (known) {
      this.refreshHeld(known, conv);
      this.emit('conversations', undefined);
      return known;
    }
    return this.adopt(conv);
  }

  /** A newer object of a conversation we hold: its metadata, what retention removed, and whether we are behind. */
  private refreshHeld(c: ConversationState, conv: Conversation): void {
    c.updateFrom(conv);
    const applied = conv.clearedThroughSeq ? c.applyRetention(conv.clearedThroughSeq) : [];
    if (applied.length) this.afterApplied(c, applied);
    this.markDirty(c.id);
    // The server is ahead of us: fetch what we missed.
    if (conv.lastSeq > c.position) this.scheduleGapFill(c.id);
  }

  /**
   * How many days this conversation's history is kept, or null for the
   * server's default (R8). Owners and admins of a group, either member of a
   * direct conversation.
   */
  async setRetention(conversationId: Id, days: number | null): Promise<void> {
    const { conversation } = await this.api.setRetention(conversationId, days);
    this.takeConversation(conversation);
  }

  // ------------------------------------------------- end-to-end encryption

  private async openE2e(s: StoredSession): Promise<void> {
    const store = this.store;
    if (!store) return;
    try {
      this.e2e = await E2eSession.open(this.api, store, s.user.id, s.deviceId, (deviceId, userId) =>
        this.emit('error', new ParleyError('conflict', `The keys of a device of ${this.users.get(userId)?.displayName ?? 'a member'} changed (${deviceId}); its messages are not trusted.`)),
      );
    } catch {
      // No WebCrypto here (a page served over plain http from another host): encrypted conversations cannot be
      // read or written from this device; everything else works.
      this.e2e = undefined;
    }
  }

  /** True when this device can take part in end-to-end encrypted conversations. */
  get e2eAvailable(): boolean {
    return this.e2e !== undefined;
  }

  /**
   * The safety number of this user and another (R18): the same 60 digits on
   * both sides unless someone's keys were swapped; compare them in person.
   */
  async safetyNumber(userId: Id): Promise<string> {
    if (!this.e2e) throw new ParleyError('bad_request', 'This device cannot use end-to-end encryption (no WebCrypto).');
    return this.e2e.safetyNumber(userId);
  }

  /**
   * What goes on the wire for a body: an envelope in an encrypted
   * conversation (with the keys of the message's files), the text elsewhere.
   */
  private async wireBody(conversationId: Id, context: EnvelopeContext, body: string, refresh: boolean, attachments: readonly Attachment[] = []): Promise<string> {
    if (this.convs.get(conversationId)?.conversation.encrypted !== true) return body;
    if (!this.e2e) throw new ParleyError('bad_request', 'This device cannot encrypt (no WebCrypto): the message was not sent.');
    if ([...body].length > this.opts.maxBodyChars) throw new ParleyError('too_large', `The message body is longer than ${this.opts.maxBodyChars} characters.`);
    let files: EnvelopeFile[];
    try {
      files = envelopeFiles(attachments);
    } catch (err) {
      // A refusal, not a fault to retry: the same attachments will never have a key.
      throw new ParleyError('bad_request', err instanceof Error ? err.message : String(err));
    }
    return this.e2e.encrypt(conversationId, context, body, refresh, files);
  }

  /**
   * Runs a write; in an encrypted conversation, a `conflict` means the server
   * knows other devices than we encrypted for (one was added or revoked): the
   * devices are read again and the write made once more.
   */
  private async withFreshKeys<T>(conversationId: Id, write: (refresh: boolean) => Promise<T>): Promise<T> {
    try {
      return await write(false);
    } catch (err) {
      const encrypted = this.convs.get(conversationId)?.conversation.encrypted === true;
      if (!encrypted || !(err instanceof ParleyError) || err.code !== 'conflict') throw err;
      return write(true);
    }
  }

  /** The frame with its encrypted content read, when it has any; undefined when it has none. */
  private readableFrame(frame: ServerFrame): Promise<ServerFrame> | undefined {
    if ((frame.type === 'event' || frame.type === 'ack') && 'event' in frame) {
      if (!this.eventEncrypted(frame.event)) return undefined;
      return this.readableEvent(frame.event).then((event) => ({ ...frame, event }) as ServerFrame);
    }
    if (frame.type === 'ack' && 'message' in frame) {
      const m = frame.message;
      if (!m.body || !isEncryptedBody(this.convs.get(m.conversationId)?.conversation, m.body)) return undefined;
      return this.readableMessages(undefined, [m]).then(([message]) => ({ ...frame, message: message ?? m }));
    }
    return undefined;
  }

  private eventEncrypted(e: ConversationEvent): boolean {
    const body = e.kind === 'message.created' ? e.message.body : e.kind === 'message.edited' ? e.body : '';
    return body !== '' && isEncryptedBody(this.convs.get(e.conversationId)?.conversation, body);
  }

  private async readableEvent(e: ConversationEvent): Promise<ConversationEvent> {
    if (!this.eventEncrypted(e)) return e;
    if (this.e2e) return this.e2e.event(e, true);
    if (e.kind === 'message.created') return { ...e, message: unreadable(e.message) };
    if (e.kind === 'message.edited') {
      const { attachments: _fromServer, ...edit } = e;
      return { ...edit, body: '', e2e: { ok: false, reason: 'failed' } };
    }
    return e;
  }

  /** Messages of a conversation (undefined: judge each body) with encrypted bodies read. */
  private async readableMessages(conv: Conversation | undefined, list: Message[]): Promise<Message[]> {
    const encrypted = (m: Message): boolean => m.body !== '' && isEncryptedBody(conv ?? this.convs.get(m.conversationId)?.conversation, m.body);
    if (!list.some(encrypted)) return list;
    const e2e = this.e2e;
    return Promise.all(list.map((m) => (!encrypted(m) ? m : e2e ? e2e.message(m, true) : unreadable(m))));
  }

  private async readableConversation(c: Conversation): Promise<Conversation> {
    if (!c.encrypted || !c.lastMessage) return c;
    const [lastMessage] = await this.readableMessages(c, [c.lastMessage]);
    return { ...c, ...(lastMessage ? { lastMessage } : {}) };
  }

  // ------------------------------------------------------------ receipts

  private queueDelivered(conversationId: Id, seq: number): void {
    if (!this.opts.autoDelivered) return;
    this.pendingDelivered.set(conversationId, Math.max(seq, this.pendingDelivered.get(conversationId) ?? 0));
    // Coalesced: a burst of messages gets one receipt per conversation.
    this.deliveredTimer ??= setTimeout(() => {
      this.deliveredTimer = undefined;
      this.flushDelivered();
    }, 100);
  }

  private flushDelivered(): void {
    if (!this.socketReady) return;
    for (const [conversationId, seq] of this.pendingDelivered) {
      if (this.fire({ type: 'receipt', conversationId, seq, kind: 'delivered' })) this.pendingDelivered.delete(conversationId);
    }
  }

  /** Marks a conversation read up to `seq` (default: everything held). */
  markRead(conversationId: Id, seq?: number): void {
    const c = this.convs.get(conversationId);
    if (!c) return;
    const upTo = seq ?? c.position;
    if (upTo < 1 || !c.setMyRead(upTo)) return;
    this.markDirty(c.id);
    this.emit('conversations', undefined);
    if (!this.fire({ type: 'receipt', conversationId, seq: upTo, kind: 'read' })) this.pendingRead.set(conversationId, upTo);
  }

  // -------------------------------------------------------- typing, presence

  /** Call on every keystroke; sends at most one frame per throttle window. */
  typing(conversationId: Id): void {
    const now = Date.now();
    const t = this.typingOut.get(conversationId) ?? { lastSent: 0, idle: undefined };
    if (now - t.lastSent >= this.opts.typingThrottleMs) {
      if (this.fire({ type: 'typing', conversationId, active: true })) t.lastSent = now;
    }
    clearTimeout(t.idle);
    t.idle = setTimeout(() => this.stopTyping(conversationId), TYPING_IDLE_MS);
    this.typingOut.set(conversationId, t);
  }

  stopTyping(conversationId: Id): void {
    const t = this.typingOut.get(conversationId);
    if (!t) return;
    clearTimeout(t.idle);
    this.typingOut.delete(conversationId);
    if (t.lastSent) this.fire({ type: 'typing', conversationId, active: false });
  }

  private onTyping(conversationId: Id, userId: Id, active: boolean): void {
    if (userId === this.user?.id) return;
    let m = this.typingIn.get(conversationId);
    if (!m) {
      m = new Map();
      this.typingIn.set(conversationId, m);
    }
    clearTimeout(m.get(userId));
    if (active) {
      // Our own expiry too, in case the server's `active:false` is lost with a connection.
      m.set(
        userId,
        setTimeout(() => this.stopShowingTyping(conversationId, userId), TYPING_SHOWN_MS),
      );
    } else m.delete(userId);
    this.emit('typing', { conversationId, userId, active });
  }

  private stopShowingTyping(conversationId: Id, userId: Id): void {
    const m = this.typingIn.get(conversationId);
    if (!m?.has(userId)) return;
    clearTimeout(m.get(userId));
    m.delete(userId);
    this.emit('typing', { conversationId, userId, active: false });
  }

  /** Our status as others see it; kept across reconnects. */
  setStatus(status: PresenceRequest): void {
    this.myStatus = status;
    this.fire({ type: 'presence', status });
  }

  get status(): PresenceRequest {
    return this.myStatus;
  }

  // ----------------------------------------------------------------- cache

  /** Schedules a write of a conversation; `now` for changes a reload must not lose (a new conversation). */
  private markDirty(id: Id, now = false): void {
    this.dirty.add(id);
    if (now) {
      clearTimeout(this.persistTimer);
      this.persistTimer = undefined;
      void this.flushCache();
      return;
    }
    this.persistTimer ??= setTimeout(() => {
      this.persistTimer = undefined;
      void this.flushCache();
    }, 300);
  }

  /** Writes changed conversations to the store now. */
  async flushCache(): Promise<void> {
    const store = this.store;
    if (!store) return;
    const ids = [...this.dirty];
    this.dirty = new Set();
    for (const id of ids) {
      const c = this.convs.get(id);
      if (!c) continue;
      await store.set(`c/${id}`, asJson(c.persist(this.opts.cacheMessages))).catch(() => undefined);
    }
  }

  private async loadCache(me: Id): Promise<void> {
    const store = this.store;
    if (!store) return;
    this.convs.clear();
    for (const key of await store.keys('c/')) {
      const raw = (await store.get(key)) as unknown as PersistedConversation | undefined;
      if (!raw?.conversation) continue;
      try {
        const c = ConversationState.restore(raw, me);
        this.convs.set(c.id, c);
      } catch {
        await store.delete(key);
      }
    }
  }
}

/** An encrypted message this device has no means to read (nor its files: the server's references say nothing). */
function unreadable(m: Message): Message {
  const { attachments: _opaque, ...rest } = m;
  return { ...rest, body: '', e2e: { ok: false, reason: 'failed' } };
}

/** ParleyClient.upload's options: those of the HTTP upload, and what an encrypted conversation needs. */
export interface ClientUploadOptions extends Omit<UploadOptions, 'encrypted'> {
  /** The conversation the file is for: when it is end-to-end encrypted, the file is encrypted before it goes. */
  conversationId?: Id;
  /** Images in an encrypted conversation: pixels, told to the members inside the envelope (measured here in a browser when absent). */
  width?: number;
  height?: number;
}

/** Every byte of an upload body (an encrypted file is encrypted whole: WebCrypto's AES-GCM does not stream). */
async function bytesOf(body: UploadBody): Promise<Uint8Array<ArrayBuffer>> {
  if (body instanceof Uint8Array) return new Uint8Array(body);
  if (body instanceof ArrayBuffer) return new Uint8Array(body.slice(0));
  return new Uint8Array(await new Response(body).arrayBuffer());
}

/** An image's pixels where the platform decodes images (browsers); nothing elsewhere or when it does not decode. */
async function imageSize(blob: Blob): Promise<{ width: number | undefined; height: number | undefined }> {
  if (typeof createImageBitmap !== 'function') return { width: undefined, height: undefined };
  try {
    const bmp = await createImageBitmap(blob);
    const size = { width: bmp.width, height: bmp.height };
    bmp.close();
    return size;
  } catch {
    return { width: undefined, height: undefined };
  }
}

function deriveWsUrl(httpUrl: string): string {
  if (!httpUrl) {
    const loc = (globalThis as { location?: Location }).location;
    if (!loc) throw new Error('url is required outside a browser');
    return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/v1/ws`;
  }
  return `${httpUrl.replace(/^http/, 'ws')}/v1/ws`;
}

function defaultDeviceName(): string {
  if (typeof navigator !== 'undefined' && navigator.userAgent) {
    const ua = navigator.userAgent;
    const browser = /Firefox\//.test(ua) ? 'Firefox' : /Edg\//.test(ua) ? 'Edge' : /Chrome\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
    return `${browser} on ${/Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Mac/.test(ua) ? 'macOS' : /Win/.test(ua) ? 'Windows' : /Linux/.test(ua) ? 'Linux' : 'web'}`;
  }
  return 'Node';
}
