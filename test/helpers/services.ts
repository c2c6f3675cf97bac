/**
 * Tests that need the machine's Redis or PostgreSQL call these first. Outside
 * CI a missing server skips the test with the reason printed; with CI=true it
 * fails loudly, because CI machines always have both running.
 */
import { createConnection } from 'node:net';

export const REDIS_URL = process.env.PARLEY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const POSTGRES_URL = process.env.PARLEY_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function reachable(url: string, defaultPort: number): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: u.hostname || '127.0.0.1', port: Number(u.port || defaultPort) });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Undefined when the server answers; otherwise the skip reason. Throws under
 * CI=true, so a missing server can never turn into a green run.
 */
async function check(name: string, url: string, port: number): Promise<string | undefined> {
  if (await reachable(url, port)) return undefined;
  const reason = `${name} is not reachable at ${url}`;
  if (process.env.CI === 'true') throw new Error(`${reason}, and CI=true requires it`);
  console.log(`# skipping: ${reason}`);
  return reason;
}

export const redisMissing = (): Promise<string | undefined> => check('Redis', REDIS_URL, 6379);
export const postgresMissing = (): Promise<string | undefined> => check('PostgreSQL', POSTGRES_URL, 5432);

/** The cluster tests' balancer: Debian's nginx, as `parley cluster` finds it. */
export async function nginxMissing(): Promise<string | undefined> {
  const { findNginx } = await import('../../src/cluster/nginx.js');
  if (findNginx()) return undefined;
  const reason = 'nginx is not installed (apt-get install nginx-light)';
  if (process.env.CI === 'true') throw new Error(`${reason}, and CI=true requires it`);
  console.log(`# skipping: ${reason}`);
  return reason;
}
