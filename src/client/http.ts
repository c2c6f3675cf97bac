/**
 * Typed calls to the HTTP API (`/v1/...`). Retries once after a 401 when the
 * owner can refresh the access token.
 */
import type { ErrorCode } from '../protocol/errors.js';
import type { AttachmentLimits, Block, Conversation, ConversationEvent, Id, Message, PresenceStatus, Role, Session, UploadedAttachment, User } from '../protocol/model.js';
import type { DeviceKeys } from '../protocol/e2e.js';
import type { PushSubscription, PushSubscriptionInput, PushVapidInfo } from '../protocol/push.js';
import { ParleyError } from './errors.js';

/** What to search for: the words typed, and optional filters (GET /v1/search). */
export interface MessageSearch {
  q: string;
  conversationId?: Id;
  senderId?: Id;
  /** Created at or after (ms since the epoch). */
  since?: number;
  /** Created before. */
  until?: number;
  limit?: number;
  /** The `next` of the previous page. */
  after?: string;
}

export interface AuthResult {
  accessToken: string;
  refreshToken: string;
  /** Seconds the access token stays valid. */
  expiresIn: number;
  deviceId: Id;
  user: User;
}

export interface PresenceInfo {
  userId: Id;
  status: PresenceStatus;
  lastActiveAt?: number;
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** A file to upload (R14): a Blob or File in browsers; bytes, or a web stream (Node: `Readable.toWeb`). */
export type UploadBody = Blob | ArrayBuffer | Uint8Array | ReadableStream<Uint8Array>;

export interface UploadOptions {
  /** Media type; a Blob's own `type` when absent. */
  type?: string;
  /** File name; a File's own `name` when absent. */
  name?: string;
  /** Bytes sent so far and the total, as the upload goes (browsers, for a Blob or bytes). */
  onProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
  /**
   * R18: the body is ciphertext for an end-to-end encrypted conversation
   * (`?encrypted=1`): sent as application/octet-stream with no name, whatever
   * `type` and `name` say. ParleyClient.upload does the encrypting.
   */
  encrypted?: boolean;
}

export interface AttachmentFetch {
  /** The image's thumbnail (WebP) instead of the file. */
  thumbnail?: boolean;
  /** Only these bytes, both included (HTTP Range). */
  range?: { start: number; end: number };
  signal?: AbortSignal;
}

export interface TokenSource {
  accessToken(): Promise<string | undefined>;
  /** Called after a 401 on an authenticated call; true when a retry may succeed. */
  unauthorized(): Promise<boolean>;
}

interface RequestOptions {
  method?: string;
  body?: unknown;
  auth?: boolean;
  /** Statuses other than 2xx that are answers, not errors. */
  signal?: AbortSignal;
}

export class HttpApi {
  private readonly fetchFn: FetchLike;

  constructor(
    readonly baseUrl: string,
    private readonly tokens: TokenSource,
    fetchFn?: FetchLike,
    private readonly timeoutMs = 15_000,
  ) {
    const f = fetchFn ?? (globalThis.fetch as FetchLike | undefined);
    if (!f) throw new Error('no fetch available: pass one in the client options');
    // Browsers require fetch to be called with globalThis as `this`.
    this.fetchFn = fetchFn ?? ((input, init) => globalThis.fetch(input, init));
  }

  async request<T>(path: string, opts: RequestOptions = {}): Promise<T> {
    const auth = opts.auth ?? true;
    let res = await this.once(path, opts, auth);
    if (res.status === 401 && auth && (await this.tokens.unauthorized())) res = await this.once(path, opts, auth);
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) throw errorOf(res.status, parsed, res.headers.get('retry-after'));
    return parsed as T;
  }

