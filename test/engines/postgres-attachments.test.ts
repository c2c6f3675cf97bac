/**
 * The attachment part of the Store port suite on the machine's real
 * PostgreSQL (R14), then what only a many-node engine has to show: the
 * sweeper's delete racing appends that reference the same upload, on two
 * pools. Every run uses its own random schemas and drops them at the end.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { StoreError } from '../../src/core/ports/store.js';
import { openPostgresStore, type PostgresStore } from '../../src/engines/postgres/store.js';
import { POSTGRES_URL, postgresMissing } from '../helpers/services.js';
import { testSchemas } from '../helpers/postgres-schemas.js';
import { attachmentStoreSuite } from '../ports/attachment-store.suite.js';

const skip = await postgresMissing();
const { fresh } = testSchemas(skip);

const opened: PostgresStore[] = [];
after(async () => {
  await Promise.all(opened.map((s) => s.close()));
});
const open = async (schema: string): Promise<PostgresStore> => {
  const s = await openPostgresStore({ url: POSTGRES_URL, schema, poolSize: 4 });
  opened.push(s);
  return s;
};

if (!skip) {
  let shared: PostgresStore | undefined;
  attachmentStoreSuite(
    'postgres',
    async () => (shared ??= await open(fresh('att'))),
    async () => undefined,
  );
}

describe('PostgreSQL attachments', { skip }, () => {
  it('never deletes an upload a message references, when the sweeper and appends race on two nodes', async () => {
    const schema = fresh('attrace');
    const [n1, n2] = [await open(schema), await open(schema)];
    const user = `u-${randomUUID()}`;
    await n1.users.create({ id: user, username: `r${randomBytes(6).toString('hex')}`, displayName: 'R', createdAt: 1, passwordHash: 'h' });
    const conv = `c-${randomUUID()}`;
    await n1.conversations.create({ id: conv, kind: 'group', title: 'race', members: [{ userId: user, role: 'owner' }], at: 1 });
    const past = Date.now() - 10_000;
    const future = Date.now() + 3600_000;
    let attachedWins = 0;
    let removedWins = 0;
    for (let i = 0; i < 40; i++) {
      const id = `a-${randomUUID()}`;
      await n1.attachments.create({ id, uploaderId: user, type: 'text/plain', name: 'x.txt', size: 1, sha256: '0'.repeat(64), createdAt: past });
      const [sent, removed] = await Promise.allSettled([
        n1.events.append({
          kind: 'message.created',
          conversationId: conv,
          actorId: user,
          at: Date.now(),
          message: { id: `m-${randomUUID()}`, clientId: `k${i}`, body: '', attachments: [{ id, type: 'text/plain', name: 'x.txt', size: 1 }] },
        }),
        n2.attachments.remove(id, future),
      ]);
      assert.equal(removed.status, 'fulfilled', 'remove never throws for a race');
      const gone = removed.status === 'fulfilled' && removed.value;
      if (sent.status === 'fulfilled') {
        assert.equal(gone, false, 'a message carries it: it was not deleted');
        assert.ok(await n2.attachments.readable(id, user), 'and it is still there');
        attachedWins++;
      } else {
        assert.ok(sent.reason instanceof StoreError && sent.reason.code === 'not_found', `the send is refused as not_found: ${String(sent.reason)}`);
        assert.equal(gone, true);
        removedWins++;
      }
    }
    assert.equal(attachedWins + removedWins, 40);
    console.log(`# race outcomes: the message won ${attachedWins}, the sweeper ${removedWins}`);
  });
});
