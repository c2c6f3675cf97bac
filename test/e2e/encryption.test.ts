/**
 * End-to-end encrypted conversations (R18) against a real server: the key
 * directory (publish once, read by anyone, never written for another device,
 * strict checks, revoked devices gone), the `encrypted` flag, what the server
 * refuses in such a conversation (plain text, a malformed or oversized
 * envelope, another device's name, a key set that is not exactly the
 * members' devices), what it routes as is, and what it never holds or finds:
 * the database file has no plain text, search finds nothing and says why.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Conversation, ConversationEvent, Message } from '../../src/protocol/model.js';
import { ENVELOPE_PREFIX, MAX_ENCRYPTED_MEMBERS, parseEnvelope, type DeviceKeys } from '../../src/protocol/e2e.js';
import { generateDeviceKeys, importIdentityKey, openEnvelope, publicDeviceKeys, wrappingKey, b64url, unb64url } from '../../src/client/e2e/crypto.js';
import { Harness } from '../helpers/server.js';
import { expectError, expectStatus, type TestUser } from '../helpers/http.js';
import { E2eDevice } from '../helpers/e2e.js';
import { newRef } from '../helpers/ws-client.js';
import { POSTGRES_URL, postgresMissing } from '../helpers/services.js';
import { testSchemas } from '../helpers/postgres-schemas.js';

const secret = (): string => `secret${randomBytes(6).toString('hex')}`;

let h: Harness;

const encryptedDirect = async (a: TestUser, b: TestUser): Promise<{ conversation: Conversation; status: number }> => {
  const res = await h.api.req<{ conversation: Conversation }>('POST', '/v1/conversations', {
    token: a.token,
    json: { kind: 'direct', members: [b.id], encrypted: true },
  });
  assert.ok(res.status === 201 || res.status === 200, `encrypted direct → ${res.status} ${res.text}`);
  return { conversation: res.body.conversation, status: res.status };
};
const post = (u: TestUser, conversationId: string, body: string, clientId = `c-${randomBytes(4).toString('hex')}`) =>
  h.api.req<{ message: Message }>('POST', `/v1/conversations/${conversationId}/messages`, { token: u.token, json: { clientId, body } });
const keysOfUser = async (viewer: TestUser, userId: string): Promise<DeviceKeys[]> => {
  const res = await h.api.req<{ devices: DeviceKeys[] }>('GET', `/v1/users/${userId}/keys`, { token: viewer.token });
  expectStatus(res, 200, 'user keys');
  return res.body.devices;
};

describe('end-to-end encryption: keys and conversations', () => {
  before(async () => {
    h = await Harness.start();
  });
  after(async () => {
    await h?.close();
  });

  test('a device publishes its keys once; anyone signed in reads them; the same keys again are 200, other keys 409', async () => {
    const [a, b] = await h.api.users(2, 'keys');
    assert.ok(a && b);
    const da = await E2eDevice.of(a);
    const first = await h.api.req<{ keys: DeviceKeys }>('PUT', '/v1/keys', { token: a.token, json: da.published });
    expectStatus(first, 201, 'first publish');
    assert.deepEqual({ ...first.body.keys, createdAt: 0 }, { userId: a.id, deviceId: a.deviceId, ...da.published, createdAt: 0 });

    const again = await h.api.req<{ keys: DeviceKeys }>('PUT', '/v1/keys', { token: a.token, json: da.published });
    expectStatus(again, 200, 'same keys again');
    assert.deepEqual(again.body.keys, first.body.keys);
    // Signatures are randomized: the same keys signed anew are still the same keys.
    const resigned = await publicDeviceKeys(da.keys, a.id, a.deviceId);
    assert.notEqual(resigned.signature, da.published.signature);
    expectStatus(await h.api.req('PUT', '/v1/keys', { token: a.token, json: resigned }), 200, 'same keys, new signature');

    const other = await publicDeviceKeys(await generateDeviceKeys(false), a.id, a.deviceId);
    expectError(await h.api.req('PUT', '/v1/keys', { token: a.token, json: other }), 409, 'conflict', 'other keys for the same device');

    // Bob reads Alice's keys, as published first.
    assert.deepEqual(await keysOfUser(b, a.id), [first.body.keys]);
    assert.deepEqual(await keysOfUser(b, b.id), [], 'a user who published nothing has no keys');
    expectError(await h.api.req('GET', '/v1/users/nosuchuser/keys', { token: b.token }), 404, 'not_found', 'unknown user');
    expectError(await h.api.req('GET', `/v1/users/${a.id}/keys`), 401, 'unauthorized', 'no token');
  });

  test("nobody writes another device's keys: the body names no device, a signature for another device or user is refused", async () => {
    const [a, b] = await h.api.users(2, 'keysw');
    assert.ok(a && b);
    const da = await E2eDevice.of(a);
    await da.publish(h.api);
    const before = await keysOfUser(b, a.id);
    // Bob tries to publish keys as Alice's device: the body has no place for it …
    const mallory = await generateDeviceKeys(false);
    const forgedForA = await publicDeviceKeys(mallory, a.id, a.deviceId);
    expectError(
      await h.api.req('PUT', '/v1/keys', { token: b.token, json: { ...forgedForA, deviceId: a.deviceId, userId: a.id } }),
      400,
      'bad_request',
      'deviceId in the body',
    );
    // … and keys signed for Alice's device do not verify as Bob's device's.
    expectError(await h.api.req('PUT', '/v1/keys', { token: b.token, json: forgedForA }), 400, 'bad_request', 'signed for another device');
    assert.deepEqual(await keysOfUser(b, a.id), before, "Alice's keys unchanged");
    assert.deepEqual(await keysOfUser(a, b.id), [], 'Bob published nothing');
  });

  test('key material is checked strictly: base64url of the right size, uncompressed P-256 points, a valid signature', async () => {
    const [a] = await h.api.users(1, 'keysbad');
    assert.ok(a);
    const good = await publicDeviceKeys(await generateDeviceKeys(false), a.id, a.deviceId);
    const flip = (s: string, at: number): string => {
      const bytes = unb64url(s);
      bytes[at] = (bytes[at] as number) ^ 1;
      return b64url(bytes);
    };
    const compressed = b64url(new Uint8Array([2, ...unb64url(good.identityKey).slice(1, 33)]));
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['missing signature', { identityKey: good.identityKey, agreementKey: good.agreementKey }, /signature/],
      ['a number', { ...good, identityKey: 42 }, /identityKey/],
      ['padding', { ...good, identityKey: `${good.identityKey}=` }, /identityKey/],
      ['standard base64', { ...good, agreementKey: good.agreementKey.replace(/[-_]/g, '+').padEnd(87, '+') }, /agreementKey/],
      ['too short', { ...good, identityKey: good.identityKey.slice(0, 86) }, /identityKey/],
      ['a compressed point', { ...good, identityKey: compressed }, /identityKey/],
      ['not on the curve', { ...good, agreementKey: flip(good.agreementKey, 40) }, /P-256/],
      ['the signature of other keys', { ...good, signature: flip(good.signature, 10) }, /signature/],
      ['one key twice', { ...good, agreementKey: good.identityKey }, /different/],
      ['an extra field', { ...good, note: 'x' }, /./],
    ];
    for (const [what, json, message] of cases) {
      const res = await h.api.req<{ error: { message: string } }>('PUT', '/v1/keys', { token: a.token, json });
      expectError(res, 400, 'bad_request', what);
      assert.match(res.body.error.message, message, what);
    }
    assert.deepEqual(await keysOfUser(a, a.id), [], 'nothing was stored');
    expectStatus(await h.api.req('PUT', '/v1/keys', { token: a.token, json: good }), 201, 'the good keys');
  });

  test("a revoked or logged-out device's keys are no longer listed, for the user or for a conversation", async () => {
    const [a, b] = await h.api.users(2, 'keysrev');
    assert.ok(a && b);
    const a2 = await h.api.device(a, 'phone');
    const a3 = await h.api.device(a, 'tablet');
    for (const u of [a, a2, a3, b]) await (await E2eDevice.of(u)).publish(h.api);
    const { conversation } = await encryptedDirect(a, b);
    const ids = async (): Promise<string[]> => (await keysOfUser(b, a.id)).map((k) => k.deviceId).sort();
    assert.deepEqual(await ids(), [a.deviceId, a2.deviceId, a3.deviceId].sort());
    expectStatus(await h.api.req('DELETE', `/v1/sessions/${a2.deviceId}`, { token: a.token }), 204, 'revoke the phone');
    expectStatus(await h.api.req('POST', '/v1/auth/logout', { token: a3.token }), 204, 'the tablet logs out');
    assert.deepEqual(await ids(), [a.deviceId]);
    const conv = (await E2eDevice.conversationKeys(h.api, b, conversation.id)).map((k) => k.deviceId).sort();
    assert.deepEqual(conv, [a.deviceId, b.deviceId].sort());
  });

  test('conversation keys: every device of every member, for members only', async () => {
    const [a, b, c] = await h.api.users(3, 'keysconv');
    assert.ok(a && b && c);
    const b2 = await h.api.device(b, 'phone');
    for (const u of [a, b, b2, c]) await (await E2eDevice.of(u)).publish(h.api);
    const g = await h.api.req<{ conversation: Conversation }>('POST', '/v1/conversations', {
      token: a.token,
      json: { kind: 'group', title: 'Secret plans', members: [b.id], encrypted: true },
    });
    expectStatus(g, 201, 'encrypted group');
    const keys = await E2eDevice.conversationKeys(h.api, b, g.body.conversation.id);
    assert.deepEqual(keys.map((k) => k.deviceId).sort(), [a.deviceId, b.deviceId, b2.deviceId].sort());
    expectError(await h.api.req('GET', `/v1/conversations/${g.body.conversation.id}/keys`, { token: c.token }), 403, 'forbidden', 'not a member');
    expectError(await h.api.req('GET', '/v1/conversations/nosuch/keys', { token: c.token }), 404, 'not_found', 'unknown conversation');
  });

  test('the encrypted flag: on the object everywhere, fixed for life; a pair has one plain and one encrypted direct conversation', async () => {
    const [a, b] = await h.api.users(2, 'flag');
    assert.ok(a && b);
    const plain = await h.api.direct(a, b);
    assert.equal(plain.encrypted, undefined, 'absent when not encrypted');
    const enc = await encryptedDirect(a, b);
    assert.equal(enc.status, 201);
    assert.equal(enc.conversation.encrypted, true);
    assert.notEqual(enc.conversation.id, plain.id, 'not the plain conversation of the pair');
    const again = await encryptedDirect(b, a);
    assert.equal(again.status, 200, 'the existing one, from either side');
    assert.equal(again.conversation.id, enc.conversation.id);
    assert.equal((await h.api.direct(b, a)).id, plain.id, 'the plain one is still the plain one');

    assert.equal((await h.api.conversation(b, enc.conversation.id)).encrypted, true);
    const list = await h.api.req<{ conversations: Conversation[] }>('GET', '/v1/conversations', { token: b.token });
    assert.deepEqual(
      list.body.conversations.map((c) => [c.id, c.encrypted ?? false]).sort(),
      [
        [plain.id, false],
        [enc.conversation.id, true],
      ].sort(),
    );
    // It cannot be turned off: PATCH knows no such field.
    expectError(
      await h.api.req('PATCH', `/v1/conversations/${enc.conversation.id}`, { token: a.token, json: { encrypted: false } }),
      400,
      'bad_request',
      'PATCH encrypted',
    );
    assert.equal((await h.api.conversation(a, enc.conversation.id)).encrypted, true);
    expectError(
      await h.api.req('POST', '/v1/conversations', { token: a.token, json: { kind: 'direct', members: [b.id], encrypted: 'yes' } }),
      400,
      'bad_request',
      'encrypted must be a boolean',
    );
    // Online members learn of it with the flag.
    const [c] = await h.api.users(1, 'flagc');
    assert.ok(c);
    const ws = await h.connect(c);
    const g = await h.api.req<{ conversation: Conversation }>('POST', '/v1/conversations', {
      token: a.token,
      json: { kind: 'group', title: 'locked', members: [c.id], encrypted: true },
    });
    const frame = await ws.next('conversation', (f) => f.conversation.id === g.body.conversation.id);
    assert.equal(frame.conversation.encrypted, true);
  });

  test(`an encrypted group has at most ${MAX_ENCRYPTED_MEMBERS} members`, async () => {
    const [a, b] = await h.api.users(2, 'big');
    assert.ok(a && b);
    const many = Array.from({ length: MAX_ENCRYPTED_MEMBERS }, (_, i) => `nobody${i}`);
    const res = await h.api.req('POST', '/v1/conversations', { token: a.token, json: { kind: 'group', title: 'too big', members: many, encrypted: true } });
    expectError(res, 400, 'bad_request', 'too many members');
    assert.match(res.text, /at most 200 members/);
    const g = await h.api.req<{ conversation: Conversation }>('POST', '/v1/conversations', {
      token: a.token,
      json: { kind: 'group', title: 'fits', members: [b.id], encrypted: true },
    });
    expectStatus(g, 201, 'small encrypted group');
    const add = await h.api.req('POST', `/v1/conversations/${g.body.conversation.id}/members`, { token: a.token, json: { userIds: many.slice(0, MAX_ENCRYPTED_MEMBERS - 1) } });
    expectError(add, 400, 'bad_request', 'adding past the limit');
  });

});

/** What is in the database, as text, wherever it is kept: the SQLite file and its log, or every row of the PostgreSQL schema. */
type DatabaseText = (h: Harness) => Promise<string>;

