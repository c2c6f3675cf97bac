/**
 * Typed calls to the HTTP API (`/v1/...`). Retries once after a 401 when the
 * owner can refresh the access token.
 */
import type { ErrorCode } from '../protocol/errors.js';
import type { Block, Conversation, ConversationEvent, Id, Message, PresenceStatus, Role, Session, User } from '../protocol/model.js';
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
    if (!res.ok) {
      const e = (parsed as { error?: { code?: ErrorCode; message?: string; retryAfterMs?: number } } | undefined)?.error;
      const retryHeader = Number(res.headers.get('retry-after'));
      throw new ParleyError(
        e?.code ?? statusCode(res.status),
        e?.message ?? `HTTP ${res.status}`,
        res.status,
        e?.retryAfterMs ?? (Number.isFinite(retryHeader) && retryHeader > 0 ? retryHeader * 1000 : undefined),
      );
    }
    return parsed as T;
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
  user(id: Id): Promise<{ user: User }> {
    return this.request(`/v1/users/${encodeURIComponent(id)}`);
  }
  createDirect(userId: Id): Promise<{ conversation: Conversation }> {
    return this.request('/v1/conversations', { method: 'POST', body: { kind: 'direct', members: [userId] } });
  }
  createGroup(title: string, members: Id[]): Promise<{ conversation: Conversation }> {
    return this.request('/v1/conversations', { method: 'POST', body: { kind: 'group', title, members } });
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
  postMessage(id: Id, clientId: string, body: string, replyTo?: Id): Promise<{ message: Message }> {
    return this.request(`/v1/conversations/${encodeURIComponent(id)}/messages`, {
      method: 'POST',
      body: { clientId, body, replyTo },
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
