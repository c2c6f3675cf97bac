/**
 * HTTP helpers for the end-to-end suite: real requests with Node's global
 * fetch against a listening server, plus account shortcuts.
 */
import assert from 'node:assert/strict';
import type { ErrorCode } from '../../src/protocol/errors.js';
import type { Conversation, Message, User } from '../../src/protocol/model.js';

export interface Res<T> {
  status: number;
  headers: Headers;
  /** Parsed JSON, or undefined when the answer had no JSON body. */
  body: T;
  text: string;
}

export interface ReqOpts {
  token?: string;
  /** Sent as JSON. */
  json?: unknown;
  /** Sent as is, with content-type application/json unless headers say otherwise. */
  raw?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export async function http<T = unknown>(base: string, method: string, path: string, opts: ReqOpts = {}): Promise<Res<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['content-type'] ??= 'application/json';
  } else if (opts.raw !== undefined) {
    body = opts.raw;
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + path, { method, headers, body, signal: opts.signal });
  const text = await res.text();
  let parsed: unknown = undefined;
  if (text.length > 0 && (res.headers.get('content-type') ?? '').includes('json')) {
    parsed = JSON.parse(text);
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

interface ErrorShape {
  error?: { code?: unknown; message?: unknown; retryAfterMs?: unknown };
}

/** Asserts the protocol's HTTP error shape: the status, `{error:{code, message}}`, a readable message. */
export function expectError(res: Res<unknown>, status: number, code: ErrorCode, what = ''): void {
  const ctx = `${what} → ${res.status} ${res.text.slice(0, 300)}`;
  assert.equal(res.status, status, `expected ${status} ${code}: ${ctx}`);
  const b = res.body as ErrorShape | undefined;
  assert.ok(b && typeof b === 'object' && b.error && typeof b.error === 'object', `error body missing: ${ctx}`);
  assert.equal(b.error.code, code, `error code: ${ctx}`);
  assert.equal(typeof b.error.message, 'string', `error message: ${ctx}`);
  assert.ok((b.error.message as string).length > 0, `empty error message: ${ctx}`);
  assert.ok(!/\n\s+at /.test(b.error.message as string), `stack trace in error message: ${ctx}`);
}

export function expectStatus(res: Res<unknown>, status: number, what = ''): void {
  assert.equal(res.status, status, `${what} → ${res.status} ${res.text.slice(0, 300)}`);
}

let seq = 0;
/** A username unique within the process, valid under the protocol's rules (3–32 of a-z0-9_.-). */
export function uniqueName(prefix = 'u'): string {
  seq += 1;
  const rnd = Math.random().toString(36).slice(2, 6);
  return `${prefix.slice(0, 12)}_${seq}_${rnd}`.toLowerCase();
}

export interface LoginBody {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  deviceId: string;
  user: User;
}

/** One logged-in device of a user. */
export interface TestUser {
  id: string;
  username: string;
  password: string;
  user: User;
  token: string;
  refreshToken: string;
  deviceId: string;
}

export const PASSWORD = 'correct horse battery';

/** A small client bound to one server URL. */
export class Api {
  constructor(public base: string) {}

  req<T = unknown>(method: string, path: string, opts: ReqOpts = {}): Promise<Res<T>> {
    return http<T>(this.base, method, path, opts);
  }

  async register(username = uniqueName(), password = PASSWORD, displayName?: string): Promise<User> {
    const json: Record<string, string> = { username, password };
    if (displayName !== undefined) json.displayName = displayName;
    const res = await this.req<{ user: User }>('POST', '/v1/auth/register', { json });
    expectStatus(res, 201, `register ${username}`);
    return res.body.user;
  }

  async login(username: string, password = PASSWORD, deviceName?: string): Promise<LoginBody> {
    const json: Record<string, string> = { username, password };
    if (deviceName !== undefined) json.deviceName = deviceName;
    const res = await this.req<LoginBody>('POST', '/v1/auth/login', { json });
    expectStatus(res, 200, `login ${username}`);
    return res.body;
  }

  /** Registers a fresh user and logs one device in. */
  async user(prefix = 'u', deviceName = 'test'): Promise<TestUser> {
    const username = uniqueName(prefix);
    await this.register(username);
    const l = await this.login(username, PASSWORD, deviceName);
    return { id: l.user.id, username, password: PASSWORD, user: l.user, token: l.accessToken, refreshToken: l.refreshToken, deviceId: l.deviceId };
  }

  /** Another device of an existing user. */
  async device(u: TestUser, deviceName = 'second'): Promise<TestUser> {
    const l = await this.login(u.username, u.password, deviceName);
    return { ...u, token: l.accessToken, refreshToken: l.refreshToken, deviceId: l.deviceId };
  }

  async users(n: number, prefix = 'u'): Promise<TestUser[]> {
    const out: TestUser[] = [];
    for (let i = 0; i < n; i++) out.push(await this.user(prefix));
    return out;
  }

  async direct(u: TestUser, other: { id: string }): Promise<Conversation> {
    const res = await this.req<{ conversation: Conversation }>('POST', '/v1/conversations', {
      token: u.token,
      json: { kind: 'direct', members: [other.id] },
    });
    assert.ok(res.status === 201 || res.status === 200, `direct → ${res.status} ${res.text}`);
    return res.body.conversation;
  }

  async group(owner: TestUser, members: { id: string }[], title = 'group'): Promise<Conversation> {
    const res = await this.req<{ conversation: Conversation }>('POST', '/v1/conversations', {
      token: owner.token,
      json: { kind: 'group', title, members: members.map((m) => m.id) },
    });
    expectStatus(res, 201, 'create group');
    return res.body.conversation;
  }

  async conversation(u: TestUser, id: string): Promise<Conversation> {
    const res = await this.req<{ conversation: Conversation }>('GET', `/v1/conversations/${id}`, { token: u.token });
    expectStatus(res, 200, 'get conversation');
    return res.body.conversation;
  }

  async send(u: TestUser, conversationId: string, body: string, clientId = `c-${Math.random().toString(36).slice(2)}`, replyTo?: string): Promise<Message> {
    const json: Record<string, string> = { clientId, body };
    if (replyTo !== undefined) json.replyTo = replyTo;
    const res = await this.req<{ message: Message }>('POST', `/v1/conversations/${conversationId}/messages`, { token: u.token, json });
    expectStatus(res, 201, 'send over HTTP');
    return res.body.message;
  }

  async history(u: TestUser, conversationId: string, query = ''): Promise<{ messages: Message[]; hasMore: boolean }> {
    const res = await this.req<{ messages: Message[]; hasMore: boolean }>('GET', `/v1/conversations/${conversationId}/messages${query}`, {
      token: u.token,
    });
    expectStatus(res, 200, 'history');
    return res.body;
  }

  async metrics(): Promise<string> {
    const res = await this.req('GET', '/metrics');
    expectStatus(res, 200, 'metrics');
    return res.text;
  }
}

/** Values of every sample of `name` whose labels include `labels`, in exposition order. */
function samples(text: string, name: string, labels?: Record<string, string>): number[] {
  const out: number[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const l = m[2] ?? '';
    if (labels && !Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))) continue;
    out.push(Number(m[3]));
  }
  return out;
}

/** The value of an unlabelled (or first-labelled) Prometheus sample, or undefined. */
export function metricValue(text: string, name: string, labels?: Record<string, string>): number | undefined {
  return samples(text, name, labels)[0];
}

/** Sum of every sample of a metric (all label sets). */
export function metricSum(text: string, name: string, labels?: Record<string, string>): number {
  return samples(text, name, labels).reduce((a, b) => a + b, 0);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true or the time is up; returns whether it did. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 3000, stepMs = 20): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= end) return false;
    await sleep(stepMs);
  }
}
