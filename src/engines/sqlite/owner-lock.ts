/**
 * One store per SQLite file. The store keeps its newest messages indexed in
 * memory (recent-messages.ts), so a second store writing the same file would
 * leave the first one's reads stale. The owner holds an exclusive lock on a
 * small side file (`<path>.lock`) for as long as it is open; the operating
 * system drops the lock when the process dies, so a crash never leaves the
 * file locked. Several nodes share data through PostgreSQL instead.
 */
import Database from 'better-sqlite3';

export interface OwnerLock {
  release(): void;
}

export function lockOwner(path: string, waitMs: number): OwnerLock {
  const lockPath = `${path}.lock`;
  const db = new Database(lockPath, { timeout: waitMs });
  try {
    // In EXCLUSIVE locking mode the lock taken by the first write is kept until the connection closes.
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS owner (pid INTEGER NOT NULL, since INTEGER NOT NULL)');
    db.transaction(() => {
      db.exec('DELETE FROM owner');
      db.prepare('INSERT INTO owner (pid, since) VALUES (?, ?)').run(process.pid, Date.now());
    })();
  } catch (err) {
    db.close();
    if (err instanceof Database.SqliteError && err.code.startsWith('SQLITE_BUSY')) {
      throw new Error(
        `${path} is in use by another Parley process (its lock ${lockPath} is held). ` +
          'One process owns an SQLite data directory; run several nodes on PostgreSQL and Redis instead.',
        { cause: err },
      );
    }
    throw err;
  }
  return { release: () => db.close() };
}
