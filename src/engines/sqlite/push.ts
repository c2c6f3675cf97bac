/**
 * PushStore on SQLite (contract: core/ports/store.ts; migration 7). Every read
 * joins the device, so a subscription of a revoked device is never returned
 * even if one were left behind.
 */
import type Database from 'better-sqlite3';
import type { Id } from '../../protocol/model.js';
import type { PushStore, PushSubscriptionRecord } from '../../core/ports/store.js';
import { translate } from './rows.js';
import { PUSH_COLUMNS, toPushSubscription, type PushSubscriptionRow } from '../push-rows.js';

/** Ids per statement in forUsers: one JSON parameter, so only to bound a statement's work. */
const CHUNK = 1000;

export class SqlitePushStore implements PushStore {
  private readonly upsert;
  private readonly selectOne;
  private readonly page;
  private readonly count;
  private readonly ofUsers;
  private readonly del;
  private readonly insertSecret;
  private readonly selectSecret;

  constructor(db: Database.Database) {
    const active = `FROM push_subscriptions s JOIN devices d ON d.id = s.device_id AND d.revoked_at IS NULL`;
    // created: the row's id is the one offered (a new row); a taken-over row keeps its own.
    this.upsert = db.prepare<[string, string, string, string, string, string | null, string | null, string | null, number], PushSubscriptionRow>(
      `INSERT INTO push_subscriptions (id, user_id, device_id, kind, address, p256dh, auth, topic, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (kind, address) DO UPDATE SET
         user_id = excluded.user_id, device_id = excluded.device_id, p256dh = excluded.p256dh, auth = excluded.auth,
         topic = excluded.topic, created_at = excluded.created_at
       RETURNING *`,
    );
    this.selectOne = db.prepare<[string], PushSubscriptionRow>(`SELECT ${PUSH_COLUMNS} ${active} WHERE s.id = ?`);
    this.page = db.prepare<[string, string, number], PushSubscriptionRow>(`SELECT ${PUSH_COLUMNS} ${active} WHERE s.user_id = ? AND s.id > ? ORDER BY s.id LIMIT ?`);
    this.count = db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM push_subscriptions WHERE device_id = ?');
    this.ofUsers = db.prepare<[string], PushSubscriptionRow>(`SELECT ${PUSH_COLUMNS} ${active} WHERE s.user_id IN (SELECT value FROM json_each(?))`);
    this.del = db.prepare<[string]>('DELETE FROM push_subscriptions WHERE id = ?');
    this.insertSecret = db.prepare<[string, string, number]>('INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
    this.selectSecret = db.prepare<[string], { value: string }>('SELECT value FROM server_secrets WHERE name = ?');
  }

  async put(sub: PushSubscriptionRecord): Promise<{ subscription: PushSubscriptionRecord; created: boolean }> {
    let row: PushSubscriptionRow | undefined;
    try {
      row = this.upsert.get(sub.id, sub.userId, sub.deviceId, sub.kind, sub.address, sub.p256dh ?? null, sub.auth ?? null, sub.topic ?? null, sub.createdAt);
    } catch (err) {
      throw translate(err, 'push subscription');
    }
    if (!row) throw new Error('push subscription vanished right after it was written');
    return { subscription: toPushSubscription(row), created: row.id === sub.id };
  }

  async get(id: Id): Promise<PushSubscriptionRecord | undefined> {
    const r = this.selectOne.get(id);
    return r && toPushSubscription(r);
  }

  async listForUser(userId: Id, limit: number, afterId?: Id): Promise<PushSubscriptionRecord[]> {
    return this.page.all(userId, afterId ?? '', limit).map(toPushSubscription);
  }

  async countForDevice(deviceId: Id): Promise<number> {
    return this.count.get(deviceId)?.n ?? 0;
  }

  async forUsers(userIds: readonly Id[]): Promise<PushSubscriptionRecord[]> {
    const out: PushSubscriptionRecord[] = [];
    for (let i = 0; i < userIds.length; i += CHUNK) {
      for (const r of this.ofUsers.all(JSON.stringify(userIds.slice(i, i + CHUNK)))) out.push(toPushSubscription(r));
    }
    return out;
  }

  async remove(id: Id): Promise<boolean> {
    return this.del.run(id).changes === 1;
  }

  async ensureSecret(name: string, value: string): Promise<string> {
    this.insertSecret.run(name, value, Date.now());
    const r = this.selectSecret.get(name);
    if (!r) throw new Error('server secret vanished right after it was written');
    return r.value;
  }
}
