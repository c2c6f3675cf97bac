/**
 * Every setting, its env var and its default. The README's configuration table
 * is generated from SETTINGS (`node dist/src/cli.js config --markdown`), so the two never drift.
 */
export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /** HS256 secret for access tokens; generated into dataDir when empty. */
  jwtSecret: string;
  nodeId: string;
  accessTokenTtlSec: number;
  refreshTokenTtlSec: number;
  maxBodyChars: number;
  maxFrameBytes: number;
  heartbeatMs: number;
  idleTimeoutMs: number;
  authTimeoutMs: number;
  typingTtlMs: number;
  presenceTtlMs: number;
  presenceBatchMs: number;
  /** Conversations above this many members get no presence fan-out (shown as a count). */
  presenceFanoutMaxMembers: number;
  sendQueueBytes: number;
  /** Connections the kernel queues before they are accepted (capped by net.core.somaxconn). */
  listenBacklog: number;
  rateUserPerSec: number;
  rateUserBurst: number;
  rateConnPerSec: number;
  rateConnBurst: number;
  argon2MemoryKiB: number;
  argon2TimeCost: number;
  sqliteSynchronous: 'normal' | 'full';
  logLevel: string;
  webDir: string;
  /** Cluster mode: Redis carries the bus, presence, rate limits and the node registry. */
  redisUrl: string;
  /** Cluster mode: PostgreSQL holds the store instead of SQLite. */
  databaseUrl: string;
  databaseSchema: string;
  /** Prefix of every Redis key and channel, so clusters can share one Redis. */
  redisPrefix: string;
  /** The address other machines reach this node at, announced to discovery. */
  publicUrl: string;
  registryHeartbeatMs: number;
  /** Default retention of every conversation without its own policy, in days; 0 keeps history forever. */
  retentionDays: number;
  retentionSweepMs: number;
}

interface Setting {
  key: keyof Config;
  env: string;
  flag: string;
  kind: 'string' | 'int';
  def: string | number;
  doc: string;
}

