/**
 * Loopback servers that speak each push provider's protocol, for the push
 * tests. Each checks what a real provider checks and records what it accepted:
 * - Web Push (RFC 8030/8291/8292): the VAPID JWT (ES256 with the key in `k=`,
 *   `aud` the endpoint's origin, `exp` within a day), then decrypts the
 *   aes128gcm body with the subscription's own private key and auth secret.
 * - APNs: HTTP/2 without TLS, `/3/device/<token>`, the provider JWT verified
 *   (ES256, key id, team id), the topic and push type.
 * - FCM HTTP v1: the OAuth token exchange (the service account's RS256
 *   assertion verified) and messages:send with the access token it issued.
 * - The fallback webhook: the HMAC signature checked.
 * Answers can be scripted per target (a status list taken in order), and a
 * server can be made to hang, so failures are the network's, not a stub's.
 */
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createECDH, createHmac, createPublicKey, generateKeyPairSync, hkdfSync, createDecipheriv, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { jwtVerify, decodeProtectedHeader } from 'jose';
import type { PushNotification } from '../../src/protocol/push.js';

export interface Scripted {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

/** Answers queued per target key; an empty queue answers `ok`. */
class Script {
  private readonly queues = new Map<string, Scripted[]>();
  hang = false;
  respond(key: string, ...answers: (number | Scripted)[]): void {
    const q = this.queues.get(key) ?? [];
    q.push(...answers.map((a) => (typeof a === 'number' ? { status: a } : a)));
    this.queues.set(key, q);
  }
  next(key: string): Scripted | undefined {
    return this.queues.get(key)?.shift();
  }
}

function listen(server: http.Server | http2.Http2Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function readBody(req: http.IncomingMessage | http2.Http2ServerRequest): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** A P-256 public key from its 65-byte uncompressed form. */
function p256(raw: Buffer): KeyObject {
  return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33, 65).toString('base64url') }, format: 'jwk' });
}

export interface WebPushDelivery {
  subscription: string;
  at: number;
  notification: PushNotification;
  headers: http.IncomingHttpHeaders;
  vapidKey: string;
}

interface BrowserSide {
  ecdh: ReturnType<typeof createECDH>;
  auth: Buffer;
}

/** A push service, and the browser side of its subscriptions (their private keys). */
export class WebPushService {
  readonly deliveries: WebPushDelivery[] = [];
  /** Every request, including refused and failed ones, with its time. */
  readonly attempts: { subscription: string; at: number; status: number }[] = [];
  readonly problems: string[] = [];
  /** Requests received, answered or not. */
  requests = 0;
  readonly script = new Script();
  private readonly browsers = new Map<string, BrowserSide>();
  private readonly server = http.createServer((req, res) => void this.handle(req, res));
  private readonly hung = new Set<http.ServerResponse>();
  url = '';

  static async start(): Promise<WebPushService> {
    const s = new WebPushService();
    s.url = `http://127.0.0.1:${await listen(s.server)}`;
    return s;
  }

