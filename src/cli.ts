#!/usr/bin/env node
/**
 * `parley serve [flags]` runs a node; `parley cluster` runs several behind nginx;
 * `parley migrate` prepares a PostgreSQL schema; `parley config --markdown`
 * prints the settings table; `parley bench` measures (bench-command.ts).
 */
import { parseArgs } from 'node:util';
import { loadConfig, settingsMarkdown } from './config.js';
import { startServer } from './server.js';
import { startCluster } from './cluster/launcher.js';
import { migratePostgres } from './engines/postgres/store.js';
import { runBench } from './bench-command.js';

/** A shutdown that takes longer than this is cut short, so an orchestrator never waits forever. */
const SHUTDOWN_LIMIT_MS = 10_000;

async function serve(argv: string[]): Promise<void> {
  const server = await startServer(loadConfig(process.env, argv));
  const stop = (signal: string): void => {
    server.log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      server.log.error('shutdown took too long; exiting');
      process.exit(1);
    }, SHUTDOWN_LIMIT_MS);
    timer.unref();
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        server.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  console.error(`Parley listening on ${server.url} (data in ${server.config.dataDir})`);
}

async function cluster(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      nodes: { type: 'string', default: '3' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: process.env.PARLEY_PORT ?? '8080' },
      'data-dir': { type: 'string', default: './data/cluster' },
      'redis-url': { type: 'string', default: process.env.PARLEY_REDIS_URL || 'redis://127.0.0.1:6379' },
      'database-url': { type: 'string', default: process.env.PARLEY_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres' },
    },
  });
  const nodes = Number(values.nodes);
  const port = Number(values.port);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 16) throw new Error('--nodes must be 1 to 16');
  if (!Number.isInteger(port) || port < 0 || port > 65535 - nodes) throw new Error('--port must be a free port with the next --nodes ports free too');
  console.error(`starting ${nodes} nodes behind nginx (Redis ${values['redis-url']}, PostgreSQL ${values['database-url']})…`);
  const c = await startCluster({
    nodes,
    host: values.host,
    port,
    dataDir: values['data-dir'],
    redisUrl: values['redis-url'],
    databaseUrl: values['database-url'],
  });
  for (const n of c.nodes) console.error(`  ${n.id}  pid ${n.pid()}  ${n.url}   (log: ${values['data-dir']}/logs/${n.id}.log)`);
  console.error(`  nginx   pid ${c.nginxPid}  ${c.url}   (balancer; config: ${values['data-dir']}/nginx/nginx.conf)`);
  console.error(`Parley cluster listening on ${c.url} — Ctrl-C stops every process`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    console.error('stopping: nodes drain (close 4010), then nginx');
    c.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`parley cluster: ${String(err)}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/** Applies PostgreSQL migrations without starting a node (nodes also apply them at start). */
async function migrate(argv: string[]): Promise<void> {
  const config = loadConfig(process.env, argv);
  if (!config.databaseUrl) throw new Error('parley migrate needs PARLEY_DATABASE_URL (or --database-url); SQLite migrates itself at start');
  const applied = await migratePostgres(config.databaseUrl, config.databaseSchema);
  console.error(applied.length ? `applied migrations ${applied.join(', ')} to schema ${config.databaseSchema}` : `schema ${config.databaseSchema} is up to date`);
}

function usage(): never {
  console.error(
    [
      'usage: parley serve [--port N] [--host H] [--data-dir D] ...   (see README for every option)',
      '       parley cluster [--nodes 3] [--port 8080] [--redis-url U] [--database-url U] [--data-dir D]',
      '       parley migrate --database-url U [--database-schema S]',
      '       parley config --markdown',
      '       parley bench [--quick] [--workloads idle,direct,storm,sync,group] ...   (npm run bench; --help lists every option)',
      '       parley bench cluster [--quick] ...                                     (npm run bench:cluster)',
    ].join('\n'),
  );
  process.exit(2);
}

const fail = (err: unknown): void => {
  console.error(`parley: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
};

const [cmd = 'serve', ...rest] = process.argv.slice(2);
if (cmd === 'serve') serve(rest).catch(fail);
else if (cmd === 'cluster') cluster(rest).catch(fail);
else if (cmd === 'migrate') migrate(rest).catch(fail);
else if (cmd === 'bench') runBench(rest);
else if (cmd === 'config') {
  console.log(settingsMarkdown());
} else if (cmd === '--help' || cmd === '-h' || cmd === 'help') usage();
else usage();