export const SETTINGS: readonly Setting[] = [
  { key: 'host', env: 'PARLEY_HOST', flag: '--host', kind: 'string', def: '127.0.0.1', doc: 'Address to listen on.' },
  { key: 'port', env: 'PARLEY_PORT', flag: '--port', kind: 'int', def: 8080, doc: 'HTTP and WebSocket port (0 picks a free one).' },
  { key: 'listenBacklog', env: 'PARLEY_LISTEN_BACKLOG', flag: '--listen-backlog', kind: 'int', def: 4096, doc: 'Connections the kernel holds before the server accepts them (capped by `net.core.somaxconn`). A reconnect storm past it loses SYNs, and clients wait out TCP retransmits (1, 3, 7, 15, 31 s).' },
  { key: 'dataDir', env: 'PARLEY_DATA_DIR', flag: '--data-dir', kind: 'string', def: './data', doc: 'SQLite database, JWT key and media live here.' },
  { key: 'jwtSecret', env: 'PARLEY_JWT_SECRET', flag: '--jwt-secret', kind: 'string', def: '', doc: 'Access-token signing secret; generated into the data dir on first start when empty. Cluster nodes must all set the same one.' },
  { key: 'nodeId', env: 'PARLEY_NODE_ID', flag: '--node-id', kind: 'string', def: '', doc: 'Node id in message ids and logs; random when empty.' },
  { key: 'accessTokenTtlSec', env: 'PARLEY_ACCESS_TOKEN_TTL', flag: '--access-token-ttl', kind: 'int', def: 900, doc: 'Access token lifetime, seconds.' },
  { key: 'refreshTokenTtlSec', env: 'PARLEY_REFRESH_TOKEN_TTL', flag: '--refresh-token-ttl', kind: 'int', def: 30 * 24 * 3600, doc: 'Refresh token lifetime, seconds.' },
  { key: 'maxBodyChars', env: 'PARLEY_MAX_BODY', flag: '--max-body', kind: 'int', def: 4000, doc: 'Longest message body, in characters; longer is refused with too_large.' },
  { key: 'maxFrameBytes', env: 'PARLEY_MAX_FRAME', flag: '--max-frame', kind: 'int', def: 65536, doc: 'Largest WebSocket frame; larger closes the socket with 4008.' },
  { key: 'heartbeatMs', env: 'PARLEY_HEARTBEAT_MS', flag: '--heartbeat-ms', kind: 'int', def: 25000, doc: 'Heartbeat interval told to clients in `ready`.' },
  { key: 'idleTimeoutMs', env: 'PARLEY_IDLE_TIMEOUT_MS', flag: '--idle-timeout-ms', kind: 'int', def: 60000, doc: 'A socket silent this long is closed.' },
  { key: 'authTimeoutMs', env: 'PARLEY_AUTH_TIMEOUT_MS', flag: '--auth-timeout-ms', kind: 'int', def: 10000, doc: 'Time allowed for the auth frame.' },
  { key: 'typingTtlMs', env: 'PARLEY_TYPING_TTL_MS', flag: '--typing-ttl-ms', kind: 'int', def: 6000, doc: 'Typing lapses after this long without a repeat.' },
  { key: 'presenceTtlMs', env: 'PARLEY_PRESENCE_TTL_MS', flag: '--presence-ttl-ms', kind: 'int', def: 60000, doc: 'A connection without frames this long stops counting as online.' },
  { key: 'presenceBatchMs', env: 'PARLEY_PRESENCE_BATCH_MS', flag: '--presence-batch-ms', kind: 'int', def: 250, doc: 'Presence changes are coalesced over this window.' },
  { key: 'presenceFanoutMaxMembers', env: 'PARLEY_PRESENCE_FANOUT_MAX', flag: '--presence-fanout-max', kind: 'int', def: 1000, doc: 'Conversations larger than this get no presence pushes.' },
  { key: 'sendQueueBytes', env: 'PARLEY_SEND_QUEUE_BYTES', flag: '--send-queue-bytes', kind: 'int', def: 1024 * 1024, doc: 'Bytes a socket may have unsent before it is closed with 4009.' },
  { key: 'rateUserPerSec', env: 'PARLEY_RATE_USER', flag: '--rate-user', kind: 'int', def: 200, doc: 'Writes (send, edit, delete, react) per second per user, all devices together.' },
  { key: 'rateUserBurst', env: 'PARLEY_RATE_USER_BURST', flag: '--rate-user-burst', kind: 'int', def: 400, doc: 'Burst of the per-user write bucket.' },
  { key: 'rateConnPerSec', env: 'PARLEY_RATE_CONN', flag: '--rate-conn', kind: 'int', def: 400, doc: 'Frames per second per connection.' },
  { key: 'rateConnBurst', env: 'PARLEY_RATE_CONN_BURST', flag: '--rate-conn-burst', kind: 'int', def: 800, doc: 'Burst of the per-connection frame bucket.' },
  { key: 'argon2MemoryKiB', env: 'PARLEY_ARGON2_MEMORY_KIB', flag: '--argon2-memory-kib', kind: 'int', def: 19456, doc: 'argon2id memory cost (OWASP minimum: 19 MiB).' },
  { key: 'argon2TimeCost', env: 'PARLEY_ARGON2_TIME_COST', flag: '--argon2-time-cost', kind: 'int', def: 2, doc: 'argon2id iterations.' },
  { key: 'sqliteSynchronous', env: 'PARLEY_SQLITE_SYNCHRONOUS', flag: '--sqlite-synchronous', kind: 'string', def: 'normal', doc: '`normal` survives a process crash; `full` also survives power loss, at a cost per commit.' },
  { key: 'logLevel', env: 'PARLEY_LOG_LEVEL', flag: '--log-level', kind: 'string', def: 'info', doc: 'pino level: trace, debug, info, warn, error, silent.' },
  { key: 'redisUrl', env: 'PARLEY_REDIS_URL', flag: '--redis-url', kind: 'string', def: '', doc: 'Cluster mode: Redis for the bus, presence, rate limits and the node registry (e.g. `redis://127.0.0.1:6379`). In-process engines when empty.' },
  { key: 'databaseUrl', env: 'PARLEY_DATABASE_URL', flag: '--database-url', kind: 'string', def: '', doc: 'Cluster mode: PostgreSQL for the store (e.g. `postgres://parley@127.0.0.1:5432/parley`). SQLite in the data dir when empty.' },
  { key: 'databaseSchema', env: 'PARLEY_DATABASE_SCHEMA', flag: '--database-schema', kind: 'string', def: 'public', doc: 'PostgreSQL schema holding Parley\'s tables.' },
  { key: 'redisPrefix', env: 'PARLEY_REDIS_PREFIX', flag: '--redis-prefix', kind: 'string', def: 'parley:', doc: 'Prefix of every Redis key and pub/sub channel, so several clusters can share one Redis.' },
  { key: 'publicUrl', env: 'PARLEY_PUBLIC_URL', flag: '--public-url', kind: 'string', def: '', doc: 'Base URL clients reach this node at, announced through `/v1/discovery`; `http://<host>:<port>` when empty.' },
  { key: 'registryHeartbeatMs', env: 'PARLEY_REGISTRY_HEARTBEAT_MS', flag: '--registry-heartbeat-ms', kind: 'int', def: 2000, doc: 'How often a node announces its load; it drops out of discovery after three missed beats.' },
  { key: 'retentionDays', env: 'PARLEY_RETENTION_DAYS', flag: '--retention-days', kind: 'int', def: 0, doc: 'Messages and other events older than this many days are deleted, in every conversation without a policy of its own (owners and admins set one with `PATCH /v1/conversations/:id`). 0 keeps history forever.' },
  { key: 'retentionSweepMs', env: 'PARLEY_RETENTION_SWEEP_MS', flag: '--retention-sweep-ms', kind: 'int', def: 600000, doc: 'How often each node deletes what retention policies let go (0: never).' },
  { key: 'webDir', env: 'PARLEY_WEB_DIR', flag: '--web-dir', kind: 'string', def: '', doc: 'Folder of the built web app served at /; the bundled one when empty.' },
];

