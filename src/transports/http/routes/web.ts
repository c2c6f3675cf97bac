import type { FastifyPluginAsync } from 'fastify';
import fastifyStatic from '@fastify/static';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built web app (web/dist), with index.html for client-side routes. Absent build → a plain note at `/`. */
export const webRoutes: FastifyPluginAsync<{ webDir: string }> = async (app, { webDir }) => {
  const here = dirname(fileURLToPath(import.meta.url));
  // Works from src/ under tsx and from dist/src/ once compiled.
  const candidates = webDir ? [resolve(webDir)] : [join(here, '../../../../web/dist'), join(here, '../../../../../web/dist')];
  const root = candidates.find((d) => existsSync(join(d, 'index.html')));
  if (!root) {
    app.get('/', async (_req, reply) => reply.type('text/plain').send('Parley server is running. The web app is not built (npm run build:web).\n'));
    return;
  }
  await app.register(fastifyStatic, { root, wildcard: false, index: 'index.html', cacheControl: true, maxAge: '1h' });
  // Client-side routes get the app only when a browser asks for a page; API clients get the protocol's 404.
  app.get('/*', async (req, reply) => {
    if (req.url.startsWith('/v1/') || !(req.headers.accept ?? '').includes('text/html')) {
      return reply.code(404).send({ error: { code: 'not_found', message: `No route for ${req.method} ${req.url.split('?')[0]}.` } });
    }
    return reply.sendFile('index.html', { maxAge: 0 });
  });
};
