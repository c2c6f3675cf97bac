import type { FastifyPluginAsync } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { Core } from '../../../core/core.js';
import { IdParams, PutKeysBody } from '../../../protocol/http.js';
import { authenticate } from '../app.js';

/** Extension (R18): the key directory of end-to-end encryption (core/keys.ts). */
export const keyRoutes: FastifyPluginAsync<{ core: Core }> = async (app, { core }) => {
  app.put<{ Body: Static<typeof PutKeysBody> }>('/v1/keys', { schema: { body: PutKeysBody } }, async (req, reply) => {
    const p = await authenticate(core, req);
    const { keys, created } = await core.keys.publish(p.userId, p.deviceId, req.body);
    return reply.code(created ? 201 : 200).send({ keys });
  });

  app.get<{ Params: Static<typeof IdParams> }>('/v1/users/:id/keys', { schema: { params: IdParams } }, async (req) => {
    await authenticate(core, req);
    return { devices: await core.keys.ofUser(req.params.id) };
  });

  app.get<{ Params: Static<typeof IdParams> }>('/v1/conversations/:id/keys', { schema: { params: IdParams } }, async (req) => {
    const p = await authenticate(core, req);
    return { devices: await core.keys.ofConversation(p.userId, req.params.id) };
  });
};