export function defaultConfig(): Config {
  const c: Record<string, string | number> = {};
  for (const s of SETTINGS) c[s.key] = s.def;
  return c as unknown as Config;
}

/** Defaults, then env vars, then flags (`--port 9000` or `--port=9000`). Throws on a bad value. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, argv: readonly string[] = []): Config {
  const c = defaultConfig() as unknown as Record<string, string | number>;
  const put = (s: Setting, raw: string, from: string): void => {
    if (s.kind === 'int') {
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${from} must be a non-negative integer, got "${raw}"`);
      c[s.key] = n;
    } else c[s.key] = raw;
  };
  for (const s of SETTINGS) {
    const v = env[s.env];
    if (v !== undefined && v !== '') put(s, v, s.env);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [name, inline] = arg.split('=', 2) as [string, string | undefined];
    const s = SETTINGS.find((x) => x.flag === name);
    if (!s) throw new Error(`unknown option ${name}`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`${name} needs a value`);
    put(s, value, name);
  }
  const cfg = c as unknown as Config;
  if (cfg.sqliteSynchronous !== 'normal' && cfg.sqliteSynchronous !== 'full') {
    throw new Error('PARLEY_SQLITE_SYNCHRONOUS must be normal or full');
  }
  if (cfg.databaseSchema && !/^[a-z_][a-z0-9_]*$/.test(cfg.databaseSchema)) {
    throw new Error('PARLEY_DATABASE_SCHEMA must be a lower-case SQL identifier');
  }
  return cfg;
}

export function settingsMarkdown(): string {
  const rows = SETTINGS.map((s) => `| \`${s.env}\` | \`${s.flag}\` | \`${String(s.def) || '(empty)'}\` | ${s.doc} |`);
  return ['| env var | flag | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
