/** The attachment part of the Store port suite on SQLite (R14). */
import { openSqliteStore } from '../../src/engines/sqlite/store.js';
import { attachmentStoreSuite } from '../ports/attachment-store.suite.js';

attachmentStoreSuite(
  'sqlite',
  async () => openSqliteStore({ path: ':memory:' }),
  async (s) => s.close(),
);
