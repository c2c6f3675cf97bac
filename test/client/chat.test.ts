import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../../src/client/index.js';
import { createNodeClient } from '../../src/client/node.js';
import type { ClientFrame } from '../../src/protocol/frames.js';
import { TestServer, signedIn, until, sleep, lossySocketFactory } from './_helpers.js';

let server: TestServer;
before(async () => {
  server = await TestServer.start();
});
after(async () => {
  await server.cleanup();
});

async function pair(bOpts: Parameters<typeof signedIn>[2] = {}) {
  const a = await signedIn(server.url);
  const b = await signedIn(server.url, undefined, bOpts);
  await until(() => a.client.state === 'online' && b.client.state === 'online', 5000, 'both online');
  const conv = await a.client.startDirect(b.client.user!.id);
  await until(() => !!b.client.conversation(conv.id), 5000, 'b sees the conversation');
  return { a: a.client, b: b.client, id: conv.id, stop: () => (a.client.stop(), b.client.stop()) };
}

describe('messaging through the SDK', () => {
  test('messages arrive in order, with delivered then read ticks and unread counts', async () => {
    const { a, b, id, stop } = await pair();
    try {
      await a.send(id, 'hello');
      await a.send(id, 'second');
      await until(() => b.messages(id).length === 2, 5000, 'b has 2 messages');
      assert.deepEqual(
        b.messages(id).map((m) => m.body),
        ['hello', 'second'],
      );
      assert.equal(b.conversation(id)?.unread, 2);
      await until(() => a.outbox().length === 0, 5000, 'outbox empty');
      const last = () => a.messages(id)[1] as Message;
      await until(() => a.tick(last()) === 'delivered', 5000, 'delivered tick');
      b.markRead(id);
      assert.equal(b.conversation(id)?.unread, 0);
      await until(() => a.tick(last()) === 'read', 5000, 'read tick');
    } finally {
      stop();
    }
  });

  test('edits, deletes, reactions and replies reach the other side’s cache', async () => {
    const { a, b, id, stop } = await pair();
    try {
      await a.send(id, 'original');
      await until(() => b.messages(id).length === 1, 5000, 'b has the message');
      const m = b.messages(id)[0] as Message;
      await b.react(m.id, '👍');
      await b.send(id, 'a reply', { replyTo: m.id });
      await a.edit(m.id, 'edited body');
      await until(() => a.messages(id).length === 2, 5000, 'a has the reply');
      await until(() => b.messageById(id, m.id)?.body === 'edited body', 5000, 'edit applied on b');
      await until(() => (a.messageById(id, m.id)?.reactions?.['👍'] ?? []).includes(b.user!.id), 5000, 'reaction on a');
      assert.ok(b.messageById(id, m.id)?.editedAt);
      assert.equal(a.messages(id)[1]?.replyTo, m.id);
      await b.toggleReaction(b.messageById(id, m.id)!, '👍');
      await until(() => a.messageById(id, m.id)?.reactions === undefined, 5000, 'reaction removed on a');
      await a.deleteMessage(m.id);
      await until(() => !!b.messageById(id, m.id)?.deletedAt, 5000, 'delete applied on b');
      assert.equal(b.messageById(id, m.id)?.body, '');
      // Order and count survive all of that.
      assert.deepEqual(
        b.messages(id).map((x) => x.seq),
        [...b.messages(id)].map((x) => x.seq).sort((x, y) => x - y),
      );
      assert.equal(b.messages(id).length, 2);
    } finally {
      stop();
    }
  });

  test('a refused send stays in the outbox as failed and does not block the next message', async () => {
    const { a, b, id, stop } = await pair();
    try {
      await a.send(id, 'x'.repeat(4001));
      await a.send(id, 'fine');
      await until(() => b.messages(id).some((m) => m.body === 'fine'), 5000, 'the next message went through');
      const left = a.outbox(id);
      assert.equal(left.length, 1);
      assert.equal(left[0]?.state, 'failed');
      await a.discard(left[0]!.clientId);
      assert.equal(a.outbox(id).length, 0);
    } finally {
      stop();
    }
  });

  test('typing is throttled and shown to the other member; presence status changes reach them', async () => {
    const sent: ClientFrame[] = [];
    const a = await signedIn(server.url, undefined, { socketFactory: lossySocketFactory(() => false, sent) });
    const b = await signedIn(server.url);
    try {
      await until(() => a.client.state === 'online' && b.client.state === 'online', 5000, 'online');
      const conv = await a.client.startDirect(b.client.user!.id);
      await until(() => !!b.client.conversation(conv.id), 5000, 'b sees conversation');
      for (let i = 0; i < 20; i++) {
        a.client.typing(conv.id);
        await sleep(10);
      }
      await until(() => b.client.typingUsers(conv.id).includes(a.client.user!.id), 5000, 'b sees typing');
      assert.equal(sent.filter((f) => f.type === 'typing' && f.active).length, 1, 'one typing frame for a burst of keystrokes');
      a.client.stopTyping(conv.id);
      await until(() => b.client.typingUsers(conv.id).length === 0, 5000, 'typing ends');

      await until(() => b.client.presenceOf(a.client.user!.id)?.status === 'online', 5000, 'b sees a online');
      a.client.setStatus('away');
      await until(() => b.client.presenceOf(a.client.user!.id)?.status === 'away', 5000, 'b sees a away');
      a.client.stop();
      await until(() => b.client.presenceOf(a.client.user!.id)?.status === 'offline', 8000, 'b sees a offline');
    } finally {
      a.client.stop();
      b.client.stop();
    }
  });

  test('older history loads a page at a time, ordered, without duplicates', async () => {
    const { a, b, id, stop } = await pair();
    try {
      for (let i = 0; i < 120; i++) await a.api.postMessage(id, `cid-${i}`, `m${i}`);
      await until(() => b.messages(id).length === 120, 8000, 'b got 120 live');
      // A fresh device of b starts with nothing cached and reads history backwards.
      const fresh = createNodeClient({ url: server.url });
      const u = b.user!;
      await fresh.login(u.username, 'correct horse battery');
      try {
        await until(() => !!fresh.conversation(id), 5000, 'fresh device holds the conversation');
        await fresh.loadLatest(id);
        assert.equal(fresh.messages(id).length, 50);
        let more = true;
        for (let i = 0; i < 5 && more; i++) more = await fresh.loadOlder(id);
        assert.equal(more, false);
        const bodies = fresh.messages(id).map((m) => m.body);
        assert.deepEqual(bodies, Array.from({ length: 120 }, (_, i) => `m${i}`));
      } finally {
        fresh.stop();
      }
    } finally {
      stop();
    }
  });

  test('groups: create, add a member, and the new member gets the conversation live', async () => {
    const a = await signedIn(server.url);
    const b = await signedIn(server.url);
    const c = await signedIn(server.url);
    try {
      await until(() => [a, b, c].every((x) => x.client.state === 'online'), 5000, 'online');
      const g = await a.client.createGroup('Team', [b.client.user!.id]);
      await a.client.send(g.id, 'welcome');
      await until(() => b.client.messages(g.id).length === 1, 5000, 'b got it');
      await a.client.addMembers(g.id, [c.client.user!.id]);
      await until(() => !!c.client.conversation(g.id), 5000, 'c was told about the group');
      await until(() => c.client.messages(g.id).some((m) => m.body === 'welcome'), 5000, 'c loaded history');
      await b.client.send(g.id, 'hi c');
      await until(() => c.client.messages(g.id).some((m) => m.body === 'hi c'), 5000, 'c gets live messages');
      assert.equal(a.client.conversation(g.id)?.conversation.members.length, 3);
    } finally {
      for (const x of [a, b, c]) x.client.stop();
    }
  });

  test('blocking through the SDK: the blocked side\'s sends fail in the outbox, the list loads, unblocking lets the next send through', async () => {
    const { a, b, id, stop } = await pair();
    try {
      const bId = b.user!.id;
      const block = await a.block(bId);
      assert.equal(block.user.id, bId);
      assert.equal(a.isBlocked(bId), true);
      assert.equal(a.presenceOf(bId), undefined, 'the blocked user\'s presence is no longer shown');
      await b.send(id, 'are you there?');
      await until(() => b.outbox(id)[0]?.state === 'failed', 5000, 'the send was refused');
      assert.match(b.outbox(id)[0]?.error ?? '', /does not accept messages from you/);
      assert.ok(!a.messages(id).some((m) => m.body === 'are you there?'));

      // A fresh client of the same account learns the list from the server.
      const again = await a.loadBlocks();
      assert.deepEqual(again.map((x) => x.user.id), [bId]);

      await a.unblock(bId);
      assert.equal(a.isBlocked(bId), false);
      assert.deepEqual(await a.loadBlocks(), []);
      await b.send(id, 'hello again');
      await until(() => a.messages(id).some((m) => m.body === 'hello again'), 5000, 'delivered after the unblock');
    } finally {
      stop();
    }
  });

  test('search through the SDK: the words typed find both sides\' messages, newest first, filtered by sender, a page at a time', async () => {
    const { a, b, id, stop } = await pair();
    try {
      const k = `sdk${Date.now().toString(36)}`;
      await a.send(id, `${k} lunch at one?`);
      await b.send(id, `${k.toUpperCase()} Lunch works`);
      await b.send(id, `${k} see you`);
      await until(() => a.messages(id).length === 3, 5000, 'a has all three');
      let found: Message[] = [];
      for (const end = Date.now() + 5000; found.length < 2 && Date.now() < end; await sleep(50)) {
        found = (await a.searchMessages({ q: `lunch ${k}` })).messages;
      }
      assert.deepEqual(found.map((m) => m.body), [`${k.toUpperCase()} Lunch works`, `${k} lunch at one?`]);
      const fromB = await a.searchMessages({ q: k, senderId: b.user!.id, limit: 1 });
      assert.deepEqual(fromB.messages.map((m) => m.body), [`${k} see you`]);
      assert.ok(fromB.next);
      const more = await a.searchMessages({ q: k, senderId: b.user!.id, limit: 1, after: fromB.next });
      assert.deepEqual(more.messages.map((m) => m.body), [`${k.toUpperCase()} Lunch works`]);
      await assert.rejects(a.searchMessages({ q: '!!!' }), (err: Error & { code?: string }) => err.code === 'bad_request');
    } finally {
      stop();
    }
  });

  test('retention: the SDK drops what the server deleted, online or after being away, and the conversation goes on without a stall', async () => {
    // Gaps are waited out slowly here (seconds), so only knowing what retention deleted can make b quick:
    // the conversation list read after every sync carries clearedThroughSeq.
    const { a, b, id, stop } = await pair({ gapWaitMs: 1000 });
    try {
      await a.setRetention(id, 30);
      assert.equal(a.conversation(id)?.conversation.retentionDays, 30);
      for (let i = 1; i <= 3; i++) await a.send(id, `seen ${i}`);
      await until(() => b.messages(id).length === 3, 5000, 'b has the first three');
      // b goes away; two more old ones, then the cut, then two new ones.
      b.stop();
      for (let i = 4; i <= 5; i++) await a.send(id, `missed ${i}`);
      await until(() => a.outbox().length === 0, 5000, 'a sent them');
      await sleep(20);
      const cut = Date.now();
      await sleep(20);
      for (let i = 6; i <= 7; i++) await a.send(id, `new ${i}`);
      await until(() => a.outbox().length === 0, 5000, 'a sent the new ones');
      const swept = await server.srv.core.retention.sweepOnce(cut + 30 * 86_400_000);
      assert.equal(swept.events, 5);
      // a was online: told by a conversation frame.
      await until(() => a.messages(id).length === 2, 5000, 'a drops the deleted messages');
      assert.deepEqual(a.messages(id).map((m) => m.body), ['new 6', 'new 7']);
      // b held seqs 1-3 and missed 4-7, of which 4 and 5 are gone: it must not wait for them.
      const back = Date.now();
      await b.start();
      await until(() => b.messages(id).map((m) => m.body).join() === 'new 6,new 7', 5000, 'b holds only what is left');
      assert.ok(Date.now() - back < 2000, `b caught up in ${Date.now() - back} ms`);
      assert.equal(b.conversation(id)?.position, 7);
      await a.send(id, 'after');
      await until(() => b.messages(id).length === 3, 5000, 'b gets the next one live');
    } finally {
      stop();
    }
  });
});
