import type { FastifyPluginAsync } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { Core } from '../../../core/core.js';
import { PushSubscriptionBody, PushSubscriptionParams, PushSubscriptionsQuery, type PushSubscriptionInput, type PushVapidInfo } from '../../../protocol/push.js';
import { authenticate } from '../app.js';

/** Extension (R12): push subscriptions of the caller's devices, and the VAPID key browsers subscribe with. */
export const pushRoutes: FastifyPluginAsync<{ core: Core }> = async (app, { core }) => {
  app.get('/v1/push/vapid', async (req): Promise<PushVapidInfo> => {
    await authenticate(core, req);
    return { publicKey: core.push.vapidPublicKey, kinds: core.push.subscriptions.kinds };
  });

  app.post<{ Body: Static<typeof PushSubscriptionBody> }>('/v1/push/subscriptions', { schema: { body: PushSubscriptionBody } }, async (req, reply) => {
    const p = await authenticate(core, req);
    const { subscription, created } = await core.push.subscriptions.register(p.userId, p.deviceId, req.body as PushSubscriptionInput);
    return reply.code(created ? 201 : 200).send({ subscription });
  });

  app.get<{ Querystring: Static<typeof PushSubscriptionsQuery> }>('/v1/push/subscriptions', { schema: { querystring: PushSubscriptionsQuery } }, async (req) => {
    const p = await authenticate(core, req);
    return core.push.subscriptions.list(p.userId, p.deviceId, req.query.limit ?? 50, req.query.after || undefined);
  });

  app.delete<{ Params: Static<typeof PushSubscriptionParams> }>('/v1/push/subscriptions/:id', { schema: { params: PushSubscriptionParams } }, async (req, reply) => {
    const p = await authenticate(core, req);
    await core.push.subscriptions.remove(p.userId, req.params.id);
    return reply.code(204).send();
  });
};
