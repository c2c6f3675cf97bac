import type { FastifyPluginAsync } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { Core } from '../../../core/core.js';
import { PollQuery } from '../../../protocol/http.js';
import { authenticate } from '../app.js';
import type { FrameHandler } from '../../frame-handler.js';
import type { Mailboxes } from '../../poll/mailboxes.js';
import { checkClientFrame } from '../../parse.js';
import { ParleyError } from '../../../core/errors.js';

/** Frames are JSON already serialised once; the answer splices them in rather than parsing them again. */
const framesBody = (frames: string[], extra: string): string => `{"frames":[${frames.join(',')}]${extra}}`;

export const pollRoutes: FastifyPluginAsync<{ core: Core; frames: FrameHandler; mailboxes: Mailboxes }> = async (app, { core, frames, mailboxes }) => {
  app.get<{ Querystring: Static<typeof PollQuery> }>('/v1/poll', { schema: { querystring: PollQuery } }, async (req, reply) => {
    const p = await authenticate(core, req);
    const { cursor } = req.query;
    const box = mailboxes.get(p.deviceId);
    reply.type('application/json');
    if (!box || cursor === undefined) {
      // No cursor: a client (re)starting; it syncs next, so an older mailbox of this device has nothing it needs.
      box?.close(1000, 'replaced');
      await mailboxes.open(p);
      // A cursor from a mailbox this node no longer has: frames may be lost, the client must sync.
      return framesBody([], cursor !== undefined && cursor > 0 ? ',"cursor":0,"reset":true' : ',"cursor":0');
    }
    const res = await box.poll(cursor, Math.min(req.query.timeoutMs ?? 25_000, 30_000));
    if (box.closed && res.frames.length === 0) {
      if (box.closeCode === 4001) throw new ParleyError('unauthorized', 'The session was revoked.');
      // Draining, replaced by a newer poll, or overflowed: the client polls again without a cursor and syncs.
      return framesBody([], ',"cursor":0,"reset":true');
    }
    return framesBody(res.frames, `,"cursor":${res.cursor}`);
  });

  app.post('/v1/frames', async (req, reply) => {
    const p = await authenticate(core, req);
    const parsed = checkClientFrame(req.body);
    const out: string[] = [];
    reply.type('application/json');
    const peer = mailboxes.get(p.deviceId) ?? { connId: `http.${p.deviceId}`, userId: p.userId, deviceId: p.deviceId, syncing: undefined, strikes: 0, push: () => undefined, close: () => undefined };
    // A frame refused as unreadable still counts against the connection's frame bucket, as on the WebSocket.
    if (!parsed.ok) frames.refuse(peer, parsed.error, parsed.ref, (f) => out.push(f));
    else if (parsed.frame.type === 'auth') frames.refuse(peer, new ParleyError('bad_request', 'HTTP requests authenticate with the Authorization header.'), parsed.frame.ref, (f) => out.push(f));
    else await frames.handle(peer, parsed.frame, (f) => out.push(f));
    return framesBody(out, '');
  });
};