  /** A new subscription as `PushSubscription.toJSON()` gives it. */
  subscribe(name = randomBytes(6).toString('hex')): { endpoint: string; keys: { p256dh: string; auth: string }; name: string } {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const auth = randomBytes(16);
    this.browsers.set(name, { ecdh, auth });
    return { name, endpoint: `${this.url}/push/${name}`, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') } };
  }

  for(name: string): WebPushDelivery[] {
    return this.deliveries.filter((d) => d.subscription === name);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const name = /^\/push\/([^/]+)$/.exec(req.url ?? '')?.[1] ?? '';
    this.requests++;
    const body = await readBody(req);
    if (this.script.hang) {
      this.hung.add(res);
      return;
    }
    const answer = (status: number, headers: Record<string, string> = {}, text = ''): void => {
      this.attempts.push({ subscription: name, at: Date.now(), status });
      res.writeHead(status, headers).end(text);
    };
    const scripted = this.script.next(name);
    if (scripted) return answer(scripted.status, scripted.headers, scripted.body === undefined ? '' : JSON.stringify(scripted.body));
    const browser = this.browsers.get(name);
    if (!browser) return answer(404);
    try {
      const vapidKey = await this.checkVapid(req);
      if (req.headers['content-encoding'] !== 'aes128gcm') throw new Error(`content-encoding ${req.headers['content-encoding']}`);
      if (!/^\d+$/.test(String(req.headers.ttl))) throw new Error('no TTL header');
      const notification = JSON.parse(decrypt(body, browser).toString('utf8')) as PushNotification;
      this.deliveries.push({ subscription: name, at: Date.now(), notification, headers: req.headers, vapidKey });
      answer(201);
    } catch (err) {
      this.problems.push(String(err));
      answer(400, {}, String(err));
    }
  }

  private async checkVapid(req: http.IncomingMessage): Promise<string> {
    const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(req.headers.authorization ?? '');
    if (!m) throw new Error(`authorization is not VAPID: ${req.headers.authorization}`);
    const [, jwt, k] = m as unknown as [string, string, string];
    if (decodeProtectedHeader(jwt).alg !== 'ES256') throw new Error('VAPID JWT is not ES256');
    const { payload } = await jwtVerify(jwt, p256(Buffer.from(k, 'base64url')), { audience: this.url });
    if (typeof payload.exp !== 'number' || payload.exp * 1000 > Date.now() + 24 * 3600_000 + 60_000) throw new Error('VAPID exp missing or beyond 24 h');
    if (typeof payload.sub !== 'string' || !/^(mailto:|https:)/.test(payload.sub)) throw new Error('VAPID sub must be mailto: or https:');
    return k;
  }

  /** Answers every request held while hanging (with 503) and stops hanging. */
  release(): void {
    this.script.hang = false;
    for (const r of this.hung) r.writeHead(503).end();
    this.hung.clear();
  }

  async close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** RFC 8291 §3.4 and RFC 8188: one aes128gcm record, decrypted with the browser's keys. */
function decrypt(body: Buffer, browser: BrowserSide): Buffer {
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20]!;
  const asPublic = body.subarray(21, 21 + idlen);
  const ciphertext = body.subarray(21 + idlen);
  if (idlen !== 65) throw new Error(`keyid of ${idlen} bytes, expected the 65-byte server key`);
  if (ciphertext.length > rs) throw new Error('more than one record');
  const secret = browser.ecdh.computeSecret(asPublic);
  const uaPublic = browser.ecdh.getPublicKey();
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), uaPublic, asPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', secret, browser.auth, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
  const d = createDecipheriv('aes-128-gcm', cek, nonce);
  d.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
  const plain = Buffer.concat([d.update(ciphertext.subarray(0, ciphertext.length - 16)), d.final()]);
  let end = plain.length - 1;
  while (end >= 0 && plain[end] === 0) end--;
  if (plain[end] !== 2) throw new Error('no last-record padding delimiter');
  return plain.subarray(0, end);
}

export interface ApnsDelivery {
  token: string;
  at: number;
  headers: http2.IncomingHttpHeaders;
  payload: { aps: { alert: { title: string; body: string }; 'thread-id': string }; parley: PushNotification };
}

/** An APNs server (HTTP/2 without TLS) and the token-auth key it trusts. */
export class ApnsService {
  readonly deliveries: ApnsDelivery[] = [];
  readonly attempts: { token: string; at: number; status: number }[] = [];
  readonly problems: string[] = [];
  readonly script = new Script();
  readonly keyId = 'ABC123DEFG';
  readonly teamId = 'TEAM123456';
  readonly topic = 'com.example.parley';
  readonly privateKeyPem: string;
  private readonly publicKey: KeyObject;
  private readonly server = http2.createServer((req, res) => void this.handle(req, res));
  url = '';

