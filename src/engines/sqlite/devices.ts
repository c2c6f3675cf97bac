/**
 * DeviceStore on SQLite (contract: core/ports/store.ts).
 *
 * Engine choices the port leaves open:
 * - A device of an unknown user, or a token of an unknown device, is
 *   StoreError('not_found'); a taken id or token hash is 'conflict'.
 * - `revoke` keeps the first revocation time; `touch` never moves
 *   lastActiveAt back; both ignore unknown ids.
 * - A token is expired from `expiresAt` on (at >= expiresAt). A spent token
 *   reports 'reused' even once expired, so a replay is always detected.
 */
import type Database from 'better-sqlite3';
import type { DeviceRecord, DeviceStore, RefreshOutcome } from '../../core/ports/store.js';
import { translate } from './rows.js';
import { toDevice, type DeviceRow } from '../sql-rows.js';

export class SqliteDeviceStore implements DeviceStore {
  private readonly insert;
  private readonly selectOne;
  private readonly selectActive;
  private readonly revokeTx;
  private readonly updateTouched;
  private readonly insertToken;
  private readonly spendToken;
  private readonly selectToken;

  constructor(db: Database.Database) {
    this.insert = db.prepare<[string, string, string, number, number, number | null]>(
      'INSERT INTO devices (id, user_id, name, created_at, last_active_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.selectOne = db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE id = ?');
    this.selectActive = db.prepare<[string], DeviceRow>(
      'SELECT * FROM devices WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at DESC, id DESC',
    );
    const updateRevoked = db.prepare<[number, string]>('UPDATE devices SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?');
    const deletePush = db.prepare<[string]>('DELETE FROM push_subscriptions WHERE device_id = ?');
    this.revokeTx = db.transaction((at: number, id: string) => {
      updateRevoked.run(at, id);
      deletePush.run(id);
    });
    this.updateTouched = db.prepare<[number, string]>('UPDATE devices SET last_active_at = max(last_active_at, ?) WHERE id = ?');
    this.insertToken = db.prepare<[string, string, number]>('INSERT INTO refresh_tokens (token_hash, device_id, expires_at) VALUES (?, ?, ?)');
    // One statement decides and marks, so even two processes on the same file
    // cannot both get 'ok' for one token.
    this.spendToken = db.prepare<[number, string, number], { device_id: string }>(
      'UPDATE refresh_tokens SET spent_at = ? WHERE token_hash = ? AND spent_at IS NULL AND expires_at > ? RETURNING device_id',
    );
    this.selectToken = db.prepare<[string], { device_id: string; spent_at: number | null }>(
      'SELECT device_id, spent_at FROM refresh_tokens WHERE token_hash = ?',
    );
  }

  async create(d: DeviceRecord): Promise<void> {
    try {
      this.insert.run(d.id, d.userId, d.name, d.createdAt, d.lastActiveAt, d.revokedAt ?? null);
    } catch (err) {
      throw translate(err, 'device');
    }
  }

  async get(id: string): Promise<DeviceRecord | undefined> {
    const r = this.selectOne.get(id);
    return r && toDevice(r);
  }

  async listActive(userId: string): Promise<DeviceRecord[]> {
    return this.selectActive.all(userId).map(toDevice);
  }

  async revoke(id: string, at: number): Promise<void> {
    this.revokeTx(at, id);
  }

  async touch(id: string, at: number): Promise<void> {
    this.updateTouched.run(at, id);
  }

  async addRefreshToken(tokenHash: string, deviceId: string, expiresAt: number): Promise<void> {
    try {
      this.insertToken.run(tokenHash, deviceId, expiresAt);
    } catch (err) {
      throw translate(err, 'refresh token');
    }
  }

  async spendRefreshToken(tokenHash: string, at: number): Promise<RefreshOutcome | undefined> {
    const spent = this.spendToken.get(at, tokenHash, at);
    if (spent) return { outcome: 'ok', deviceId: spent.device_id };
    const r = this.selectToken.get(tokenHash);
    if (!r) return undefined;
    return { outcome: r.spent_at !== null ? 'reused' : 'expired', deviceId: r.device_id };
  }
}
