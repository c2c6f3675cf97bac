/** UserStore on PostgreSQL (contract: core/ports/store.ts; same engine choices as the SQLite engine). */
import type { User } from '../../protocol/model.js';
import type { UserRecord, UserStore } from '../../core/ports/store.js';
import type { Db } from './db.js';
import { translate } from './rows.js';
import { TOP_CODE_POINT, toUser, type UserRow } from '../sql-rows.js';

export class PostgresUserStore implements UserStore {
  constructor(private readonly db: Db) {}

  async create(user: UserRecord): Promise<User> {
    const username = user.username.toLowerCase();
    try {
      await this.db.query(
        'INSERT INTO users (id, username, display_name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)',
        [user.id, username, user.displayName, user.passwordHash, user.createdAt],
      );
    } catch (err) {
      throw translate(err, 'username');
    }
    return { id: user.id, username, displayName: user.displayName, createdAt: user.createdAt };
  }

  async byId(id: string): Promise<User | undefined> {
    const [r] = await this.db.query<UserRow>('SELECT * FROM users WHERE id = $1', [id]);
    return r && toUser(r);
  }

  /** In the order asked, each once; unknown ids are left out. */
  async byIds(ids: readonly string[]): Promise<User[]> {
    if (ids.length === 0) return [];
    const rows = await this.db.query<UserRow>('SELECT * FROM users WHERE id = ANY ($1::text[])', [[...new Set(ids)]]);
    const found = new Map(rows.map((r) => [r.id, toUser(r)]));
    const out: User[] = [];
    for (const id of new Set(ids)) {
      const u = found.get(id);
      if (u) out.push(u);
    }
    return out;
  }

  async byUsername(username: string): Promise<UserRecord | undefined> {
    const [r] = await this.db.query<UserRow>('SELECT * FROM users WHERE username = $1', [username.toLowerCase()]);
    return r && { ...toUser(r), passwordHash: r.password_hash };
  }

  async search(prefix: string, limit: number, afterUsername?: string): Promise<User[]> {
    const p = prefix.toLowerCase();
    // A range on the unique index, so the search never scans the table.
    const rows = await this.db.query<UserRow>(
      'SELECT * FROM users WHERE username >= $1 AND username < $2 AND username > $3 ORDER BY username LIMIT $4',
      [p, p + TOP_CODE_POINT, afterUsername?.toLowerCase() ?? '', limit],
    );
    return rows.map(toUser);
  }
}
