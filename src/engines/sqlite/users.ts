/** UserStore on SQLite (contract: core/ports/store.ts). */
import type Database from 'better-sqlite3';
import type { User } from '../../protocol/model.js';
import type { UserRecord, UserStore } from '../../core/ports/store.js';
import { translate } from './rows.js';
import { TOP_CODE_POINT, toUser, type UserRow } from '../sql-rows.js';

export class SqliteUserStore implements UserStore {
  private readonly insert;
  private readonly selectById;
  private readonly selectByIds;
  private readonly selectByUsername;
  private readonly selectPrefix;

  constructor(db: Database.Database) {
    this.insert = db.prepare<[string, string, string, string, number]>(
      'INSERT INTO users (id, username, display_name, password_hash, created_at) VALUES (?, ?, ?, ?, ?)',
    );
    this.selectById = db.prepare<[string], UserRow>('SELECT * FROM users WHERE id = ?');
    this.selectByIds = db.prepare<[string], UserRow>('SELECT * FROM users WHERE id IN (SELECT value FROM json_each(?))');
    this.selectByUsername = db.prepare<[string], UserRow>('SELECT * FROM users WHERE username = ?');
    // A range on the unique index, so the search never scans the table.
    this.selectPrefix = db.prepare<[string, string, string, number], UserRow>(
      'SELECT * FROM users WHERE username >= ? AND username < ? AND username > ? ORDER BY username LIMIT ?',
    );
  }

  async create(user: UserRecord): Promise<User> {
    const username = user.username.toLowerCase();
    try {
      this.insert.run(user.id, username, user.displayName, user.passwordHash, user.createdAt);
    } catch (err) {
      throw translate(err, 'username');
    }
    return { id: user.id, username, displayName: user.displayName, createdAt: user.createdAt };
  }

  async byId(id: string): Promise<User | undefined> {
    const r = this.selectById.get(id);
    return r && toUser(r);
  }

  /** In the order asked, each once; unknown ids are left out. */
  async byIds(ids: readonly string[]): Promise<User[]> {
    if (ids.length === 0) return [];
    const found = new Map(this.selectByIds.all(JSON.stringify(ids)).map((r) => [r.id, toUser(r)]));
    const out: User[] = [];
    for (const id of new Set(ids)) {
      const u = found.get(id);
      if (u) out.push(u);
    }
    return out;
  }

  async byUsername(username: string): Promise<UserRecord | undefined> {
    const r = this.selectByUsername.get(username.toLowerCase());
    return r && { ...toUser(r), passwordHash: r.password_hash };
  }

  async search(prefix: string, limit: number, afterUsername?: string): Promise<User[]> {
    const p = prefix.toLowerCase();
    return this.selectPrefix.all(p, p + TOP_CODE_POINT, afterUsername?.toLowerCase() ?? '', limit).map(toUser);
  }
}