const sqliteText: DatabaseText = async (h) => {
  const file = join(h.dataDir, 'parley.db');
  return Buffer.concat([file, `${file}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f))).toString('latin1');
};

function encryptedMessages(engine: string, start: () => Promise<Harness>, databaseText: DatabaseText, skip?: string): void {
  describe(`end-to-end encryption: messages on ${engine}`, { skip }, () => {
    before(async () => {
      h = await start();
    });
    after(async () => {
      await h?.close();
    });

    let a: TestUser, b: TestUser, b2: TestUser;
    let da: E2eDevice, db: E2eDevice, db2: E2eDevice;
    let conv: Conversation;
    let keys: DeviceKeys[];
    before(async () => {
      [a, b] = (await h.api.users(2, 'msg')) as [TestUser, TestUser];
      b2 = await h.api.device(b, 'phone');
      [da, db, db2] = (await Promise.all([a, b, b2].map((u) => E2eDevice.of(u)))) as [E2eDevice, E2eDevice, E2eDevice];
      for (const d of [da, db, db2]) await d.publish(h.api);
      conv = (await encryptedDirect(a, b)).conversation;
      keys = await E2eDevice.conversationKeys(h.api, a, conv.id);
      assert.equal(keys.length, 3);
    });

    test('plain text is refused with a clear 400, over HTTP and the socket, and so is a plain edit', async () => {
      const res = await post(a, conv.id, 'hello in the clear');
      expectError(res, 400, 'bad_request', 'plain text');
      assert.match(res.text, /end-to-end encrypted/);
      const ws = await h.connect(a);
      const err = await ws.error({ type: 'send', conversationId: conv.id, clientId: 'p1', body: 'hello again' }, 'bad_request');
      assert.match(err.message, /end-to-end encrypted/);
      // A valid message, then a plain edit of it.
      const clientId = 'e-1';
      const sent = await post(a, conv.id, await da.seal(conv.id, { kind: 'send', clientId }, 'first', keys), clientId);
      expectStatus(sent, 201, 'encrypted send');
      expectError(
        await h.api.req('PATCH', `/v1/messages/${sent.body.message.id}`, { token: a.token, json: { body: 'edited in the clear' } }),
        400,
        'bad_request',
        'plain edit',
      );
      await ws.error({ type: 'edit', messageId: sent.body.message.id, body: 'edited in the clear' }, 'bad_request');
      const history = await h.api.history(b, conv.id);
      assert.ok(history.messages.every((m) => m.body.startsWith(ENVELOPE_PREFIX)), 'only envelopes stored');
    });

    test('an envelope is routed and stored as sent; every device of the conversation opens it; an edit goes the same way', async () => {
      const wsB = await h.connect(b2, 'bob-phone');
      const text = `Meet at the old mill ${secret()}`;
      const clientId = 'e-2';
      const body = await da.seal(conv.id, { kind: 'send', clientId }, text, keys);
      const wsA = await h.connect(a);
      const ack = await wsA.ack({ type: 'send', conversationId: conv.id, clientId, body });
      assert.ok('message' in ack);
      assert.equal(ack.message.body, body, 'acked as sent');
      const live = await wsB.next('event', (f) => f.event.kind === 'message.created' && f.event.message.clientId === clientId);
      assert.ok(live.event.kind === 'message.created');
      assert.equal(live.event.message.body, body, 'routed as sent');
      const env = parseEnvelope(live.event.message.body);
      assert.ok('envelope' in env);
      for (const [d, u] of [[db, b], [db2, b2], [da, a]] as const) {
        const kek = await wrappingKey(d.keys.agreement.privateKey, u.deviceId, da.published.agreementKey, a.deviceId);
        const header = { conversationId: conv.id, senderId: a.id, senderDevice: a.deviceId, context: { kind: 'send' as const, clientId } };
        const payload = await openEnvelope(header, env.envelope, u.deviceId, await importIdentityKey(da.published.identityKey), kek);
        assert.equal(payload.body, text, `device ${u.deviceId} reads it`);
      }

      const edited = await da.seal(conv.id, { kind: 'edit', messageId: ack.message.id }, `${text} (at noon)`, keys);
      const editAck = await wsA.ack({ type: 'edit', messageId: ack.message.id, body: edited });
      assert.ok('event' in editAck && editAck.event.kind === 'message.edited');
      const ev = await wsB.next('event', (f) => f.event.kind === 'message.edited');
      assert.equal((ev.event as Extract<ConversationEvent, { kind: 'message.edited' }>).body, edited);
      const [m] = (await h.api.history(b, conv.id, '?limit=1')).messages;
      assert.equal(m?.body, edited, 'history has the edited envelope');
      // Reactions and deletes need no content: they work as in any conversation.
      expectStatus(await h.api.req('POST', `/v1/messages/${ack.message.id}/reactions`, { token: b.token, json: { reaction: '👍' } }), 200, 'react');
      expectStatus(await h.api.req('DELETE', `/v1/messages/${ack.message.id}`, { token: a.token }), 200, 'delete');
    });

    test('an envelope must name exactly the devices of the members now: one missing or one too many is 409', async () => {
      const missing = keys.filter((k) => k.deviceId !== b2.deviceId);
      let res = await post(a, conv.id, await da.seal(conv.id, { kind: 'send', clientId: 'm1' }, 'hi', missing), 'm1');
      expectError(res, 409, 'conflict', 'a device left out');
      assert.match(res.text, /1 device\(s\) of the members are missing/);
      // A device of someone outside the conversation.
      const [c] = await h.api.users(1, 'outsider');
      assert.ok(c);
      const dc = await E2eDevice.of(c);
      await dc.publish(h.api);
      const withOutsider = [...keys, { ...dc.published, userId: c.id, deviceId: c.deviceId, createdAt: 0 }];
      res = await post(a, conv.id, await da.seal(conv.id, { kind: 'send', clientId: 'm2' }, 'hi', withOutsider), 'm2');
      expectError(res, 409, 'conflict', 'an outsider named');
      assert.match(res.text, /not in the conversation/);
      // A device that appears later must be named from then on.
      const b3 = await h.api.device(b, 'laptop');
      await (await E2eDevice.of(b3)).publish(h.api);
      expectError(await post(a, conv.id, await da.seal(conv.id, { kind: 'send', clientId: 'm3' }, 'hi', keys), 'm3'), 409, 'conflict', 'a new device left out');
      const now = await E2eDevice.conversationKeys(h.api, a, conv.id);
      expectStatus(await post(a, conv.id, await da.seal(conv.id, { kind: 'send', clientId: 'm3' }, 'hi', now), 'm3'), 201, 'with the new device');
      // Revoked: it must be left out again.
      expectStatus(await h.api.req('POST', '/v1/auth/logout', { token: b3.token }), 204, 'logout');
      expectError(await post(a, conv.id, await da.seal(conv.id, { kind: 'send', clientId: 'm4' }, 'hi', now), 'm4'), 409, 'conflict', 'a revoked device named');
    });

    test('an envelope names its sending device, which must have published keys; malformed and oversized ones are refused', async () => {
      // Alice signs as her device but sends from another session of hers.
      const a2 = await h.api.device(a, 'second');
      let res = await post(a2, conv.id, await da.seal(conv.id, { kind: 'send', clientId: 's1' }, 'hi', keys), 's1');
      expectError(res, 400, 'bad_request', 'sd of another device');
      assert.match(res.text, /sd\\" must be the id of the device sending it/);
      // That session has no keys of its own.
      const da2 = await E2eDevice.of(a2);
      res = await post(a2, conv.id, await da2.seal(conv.id, { kind: 'send', clientId: 's2' }, 'hi', keys), 's2');
      expectError(res, 400, 'bad_request', 'sending device without keys');
      assert.match(res.text, /published no keys/);

      const good = await da.seal(conv.id, { kind: 'send', clientId: 's3' }, 'hi', keys);
      const o = JSON.parse(good) as Record<string, unknown>;
      const malformed: [string, string][] = [
        ['not JSON after the prefix', `${ENVELOPE_PREFIX}nope`],
        ['an extra field', JSON.stringify({ ...o, note: 'x' })],
        ['a short iv', JSON.stringify({ ...o, iv: 'AAAA' })],
        ['no keys', JSON.stringify({ ...o, keys: {} })],
        ['a short wrapped key', JSON.stringify({ ...o, keys: { [a.deviceId]: 'AAAA' } })],
        ['a bad signature size', JSON.stringify({ ...o, sig: 'AAAA' })],
        ['version 2', JSON.stringify({ ...o, e2e: 2 })],
      ];
      for (const [what, body] of malformed) expectError(await post(a, conv.id, body, `s-${what}`), 400, 'bad_request', what);

      const huge = `${ENVELOPE_PREFIX}${'x'.repeat(60_000)}}`;
      expectError(await post(a, conv.id, huge), 413, 'too_large', 'an envelope over the limit');
      const longCt = JSON.stringify({ ...o, ct: b64url(new Uint8Array(4000 * 6 + 100)) });
      const res2 = await post(a, conv.id, longCt);
      expectError(res2, 413, 'too_large', 'a ciphertext longer than the plain-text limit allows');
      // An envelope in a plain conversation is an ordinary (long) text, held to the plain limit.
      const plain = await h.api.direct(a, b);
      expectError(await post(a, plain.id, longCt), 413, 'too_large', 'a long envelope-like text in a plain conversation');
      expectStatus(await post(a, plain.id, good), 201, 'a short one is just text there');
    });

    test('the database file holds no plain text, search never finds it, and searching the conversation says search is unavailable', async () => {
      const word = secret();
      const clientId = 'db-1';
      expectStatus(await post(a, conv.id, await da.seal(conv.id, { kind: 'send', clientId }, `The vault code is ${word}`, keys), clientId), 201, 'send');
      const plain = await h.api.direct(a, b);
      await h.api.send(a, plain.id, `in the clear: ${word}x`);
      await h.core.engines.store.search.indexed();

      const search = (params: Record<string, string>) =>
        h.api.req<{ messages: Message[] }>('GET', `/v1/search?${new URLSearchParams(params).toString()}`, { token: b.token });
      const found = await search({ q: word });
      expectStatus(found, 200, 'search');
      assert.deepEqual(found.body.messages.map((m) => m.conversationId), [plain.id], 'only the plain conversation');
      // Not even the envelope's own words.
      for (const q of ['e2e', 'keys', 'sig']) {
        const r = await search({ q });
        assert.ok(r.body.messages.every((m) => m.conversationId !== conv.id), `"${q}" finds nothing encrypted`);
      }
      const refused = await search({ q: word, conversationId: conv.id });
      expectError(refused, 400, 'bad_request', 'search in an encrypted conversation');
      assert.match(refused.text, /not available in an end-to-end encrypted conversation/);

      const stored = await h.api.history(a, conv.id);
      assert.ok(stored.messages.length > 0 && stored.messages.every((m) => m.body.startsWith(ENVELOPE_PREFIX) || m.body === ''), 'only envelopes');
      // Everything the database holds: the plain conversation's word is there, the secret alone is not.
      const text = await databaseText(h);
      assert.ok(text.includes(`${word}x`), 'the plain message is in the database (the check can see text)');
      const at: string[] = [];
      for (let i = text.indexOf(word); i >= 0; i = text.indexOf(word, i + 1)) at.push(text.slice(i, i + word.length + 1));
      assert.ok(at.length > 0 && at.every((x) => x === `${word}x`), `the encrypted word appears only as part of the plain message: ${JSON.stringify(at)}`);
    });

    test('a member who is not in the conversation cannot send to it, encrypted or not', async () => {
      const [c] = await h.api.users(1, 'stranger');
      assert.ok(c);
      const dc = await E2eDevice.of(c);
      await dc.publish(h.api);
      expectError(await post(c, conv.id, await dc.seal(conv.id, { kind: 'send', clientId: 'x' }, 'hi', keys), 'x'), 403, 'forbidden', 'stranger');
      const ws = await h.connect(c);
      ws.send({ type: 'send', ref: newRef(), conversationId: conv.id, clientId: 'y', body: 'plain' });
      const err = await ws.next('error');
      assert.equal(err.code, 'forbidden');
    });
  });
}

encryptedMessages('SQLite', () => Harness.start(), sqliteText);

const pgSkip = await postgresMissing();
const schemas = testSchemas(pgSkip);
const pgSchema = schemas.fresh('e2e');
encryptedMessages(
  'PostgreSQL',
  () => Harness.start({ databaseUrl: POSTGRES_URL, databaseSchema: pgSchema }),
  () => schemas.allRowsText(pgSchema),
  pgSkip,
);
