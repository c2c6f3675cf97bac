import type { FastifyPluginAsync } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { Core } from '../../../core/core.js';
import {
  AddMembersBody,
  CreateConversationBody,
  EventsQuery,
  IdParams,
  ListConversationsQuery,
  MemberParams,
  MessagesQuery,
  ReadBody,
  SendBody,
  SetRoleBody,
  UpdateConversationBody,
} from '../../../protocol/http.js';
import { authenticate } from '../app.js';
import { badRequest } from '../../../core/errors.js';
import { StoreError } from '../../../core/ports/store.js';

export const conversationRoutes: FastifyPluginAsync<{ core: Core }> = async (app, { core }) => {
  const svc = core.conversations;
  const store = core.engines.store;

  app.post<{ Body: Static<typeof CreateConversationBody> }>('/v1/conversations', { schema: { body: CreateConversationBody } }, async (req, reply) => {
    const p = await authenticate(core, req);
    const b = req.body;
    if (b.kind === 'direct') {
      const { conversation, created } = await svc.createDirect(p.userId, b.members[0] as string, b.encrypted === true);
      return reply.code(created ? 201 : 200).send({ conversation });
    }
    return reply.code(201).send({ conversation: await svc.createGroup(p.userId, b.title, b.members, b.encrypted === true) });
  });

  app.get<{ Querystring: Static<typeof ListConversationsQuery> }>('/v1/conversations', { schema: { querystring: ListConversationsQuery } }, async (req) => {
    const p = await authenticate(core, req);
    const page = await svc.list(p.userId, req.query.limit ?? 50, req.query.after || undefined).catch((err: unknown) => {
      if (err instanceof StoreError) throw badRequest('The "after" cursor is not one this server gave out.');
      throw err;
    });
    return { conversations: page.conversations, next: page.next ?? null };
  });

  app.get<{ Params: Static<typeof IdParams> }>('/v1/conversations/:id', { schema: { params: IdParams } }, async (req) => {
    const p = await authenticate(core, req);
    return { conversation: await svc.get(p.userId, req.params.id) };
  });

  /** How many members are online: the presence of conversations too large for presence frames. */
  app.get<{ Params: Static<typeof IdParams> }>('/v1/conversations/:id/presence', { schema: { params: IdParams } }, async (req) => {
    const p = await authenticate(core, req);
    return { presence: await core.onlineCounts.count(p.userId, req.params.id) };
  });

  app.patch<{ Params: Static<typeof IdParams>; Body: Static<typeof UpdateConversationBody> }>(
    '/v1/conversations/:id',
    { schema: { params: IdParams, body: UpdateConversationBody } },
    async (req) => {
      const p = await authenticate(core, req);
      const { title, retentionDays } = req.body;
      if (title === undefined && retentionDays === undefined) throw badRequest('Nothing to change: give "title", "retentionDays" or both.');
      let conversation = title === undefined ? undefined : await svc.setTitle(p.userId, req.params.id, title);
      if (retentionDays !== undefined) conversation = await core.retention.setPolicy(p.userId, req.params.id, retentionDays);
      return { conversation };
    },
  );

  app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof AddMembersBody> }>(
    '/v1/conversations/:id/members',
    { schema: { params: IdParams, body: AddMembersBody } },
    async (req) => {
      const p = await authenticate(core, req);
      return { conversation: await svc.addMembers(p.userId, req.params.id, req.body.userIds) };
    },
  );

  app.delete<{ Params: Static<typeof MemberParams> }>('/v1/conversations/:id/members/:userId', { schema: { params: MemberParams } }, async (req, reply) => {
    const p = await authenticate(core, req);
    await svc.removeMember(p.userId, req.params.id, req.params.userId);
    return reply.code(204).send();
  });

  app.patch<{ Params: Static<typeof MemberParams>; Body: Static<typeof SetRoleBody> }>(
    '/v1/conversations/:id/members/:userId',
    { schema: { params: MemberParams, body: SetRoleBody } },
    async (req) => {
      const p = await authenticate(core, req);
      return { conversation: await svc.setRole(p.userId, req.params.id, req.params.userId, req.body.role) };
    },
  );

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof MessagesQuery> }>(
    '/v1/conversations/:id/messages',
    { schema: { params: IdParams, querystring: MessagesQuery } },
    async (req) => {
      const p = await authenticate(core, req);
      await core.membership.require(req.params.id, p.userId);
      const { before, after } = req.query;
      return store.events.messages(req.params.id, { before, after, limit: req.query.limit ?? 50 });
    },
  );

  app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof SendBody> }>(
    '/v1/conversations/:id/messages',
    { schema: { params: IdParams, body: SendBody } },
    async (req, reply) => {
      const p = await authenticate(core, req);
      const { message, created } = await core.messaging.send(p.userId, req.params.id, req.body.clientId, req.body.body, req.body.replyTo, p.deviceId, req.body.attachments);
      return reply.code(created ? 201 : 200).send({ message });
    },
  );

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof EventsQuery> }>(
    '/v1/conversations/:id/events',
    { schema: { params: IdParams, querystring: EventsQuery } },
    async (req) => {
      const p = await authenticate(core, req);
      await core.membership.require(req.params.id, p.userId);
      const limit = req.query.limit ?? 100;
      const events = await store.events.after(req.params.id, req.query.after ?? 0, limit + 1);
      return { events: events.slice(0, limit), hasMore: events.length > limit };
    },
  );

  app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof ReadBody> }>(
    '/v1/conversations/:id/read',
    { schema: { params: IdParams, body: ReadBody } },
    async (req) => {
      const p = await authenticate(core, req);
      if (req.body.seq > 0) await core.ephemeral.receipt(p.userId, '', req.params.id, req.body.seq, 'read');
      const conv = await svc.get(p.userId, req.params.id);
      return { lastReadSeq: conv.members.find((m) => m.userId === p.userId)?.lastReadSeq ?? 0 };
    },
  );
};
