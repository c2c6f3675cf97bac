#!/usr/bin/env node
/** `parley serve [flags]` runs a node; `parley config --markdown` prints the settings table. */
import { loadConfig, settingsMarkdown } from './config.js';
import { startServer } from './server.js';

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

function usage(): never {
  console.error('usage: parley serve [--port N] [--host H] [--data-dir D] ...   (see README for every option)\n       parley config --markdown');
  process.exit(2);
}

const [cmd = 'serve', ...rest] = process.argv.slice(2);
if (cmd === 'serve') {
  serve(rest).catch((err: unknown) => {
    console.error(`parley: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
} else if (cmd === 'config') {
  console.log(settingsMarkdown());
} else if (cmd === '--help' || cmd === '-h' || cmd === 'help') usage();
else usage();
