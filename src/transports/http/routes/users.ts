import type { FastifyPluginAsync } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { Core } from '../../../core/core.js';
import { IdParams, PresenceQuery, UsersQuery } from '../../../protocol/http.js';
import { authenticate } from '../app.js';
import { notFound, unauthorized } from '../../../core/errors.js';

export const userRoutes: FastifyPluginAsync<{ core: Core }> = async (app, { core }) => {
  const users = core.engines.store.users;

  app.get('/v1/me', async (req) => {
    const p = await authenticate(core, req);
    const user = await users.byId(p.userId);
    if (!user) throw unauthorized('The account no longer exists.');
    return { user };
  });

  app.get<{ Querystring: Static<typeof UsersQuery> }>('/v1/users', { schema: { querystring: UsersQuery } }, async (req) => {
    await authenticate(core, req);
    const limit = req.query.limit ?? 20;
    // One row more than asked tells whether a next page exists, so `next` is null exactly at the end, as in
    // every list of the API.
    const rows = await users.search((req.query.q ?? '').trim().toLowerCase(), limit + 1, req.query.after || undefined);
    const list = rows.slice(0, limit);
    return { users: list, next: rows.length > limit ? (list[list.length - 1]?.username ?? null) : null };
  });

  app.get<{ Params: Static<typeof IdParams> }>('/v1/users/:id', { schema: { params: IdParams } }, async (req) => {
    await authenticate(core, req);
    const user = await users.byId(req.params.id);
    if (!user) throw notFound('No user has that id.');
    return { user };
  });

  /** Presence only of people who share a conversation with the caller and no block; everyone else reads as offline. */
  app.get<{ Querystring: Static<typeof PresenceQuery> }>('/v1/presence', { schema: { querystring: PresenceQuery } }, async (req) => {
    const p = await authenticate(core, req);
    const ids = [...new Set(req.query.userIds.split(',').map((s) => s.trim()).filter(Boolean))].slice(0, 500);
    const contacts = new Set<string>([p.userId]);
    for (const convId of await core.engines.store.conversations.idsForUser(p.userId)) {
      const entry = await core.membership.get(convId);
      if (entry) for (const u of entry.roles.keys()) contacts.add(u);
    }
    const hidden = new Set(await core.blocks.hiddenFrom(p.userId));
    const visible = ids.filter((id) => contacts.has(id) && !hidden.has(id));
    const snap = new Map((await core.presence.snapshot(visible)).map((s) => [s.userId, s]));
    return { presence: ids.map((userId) => snap.get(userId) ?? { userId, status: 'offline' }) };
  });
};
