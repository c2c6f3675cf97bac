/**
 * The Fastify app: errors in the protocol's shape, TypeBox validation (the same
 * library that checks WebSocket frames), bearer auth, and the route modules.
 * Built in a function so tests can `inject()` without a socket.
 */
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { TSchema } from '@sinclair/typebox';
import type { Core } from '../../core/core.js';
import type { Principal } from '../../core/auth.js';
import { ParleyError, toParleyError, unauthorized } from '../../core/errors.js';
import { explainSchemaError, schemaErrorPath } from '../schema-error.js';
import { ERROR_STATUS, type ErrorBody } from '../../protocol/errors.js';
import type { FrameHandler } from '../frame-handler.js';
import type { Mailboxes } from '../poll/mailboxes.js';
import { authRoutes } from './routes/auth.js';
import { userRoutes } from './routes/users.js';
import { conversationRoutes } from './routes/conversations.js';
import { searchRoutes } from './routes/search.js';
import { keyRoutes } from './routes/keys.js';
import { pushRoutes } from './routes/push.js';
import { messageRoutes } from './routes/messages.js';
import { sessionRoutes } from './routes/sessions.js';
import { blockRoutes } from './routes/blocks.js';
import { pollRoutes } from './routes/poll.js';
import { opsRoutes, type Readiness } from './routes/ops.js';
import { webRoutes } from './routes/web.js';
import { discoveryRoutes } from './routes/discovery.js';
import { attachmentRoutes } from './routes/attachments.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export interface HttpDeps {
  core: Core;
  frames: FrameHandler;
  mailboxes: Mailboxes;
  readiness: Readiness;
}

/** The /v1 routes that need no access token; every other /v1 route authenticates before parsing its body. */
const PUBLIC_ROUTES: ReadonlySet<string> = new Set(['/v1/auth/register', '/v1/auth/login', '/v1/auth/refresh', '/v1/discovery']);

/** Request bodies above this are refused with 413 too_large. */
export const BODY_LIMIT = 1024 * 1024;

/**
 * Path parameters the router accepts before giving up on the route. Its default (100) turned an id of 101+
 * characters into a 404 "No route" while one of 65 was the schema's 400; this is the size of the whole request
 * head Node accepts (16 KiB), so no parameter that arrives is longer, and the schema judges them all.
 */
const MAX_PARAM_LENGTH = 16 * 1024;

/**
 * Requests the HTTP parser refuses before Fastify sees them (a malformed Content-Length, a broken header line,
 * headers over Node's 16 KiB) get the protocol's error body too, not Fastify's own, and the connection closes.
 */
function clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (socket.writable) {
    const big = err.code === 'HPE_HEADER_OVERFLOW';
    const e = big
      ? new ParleyError('too_large', 'The request headers are larger than the server accepts.')
      : new ParleyError('bad_request', err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'The request did not arrive in time.' : 'The request is not valid HTTP/1.1.');
    const body = JSON.stringify({ error: { code: e.code, message: e.message } } satisfies ErrorBody);
    const status = ERROR_STATUS[e.code];
    socket.write(
      `HTTP/1.1 ${status} ${big ? 'Payload Too Large' : 'Bad Request'}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

export async function buildHttpApp(deps: HttpDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT,
    return503OnClosing: false,
    forceCloseConnections: true,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Without a trusted proxy, req.ip is the peer; behind nginx every client would share nginx's address.
    ...(deps.core.config.trustProxy ? { trustProxy: deps.core.config.trustProxy } : {}),
    clientErrorHandler: clientError,
    // A path the router cannot decode (malformed percent-encoding) gets the protocol's error body, not Fastify's.
    frameworkErrors: (_err, _req, reply) => sendError(reply, new ParleyError('bad_request', 'The request path is not validly percent-encoded.')),
  });

  app.setValidatorCompiler(({ schema, httpPart }) => {
    const check = TypeCompiler.Compile(schema as TSchema);
    // A union told apart by a literal field (the create body's `kind`): a body is judged against the variant it names,
    // so the answer says which field is wrong instead of "Expected union value".
    const tagged = taggedUnion(schema as TSchema);
    // Query strings and path params arrive as strings; bodies must already have the right JSON types.
    const convert = httpPart === 'querystring' || httpPart === 'params';
    return (data: unknown) => {
      const value = convert ? numericStrings(schema as TSchema, data) : data;
      if (check.Check(value)) return { value };
      const invalid = (where: string, message: string) => ({
        error: new ParleyError('bad_request', `Invalid ${httpPart}${where ? ` field ${where}` : ''}: ${message}.`),
      });
      if (tagged && typeof value === 'object' && value !== null && !Array.isArray(value)) {
        const variant = tagged.variants.get((value as Record<string, unknown>)[tagged.key]);
        if (!variant) return invalid(tagged.key, `Expected ${[...tagged.variants.keys()].map((v) => JSON.stringify(v)).join(' or ')}`);
        const e = variant.Errors(value).First();
        return invalid(schemaErrorPath(e, '.'), explainSchemaError(e));
      }
      const e = check.Errors(value).First();
      return invalid(schemaErrorPath(e, '.'), explainSchemaError(e));
    };
  });

  // A request that declares JSON but sends no body (a DELETE or a logout from a client that sets the header on
  // every call) has no body, as if it had not declared one; routes that need a body still refuse it (bad_request).
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (body.length === 0) done(null, undefined);
    else parseJson(req, body.toString(), done);
  });

  app.setErrorHandler((err, req, reply) => {
    let e: ParleyError;
    const fe = err as { code?: string; statusCode?: number; validation?: unknown; message?: string };
    if (err instanceof ParleyError) e = err;
    else if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') e = new ParleyError('too_large', `The request body is larger than ${BODY_LIMIT} bytes.`);
    else if (fe.code === 'FST_ERR_VALIDATION' && fe.message) e = new ParleyError('bad_request', fe.message.replace(/^body\//, ''));
    else if (fe.statusCode === 415) e = new ParleyError('bad_request', 'The request body must be JSON (Content-Type: application/json).');
    else if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500) e = new ParleyError('bad_request', 'The request is malformed (invalid JSON or parameters).');
    else {
      e = toParleyError(err);
      deps.core.log.error({ err, url: req.url }, 'request failed');
    }
    sendError(reply, e);
  });

  app.setNotFoundHandler((req, reply) => {
    sendError(reply, new ParleyError('not_found', `No route for ${req.method} ${req.url.split('?')[0]}.`));
  });

  app.decorateRequest('principal', null);

  // While draining, API requests get the protocol's 503 (Fastify's own would not be in the error shape).
  app.addHook('onRequest', async (req, reply) => {
    if (deps.readiness.draining() && req.url.startsWith('/v1/')) {
      sendError(reply, new ParleyError('unavailable', 'This node is shutting down; retry, another node will serve.'));
      return reply;
    }
  });

  // Authentication before anything about the request itself: a call without a valid token is 401 whatever its
  // body, query or params (they are parsed and validated only after this). Routes still call authenticate(),
  // which returns the principal found here.
  app.addHook('onRequest', async (req) => {
    const route = req.routeOptions.url;
    if (route === undefined || !route.startsWith('/v1/') || PUBLIC_ROUTES.has(route)) return;
    await authenticate(deps.core, req);
  });

  await app.register(opsRoutes, { core: deps.core, readiness: deps.readiness });
  await app.register(discoveryRoutes, { core: deps.core });
  await app.register(authRoutes, { core: deps.core });
  await app.register(userRoutes, { core: deps.core });
  await app.register(conversationRoutes, { core: deps.core });
  await app.register(messageRoutes, { core: deps.core });
  await app.register(searchRoutes, { core: deps.core });
  await app.register(keyRoutes, { core: deps.core });
  await app.register(attachmentRoutes, { core: deps.core });
  await app.register(pushRoutes, { core: deps.core });
  await app.register(sessionRoutes, { core: deps.core });
  await app.register(blockRoutes, { core: deps.core });
  await app.register(pollRoutes, { core: deps.core, frames: deps.frames, mailboxes: deps.mailboxes });
  await app.register(webRoutes, { webDir: deps.core.config.webDir });
  return app;
}

type Checker = ReturnType<typeof TypeCompiler.Compile>;

/** For a union of objects that each fix one same field to a literal: that field, and each literal's own check. */
function taggedUnion(schema: TSchema): { key: string; variants: Map<unknown, Checker> } | undefined {
  const anyOf = (schema as { anyOf?: TSchema[] }).anyOf;
  if (!anyOf || anyOf.length < 2) return undefined;
  const literal = (s: TSchema, k: string): unknown => (s as { properties?: Record<string, { const?: unknown }> }).properties?.[k]?.const;
  const first = (anyOf[0] as { properties?: Record<string, unknown> }).properties ?? {};
  const key = Object.keys(first).find((k) => anyOf.every((s) => literal(s, k) !== undefined));
  if (key === undefined) return undefined;
  return { key, variants: new Map(anyOf.map((s) => [literal(s, key), TypeCompiler.Compile(s)])) };
}

/** A decimal number as written in a query: no hex, exponent, sign, spaces or "Infinity". */
const DECIMAL = /^-?\d+(\.\d+)?$/;

/**
 * Query and path values arrive as strings: turn those meant as numbers and
 * written as plain decimals into numbers (so "1.5" stays 1.5 and fails an
 * integer check), and leave everything else ("abc", "0x10", "1e1", a seq past
 * 2^53) a string for the check to refuse. A number given as an empty value
 * (`?after=&limit=`, as the contract writes its queries) is absent, so it takes
 * its default, as an empty `after` cursor already does.
 */
function numericStrings(schema: TSchema, data: unknown): unknown {
  const props = (schema as { properties?: Record<string, { type?: string }> }).properties;
  if (!props || typeof data !== 'object' || data === null) return data;
  const out: Record<string, unknown> = { ...(data as Record<string, unknown>) };
  for (const [k, p] of Object.entries(props)) {
    const v = out[k];
    if ((p.type !== 'integer' && p.type !== 'number') || typeof v !== 'string') continue;
    if (v === '') delete out[k];
    else if (DECIMAL.test(v)) {
      const n = Number(v);
      if (p.type === 'number' || Number.isSafeInteger(n)) out[k] = n;
    }
  }
  return out;
}

function sendError(reply: import('fastify').FastifyReply, e: ParleyError): void {
  const body: ErrorBody = { error: { code: e.code, message: e.message } };
  // A 401 must name the scheme to use (RFC 9110 §15.5.2); error="invalid_token" when a token was sent and refused
  // (RFC 6750 §3: expired, revoked, malformed), a bare challenge when none was.
  if (e.code === 'unauthorized') {
    const sent = /^Bearer +\S/i.test(reply.request.headers.authorization ?? '');
    void reply.header('WWW-Authenticate', sent ? 'Bearer realm="parley", error="invalid_token"' : 'Bearer realm="parley"');
  }
  if (e.retryAfterMs !== undefined) {
    body.error.retryAfterMs = e.retryAfterMs;
    void reply.header('Retry-After', String(Math.ceil(e.retryAfterMs / 1000)));
  }
  void reply.code(ERROR_STATUS[e.code]).send(body);
}

/** The caller's principal; 401 without a valid bearer token. */
export async function authenticate(core: Core, req: FastifyRequest): Promise<Principal> {
  if (req.principal) return req.principal;
  const h = req.headers.authorization;
  // The scheme is case-insensitive (RFC 9110 §11.1): "bearer" and "BEARER" are "Bearer".
  const m = h === undefined ? null : /^Bearer +(\S+) *$/i.exec(h);
  if (!m?.[1]) throw unauthorized('Send an access token as "Authorization: Bearer <token>".');
  req.principal = await core.auth.verify(m[1]);
  return req.principal;
}
