/**
 * PushStore on PostgreSQL (contract: core/ports/store.ts; migration 7, the
 * same tables as the SQLite engine). Every read joins the device, so a
 * subscription of a revoked device is never returned.
 */
import type { Id } from '../../protocol/model.js';
import type { PushStore, PushSubscriptionRecord } from '../../core/ports/store.js';
import type { Db } from './db.js';
import { translate } from './rows.js';
import { PUSH_COLUMNS, toPushSubscription, type PushSubscriptionRow } from '../push-rows.js';

const ACTIVE = 'FROM push_subscriptions s JOIN devices d ON d.id = s.device_id AND d.revoked_at IS NULL';
/** Ids per statement in forUsers. */
const CHUNK = 5000;

export class PostgresPushStore implements PushStore {
  constructor(private readonly db: Db) {}

  async put(sub: PushSubscriptionRecord): Promise<{ subscription: PushSubscriptionRecord; created: boolean }> {
    let rows: PushSubscriptionRow[];
    try {
      rows = await this.db.query<PushSubscriptionRow>(
        `INSERT INTO push_subscriptions (id, user_id, device_id, kind, address, p256dh, auth, topic, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (kind, address) DO UPDATE SET
           user_id = excluded.user_id, device_id = excluded.device_id, p256dh = excluded.p256dh, auth = excluded.auth,
           topic = excluded.topic, created_at = excluded.created_at
         RETURNING *`,
        [sub.id, sub.userId, sub.deviceId, sub.kind, sub.address, sub.p256dh ?? null, sub.auth ?? null, sub.topic ?? null, sub.createdAt],
      );
    } catch (err) {
      throw translate(err, 'push subscription');
    }
    const [row] = rows;
    if (!row) throw new Error('push subscription vanished right after it was written');
    return { subscription: toPushSubscription(row), created: row.id === sub.id };
  }

  async get(id: Id): Promise<PushSubscriptionRecord | undefined> {
    const [r] = await this.db.query<PushSubscriptionRow>(`SELECT ${PUSH_COLUMNS} ${ACTIVE} WHERE s.id = $1`, [id]);
    return r && toPushSubscription(r);
  }

  async listForUser(userId: Id, limit: number, afterId?: Id): Promise<PushSubscriptionRecord[]> {
    const rows = await this.db.query<PushSubscriptionRow>(`SELECT ${PUSH_COLUMNS} ${ACTIVE} WHERE s.user_id = $1 AND s.id > $2 ORDER BY s.id LIMIT $3`, [
      userId,
      afterId ?? '',
      limit,
    ]);
    return rows.map(toPushSubscription);
  }

  async countForDevice(deviceId: Id): Promise<number> {
    const [r] = await this.db.query<{ n: number }>('SELECT count(*) AS n FROM push_subscriptions WHERE device_id = $1', [deviceId]);
    return Number(r?.n ?? 0);
  }

  async forUsers(userIds: readonly Id[]): Promise<PushSubscriptionRecord[]> {
    const out: PushSubscriptionRecord[] = [];
    for (let i = 0; i < userIds.length; i += CHUNK) {
      const rows = await this.db.query<PushSubscriptionRow>(`SELECT ${PUSH_COLUMNS} ${ACTIVE} WHERE s.user_id = ANY($1::text[])`, [userIds.slice(i, i + CHUNK)]);
      for (const r of rows) out.push(toPushSubscription(r));
    }
    return out;
  }

  async remove(id: Id): Promise<boolean> {
    const rows = await this.db.query<{ one: number }>('DELETE FROM push_subscriptions WHERE id = $1 RETURNING 1 AS one', [id]);
    return rows.length === 1;
  }

  async ensureSecret(name: string, value: string): Promise<string> {
    // One statement: the insert, or the row another node put there first.
    const [r] = await this.db.query<{ value: string }>(
      `WITH ins AS (INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING value)
       SELECT value FROM ins UNION ALL SELECT value FROM server_secrets WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM ins)`,
      [name, value, Date.now()],
    );
    if (r) return r.value;
    // The other node's insert committed after this statement's snapshot: a new statement sees it.
    const [again] = await this.db.query<{ value: string }>('SELECT value FROM server_secrets WHERE name = $1', [name]);
    if (!again) throw new Error('server secret vanished right after it was written');
    return again.value;
  }
}
