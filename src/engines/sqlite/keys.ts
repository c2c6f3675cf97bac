/**
 * DeviceKeyStore on SQLite (contract: core/ports/store.ts), migration 8.
 *
 * A device's row is written once; a revoked device's row stays (its keys may
 * still verify what it signed) but every read joins `devices` and skips it.
 */
import type Database from 'better-sqlite3';
import type { DeviceKeyRecord, DeviceKeyStore } from '../../core/ports/store.js';
import { translate } from './rows.js';
import { toDeviceKeys, type DeviceKeyRow } from '../sql-rows.js';

const ORDER = 'ORDER BY k.user_id, k.created_at, k.device_id';

export class SqliteDeviceKeyStore implements DeviceKeyStore {
  private readonly insert;
  private readonly selectOne;
  private readonly selectForUsers;
  private readonly selectForConversation;

  constructor(db: Database.Database) {
    this.insert = db.prepare<[string, string, string, string, string, number]>(
      `INSERT INTO device_keys (device_id, user_id, identity_key, agreement_key, signature, created_at)
       VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device_id) DO NOTHING`,
    );
    this.selectOne = db.prepare<[string], DeviceKeyRow>('SELECT * FROM device_keys WHERE device_id = ?');
    this.selectForUsers = db.prepare<[string], DeviceKeyRow>(
      `SELECT k.* FROM device_keys k JOIN devices d ON d.id = k.device_id
       WHERE k.user_id IN (SELECT value FROM json_each(?)) AND d.revoked_at IS NULL ${ORDER}`,
    );
    this.selectForConversation = db.prepare<[string], DeviceKeyRow>(
      `SELECT k.* FROM members m JOIN device_keys k ON k.user_id = m.user_id JOIN devices d ON d.id = k.device_id
       WHERE m.conversation_id = ? AND d.revoked_at IS NULL ${ORDER}`,
    );
  }

  async put(r: DeviceKeyRecord): Promise<'created' | 'same' | 'different'> {
    try {
      if (this.insert.run(r.deviceId, r.userId, r.identityKey, r.agreementKey, r.signature, r.createdAt).changes === 1) return 'created';
    } catch (err) {
      throw translate(err, 'device');
    }
    const had = this.selectOne.get(r.deviceId);
    return had && had.user_id === r.userId && had.identity_key === r.identityKey && had.agreement_key === r.agreementKey ? 'same' : 'different';
  }

  async forUsers(userIds: readonly string[]): Promise<DeviceKeyRecord[]> {
    if (userIds.length === 0) return [];
    return this.selectForUsers.all(JSON.stringify(userIds)).map(toDeviceKeys);
  }

  async forConversation(conversationId: string): Promise<DeviceKeyRecord[]> {
    return this.selectForConversation.all(conversationId).map(toDeviceKeys);
  }
}
