import type { FastifyPluginAsync } from 'fastify';
import type { Core } from '../../../core/core.js';

export interface Readiness {
  draining: () => boolean;
}

/** Liveness, readiness and Prometheus metrics. */
export const opsRoutes: FastifyPluginAsync<{ core: Core; readiness: Readiness }> = async (app, { core, readiness }) => {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const checks = {
      draining: readiness.draining(),
      store: await core.engines.store.ping().catch(() => false),
      bus: core.engines.bus.healthy(),
    };
    const ready = !checks.draining && checks.store && checks.bus;
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks });
  });

  app.get('/metrics', async (_req, reply) => {
    const reg = core.metrics.registry;
    return reply.header('Content-Type', reg.contentType).send(await reg.metrics());
  });
};
