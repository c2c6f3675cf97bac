import type { FastifyPluginAsync } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { Core } from '../../../core/core.js';
import { SessionParams, SessionsQuery } from '../../../protocol/http.js';
import { authenticate } from '../app.js';

export const sessionRoutes: FastifyPluginAsync<{ core: Core }> = async (app, { core }) => {
  app.get<{ Querystring: Static<typeof SessionsQuery> }>('/v1/sessions', { schema: { querystring: SessionsQuery } }, async (req) => {
    const p = await authenticate(core, req);
    return core.auth.sessions(p.userId, p.deviceId, req.query.limit ?? 50, req.query.after || undefined);
  });

  /** Revoking closes that device's sockets with 4001 on every node and kills its tokens. */
  app.delete<{ Params: Static<typeof SessionParams> }>('/v1/sessions/:deviceId', { schema: { params: SessionParams } }, async (req, reply) => {
    const p = await authenticate(core, req);
    await core.auth.revokeSession(p.userId, req.params.deviceId);
    return reply.code(204).send();
  });
};
