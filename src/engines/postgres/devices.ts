/**
 * DeviceStore on PostgreSQL (contract: core/ports/store.ts; the engine
 * choices are the SQLite engine's: unknown user or device is 'not_found', a
 * taken id or hash 'conflict'; revoke keeps the first time; touch never moves
 * back; a token is expired from expiresAt on; a spent token is 'reused' even
 * once expired).
 */
import type { DeviceRecord, DeviceStore, RefreshOutcome } from '../../core/ports/store.js';
import type { Db } from './db.js';
import { translate } from './rows.js';
import { toDevice, type DeviceRow } from '../sql-rows.js';

export class PostgresDeviceStore implements DeviceStore {
  constructor(private readonly db: Db) {}

  async create(d: DeviceRecord): Promise<void> {
    try {
      await this.db.query(
        'INSERT INTO devices (id, user_id, name, created_at, last_active_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)',
        [d.id, d.userId, d.name, d.createdAt, d.lastActiveAt, d.revokedAt ?? null],
      );
    } catch (err) {
      throw translate(err, 'device');
    }
  }

  async get(id: string): Promise<DeviceRecord | undefined> {
    const [r] = await this.db.query<DeviceRow>('SELECT * FROM devices WHERE id = $1', [id]);
    return r && toDevice(r);
  }

  async listActive(userId: string): Promise<DeviceRecord[]> {
    const rows = await this.db.query<DeviceRow>(
      'SELECT * FROM devices WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id DESC',
      [userId],
    );
    return rows.map(toDevice);
  }

  async revoke(id: string, at: number): Promise<void> {
    // One statement, so the device and its push subscriptions go together.
    await this.db.query(
      'WITH r AS (UPDATE devices SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2) DELETE FROM push_subscriptions WHERE device_id = $2',
      [at, id],
    );
  }

  async touch(id: string, at: number): Promise<void> {
    // The WHERE skips the write (and its row version) when nothing would change.
    await this.db.query('UPDATE devices SET last_active_at = $1 WHERE id = $2 AND last_active_at < $1', [at, id]);
  }

  async addRefreshToken(tokenHash: string, deviceId: string, expiresAt: number): Promise<void> {
    try {
      await this.db.query('INSERT INTO refresh_tokens (token_hash, device_id, expires_at) VALUES ($1, $2, $3)', [tokenHash, deviceId, expiresAt]);
    } catch (err) {
      throw translate(err, 'refresh token');
    }
  }

  async spendRefreshToken(tokenHash: string, at: number): Promise<RefreshOutcome | undefined> {
    // The UPDATE decides: concurrent spenders queue on the row lock and re-check
    // spent_at once it is theirs, so exactly one gets a row back.
    const [spent] = await this.db.query<{ device_id: string }>(
      'UPDATE refresh_tokens SET spent_at = $1 WHERE token_hash = $2 AND spent_at IS NULL AND expires_at > $1 RETURNING device_id',
      [at, tokenHash],
    );
    if (spent) return { outcome: 'ok', deviceId: spent.device_id };
    // A statement of its own: its snapshot sees a spend that committed while the UPDATE waited.
    const [r] = await this.db.query<{ device_id: string; spent_at: number | null }>(
      'SELECT device_id, spent_at FROM refresh_tokens WHERE token_hash = $1',
      [tokenHash],
    );
    if (!r) return undefined;
    return { outcome: r.spent_at !== null ? 'reused' : 'expired', deviceId: r.device_id };
  }
}
