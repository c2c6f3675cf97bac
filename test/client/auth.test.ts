import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ParleyClient } from '../../src/client/index.js';
import { ParleyError } from '../../src/client/index.js';
import { createNodeClient } from '../../src/client/node.js';
import { TestServer, signedIn, sleep, until } from './_helpers.js';

let server: TestServer;
before(async () => {
  // Access tokens live 3 s, so refresh-before-expiry happens within a test.
  server = await TestServer.start({ accessTokenTtlSec: 3 });
});
after(async () => {
  await server.cleanup();
});

/** The token the client holds now (read for the test only). */
function accessToken(c: ParleyClient): string {
  return (c as unknown as { session: { accessToken: string } }).session.accessToken;
}

describe('SDK sessions', () => {
  test('register errors come back as typed ParleyErrors', async () => {
    const c = createNodeClient({ url: server.url });
    await c.register('taken_name', 'long enough password');
    await assert.rejects(c.register('taken_name', 'long enough password'), (e: unknown) => e instanceof ParleyError && e.code === 'conflict' && e.status === 409);
    await assert.rejects(c.login('taken_name', 'wrong password!'), (e: unknown) => e instanceof ParleyError && e.code === 'unauthorized');
  });

  test('the access token is refreshed before it expires; the socket and HTTP keep working', async () => {
    const a = await signedIn(server.url);
    try {
      await until(() => a.client.state === 'online', 5000, 'online');
      const first = accessToken(a.client);
      await until(() => accessToken(a.client) !== first, 5000, 'refreshed');
      await sleep(3500);
      // The first token has expired by now; the client holds a live one.
      const { user } = await a.client.api.me();
      assert.equal(user.id, a.client.user?.id);
      assert.equal(a.client.state, 'online');
    } finally {
      a.client.stop();
    }
  });

  test('a socket refused with 4001 makes the client refresh once and authenticate again', async () => {
    const a = await signedIn(server.url);
    try {
      await until(() => a.client.state === 'online', 5000, 'online');
      const states: string[] = [];
      a.client.on('state', (s) => states.push(s));
      // A token the server will refuse, as an expired or rotated-out one would be.
      (a.client as unknown as { session: { accessToken: string; expiresAt: number } }).session.accessToken = 'not-a-valid-token';
      a.client.reconnectNow();
      await until(() => a.client.state === 'online' && states.includes('reconnecting'), 5000, 'back online');
      assert.notEqual(accessToken(a.client), 'not-a-valid-token');
      assert.ok(a.client.user, 'still signed in');
    } finally {
      a.client.stop();
    }
  });

  test('a session revoked from another device signs this one out', async () => {
    const a = await signedIn(server.url);
    const other = createNodeClient({ url: server.url });
    try {
      await until(() => a.client.state === 'online', 5000, 'online');
      await other.login(a.username, a.password);
      let signedOut = false;
      a.client.on('session', (u) => {
        if (u === null) signedOut = true;
      });
      await other.api.revokeSession(a.client.deviceId!);
      await until(() => signedOut, 5000, 'signed out');
      assert.equal(a.client.state, 'offline');
      assert.equal(a.client.user, undefined);
    } finally {
      a.client.stop();
      other.stop();
    }
  });
});
