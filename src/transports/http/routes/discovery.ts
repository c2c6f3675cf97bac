import type { FastifyPluginAsync } from 'fastify';
import type { Core } from '../../../core/core.js';

/**
 * `GET /v1/discovery`: where a client should connect. Unauthenticated, so a
 * client can ask before it logs in and again after its node went away.
 */
export const discoveryRoutes: FastifyPluginAsync<{ core: Core }> = async (app, { core }) => {
  app.get('/v1/discovery', async (_req, reply) => {
    const { node, healthy } = await core.discovery.pick();
    return reply.header('Cache-Control', 'no-store').send({
      nodeId: node.nodeId,
      url: node.url,
      wsUrl: node.wsUrl,
      load: { connections: node.connections, eventLoopLagMs: node.eventLoopLagMs },
      healthyNodes: healthy,
    });
  });
};
