/**
 * Accounts, devices and tokens. Access tokens are short-lived JWTs naming the
 * user and device; every use checks the device is not revoked, through a cache
 * that revocations clear on every node (bus `revoke`).
 */
import { createHash, randomBytes } from 'node:crypto';
import argon2 from 'argon2';
import { SignJWT, jwtVerify } from 'jose';
import type { Id, User } from '../protocol/model.js';
import type { DeviceRecord, Store } from './ports/store.js';
import type { IdGenerator } from './ids.js';
import type { Fanout } from './fanout.js';
import { badRequest, codePoints, notFound, refuseUnstorable, unauthorized } from './errors.js';
import { pageSessions, type SessionPage } from './sessions.js';
import type { LoginThrottle } from './login-throttle.js';

export interface AuthOptions {
  jwtSecret: string;
  accessTokenTtlSec: number;
  refreshTokenTtlSec: number;
  argon2MemoryKiB: number;
  argon2TimeCost: number;
}

export interface Tokens {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  deviceId: Id;
  user: User;
}

export interface Principal {
  userId: Id;
  deviceId: Id;
}

const USERNAME = /^[a-z0-9_.-]{3,32}$/;
const DEVICE_CACHE_MS = 60_000;
const DEVICE_CACHE_MAX = 100_000;
/** A session's lastActiveAt is written at most this often per device and node: it is shown in minutes, not ms. */
const TOUCH_EVERY_MS = 60_000;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('base64url');

export class AuthService {
  /**
   * Imported once. Given raw bytes (or a secret KeyObject, which it exports to
   * bytes), jose imports the key into WebCrypto again on every sign and verify:
   * 83 µs of CPU per verify here instead of 39, on every connect.
   */
  private readonly key: Promise<CryptoKey>;
  private readonly devices = new Map<Id, { userId: Id; revoked: boolean; until: number }>();
  /** When this node last wrote each device's lastActiveAt. */
  private readonly touched = new Map<Id, number>();
  private dummyHash: Promise<string> | undefined;

