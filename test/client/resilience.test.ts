/**
 * The SDK under faults, against a real server: a connection cut before the ack,
 * a server restart on the same data dir, a client restart from its file store,
 * duplicate frames, out-of-order frames and frames lost on the way, and a
 * message the server fails on with a defect every time.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { ConversationEvent, Message, ParleyClient } from '../../src/client/index.js';
import { createNodeClient } from '../../src/client/node.js';
import type { ClientFrame } from '../../src/protocol/frames.js';
import { PASSWORD, Relay, TestServer, lossySocketFactory, signedIn, sleep, uniqueName, until } from './_helpers.js';

let server: TestServer;
before(async () => {
  server = await TestServer.start();
});
after(async () => {
  await server.cleanup();
});

async function directChat(a: ParleyClient, b: ParleyClient): Promise<string> {
  await until(() => a.state === 'online' && b.state === 'online', 5000, 'both online');
  const conv = await a.startDirect(b.user!.id);
  await until(() => !!b.conversation(conv.id), 5000, 'b holds the conversation');
  return conv.id;
}

function bodies(c: ParleyClient, id: string): string[] {
  return c.messages(id).map((m) => m.body);
}

describe('SDK resilience', () => {
  test('network cut after the server committed but before the ack: resent with the same clientId, exactly one message', async () => {
    const relay = await Relay.start(server.port);
    const a = await signedIn(relay.url);
    const b = await signedIn(server.url);
    try {
      const id = await directChat(a.client, b.client);
      const states: string[] = [];
      a.client.on('state', (st) => states.push(st));
      relay.freeze();
      const item = await a.client.send(id, 'sent into the void');
      // The server has it (b sees it), but a never got the ack.
      await until(() => bodies(b.client, id).includes('sent into the void'), 5000, 'server committed');
      assert.equal(a.client.outbox(id).length, 1, 'still in the outbox without an ack');
      relay.cut();
      relay.unfreeze();
      await until(() => a.client.outbox(id).length === 0, 8000, 'outbox drained after reconnect');
      assert.deepEqual(states, ['reconnecting', 'online'], 'the cut was seen and recovered from');
      const mine = a.client.messages(id).filter((m) => m.body === 'sent into the void');
      assert.equal(mine.length, 1);
      assert.equal(mine[0]?.clientId, item.clientId);
      const onServer = await b.client.api.messages(id);
      assert.equal(onServer.messages.filter((m) => m.body === 'sent into the void').length, 1);
      await sleep(200);
      assert.equal(bodies(b.client, id).filter((x) => x === 'sent into the void').length, 1);
    } finally {
      a.client.stop();
      b.client.stop();
      await relay.close();
    }
  });

  test('a burst of sends over a link cut twice arrives exactly once each, in compose order', async () => {
    const relay = await Relay.start(server.port);
    const a = await signedIn(relay.url);
    const b = await signedIn(server.url);
    try {
      const id = await directChat(a.client, b.client);
      const expected = Array.from({ length: 30 }, (_, i) => `burst ${i}`);
      let reconnects = 0;
      a.client.on('state', (st) => {
        if (st === 'reconnecting') reconnects++;
      });
      for (const [i, body] of expected.entries()) {
        await a.client.send(id, body);
        if (i === 8 || i === 19) relay.cut();
      }
      await until(() => a.client.outbox(id).length === 0, 15000, 'outbox drained');
      await until(() => bodies(b.client, id).length === 30, 5000, 'b has all');
      assert.ok(reconnects >= 1, `the link was cut under the client (${reconnects} reconnects)`);
      assert.deepEqual(bodies(b.client, id), expected);
      assert.deepEqual(bodies(a.client, id), expected);
      const onServer = await b.client.api.messages(id, { limit: 100 });
      assert.deepEqual(
        onServer.messages.map((m) => m.body),
        expected,
      );
    } finally {
      a.client.stop();
      b.client.stop();
      await relay.close();
    }
  });

  test('server restart on the same data dir; a client restarted from its file store sends its outbox once, in order', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'parley-sdk-store-'));
    const storagePath = join(dir, 'client.json');
    const nameA = uniqueName('ra');
    const a = await signedIn(server.url, nameA, { storagePath });
    const b = await signedIn(server.url);
    let a2: ParleyClient | undefined;
    try {
      const id = await directChat(a.client, b.client);
      await a.client.send(id, 'before restart');
      await until(() => bodies(b.client, id).includes('before restart'), 5000, 'first message');
      await server.restart(async () => {
        await until(() => a.client.state !== 'online' && b.client.state !== 'online', 5000, 'clients saw the server go');
        // Composed while the server is down: queued, on disk.
        await a.client.send(id, 'queued 1');
        await a.client.send(id, 'queued 2');
        assert.deepEqual(
          a.client.outbox(id).map((i) => i.body),
          ['queued 1', 'queued 2'],
        );
        await a.client.flushCache();
        // The app is closed before it could send them.
        a.client.stop();
      });
      a2 = createNodeClient({ url: server.url, storagePath, backoffMinMs: 50, backoffMaxMs: 500 });
      assert.equal(await a2.restore(), true, 'session restored from the file');
      assert.deepEqual(bodies(a2, id), ['before restart'], 'history readable from the cache');
      await until(() => b.client.state === 'online', 8000, 'b reconnected by itself');
      await until(() => a2!.outbox().length === 0, 8000, 'a2 sent its outbox');
      await until(() => bodies(b.client, id).length === 3, 5000, 'b has all three');
      assert.deepEqual(bodies(b.client, id), ['before restart', 'queued 1', 'queued 2']);
      assert.deepEqual(bodies(a2, id), ['before restart', 'queued 1', 'queued 2']);
      await sleep(200);
      const onServer = await b.client.api.messages(id);
      assert.deepEqual(
        onServer.messages.map((m) => m.body),
        ['before restart', 'queued 1', 'queued 2'],
      );
    } finally {
      // close() waits for the file store's writes in flight, so the directory can go.
      await a.client.close();
      await a2?.close();
      b.client.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a device that was away catches up on what it missed, in order, nothing twice', async () => {
    const a = await signedIn(server.url);
    const b = await signedIn(server.url);
    try {
      const id = await directChat(a.client, b.client);
      await a.client.send(id, 'm0');
      await until(() => bodies(b.client, id).length === 1, 5000, 'm0');
      b.client.stop();
      for (let i = 1; i <= 30; i++) await a.client.api.postMessage(id, `away-${i}`, `m${i}`);
      const edited = a.client.messages(id)[0] as Message;
      await a.client.edit(edited.id, 'm0 edited');
      const seen: string[] = [];
      b.client.on('message', (m) => seen.push(m.body));
      await b.client.start();
      await until(() => bodies(b.client, id).length === 31, 8000, 'b caught up');
      await until(() => b.client.messageById(id, edited.id)?.body === 'm0 edited', 5000, 'edit caught up');
      assert.deepEqual(bodies(b.client, id).slice(1), Array.from({ length: 30 }, (_, i) => `m${i + 1}`));
      assert.deepEqual(seen, Array.from({ length: 30 }, (_, i) => `m${i + 1}`), 'each new message announced once, in order');
    } finally {
      a.client.stop();
      b.client.stop();
    }
  });

  test('duplicate frames are dropped: the same event twice, and an old event after it', async () => {
    const a = await signedIn(server.url);
    const b = await signedIn(server.url);
    try {
      const id = await directChat(a.client, b.client);
      await a.client.send(id, 'one');
      await a.client.send(id, 'two');
      await until(() => bodies(b.client, id).length === 2, 5000, 'b has both');
      const { events } = await b.client.api.events(id, 0);
      const announced: string[] = [];
      b.client.on('message', (m) => announced.push(m.body));
      const unreadBefore = b.client.conversation(id)?.unread;
      for (const e of [...events, ...events]) b.client.handleFrame({ type: 'event', event: e });
      // An ack replayed for a message of a (as a repeated clientId answer would be).
      const m = a.client.messages(id)[0] as Message;
      a.client.handleFrame({ type: 'ack', ref: 'stale', message: m });
      assert.deepEqual(bodies(b.client, id), ['one', 'two']);
      assert.deepEqual(bodies(a.client, id), ['one', 'two']);
      assert.deepEqual(announced, []);
      assert.equal(b.client.conversation(id)?.unread, unreadBefore);
    } finally {
      a.client.stop();
      b.client.stop();
    }
  });

  test('out-of-order frames are held until the gap closes, then applied in seq order', async () => {
    const a = await signedIn(server.url);
    const b = await signedIn(server.url);
    try {
      const id = await directChat(a.client, b.client);
      await a.client.send(id, 'base');
      await until(() => bodies(b.client, id).length === 1, 5000, 'base');
      b.client.stop();
      const from = b.client.conversation(id)!.position;
      for (let i = 1; i <= 5; i++) await a.client.api.postMessage(id, `ooo-${i}`, `n${i}`);
      const target = a.client.messages(id)[0] as Message;
      await a.client.edit(target.id, 'base edited');
      const { events } = await a.client.api.events(id, from);
      assert.equal(events.length, 6);
      const applied: number[] = [];
      b.client.on('event', (e: ConversationEvent) => applied.push(e.seq));
      const order = [3, 0, 5, 1, 4, 2];
      for (const i of order) {
        b.client.handleFrame({ type: 'event', event: events[i] as ConversationEvent });
        const seqs = b.client.messages(id).map((m) => m.seq);
        assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'always shown in seq order');
      }
      assert.deepEqual(
        applied,
        events.map((e) => e.seq),
        'applied strictly in seq order',
      );
      assert.deepEqual(bodies(b.client, id), ['base edited', 'n1', 'n2', 'n3', 'n4', 'n5']);
      assert.equal(b.client.conversation(id)?.position, events[5]?.seq);
    } finally {
      a.client.stop();
      b.client.stop();
    }
  });

  test('a frame lost on the wire is detected as a gap and fetched with a sync', async () => {
    const sent: ClientFrame[] = [];
    let dropNext = false;
    const a = await signedIn(server.url);
    const b = await signedIn(server.url, undefined, {
      socketFactory: lossySocketFactory((f) => {
        if (dropNext && f.type === 'event' && f.event.kind === 'message.created') {
          dropNext = false;
          return true;
        }
        return false;
      }, sent),
    });
    try {
      const id = await directChat(a.client, b.client);
      await a.client.send(id, 'first');
      await until(() => bodies(b.client, id).length === 1, 5000, 'first');
      const position = b.client.conversation(id)!.position;
      dropNext = true;
      await a.client.send(id, 'lost on the way');
      await a.client.send(id, 'arrives');
      await until(() => bodies(b.client, id).length === 3, 5000, 'gap filled');
      assert.deepEqual(bodies(b.client, id), ['first', 'lost on the way', 'arrives']);
      const gapSync = sent.find((f) => f.type === 'sync' && f.positions[id] === position);
      assert.equal(dropNext, false, 'a frame was dropped');
      assert.ok(gapSync, 'the client asked for a sync from its position');
    } finally {
      a.client.stop();
      b.client.stop();
    }
  });

  test('a second device of the same user sees sent messages and read state', async () => {
    const a = await signedIn(server.url);
    const b = await signedIn(server.url);
    const b2 = createNodeClient({ url: server.url });
    try {
      await b2.login(b.username, PASSWORD);
      const id = await directChat(a.client, b.client);
      await until(() => !!b2.conversation(id), 5000, 'b2 holds it');
      await a.client.send(id, 'to both devices');
      await until(() => bodies(b2, id).length === 1 && bodies(b.client, id).length === 1, 5000, 'both devices');
      assert.equal(b2.conversation(id)?.unread, 1);
      b.client.markRead(id);
      await until(() => b2.conversation(id)?.unread === 0, 5000, 'read on one device clears the other');
      await b.client.send(id, 'from device one');
      await until(() => bodies(b2, id).includes('from device one'), 5000, 'own message on the other device');
    } finally {
      a.client.stop();
      b.client.stop();
      b2.stop();
    }
  });

  test('a message the server answers with internal every time is marked failed after 3 tries; the ones behind it go through', async () => {
    const a = await signedIn(server.url);
    const b = await signedIn(server.url);
    // A real defect on the server, for this one body only: its insert aborts (SQLITE_CONSTRAINT → internal).
    const db = new Database(join(server.dataDir, 'parley.db'), { timeout: 5000 });
    db.exec(`CREATE TRIGGER poison_body BEFORE INSERT ON messages WHEN NEW.body = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END`);
    const errors: string[] = [];
    a.client.on('error', (e) => errors.push(e.code));
    try {
      const id = await directChat(a.client, b.client);
      await a.client.send(id, 'poison');
      await a.client.send(id, 'after it');
      await until(() => bodies(b.client, id).includes('after it'), 10_000, 'the next message arrives');
      const [failed, ...rest] = a.client.outbox(id);
      assert.equal(rest.length, 0, 'only the poisoned message stays in the outbox');
      assert.equal(failed?.body, 'poison');
      assert.equal(failed?.state, 'failed');
      assert.equal(failed?.attempts, 3);
      assert.deepEqual(errors, ['internal']);
      assert.deepEqual(bodies(b.client, id), ['after it']);
    } finally {
      db.exec('DROP TRIGGER poison_body');
      db.close();
      a.client.stop();
      b.client.stop();
    }
  });
});
