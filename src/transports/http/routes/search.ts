import type { FastifyPluginAsync } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { Core } from '../../../core/core.js';
import { SearchQuery } from '../../../protocol/http.js';
import { authenticate } from '../app.js';

/** Extension (R15): full-text search over the caller's conversations. */
export const searchRoutes: FastifyPluginAsync<{ core: Core }> = async (app, { core }) => {
  app.get<{ Querystring: Static<typeof SearchQuery> }>('/v1/search', { schema: { querystring: SearchQuery } }, async (req) => {
    const p = await authenticate(core, req);
    const { q, conversationId, senderId, since, until, limit, after } = req.query;
    return core.search.search(p.userId, {
      q,
      ...(conversationId ? { conversationId } : {}),
      ...(senderId ? { senderId } : {}),
      ...(since === undefined ? {} : { since }),
      ...(until === undefined ? {} : { until }),
      ...(limit === undefined ? {} : { limit }),
      ...(after ? { after } : {}),
    });
  });
};
