/**
 * Real SDK clients (src/client) for the recovery workload: signed in through
 * nginx, each in a direct conversation with its partner, reconnecting with the
 * SDK's own jittered backoff and resyncing by themselves after their node dies.
 * Times are taken on the monotonic clock every process of the machine shares,
 * so the runner can subtract the moment it sent the kill.
 */
import { createNodeClient, type ParleyClient } from '../../src/client/node.js';
import { nowUs } from '../gen/wire.js';
import { pool } from '../gen/parley-http.js';
import { serve } from './ipc.js';
import type { SdkCommand } from './sdk-commands.js';

interface Tracked {
  client: ParleyClient;
  userId: string;
  conversationId: string;
  /** Set after `arm`: when the socket was lost, and when the next sync after it finished. */
  lostUs: number;
  syncedUs: number;
  synced: Promise<void>;
}

const clients: Tracked[] = [];
let armed = false;
const PASSWORD = 'bench-recovery-password';

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

async function setup(url: string, count: number, tag: string, concurrency: number, backoffMinMs: number): Promise<{ ms: number }> {
  const t0 = nowUs();
  await pool(
    Array.from({ length: count }, (_, i) => i),
    concurrency,
    async (i) => {
      const client = createNodeClient({ url, backoffMinMs, deviceName: 'bench' });
      let resolveSynced: () => void = () => undefined;
      const t: Tracked = { client, userId: '', conversationId: '', lostUs: 0, syncedUs: 0, synced: new Promise<void>((r) => (resolveSynced = r)) };
      client.on('state', (s) => {
        if (armed && s === 'reconnecting' && t.lostUs === 0) t.lostUs = nowUs();
      });
      client.on('synced', ({ reconnect }) => {
        if (!armed) resolveSynced();
        else if (reconnect && t.lostUs > 0 && t.syncedUs === 0) t.syncedUs = nowUs();
      });
      const name = `${tag}_${i}`;
      await client.register(name, PASSWORD);
      t.userId = (await client.login(name, PASSWORD)).id;
      clients[i] = t;
    },
  );
  await Promise.all(clients.map((t) => t.synced));
  // Pairs (2k, 2k+1) share a direct conversation, created by the even one.
  await pool(
    clients.filter((_, i) => i % 2 === 0),
    concurrency,
    async (a) => {
      const i = clients.indexOf(a);
      const b = clients[i + 1];
      if (!b) return;
      const c = await a.client.startDirect(b.userId);
      a.conversationId = b.conversationId = c.conversation.id;
    },
  );
  // Each partner learns of the conversation through its socket; bounded wait until all have.
  const deadline = Date.now() + 30_000;
  while (clients.some((t) => t.conversationId && !t.client.conversation(t.conversationId)) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  return { ms: (nowUs() - t0) / 1000 };
}

function sendAll(tag: string): { queued: number } {
  let queued = 0;
  clients.forEach((t, i) => {
    if (!t.conversationId) return;
    // Not awaited: a client whose node just died queues in its outbox and sends after reconnecting.
    void t.client.send(t.conversationId, `${tag}-${i}`).catch(() => undefined);
    queued++;
  });
  return { queued };
}

/** Whether client t holds both messages of the round `tag` (its own and its partner's). */
function complete(t: Tracked, i: number, tag: string): boolean {
  if (!t.conversationId) return true;
  const bodies = new Set(t.client.messages(t.conversationId).map((m) => m.body));
  return bodies.has(`${tag}-${i}`) && bodies.has(`${tag}-${i % 2 === 0 ? i + 1 : i - 1}`);
}

async function wait(tag: string, timeoutMs: number) {
  const cpu0 = cpuUs();
  const t0 = nowUs();
  const deadline = Date.now() + timeoutMs;
  let allMessagesUs = 0;
  for (;;) {
    const dropped = clients.filter((t) => t.lostUs > 0);
    const resynced = dropped.filter((t) => t.syncedUs > 0).length;
    const missing = clients.filter((t, i) => !complete(t, i, tag)).length;
    if (missing === 0 && allMessagesUs === 0) allMessagesUs = nowUs();
    if ((dropped.length > 0 && resynced === dropped.length && missing === 0) || Date.now() > deadline) {
      return {
        clients: clients.length,
        dropped: dropped.length,
        resynced,
        lostUs: dropped.map((t) => t.lostUs),
        syncedUs: dropped.filter((t) => t.syncedUs > 0).map((t) => t.syncedUs),
        missing,
        allMessagesUs,
        online: clients.filter((t) => t.client.state === 'online').length,
        cpuPct: Math.round(((cpuUs() - cpu0) / Math.max(1, nowUs() - t0)) * 1000) / 10,
      };
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

serve<SdkCommand>(async (c) => {
  switch (c.cmd) {
    case 'setup':
      return setup(c.url, c.count, c.tag, c.concurrency, c.backoffMinMs);
    case 'arm':
      armed = true;
      for (const t of clients) t.lostUs = t.syncedUs = 0;
      return {};
    case 'sendAll':
      return sendAll(c.tag);
    case 'wait':
      return wait(c.tag, c.timeoutMs);
    case 'stop':
      for (const t of clients) t.client.stop();
      return {};
  }
});