  constructor(
    private readonly store: Store,
    private readonly ids: IdGenerator,
    private readonly fanout: Fanout,
    private readonly opts: AuthOptions,
    private readonly throttle?: LoginThrottle,
  ) {
    this.key = crypto.subtle.importKey('raw', new TextEncoder().encode(opts.jwtSecret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    // A key that cannot be imported fails each sign and verify where it is used, not as an unhandled rejection here.
    this.key.catch(() => undefined);
  }

  private hash(password: string): Promise<string> {
    return argon2.hash(password, {
      type: argon2.argon2id,
      memoryCost: this.opts.argon2MemoryKiB,
      timeCost: this.opts.argon2TimeCost,
      parallelism: 1,
    });
  }

  async register(username: string, password: string, displayName?: string): Promise<User> {
    // Taken as sent: a name the server changed (case, spaces) would not be the one the user typed and will log in with.
    if (!USERNAME.test(username)) throw badRequest('The username must be 3 to 32 characters of a-z (lower case), 0-9, _ . and -.');
    const passwordChars = codePoints(password);
    if (passwordChars < 8 || passwordChars > 256) throw badRequest('The password must be 8 to 256 characters.');
    const display = (displayName ?? '').trim() || username;
    if (codePoints(display) > 64) throw badRequest('The display name must be at most 64 characters.');
    refuseUnstorable(display, 'display name');
    return this.store.users.create({ id: this.ids.next(), username, displayName: display, createdAt: Date.now(), passwordHash: await this.hash(password) });
  }

  /** `address` is the client's, for the failed-login budgets. */
  async login(username: string, password: string, deviceName?: string, address = ''): Promise<Tokens> {
    const name = deviceName ?? '';
    refuseUnstorable(name, 'device name');
    await this.throttle?.check(username, address);
    const rec = await this.store.users.byUsername(username.trim().toLowerCase());
    // Verify against a dummy hash for unknown users so timing does not reveal which usernames exist.
    const hash = rec?.passwordHash ?? (await (this.dummyHash ??= this.hash(randomBytes(16).toString('hex'))));
    const ok = await argon2.verify(hash, password).catch(() => false);
    if (!rec || !ok) {
      await this.throttle?.failed(username, address);
      throw unauthorized('Wrong username or password.');
    }
    const now = Date.now();
    const device: DeviceRecord = { id: this.ids.next(), userId: rec.id, name: (name.length > 100 ? Array.from(name).slice(0, 100).join('') : name) || 'device', createdAt: now, lastActiveAt: now };
    await this.store.devices.create(device);
    const { passwordHash: _, ...user } = rec;
    return this.issue(user, device.id);
  }

  async refresh(refreshToken: string): Promise<Tokens> {
    const spent = await this.store.devices.spendRefreshToken(sha256(refreshToken), Date.now());
    if (!spent) throw unauthorized('The refresh token is not valid.');
    if (spent.outcome === 'reused') {
      const device = await this.store.devices.get(spent.deviceId);
      if (device) await this.revokeDevice(device.userId, device.id);
      throw unauthorized('The refresh token was already used; the session is revoked.');
    }
    if (spent.outcome === 'expired') throw unauthorized('The refresh token has expired.');
    const device = await this.store.devices.get(spent.deviceId);
    if (!device || device.revokedAt !== undefined) throw unauthorized('The session was revoked.');
    const user = await this.store.users.byId(device.userId);
    if (!user) throw unauthorized('The account no longer exists.');
    await this.store.devices.touch(device.id, Date.now());
    return this.issue(user, device.id);
  }

  private async issue(user: User, deviceId: Id): Promise<Tokens> {
    const now = Math.floor(Date.now() / 1000);
    const accessToken = await new SignJWT({ did: deviceId })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(user.id)
      .setIssuedAt(now)
      .setExpirationTime(now + this.opts.accessTokenTtlSec)
      .sign(await this.key);
    const refreshToken = randomBytes(32).toString('base64url');
    await this.store.devices.addRefreshToken(sha256(refreshToken), deviceId, Date.now() + this.opts.refreshTokenTtlSec * 1000);
    return { accessToken, refreshToken, expiresIn: this.opts.accessTokenTtlSec, deviceId, user };
  }

  /** The principal of a valid access token whose device is not revoked. */
  async verify(token: string): Promise<Principal> {
    let userId: string | undefined;
    let deviceId: unknown;
    try {
      const { payload } = await jwtVerify(token, await this.key, { algorithms: ['HS256'] });
      userId = payload.sub;
      deviceId = payload['did'];
    } catch {
      throw unauthorized('The access token is invalid or expired.');
    }
    if (typeof userId !== 'string' || typeof deviceId !== 'string') throw unauthorized('The access token is invalid.');
    if (!(await this.deviceActive(userId, deviceId))) throw unauthorized('The session was revoked.');
    this.used(deviceId, Date.now());
    return { userId, deviceId };
  }

  /**
   * The device made a request (HTTP, or a frame on its socket): move its
   * session's lastActiveAt, at most once a minute. Not awaited: a request never
   * waits for, or fails because of, this bookkeeping.
   */
  used(deviceId: Id, now: number): void {
    const last = this.touched.get(deviceId);
    if (last !== undefined && now - last < TOUCH_EVERY_MS) return;
    if (this.touched.size >= DEVICE_CACHE_MAX) this.touched.clear();
    this.touched.set(deviceId, now);
    void this.store.devices.touch(deviceId, now).catch(() => this.touched.delete(deviceId));
  }

  private async deviceActive(userId: Id, deviceId: Id): Promise<boolean> {
    const now = Date.now();
    const hit = this.devices.get(deviceId);
    if (hit && hit.until > now) return !hit.revoked && hit.userId === userId;
    const rec = await this.store.devices.get(deviceId);
    const entry = { userId: rec?.userId ?? '', revoked: !rec || rec.revokedAt !== undefined, until: now + DEVICE_CACHE_MS };
    if (this.devices.size >= DEVICE_CACHE_MAX) this.devices.clear();
    this.devices.set(deviceId, entry);
    return !entry.revoked && entry.userId === userId;
  }

  /** Called on every node when any node revokes a device. */
  forgetDevice(deviceId: Id): void {
    this.devices.set(deviceId, { userId: '', revoked: true, until: Date.now() + DEVICE_CACHE_MS });
  }

  async revokeDevice(userId: Id, deviceId: Id): Promise<void> {
    await this.store.devices.revoke(deviceId, Date.now());
    this.forgetDevice(deviceId);
    await this.fanout.revoke(userId, deviceId);
  }

  /** The user's active sessions, newest first, a keyset page at a time. */
  async sessions(userId: Id, currentDeviceId: Id, limit: number, after?: string): Promise<SessionPage> {
    return pageSessions(await this.store.devices.listActive(userId), currentDeviceId, limit, after);
  }

  async revokeSession(userId: Id, deviceId: Id): Promise<void> {
    const d = await this.store.devices.get(deviceId);
    if (!d || d.userId !== userId || d.revokedAt !== undefined) throw notFound('No session of yours has that id.');
    await this.revokeDevice(userId, deviceId);
  }
}
