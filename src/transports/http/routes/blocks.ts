import type { FastifyPluginAsync } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { Core } from '../../../core/core.js';
import { BlockBody, BlockParams, BlocksQuery } from '../../../protocol/http.js';
import { authenticate } from '../app.js';

/** Blocking (R17); what a block does is in core/blocks.ts. */
export const blockRoutes: FastifyPluginAsync<{ core: Core }> = async (app, { core }) => {
  app.get<{ Querystring: Static<typeof BlocksQuery> }>('/v1/blocks', { schema: { querystring: BlocksQuery } }, async (req) => {
    const p = await authenticate(core, req);
    return core.blocks.list(p.userId, req.query.limit ?? 50, req.query.after || undefined);
  });

  /** 201 with the new block; 200 with the standing one when the user was already blocked. */
  app.post<{ Body: Static<typeof BlockBody> }>('/v1/blocks', { schema: { body: BlockBody } }, async (req, reply) => {
    const p = await authenticate(core, req);
    const { block, created } = await core.blocks.block(p.userId, req.body.userId);
    return reply.code(created ? 201 : 200).send({ block });
  });

  app.delete<{ Params: Static<typeof BlockParams> }>('/v1/blocks/:userId', { schema: { params: BlockParams } }, async (req, reply) => {
    const p = await authenticate(core, req);
    await core.blocks.unblock(p.userId, req.params.userId);
    return reply.code(204).send();
  });
};
