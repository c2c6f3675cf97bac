/**
 * The HTTP side of setting up a Parley bench: users, logins, conversations.
 * Retries 429 answers after the server's retryAfterMs, a bounded number of times.
 */
export interface BenchUser {
  userId: string;
  token: string;
}

interface ApiError {
  error?: { code?: string; message?: string; retryAfterMs?: number };
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function api<T>(base: string, method: string, path: string, token: string | null, body?: unknown): Promise<T> {
  for (let attempt = 0; attempt < 30; attempt++) {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(120_000),
    });
    const text = await res.text();
    const json = (text ? JSON.parse(text) : {}) as T & ApiError;
    if (res.status === 429) {
      const wait = Math.min(Math.max(json.error?.retryAfterMs ?? 100, 10), 5000);
      await new Promise((r) => setTimeout(r, wait));
      continue;
    }
    if (res.status >= 400) {
      throw new HttpError(res.status, json.error?.code ?? 'unknown', `${method} ${path} → ${res.status} ${json.error?.message ?? text.slice(0, 200)}`);
    }
    return json;
  }
  throw new Error(`${method} ${path}: still rate limited after 30 attempts`);
}

const PASSWORD = 'bench-password-1';

/** Registers the user (or finds it taken) and logs in one device. */
export async function registerAndLogin(base: string, username: string): Promise<BenchUser> {
  try {
    await api(base, 'POST', '/v1/auth/register', null, { username, password: PASSWORD });
  } catch (e) {
    if (!(e instanceof HttpError && e.status === 409)) throw e;
  }
  const r = await api<{ accessToken: string; user: { id: string } }>(base, 'POST', '/v1/auth/login', null, {
    username,
    password: PASSWORD,
    deviceName: 'bench',
  });
  return { userId: r.user.id, token: r.accessToken };
}

/** Runs fn over items with at most `limit` in flight, keeping the order of results. */
export async function pool<I, O>(items: readonly I[], limit: number, fn: (item: I, i: number) => Promise<O>): Promise<O[]> {
  const out = new Array<O>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as I, i);
    }
  });
  await Promise.all(lanes);
  return out;
}

export async function directConversation(base: string, token: string, peerId: string): Promise<string> {
  const r = await api<{ conversation: { id: string } }>(base, 'POST', '/v1/conversations', token, { kind: 'direct', members: [peerId] });
  return r.conversation.id;
}

/** A group with every member; large groups are filled in chunks so no request body gets huge. */
export async function groupConversation(base: string, token: string, title: string, memberIds: readonly string[]): Promise<string> {
  const CHUNK = 500;
  const r = await api<{ conversation: { id: string } }>(base, 'POST', '/v1/conversations', token, {
    kind: 'group',
    title,
    members: memberIds.slice(0, CHUNK),
  });
  const id = r.conversation.id;
  for (let i = CHUNK; i < memberIds.length; i += CHUNK) {
    await api(base, 'POST', `/v1/conversations/${encodeURIComponent(id)}/members`, token, { userIds: memberIds.slice(i, i + CHUNK) });
  }
  return id;
}