  private constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKeyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    this.publicKey = publicKey;
  }

  static async start(): Promise<ApnsService> {
    const s = new ApnsService();
    s.url = `http://127.0.0.1:${await listen(s.server)}`;
    return s;
  }

  for(token: string): ApnsDelivery[] {
    return this.deliveries.filter((d) => d.token === token);
  }

  private async handle(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): Promise<void> {
    const token = /^\/3\/device\/([0-9a-f]+)$/.exec(req.url)?.[1] ?? '';
    const body = await readBody(req);
    const answer = (status: number, reason?: string, headers: Record<string, string> = {}): void => {
      this.attempts.push({ token, at: Date.now(), status });
      res.writeHead(status, { 'apns-id': randomBytes(16).toString('hex'), ...headers });
      res.end(reason ? JSON.stringify({ reason }) : '');
    };
    try {
      if (req.method !== 'POST' || !token) return answer(404, 'BadPath');
      const jwt = /^bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
      if (!jwt) return answer(403, 'MissingProviderToken');
      if (decodeProtectedHeader(jwt).kid !== this.keyId) return answer(403, 'InvalidProviderToken');
      const { payload } = await jwtVerify(jwt, this.publicKey, { algorithms: ['ES256'], issuer: this.teamId }).catch(() => ({ payload: undefined }));
      if (!payload) return answer(403, 'InvalidProviderToken');
      if (req.headers['apns-topic'] !== this.topic) return answer(400, 'TopicDisallowed');
      if (req.headers['apns-push-type'] !== 'alert') return answer(400, 'InvalidPushType');
      const scripted = this.script.next(token);
      if (scripted) return answer(scripted.status, (scripted.body as { reason?: string } | undefined)?.reason, scripted.headers);
      this.deliveries.push({ token, at: Date.now(), headers: req.headers, payload: JSON.parse(body.toString('utf8')) as ApnsDelivery['payload'] });
      answer(200);
    } catch (err) {
      this.problems.push(String(err));
      answer(500, 'InternalServerError');
    }
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

export interface FcmDelivery {
  token: string;
  at: number;
  message: { token: string; notification: { title: string; body: string }; data: { parley: string }; android: { collapse_key: string } };
}

/** FCM's OAuth token endpoint and messages:send, and the service account it knows. */
export class FcmService {
  readonly deliveries: FcmDelivery[] = [];
  readonly attempts: { token: string; at: number; status: number }[] = [];
  readonly problems: string[] = [];
  readonly script = new Script();
  readonly project = 'parley-test';
  readonly clientEmail = 'push@parley-test.iam.gserviceaccount.com';
  readonly privateKeyPem: string;
  private readonly publicKey: KeyObject;
  private readonly issued = new Set<string>();
  tokenExchanges = 0;
  private readonly server = http.createServer((req, res) => void this.handle(req, res));
  url = '';

  private constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKeyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    this.publicKey = publicKey;
  }

  static async start(): Promise<FcmService> {
    const s = new FcmService();
    s.url = `http://127.0.0.1:${await listen(s.server)}`;
    return s;
  }

  /** The service-account JSON file's content. */
  serviceAccount(): string {
    return JSON.stringify({ type: 'service_account', project_id: this.project, client_email: this.clientEmail, private_key: this.privateKeyPem, token_uri: `${this.url}/token` });
  }

  for(token: string): FcmDelivery[] {
    return this.deliveries.filter((d) => d.token === token);
  }

  /** Forgets every access token issued, as when they expire. */
  revokeAccessTokens(): void {
    this.issued.clear();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = (await readBody(req)).toString('utf8');
    const json = (status: number, value: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    };
    try {
      if (req.url === '/token') {
        const form = new URLSearchParams(body);
        if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return json(400, { error: 'unsupported_grant_type' });
        const { payload } = await jwtVerify(form.get('assertion') ?? '', this.publicKey, { algorithms: ['RS256'], issuer: this.clientEmail, audience: `${this.url}/token` });
        if (payload.scope !== 'https://www.googleapis.com/auth/firebase.messaging') return json(400, { error: 'invalid_scope' });
        const token = randomBytes(16).toString('hex');
        this.issued.add(token);
        this.tokenExchanges++;
        return json(200, { access_token: token, expires_in: 3599, token_type: 'Bearer' });
      }
      if (req.url !== `/v1/projects/${this.project}/messages:send`) return json(404, { error: { code: 404, status: 'NOT_FOUND', message: 'no such path' } });
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (!bearer || !this.issued.has(bearer)) return json(401, { error: { code: 401, status: 'UNAUTHENTICATED', message: 'Request had invalid authentication credentials.' } });
      const message = (JSON.parse(body) as { message: FcmDelivery['message'] }).message;
      const scripted = this.script.next(message.token);
      this.attempts.push({ token: message.token, at: Date.now(), status: scripted?.status ?? 200 });
      if (scripted) {
        res.writeHead(scripted.status, { 'content-type': 'application/json', ...scripted.headers }).end(JSON.stringify(scripted.body ?? {}));
        return;
      }
      this.deliveries.push({ token: message.token, at: Date.now(), message });
      json(200, { name: `projects/${this.project}/messages/${randomBytes(8).toString('hex')}` });
    } catch (err) {
      this.problems.push(String(err));
      json(400, { error: { code: 400, status: 'INVALID_ARGUMENT', message: String(err) } });
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** An FCM error answer with its FcmError code. */
export function fcmError(status: number, code: string, errorCode?: string): Scripted {
  return {
    status,
    body: {
      error: { code: status, status: code, message: code, details: errorCode ? [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }] : [] },
    },
  };
}

export interface WebhookBatch {
  id: string;
  delivery: string;
  notifications: { userId: string; reason: 'no_subscription' | 'push_failed'; notification: PushNotification }[];
}

/** The operator's fallback endpoint: checks the signature, records the batches. */
export class WebhookReceiver {
  readonly batches: WebhookBatch[] = [];
  /** Every request's delivery id and the status it got. */
  readonly attempts: { delivery: string; status: number }[] = [];
  readonly problems: string[] = [];
  readonly script = new Script();
  private readonly server = http.createServer((req, res) => void this.handle(req, res));
  url = '';

  constructor(readonly secret: string) {}

  static async start(secret = randomBytes(16).toString('hex')): Promise<WebhookReceiver> {
    const s = new WebhookReceiver(secret);
    s.url = `http://127.0.0.1:${await listen(s.server)}/hook`;
    return s;
  }

  get items(): WebhookBatch['notifications'] {
    return this.batches.flatMap((b) => b.notifications);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = (await readBody(req)).toString('utf8');
    const delivery = String(req.headers['x-parley-delivery']);
    const scripted = this.script.next('*');
    this.attempts.push({ delivery, status: scripted?.status ?? 204 });
    if (scripted) return void res.writeHead(scripted.status).end();
    const sig = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(req.headers['x-parley-signature'] ?? ''));
    const expected = sig && createHmac('sha256', this.secret).update(`${sig[1]}.${body}`).digest();
    if (!sig || !expected || !timingSafeEqual(expected, Buffer.from(sig[2]!, 'hex')) || Math.abs(Date.now() - Number(sig[1])) > 60_000) {
      this.problems.push(`bad signature ${String(req.headers['x-parley-signature'])}`);
      return void res.writeHead(401).end();
    }
    const parsed = JSON.parse(body) as { id: string; type: string; notifications: WebhookBatch['notifications'] };
    if (parsed.type !== 'parley.push.undelivered') this.problems.push(`type ${parsed.type}`);
    this.batches.push({ id: parsed.id, delivery, notifications: parsed.notifications });
    res.writeHead(204).end();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
