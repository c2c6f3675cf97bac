/**
 * Composition root: configuration → engines → core → transports. The one place
 * that knows which engine sits behind each port.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { defaultConfig, type Config } from './config.js';
import { Core } from './core/core.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { openEngines } from './engines/open.js';
import { FrameHandler } from './transports/frame-handler.js';
import { WsTransport } from './transports/ws/server.js';
import { Mailboxes } from './transports/poll/mailboxes.js';
import { buildHttpApp } from './transports/http/app.js';

export interface ParleyServer {
  readonly config: Config;
  readonly url: string;
  readonly wsUrl: string;
  readonly port: number;
  readonly log: Logger;
  /** The node's services, for programs that embed the server (and tests that drive a sweep). */
  readonly core: Core;
  /** Graceful: refuse new work, close sockets with 4010, finish in-flight appends, release engines. */
  close(): Promise<void>;
}

/** Time sockets get to go after the 4010 close before they are cut. */
const DRAIN_GRACE_MS = 3000;

function jwtSecret(config: Config): string {
  if (config.jwtSecret) return config.jwtSecret;
  // A secret generated per node would make a token from one node fail on the next.
  if (config.redisUrl) throw new Error('cluster nodes must share one PARLEY_JWT_SECRET');
  const file = join(config.dataDir, 'jwt-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, secret + '\n', { mode: 0o600 });
  return secret;
}

export async function startServer(overrides: Partial<Config> = {}): Promise<ParleyServer> {
  const config: Config = { ...defaultConfig(), ...overrides };
  if (!config.nodeId) config.nodeId = `n${randomBytes(3).toString('hex')}`;
  mkdirSync(config.dataDir, { recursive: true });
  config.jwtSecret = jwtSecret(config);
  const log = createLogger(config.logLevel, config.nodeId);

  // Read only when /metrics is scraped, after the transports below exist.
  const metrics: Metrics = new Metrics((): number => ws.connectionCount + mailboxes.size);
  const core: Core = new Core(await openEngines(config, log), config, log, metrics);
  await core.start();

  const frames = new FrameHandler(core);
  const ws: WsTransport = new WsTransport(core, frames);
  const mailboxes: Mailboxes = new Mailboxes(core);
  let draining = false;
  const app = await buildHttpApp({
    core,
    frames,
    mailboxes,
    readiness: { draining: () => draining },
  });
  ws.attachTo(app.server);
  await app.listen({ host: config.host, port: config.port, backlog: config.listenBacklog });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = config.publicUrl ? config.publicUrl.replace(/\/+$/, '') : `http://${host}:${port}`;
  const wsUrl = `${url.replace(/^http/, 'ws')}/v1/ws`;
  await core.discovery.start({ nodeId: config.nodeId, url, wsUrl, connections: () => ws.connectionCount + mailboxes.size });
  log.info({ port, host: config.host, dataDir: config.dataDir, nodeId: config.nodeId }, 'parley listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      draining = true;
      log.info('draining');
      await core.discovery.leave();
      await ws.drain(DRAIN_GRACE_MS);
      mailboxes.closeAll();
      await app.close();
      ws.close();
      await core.close();
      log.info('stopped');
    })());

  return { config, url: `http://${host}:${port}`, wsUrl: `ws://${host}:${port}/v1/ws`, port, log, core, close };
}
