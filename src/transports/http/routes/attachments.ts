/**
 * Extension (R14): attachments over HTTP. `POST /v1/attachments` takes the
 * file itself as the body (Content-Type its media type, `?name=` its file
 * name; `?encrypted=1` for an end-to-end encrypted conversation's ciphertext)
 * and streams it to the core, never parsing or buffering it;
 * `GET /v1/attachments/:id` and `/thumbnail` serve the bytes with ranges,
 * ETags and headers that keep a file from running as a page of this origin.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { Core } from '../../../core/core.js';
import type { AttachmentRecord } from '../../../core/ports/store.js';
import type { ByteRange } from '../../../core/ports/blobs.js';
import { IdParams, UploadQuery } from '../../../protocol/http.js';
import { MAX_ATTACHMENTS } from '../../../protocol/fields.js';
import type { AttachmentLimits } from '../../../protocol/model.js';
import type { ErrorBody } from '../../../protocol/errors.js';
import { badRequest, notFound } from '../../../core/errors.js';
import { mediaTypeOf, servedInline } from '../../../protocol/media-types.js';
import { authenticate } from '../app.js';

type Params = Static<typeof IdParams>;

export const attachmentRoutes: FastifyPluginAsync<{ core: Core }> = async (app, { core }) => {
  // In this plugin only: the body is the file, read by the route as a stream.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
  // Fastify would answer a malformed Content-Type with its own 415 before any route runs.
  app.addHook('onRequest', async (req) => {
    const ct = req.headers['content-type'];
    if (req.method === 'POST' && ct !== undefined && !mediaTypeOf(ct)) throw badRequest('The Content-Type header is not a media type such as image/png.');
  });
  // An answer sent before the whole file arrived (a refusal) closes the connection: the rest is never read.
  app.addHook('onSend', async (req, reply) => {
    if (req.method === 'POST' && !req.raw.complete) reply.header('connection', 'close');
  });

  app.post<{ Querystring: Static<typeof UploadQuery> }>('/v1/attachments', { schema: { querystring: UploadQuery } }, async (req, reply) => {
    const p = await authenticate(core, req);
    const length = req.headers['content-length'];
    const attachment = await core.attachments.upload(p.userId, {
      contentType: req.headers['content-type'],
      name: req.query.name,
      length: length === undefined ? undefined : Number(length),
      body: req.raw,
      encrypted: req.query.encrypted === '1',
    });
    return reply.code(201).send({ attachment });
  });

  app.get('/v1/attachments/limits', async (req): Promise<{ limits: AttachmentLimits }> => {
    await authenticate(core, req);
    const { maxBytes, types } = core.attachments.opts;
    return { limits: { maxBytes, types: types.list, maxPerMessage: MAX_ATTACHMENTS } };
  });

  const original = { schema: { params: IdParams }, exposeHeadRoute: false };
  app.get<{ Params: Params }>('/v1/attachments/:id', original, (req, reply) => serve(core, req, reply, 'original'));
  app.head<{ Params: Params }>('/v1/attachments/:id', original, (req, reply) => serve(core, req, reply, 'original'));
  app.get<{ Params: Params }>('/v1/attachments/:id/thumbnail', original, (req, reply) => serve(core, req, reply, 'thumbnail'));
  app.head<{ Params: Params }>('/v1/attachments/:id/thumbnail', original, (req, reply) => serve(core, req, reply, 'thumbnail'));
};

async function serve(core: Core, req: FastifyRequest<{ Params: Params }>, reply: FastifyReply, which: 'original' | 'thumbnail'): Promise<FastifyReply> {
  const p = await authenticate(core, req);
  const rec = await core.attachments.open(p.userId, req.params.id);
  if (which === 'thumbnail' && !rec.thumbnail) throw notFound('This attachment has no thumbnail (only images have one).');
  const type = which === 'thumbnail' ? 'image/webp' : rec.type;
  // The bytes behind an id never change: its hash names them, and caches may keep them for good.
  const etag = which === 'thumbnail' ? `"t-${rec.sha256}"` : `"${rec.sha256}"`;
  void reply
    .header('etag', etag)
    .header('cache-control', 'private, max-age=31536000, immutable')
    .header('x-content-type-options', 'nosniff')
    .header('accept-ranges', 'bytes')
    .header('content-type', type.startsWith('text/') ? `${type}; charset=utf-8` : type)
    .header('content-disposition', disposition(rec, which, type));
  // Whatever the file says, it runs nothing here (Chrome shows PDFs only outside a sandbox, and never runs their script as this origin).
  if (type !== 'application/pdf') void reply.header('content-security-policy', "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; sandbox");
  if (ifNoneMatch(req.headers['if-none-match'], etag)) return reply.code(304).send();

  const size = which === 'thumbnail' ? undefined : rec.size;
  let range: ByteRange | undefined;
  if (size !== undefined && req.headers.range !== undefined && (req.headers['if-range'] === undefined || req.headers['if-range'] === etag)) {
    const r = parseRange(req.headers.range, size);
    if (r === 'unsatisfiable') {
      const body: ErrorBody = { error: { code: 'bad_request', message: `The range asked for is outside the file (${size} bytes).` } };
      return reply.code(416).header('content-range', `bytes */${size}`).header('content-type', 'application/json; charset=utf-8').send(body);
    }
    range = r;
  }
  if (req.method === 'HEAD') {
    const total = size ?? (await core.attachments.thumbnailSize(rec));
    if (range) void reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${total}`);
    return reply.header('content-length', String(range ? range.end - range.start + 1 : total)).send();
  }
  const read = which === 'thumbnail' ? await core.attachments.thumbnail(rec) : await core.attachments.original(rec, range);
  if (range) void reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${read.size}`);
  return reply.header('content-length', String(range ? range.end - range.start + 1 : read.size)).send(read.body);
}

/** Inline for what a browser shows safely; a download for anything it could run (HTML, SVG, scripts…). */
function disposition(rec: AttachmentRecord, which: 'original' | 'thumbnail', type: string): string {
  const name = which === 'thumbnail' ? `${rec.name}.thumbnail.webp` : rec.name;
  const ascii = name.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${servedInline(type) ? 'inline' : 'attachment'}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

function ifNoneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.trim() === '*' || header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

/**
 * One `bytes=` range of RFC 9110 §14.1.2 (`a-b`, `a-`, `-n`), clamped to the
 * file; undefined (serve it whole, as the RFC allows) for several ranges or
 * anything malformed; 'unsatisfiable' when it starts past the end.
 */
export function parseRange(header: string, size: number): ByteRange | 'unsatisfiable' | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined;
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const n = Number(b);
    if (n === 0) return 'unsatisfiable';
    return size === 0 ? 'unsatisfiable' : { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (b !== '' && Number(b) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}
