import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildNotification } from '../../src/core/push/preview.js';
import type { Conversation, Message } from '../../src/protocol/model.js';

const conversation = (over: Partial<Conversation>): Conversation => ({
  id: 'c1', kind: 'direct', members: [], lastSeq: 3, createdAt: 1, updatedAt: 1, ...over,
});
const message: Message = { id: 'm1', conversationId: 'c1', seq: 3, senderId: 'u1', clientId: 'k', body: 'meet at   the\nstation', createdAt: 5 };

test('a notification previews the text of a plain conversation, folded to one line', () => {
  const n = buildNotification(conversation({}), message, 'Ann', 1);
  assert.equal(n.body, 'meet at the station');
  assert.equal(n.title, 'Ann');
});

test('an end-to-end encrypted conversation gets no preview: the body is an envelope the server must not show', () => {
  const envelope = { ...message, body: '{"e2e":1,"iv":"…","ct":"…"}' };
  const n = buildNotification(conversation({ encrypted: true }), envelope, 'Ann', 2);
  assert.equal(n.body, undefined);
  assert.equal(n.count, 2);
  assert.equal(n.conversationId, 'c1');
});
