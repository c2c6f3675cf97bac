/**
 * DeviceKeyStore on PostgreSQL (contract: core/ports/store.ts), migration 8;
 * the engine choices are the SQLite engine's (a row per device, written once;
 * revoked devices skipped by joining `devices`). One statement per call.
 */
import type { DeviceKeyRecord, DeviceKeyStore } from '../../core/ports/store.js';
import type { Db } from './db.js';
import { translate } from './rows.js';
import { toDeviceKeys, type DeviceKeyRow } from '../sql-rows.js';

const ORDER = 'ORDER BY k.user_id, k.created_at, k.device_id';

export class PostgresDeviceKeyStore implements DeviceKeyStore {
  constructor(private readonly db: Db) {}

  async put(r: DeviceKeyRecord): Promise<'created' | 'same' | 'different'> {
    let inserted: unknown[];
    try {
      inserted = await this.db.query(
        `INSERT INTO device_keys (device_id, user_id, identity_key, agreement_key, signature, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id) DO NOTHING RETURNING device_id`,
        [r.deviceId, r.userId, r.identityKey, r.agreementKey, r.signature, r.createdAt],
      );
    } catch (err) {
      throw translate(err, 'device');
    }
    if (inserted.length === 1) return 'created';
    // A statement of its own: it sees the row a concurrent put committed while the INSERT waited.
    const [had] = await this.db.query<DeviceKeyRow>('SELECT * FROM device_keys WHERE device_id = $1', [r.deviceId]);
    return had && had.user_id === r.userId && had.identity_key === r.identityKey && had.agreement_key === r.agreementKey ? 'same' : 'different';
  }

  async forUsers(userIds: readonly string[]): Promise<DeviceKeyRecord[]> {
    if (userIds.length === 0) return [];
    const rows = await this.db.query<DeviceKeyRow>(
      `SELECT k.* FROM device_keys k JOIN devices d ON d.id = k.device_id
       WHERE k.user_id = ANY ($1::text[]) AND d.revoked_at IS NULL ${ORDER}`,
      [userIds],
    );
    return rows.map(toDeviceKeys);
  }

  async forConversation(conversationId: string): Promise<DeviceKeyRecord[]> {
    const rows = await this.db.query<DeviceKeyRow>(
      `SELECT k.* FROM members m JOIN device_keys k ON k.user_id = m.user_id JOIN devices d ON d.id = k.device_id
       WHERE m.conversation_id = $1 AND d.revoked_at IS NULL ${ORDER}`,
      [conversationId],
    );
    return rows.map(toDeviceKeys);
  }
}
