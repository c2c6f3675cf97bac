/**
 * Runs a Parley server in its own process for tests that measure the server
 * alone (memory). Config comes as JSON in PARLEY_TEST_CONFIG; the parent gets
 * `{url, wsUrl}` over IPC and sends 'close' for a graceful stop.
 */
import { startServer } from '../../src/server.js';
import type { Config } from '../../src/config.js';

const config = JSON.parse(process.env.PARLEY_TEST_CONFIG ?? '{}') as Partial<Config>;
const srv = await startServer(config);
let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void srv.close().finally(() => process.exit(0));
};
process.on('message', (m) => {
  if (m === 'close') stop();
});
process.on('disconnect', stop);
process.send?.({ url: srv.url, wsUrl: srv.wsUrl });
