import type { FastifyPluginAsync } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { Core } from '../../../core/core.js';
import { EditBody, IdParams, ReactBody, ReactionParams } from '../../../protocol/http.js';
import { authenticate } from '../app.js';

export const messageRoutes: FastifyPluginAsync<{ core: Core }> = async (app, { core }) => {
  const m = core.messaging;

  app.patch<{ Params: Static<typeof IdParams>; Body: Static<typeof EditBody> }>('/v1/messages/:id', { schema: { params: IdParams, body: EditBody } }, async (req) => {
    const p = await authenticate(core, req);
    return { event: await m.edit(p.userId, req.params.id, req.body.body, p.deviceId) };
  });

  app.delete<{ Params: Static<typeof IdParams> }>('/v1/messages/:id', { schema: { params: IdParams } }, async (req) => {
    const p = await authenticate(core, req);
    return { event: await m.delete(p.userId, req.params.id) };
  });

  app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof ReactBody> }>(
    '/v1/messages/:id/reactions',
    { schema: { params: IdParams, body: ReactBody } },
    async (req) => {
      const p = await authenticate(core, req);
      return m.react(p.userId, req.params.id, req.body.reaction, true);
    },
  );

  app.delete<{ Params: Static<typeof ReactionParams> }>('/v1/messages/:id/reactions/:reaction', { schema: { params: ReactionParams } }, async (req) => {
    const p = await authenticate(core, req);
    return m.react(p.userId, req.params.id, req.params.reaction, false);
  });
};