  /** One authenticated call that is not JSON in, JSON out; retried once after a 401 the owner can refresh. */
  private async raw(path: string, init: RequestInit): Promise<Response> {
    const call = async (): Promise<Response> => {
      const token = await this.tokens.accessToken();
      const headers = new Headers(init.headers);
      if (token) headers.set('authorization', `Bearer ${token}`);
      try {
        return await this.fetchFn(this.baseUrl + path, { ...init, headers });
      } catch (err) {
        throw new ParleyError('network', `network error: ${String(err)}`);
      }
    };
    let res = await call();
    // A stream body is spent after the first try; only bytes can be sent again.
    if (res.status === 401 && !(init.body instanceof ReadableStream) && (await this.tokens.unauthorized())) res = await call();
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      throw errorOf(res.status, parsed, res.headers.get('retry-after'));
    }
    return res;
  }

  /**
   * Uploads a file (R14, `POST /v1/attachments`); attach it to messages by
   * the id of the answer. Refusals come as ParleyError: `too_large` past the
   * server's limit, `bad_request` for a type it does not take or a broken image.
   */
  async uploadAttachment(body: UploadBody, opts: UploadOptions = {}): Promise<{ attachment: UploadedAttachment }> {
    const blob = typeof Blob !== 'undefined' && body instanceof Blob ? body : undefined;
    const type = opts.encrypted ? 'application/octet-stream' : opts.type || blob?.type || 'application/octet-stream';
    const name = opts.encrypted ? undefined : (opts.name ?? (blob && 'name' in blob ? String((blob as { name: unknown }).name) : undefined));
    const path = `/v1/attachments${opts.encrypted ? '?encrypted=1' : name ? `?name=${encodeURIComponent(name)}` : ''}`;
    const stream = typeof ReadableStream !== 'undefined' && body instanceof ReadableStream;
    if (opts.onProgress && !stream && typeof XMLHttpRequest !== 'undefined') {
      return this.uploadWithProgress(path, body as Blob | ArrayBuffer | Uint8Array, type, opts);
    }
    const init: RequestInit & { duplex?: 'half' } = { method: 'POST', headers: { 'content-type': type }, body: body as BodyInit };
    if (stream) init.duplex = 'half';
    if (opts.signal) init.signal = opts.signal;
    const res = await this.raw(path, init);
    return (await res.json()) as { attachment: UploadedAttachment };
  }

  /** The same upload through XMLHttpRequest, the one browser API that reports upload progress. */
  private async uploadWithProgress(path: string, body: Blob | ArrayBuffer | Uint8Array, type: string, opts: UploadOptions): Promise<{ attachment: UploadedAttachment }> {
    const once = (token: string | undefined): Promise<{ status: number; text: string; retryAfter: string | null }> =>
      new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open('POST', this.baseUrl + path);
        xhr.setRequestHeader('content-type', type);
        if (token) xhr.setRequestHeader('authorization', `Bearer ${token}`);
        xhr.upload.onprogress = (e) => opts.onProgress?.(e.loaded, e.total);
        xhr.onload = () => resolve({ status: xhr.status, text: xhr.responseText, retryAfter: xhr.getResponseHeader('retry-after') });
        xhr.onerror = () => reject(new ParleyError('network', 'network error: the upload failed'));
        xhr.onabort = () => reject(new ParleyError('network', 'the upload was cancelled'));
        opts.signal?.addEventListener('abort', () => xhr.abort(), { once: true });
        xhr.send(body instanceof Uint8Array ? new Blob([body as Uint8Array<ArrayBuffer>]) : body);
      });
    let res = await once(await this.tokens.accessToken());
    if (res.status === 401 && (await this.tokens.unauthorized())) res = await once(await this.tokens.accessToken());
    let parsed: unknown;
    try {
      parsed = res.text ? JSON.parse(res.text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (res.status < 200 || res.status >= 300) throw errorOf(res.status, parsed, res.retryAfter);
    return parsed as { attachment: UploadedAttachment };
  }

  /** What the server accepts as attachments: size, types, count per message. */
  attachmentLimits(): Promise<{ limits: AttachmentLimits }> {
    return this.request('/v1/attachments/limits');
  }

  /**
   * An attachment's bytes (or its thumbnail) with the access token in the
   * Authorization header, never in the URL: a Response to stream or read.
   */
  attachment(id: Id, opts: AttachmentFetch = {}): Promise<Response> {
    const headers: Record<string, string> = {};
    if (opts.range) headers.range = `bytes=${opts.range.start}-${opts.range.end}`;
    const init: RequestInit = { headers };
    if (opts.signal) init.signal = opts.signal;
    return this.raw(`/v1/attachments/${encodeURIComponent(id)}${opts.thumbnail ? '/thumbnail' : ''}`, init);
  }

  private async once(path: string, opts: RequestOptions, auth: boolean): Promise<Response> {
    const headers: Record<string, string> = {};
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (auth) {
      const token = await this.tokens.accessToken();
      if (token) headers.authorization = `Bearer ${token}`;
    }
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), this.timeoutMs);
    try {
      return await this.fetchFn(this.baseUrl + path, {
        method: opts.method ?? 'GET',
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: opts.signal ?? ctrl.signal,
      });
    } catch (err) {
      const aborted = ctrl.signal.aborted;
      throw new ParleyError(aborted ? 'timeout' : 'network', aborted ? 'request timed out' : `network error: ${String(err)}`);
    } finally {
      clearTimeout(timer);
    }
  }

  register(username: string, password: string, displayName?: string): Promise<{ user: User }> {
    return this.request('/v1/auth/register', { method: 'POST', body: { username, password, displayName }, auth: false });
  }
  login(username: string, password: string, deviceName?: string): Promise<AuthResult> {
    return this.request('/v1/auth/login', { method: 'POST', body: { username, password, deviceName }, auth: false });
  }
  refresh(refreshToken: string): Promise<AuthResult> {
    return this.request('/v1/auth/refresh', { method: 'POST', body: { refreshToken }, auth: false });
  }
  logout(): Promise<void> {
    return this.request('/v1/auth/logout', { method: 'POST' });
  }
  /** The least-loaded healthy node of a cluster (the node itself when alone). */
  discovery(): Promise<{ nodeId: string; wsUrl: string }> {
    return this.request('/v1/discovery', { auth: false, signal: AbortSignal.timeout(3000) });
  }
  me(): Promise<{ user: User }> {
    return this.request('/v1/me');
  }
  searchUsers(q: string, limit = 20): Promise<{ users: User[] }> {
    return this.request(`/v1/users?q=${encodeURIComponent(q)}&limit=${limit}`);
  }
  /** Full-text search over the caller's conversations (R15), newest first. */
  searchMessages(q: MessageSearch): Promise<{ messages: Message[]; next: string | null }> {
    const params = new URLSearchParams({ q: q.q });
    for (const k of ['conversationId', 'senderId', 'since', 'until', 'limit', 'after'] as const) {
      const v = q[k];
      if (v !== undefined) params.set(k, String(v));
    }
    return this.request(`/v1/search?${params.toString()}`);
  }
  /** Extension (R12): the server's VAPID public key and the push kinds it delivers. */
  pushVapid(): Promise<PushVapidInfo> {
    return this.request('/v1/push/vapid');
  }
  /** 201 for a new subscription, 200 (same object) for one this device had already. */
  registerPush(input: PushSubscriptionInput): Promise<{ subscription: PushSubscription }> {
    return this.request('/v1/push/subscriptions', { method: 'POST', body: input });
  }
  pushSubscriptions(after?: string, limit = 50): Promise<{ subscriptions: PushSubscription[]; next: string | null }> {
    const q = new URLSearchParams({ limit: String(limit) });
    if (after) q.set('after', after);
    return this.request(`/v1/push/subscriptions?${q.toString()}`);
  }
  unregisterPush(id: Id): Promise<void> {
    return this.request(`/v1/push/subscriptions/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }
  user(id: Id): Promise<{ user: User }> {
    return this.request(`/v1/users/${encodeURIComponent(id)}`);
  }
  /** `encrypted`: the pair's end-to-end encrypted conversation (R18), not the plain one. */
  createDirect(userId: Id, encrypted = false): Promise<{ conversation: Conversation }> {
    return this.request('/v1/conversations', { method: 'POST', body: { kind: 'direct', members: [userId], ...(encrypted ? { encrypted } : {}) } });
  }
  createGroup(title: string, members: Id[], encrypted = false): Promise<{ conversation: Conversation }> {
    return this.request('/v1/conversations', { method: 'POST', body: { kind: 'group', title, members, ...(encrypted ? { encrypted } : {}) } });
  }
  /** Publishes this device's public keys (R18); the same keys again are fine, other keys are refused. */
  putKeys(keys: { identityKey: string; agreementKey: string; signature: string }): Promise<{ keys: DeviceKeys }> {
    return this.request('/v1/keys', { method: 'PUT', body: keys });
  }
  userKeys(userId: Id): Promise<{ devices: DeviceKeys[] }> {
    return this.request(`/v1/users/${encodeURIComponent(userId)}/keys`);
  }
  conversationKeys(id: Id): Promise<{ devices: DeviceKeys[] }> {
    return this.request(`/v1/conversations/${encodeURIComponent(id)}/keys`);
  }
  conversations(after?: string, limit = 100): Promise<{ conversations: Conversation[]; next?: string | null }> {
    const q = new URLSearchParams({ limit: String(limit) });
    if (after) q.set('after', after);
    return this.request(`/v1/conversations?${q.toString()}`);
  }
  conversation(id: Id): Promise<{ conversation: Conversation }> {
    return this.request(`/v1/conversations/${encodeURIComponent(id)}`);
  }
  renameConversation(id: Id, title: string): Promise<{ conversation: Conversation }> {
    return this.request(`/v1/conversations/${encodeURIComponent(id)}`, { method: 'PATCH', body: { title } });
  }
  /** Days to keep this conversation's history, or null for the server's default (R8). */
  setRetention(id: Id, retentionDays: number | null): Promise<{ conversation: Conversation }> {
    return this.request(`/v1/conversations/${encodeURIComponent(id)}`, { method: 'PATCH', body: { retentionDays } });
  }
  addMembers(id: Id, userIds: Id[]): Promise<{ conversation: Conversation }> {
    return this.request(`/v1/conversations/${encodeURIComponent(id)}/members`, { method: 'POST', body: { userIds } });
  }
  removeMember(id: Id, userId: Id): Promise<void> {
    return this.request(`/v1/conversations/${encodeURIComponent(id)}/members/${encodeURIComponent(userId)}`, {
      method: 'DELETE',
    });
  }
  setRole(id: Id, userId: Id, role: Role): Promise<{ conversation: Conversation }> {
    return this.request(`/v1/conversations/${encodeURIComponent(id)}/members/${encodeURIComponent(userId)}`, {
      method: 'PATCH',
      body: { role },
    });
  }
  messages(id: Id, opts: { before?: number; after?: number; limit?: number } = {}): Promise<{ messages: Message[]; hasMore: boolean }> {
    const q = new URLSearchParams();
    if (opts.before !== undefined) q.set('before', String(opts.before));
    if (opts.after !== undefined) q.set('after', String(opts.after));
    if (opts.limit !== undefined) q.set('limit', String(opts.limit));
    return this.request(`/v1/conversations/${encodeURIComponent(id)}/messages?${q.toString()}`);
  }
  postMessage(id: Id, clientId: string, body: string, replyTo?: Id, attachments?: Id[]): Promise<{ message: Message }> {
    return this.request(`/v1/conversations/${encodeURIComponent(id)}/messages`, {
      method: 'POST',
      body: { clientId, body, replyTo, ...(attachments?.length ? { attachments } : {}) },
    });
  }
  events(id: Id, after: number, limit = 200): Promise<{ events: ConversationEvent[]; hasMore: boolean }> {
    return this.request(`/v1/conversations/${encodeURIComponent(id)}/events?after=${after}&limit=${limit}`);
  }
  editMessage(messageId: Id, body: string): Promise<{ event: ConversationEvent }> {
    return this.request(`/v1/messages/${encodeURIComponent(messageId)}`, { method: 'PATCH', body: { body } });
  }
  deleteMessage(messageId: Id): Promise<{ event: ConversationEvent }> {
    return this.request(`/v1/messages/${encodeURIComponent(messageId)}`, { method: 'DELETE' });
  }
  markRead(id: Id, seq: number): Promise<{ lastReadSeq: number }> {
    return this.request(`/v1/conversations/${encodeURIComponent(id)}/read`, { method: 'POST', body: { seq } });
  }
  /** One keyset page of the account's sessions, newest first; pass `next` as `after` for the following one. */
  sessions(after?: string, limit = 50): Promise<{ sessions: Session[]; next: string | null }> {
    return this.request(`/v1/sessions?limit=${limit}${after ? `&after=${encodeURIComponent(after)}` : ''}`);
  }
  revokeSession(deviceId: Id): Promise<void> {
    return this.request(`/v1/sessions/${encodeURIComponent(deviceId)}`, { method: 'DELETE' });
  }
  /** One keyset page of the users this account blocks, by user id; pass `next` as `after` for the following one. */
  blocks(after?: string, limit = 50): Promise<{ blocks: Block[]; next: string | null }> {
    return this.request(`/v1/blocks?limit=${limit}${after ? `&after=${encodeURIComponent(after)}` : ''}`);
  }
  block(userId: Id): Promise<{ block: Block }> {
    return this.request('/v1/blocks', { method: 'POST', body: { userId } });
  }
  unblock(userId: Id): Promise<void> {
    return this.request(`/v1/blocks/${encodeURIComponent(userId)}`, { method: 'DELETE' });
  }
  presence(userIds: Id[]): Promise<{ presence: PresenceInfo[] }> {
    return this.request(`/v1/presence?userIds=${userIds.map(encodeURIComponent).join(',')}`);
  }
}

function errorOf(status: number, parsed: unknown, retryAfter: string | null): ParleyError {
  const e = (parsed as { error?: { code?: ErrorCode; message?: string; retryAfterMs?: number } } | undefined)?.error;
  const retryHeader = Number(retryAfter);
  return new ParleyError(
    e?.code ?? statusCode(status),
    e?.message ?? `HTTP ${status}`,
    status,
    e?.retryAfterMs ?? (Number.isFinite(retryHeader) && retryHeader > 0 ? retryHeader * 1000 : undefined),
  );
}

function statusCode(status: number): ErrorCode {
  switch (status) {
    case 400:
      return 'bad_request';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 409:
      return 'conflict';
    case 413:
      return 'too_large';
    case 429:
      return 'rate_limited';
    case 503:
      return 'unavailable';
    default:
      return 'internal';
  }
}
