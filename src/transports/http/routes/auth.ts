import type { FastifyPluginAsync } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { Core } from '../../../core/core.js';
import { LoginBody, RefreshBody, RegisterBody } from '../../../protocol/http.js';
import { authenticate } from '../app.js';

export const authRoutes: FastifyPluginAsync<{ core: Core }> = async (app, { core }) => {
  app.post<{ Body: Static<typeof RegisterBody> }>('/v1/auth/register', { schema: { body: RegisterBody } }, async (req, reply) => {
    const user = await core.auth.register(req.body.username, req.body.password, req.body.displayName);
    return reply.code(201).send({ user });
  });

  app.post<{ Body: Static<typeof LoginBody> }>('/v1/auth/login', { schema: { body: LoginBody } }, async (req) =>
    core.auth.login(req.body.username, req.body.password, req.body.deviceName, req.ip),
  );

  app.post<{ Body: Static<typeof RefreshBody> }>('/v1/auth/refresh', { schema: { body: RefreshBody } }, async (req) =>
    core.auth.refresh(req.body.refreshToken),
  );

  app.post('/v1/auth/logout', async (req, reply) => {
    const p = await authenticate(core, req);
    await core.auth.revokeDevice(p.userId, p.deviceId);
    return reply.code(204).send();
  });
};
