/**
 * End-to-end encryption in the SDK (R18), against a real server: two users
 * with two devices each read everything in an encrypted conversation, live and
 * from history; a device signed in later cannot read what came before it and
 * reads what comes after (the sender's stale device list is refreshed when the
 * server refuses it); a member added to an encrypted group likewise; tampered
 * or replayed envelopes are marked unreadable, never shown; keys survive a
 * restart from the file store; both sides compute the same safety number.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNodeClient } from '../../src/client/node.js';
import type { ConversationState, Message, ParleyClient } from '../../src/client/index.js';
import { ENVELOPE_PREFIX, parseEnvelope } from '../../src/protocol/e2e.js';
import { b64url, unb64url } from '../../src/client/e2e/crypto.js';
import { PASSWORD, SuiteClients, TestServer, keysPublished, until, untilRead, uniqueName } from './_helpers.js';

describe('SDK: end-to-end encryption', () => {
  let server: TestServer;
  const clients = new SuiteClients(() => server.url);
  const user = (prefix: string): Promise<{ client: ParleyClient; username: string }> => clients.user(prefix);
  const device = (username: string, storagePath?: string): Promise<ParleyClient> => clients.device(username, storagePath);
  let dir: string;
  before(async () => {
    server = await TestServer.start();
    dir = await mkdtemp(join(tmpdir(), 'parley-e2e-sdk-'));
  });
  after(async () => {
    await clients.close();
    await server.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  const texts = (c: ParleyClient, id: string): string[] => c.messages(id).map((m) => (m.e2e?.ok === false ? `<unreadable:${m.e2e.reason}>` : m.body));
  async function sees(c: ParleyClient, id: string, expected: string[], what: string): Promise<void> {
    await untilRead(c, id, () => JSON.stringify(texts(c, id)) === JSON.stringify(expected), 15_000,
      () => `${what}: ${JSON.stringify(expected)} (has ${JSON.stringify(c.conversation(id) ? texts(c, id) : 'no conversation')})`);
  }

  it('two users with two devices each: every device reads every message, live and from history; edits too', async () => {
    const alice = await user('ea');
    const bob = await user('eb');
    const alicePhone = await device(alice.username);
    const bobPhone = await device(bob.username);
    await keysPublished(alice.client, 2);
    await keysPublished(bob.client, 2);

    const conv: ConversationState = await alice.client.startDirect(bob.client.user?.id as string, { encrypted: true });
    assert.equal(conv.conversation.encrypted, true);
    await alice.client.send(conv.id, 'Hi Bob, the code is 4711');
    const all = [alice.client, alicePhone, bob.client, bobPhone];
    for (const c of all) await sees(c, conv.id, ['Hi Bob, the code is 4711'], 'first message');
    for (const c of all) assert.deepEqual(c.messages(conv.id)[0]?.e2e, { ok: true, deviceId: alice.client.deviceId });

    await bobPhone.send(conv.id, 'Got it 👍');
    await alicePhone.send(conv.id, 'Great — see you at 8');
    const expected = ['Hi Bob, the code is 4711', 'Got it 👍', 'Great — see you at 8'];
    for (const c of all) await sees(c, conv.id, expected, 'three messages');

    const first = alice.client.messages(conv.id)[0] as Message;
    await alice.client.edit(first.id, 'Hi Bob, the code is 4712');
    expected[0] = 'Hi Bob, the code is 4712';
    for (const c of all) await sees(c, conv.id, expected, 'after the edit');

    // What the server holds and sends is the envelope, never the text.
    const raw = await bob.client.api.messages(conv.id, { limit: 10 });
    assert.equal(raw.messages.length, 3);
    for (const m of raw.messages) assert.ok(m.body.startsWith(ENVELOPE_PREFIX) && !m.body.includes('4712') && !m.body.includes('Bob'), m.body);

    // A fresh sign-in of Bob reads nothing of it (its keys did not exist), but everything after.
    const bobLater = await device(bob.username);
    await keysPublished(bob.client, 3);
    await sees(bobLater, conv.id, expected.map(() => '<unreadable:not-for-this-device>'), 'a new device, old messages');
    // Alice's laptop still knows only four devices: the server refuses that, the SDK reads the devices again.
    await alice.client.send(conv.id, 'Welcome, new laptop');
    await sees(bobLater, conv.id, [...expected.map(() => '<unreadable:not-for-this-device>'), 'Welcome, new laptop'], 'a new device, new message');
    for (const c of all) await sees(c, conv.id, [...expected, 'Welcome, new laptop'], 'everyone reads it');
    // And what the new device sends, every other device verifies by fetching its keys.
    await bobLater.send(conv.id, 'Hello from the new laptop');
    for (const c of all) await sees(c, conv.id, [...expected, 'Welcome, new laptop', 'Hello from the new laptop'], 'from the new device');
    assert.equal(alice.client.outbox(conv.id).length, 0);

    // The previews of the list are read too.
    await alice.client.refreshConversationList();
    assert.equal(alice.client.conversation(conv.id)?.lastMessage()?.body, 'Hello from the new laptop');
  });

  it('a group: a member added later reads what comes after, not before; a member who left is no longer encrypted for', async () => {
    const [a, b, c] = [await user('ga'), await user('gb'), await user('gc')];
    for (const u of [a, b, c]) await keysPublished(u.client, 1);
    const g = await a.client.createGroup('Secret plans', [b.client.user?.id as string], { encrypted: true });
    await a.client.send(g.id, 'before Carol');
    await sees(b.client, g.id, ['before Carol'], 'bob');
    await a.client.addMembers(g.id, [c.client.user?.id as string]);
    await b.client.send(g.id, 'after Carol joined');
    await sees(c.client, g.id, ['<unreadable:not-for-this-device>', 'after Carol joined'], 'carol');
    await sees(a.client, g.id, ['before Carol', 'after Carol joined'], 'alice');
    await c.client.leave(g.id);
    await a.client.send(g.id, 'Carol is gone');
    await sees(b.client, g.id, ['before Carol', 'after Carol joined', 'Carol is gone'], 'bob after carol left');
    const raw = await a.client.api.messages(g.id, { limit: 1 });
    const env = parseEnvelope(raw.messages[0]?.body ?? '');
    assert.ok('envelope' in env);
    assert.deepEqual(Object.keys(env.envelope.keys).sort(), [a.client.deviceId, b.client.deviceId].sort(), 'wrapped for the members now only');
  });

  it('a tampered, re-signed, replayed or misattributed envelope is marked unreadable, never shown', async () => {
    const alice = await user('ta');
    const bob = await user('tb');
    await keysPublished(alice.client, 1);
    await keysPublished(bob.client, 1);
    const conv = await alice.client.startDirect(bob.client.user?.id as string, { encrypted: true });
    await alice.client.send(conv.id, 'the real text');
    await sees(bob.client, conv.id, ['the real text'], 'bob');
    const real = (await bob.client.api.messages(conv.id, { limit: 1 })).messages[0] as Message;
    const env = JSON.parse(real.body) as Record<string, unknown>;
    const flip = (s: string, at: number): string => {
      const bytes = unb64url(s);
      bytes[at] = (bytes[at] as number) ^ 1;
      return b64url(bytes);
    };
    // A server (or anyone between) that changes what it routes: each comes as a new message on Bob's socket.
    let seq = bob.client.conversation(conv.id)?.position ?? 0;
    const forge = (body: string, over: Partial<Message> = {}): Message => {
      seq += 1;
      const m: Message = { ...real, id: `forged${seq}`, seq, clientId: real.clientId, body, ...over };
      bob.client.handleFrame({ type: 'event', event: { conversationId: conv.id, seq, kind: 'message.created', at: m.createdAt, actorId: m.senderId, message: m } });
      return m;
    };
    const ct = env.ct as string;
    const forged = [
      forge(JSON.stringify({ ...env, ct: flip(ct, 20) })), // ciphertext changed
      forge(JSON.stringify({ ...env, keys: { [bob.client.deviceId as string]: flip((env.keys as Record<string, string>)[bob.client.deviceId as string] as string, 3) } })), // wrapped key changed
      forge(JSON.stringify({ ...env, sig: flip(env.sig as string, 5) })), // signature changed
      forge(real.body, { clientId: 'another-message' }), // the same envelope replayed as another message
      forge(real.body, { senderId: bob.client.user?.id as string }), // attributed to someone else
      forge(`${ENVELOPE_PREFIX}"sd":"x"}`), // not an envelope at all
    ];
    await until(() => forged.every((f) => bob.client.messageById(conv.id, f.id)), 5000, 'forged messages applied');
    const seen = forged.map((f) => bob.client.messageById(conv.id, f.id));
    assert.deepEqual(
      seen.map((m) => [m?.body, m?.e2e?.ok, m?.e2e?.reason]),
      [
        ['', false, 'bad-signature'],
        ['', false, 'bad-signature'],
        ['', false, 'bad-signature'],
        ['', false, 'bad-signature'],
        ['', false, 'unknown-device'],
        ['', false, 'malformed'],
      ],
    );
    assert.equal(bob.client.messageById(conv.id, real.id)?.body, 'the real text', 'the real one still reads');
  });

  it('holds the text of an encrypted message to the length limit itself, since the server cannot count it', async () => {
    const alice = await user('la');
    const bob = await user('lb');
    await keysPublished(alice.client, 1);
    await keysPublished(bob.client, 1);
    const conv = await alice.client.startDirect(bob.client.user?.id as string, { encrypted: true });
    const long = await alice.client.send(conv.id, '😀'.repeat(4001));
    await until(() => alice.client.outbox(conv.id)[0]?.state === 'failed', 5000, 'the long message refused');
    assert.match(alice.client.outbox(conv.id)[0]?.error ?? '', /longer than 4000 characters/);
    await alice.client.discard(long.clientId);
    await alice.client.send(conv.id, '😀'.repeat(4000));
    await sees(bob.client, conv.id, ['😀'.repeat(4000)], 'the longest allowed');
  });

  it('keys survive a restart from the file store: the same device reads new messages and sends; both sides see one safety number', async () => {
    const alice = await user('ra');
    const name = uniqueName('rb');
    const reg = createNodeClient({ url: server.url });
    await reg.register(name, PASSWORD);
    const path = join(dir, `${name}.json`);
    const bob = await device(name, path);
    await keysPublished(alice.client, 1);
    await keysPublished(bob, 1);
    const conv = await alice.client.startDirect(bob.user?.id as string, { encrypted: true });
    await alice.client.send(conv.id, 'before the restart');
    await sees(bob, conv.id, ['before the restart'], 'bob');
    const deviceId = bob.deviceId;
    await bob.close();
    const file = await readFile(path, 'utf8');
    assert.ok(file.includes('/e2e/device"'), 'the keys are in the file');

    const again = clients.track(createNodeClient({ url: server.url, storagePath: path, backoffMinMs: 50 }));
    assert.equal(await again.restore(), true);
    assert.equal(again.deviceId, deviceId, 'the same device');
    await alice.client.send(conv.id, 'after the restart');
    await sees(again, conv.id, ['before the restart', 'after the restart'], 'bob after restart');
    await again.send(conv.id, 'still me');
    await sees(alice.client, conv.id, ['before the restart', 'after the restart', 'still me'], 'alice reads the restarted device');
    assert.equal((await alice.client.api.userKeys(again.user?.id as string)).devices.length, 1, 'no new keys were published');

    const fromAlice = await alice.client.safetyNumber(again.user?.id as string);
    const fromBob = await again.safetyNumber(alice.client.user?.id as string);
    assert.match(fromAlice, /^(\d{5} ){11}\d{5}$/);
    assert.equal(fromAlice, fromBob);
    const carol = await user('rc');
    await keysPublished(carol.client, 1);
    assert.notEqual(await alice.client.safetyNumber(carol.client.user?.id as string), fromAlice);
  });
});
