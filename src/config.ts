/**
 * Every setting, its env var and its default. The README's configuration table
 * is generated from SETTINGS (`node dist/src/cli.js config --markdown`), so the two never drift.
 */
import { DEFAULT_ATTACHMENT_TYPES, TypePolicy } from './protocol/media-types.js';

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
  /** Longest body of an end-to-end encrypted conversation (R18): an envelope, in characters. */
  maxEncryptedBodyChars: number;
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
  rateSearchPerSec: number;
  rateSearchBurst: number;
  loginFailures: number;
  loginFailuresPerAddress: number;
  /** proxy-addr's trust list for X-Forwarded-For; empty trusts no proxy. */
  trustProxy: string;
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
  /** Cluster mode: append batches one node keeps in flight to PostgreSQL at once. */
  databaseAppendBatches: number;
  /** Prefix of every Redis key and channel, so clusters can share one Redis. */
  redisPrefix: string;
  /** The address other machines reach this node at, announced to discovery. */
  publicUrl: string;
  registryHeartbeatMs: number;
  /** Default retention of every conversation without its own policy, in days; 0 keeps history forever. */
  retentionDays: number;
  retentionSweepMs: number;
  /** Attachments (R14): the largest file, in bytes. */
  maxAttachmentBytes: number;
  /** Attachments: media types that may be attached (comma-separated; `type/*` allowed). */
  attachmentTypes: string;
  attachmentGraceMs: number;
  attachmentSweepMs: number;
  /** Local blob folder; `<dataDir>/media` when empty. */
  mediaDir: string;
  /** S3-compatible blob store (cluster); the local folder when empty. */
  s3Endpoint: string;
  s3Bucket: string;
  s3Region: string;
  s3AccessKeyId: string;
  s3SecretAccessKey: string;
  s3Prefix: string;
  /** Push notifications (R12); see docs/protocol.md "Push notifications (extension)". */
  pushCoalesceMs: number;
  pushFanoutMax: number;
  pushMaxAttempts: number;
  pushRetryBaseMs: number;
  pushQueueMax: number;
  pushConcurrency: number;
  pushTimeoutMs: number;
  pushBreakerFailures: number;
  pushBreakerMs: number;
  vapidPublicKey: string;
  vapidPrivateKey: string;
  vapidSubject: string;
  apnsKeyFile: string;
  apnsKeyId: string;
  apnsTeamId: string;
  apnsTopic: string;
  apnsUrl: string;
  fcmCredentialsFile: string;
  fcmUrl: string;
  pushWebhookUrl: string;
  pushWebhookSecret: string;
  /**
   * Not a setting (no env var or flag): lets Web Push endpoints be plain http and on loopback or private
   * addresses, which production refuses (a user-given URL the server posts to). For tests with a local push service.
   */
  pushAllowPrivateEndpoints?: boolean;
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
  { key: 'maxEncryptedBodyChars', env: 'PARLEY_MAX_ENCRYPTED_BODY', flag: '--max-encrypted-body', kind: 'int', def: 60000, doc: 'Longest body in an end-to-end encrypted conversation (the envelope: ciphertext plus the message key wrapped for each device), in characters; longer is refused with too_large. Keep it below `PARLEY_MAX_FRAME`.' },
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
  { key: 'rateSearchPerSec', env: 'PARLEY_RATE_SEARCH', flag: '--rate-search', kind: 'int', def: 5, doc: 'Searches per second per user, all devices together (0: no limit).' },
  { key: 'rateSearchBurst', env: 'PARLEY_RATE_SEARCH_BURST', flag: '--rate-search-burst', kind: 'int', def: 30, doc: 'Burst of the per-user search bucket.' },
  { key: 'loginFailures', env: 'PARLEY_LOGIN_FAILURES', flag: '--login-failures', kind: 'int', def: 10, doc: 'Failed logins to one account from one client address before more are refused with rate_limited; then one more per minute. Right passwords never count. 0 turns it off.' },
  { key: 'loginFailuresPerAddress', env: 'PARLEY_LOGIN_FAILURES_ADDRESS', flag: '--login-failures-address', kind: 'int', def: 100, doc: 'Failed logins from one client address, all accounts together, before more are refused; then one more per second. 0 turns it off.' },
  { key: 'trustProxy', env: 'PARLEY_TRUST_PROXY', flag: '--trust-proxy', kind: 'string', def: '', doc: 'Proxies trusted to name the client\'s address in `X-Forwarded-For` (login budgets, logs): addresses or CIDRs separated by commas, or `loopback`, `linklocal`, `uniquelocal`. None when empty; `parley cluster` sets `loopback` for its nginx.' },
  { key: 'argon2MemoryKiB', env: 'PARLEY_ARGON2_MEMORY_KIB', flag: '--argon2-memory-kib', kind: 'int', def: 19456, doc: 'argon2id memory cost (OWASP minimum: 19 MiB).' },
  { key: 'argon2TimeCost', env: 'PARLEY_ARGON2_TIME_COST', flag: '--argon2-time-cost', kind: 'int', def: 2, doc: 'argon2id iterations.' },
  { key: 'sqliteSynchronous', env: 'PARLEY_SQLITE_SYNCHRONOUS', flag: '--sqlite-synchronous', kind: 'string', def: 'normal', doc: '`normal` survives a process crash; `full` also survives power loss, at a cost per commit.' },
  { key: 'logLevel', env: 'PARLEY_LOG_LEVEL', flag: '--log-level', kind: 'string', def: 'info', doc: 'pino level: trace, debug, info, warn, error, silent.' },
  { key: 'redisUrl', env: 'PARLEY_REDIS_URL', flag: '--redis-url', kind: 'string', def: '', doc: 'Cluster mode: Redis for the bus, presence, rate limits and the node registry (e.g. `redis://127.0.0.1:6379`). In-process engines when empty.' },
  { key: 'databaseUrl', env: 'PARLEY_DATABASE_URL', flag: '--database-url', kind: 'string', def: '', doc: 'Cluster mode: PostgreSQL for the store (e.g. `postgres://parley@127.0.0.1:5432/parley`). SQLite in the data dir when empty.' },
  { key: 'databaseSchema', env: 'PARLEY_DATABASE_SCHEMA', flag: '--database-schema', kind: 'string', def: 'public', doc: 'PostgreSQL schema holding Parley\'s tables.' },
  { key: 'databaseAppendBatches', env: 'PARLEY_DATABASE_APPEND_BATCHES', flag: '--database-append-batches', kind: 'int', def: 1, doc: 'Cluster mode: message batches one node has in flight to PostgreSQL at once (1–9). With one, what arrives meanwhile joins the next batch, so batches grow with load and the database commits less often: on two cores that halved PostgreSQL\'s CPU per message at 6,000/s. Raise it for a database with many cores to spare.' },
  { key: 'redisPrefix', env: 'PARLEY_REDIS_PREFIX', flag: '--redis-prefix', kind: 'string', def: 'parley:', doc: 'Prefix of every Redis key and pub/sub channel, so several clusters can share one Redis.' },
  { key: 'publicUrl', env: 'PARLEY_PUBLIC_URL', flag: '--public-url', kind: 'string', def: '', doc: 'Base URL clients reach this node at, announced through `/v1/discovery`; `http://<host>:<port>` when empty.' },
  { key: 'registryHeartbeatMs', env: 'PARLEY_REGISTRY_HEARTBEAT_MS', flag: '--registry-heartbeat-ms', kind: 'int', def: 2000, doc: 'How often a node announces its load; it drops out of discovery after three missed beats.' },
  { key: 'retentionDays', env: 'PARLEY_RETENTION_DAYS', flag: '--retention-days', kind: 'int', def: 0, doc: 'Messages and other events older than this many days are deleted, in every conversation without a policy of its own (owners and admins set one with `PATCH /v1/conversations/:id`). 0 keeps history forever.' },
  { key: 'retentionSweepMs', env: 'PARLEY_RETENTION_SWEEP_MS', flag: '--retention-sweep-ms', kind: 'int', def: 600000, doc: 'How often each node deletes what retention policies let go (0: never).' },
  { key: 'maxAttachmentBytes', env: 'PARLEY_MAX_ATTACHMENT_BYTES', flag: '--max-attachment-bytes', kind: 'int', def: 25 * 1024 * 1024, doc: 'Largest attachment, in bytes; larger is refused with too_large (from Content-Length before reading, else as soon as it is passed).' },
  { key: 'attachmentTypes', env: 'PARLEY_ATTACHMENT_TYPES', flag: '--attachment-types', kind: 'string', def: DEFAULT_ATTACHMENT_TYPES, doc: 'Media types that may be attached, comma-separated; `image/*` allows a family, `*/*` anything. HTML, SVG and other types a browser could run are always served as downloads.' },
  { key: 'attachmentGraceMs', env: 'PARLEY_ATTACHMENT_GRACE_MS', flag: '--attachment-grace-ms', kind: 'int', def: 86_400_000, doc: 'An upload no message carries (never attached, or its messages deleted) is deleted after this long.' },
  { key: 'attachmentSweepMs', env: 'PARLEY_ATTACHMENT_SWEEP_MS', flag: '--attachment-sweep-ms', kind: 'int', def: 600_000, doc: 'How often each node deletes unreferenced uploads (0: never).' },
  { key: 'mediaDir', env: 'PARLEY_MEDIA_DIR', flag: '--media-dir', kind: 'string', def: '', doc: 'Folder of attachment files when no S3 store is set; `<data dir>/media` when empty.' },
  { key: 's3Endpoint', env: 'PARLEY_S3_ENDPOINT', flag: '--s3-endpoint', kind: 'string', def: '', doc: 'Cluster mode: an S3-compatible store for attachments (e.g. `https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:9000` for MinIO), addressed path-style. The local media folder when empty.' },
  { key: 's3Bucket', env: 'PARLEY_S3_BUCKET', flag: '--s3-bucket', kind: 'string', def: '', doc: 'Bucket for attachments (it must exist).' },
  { key: 's3Region', env: 'PARLEY_S3_REGION', flag: '--s3-region', kind: 'string', def: 'us-east-1', doc: 'Region the requests are signed for.' },
  { key: 's3AccessKeyId', env: 'PARLEY_S3_ACCESS_KEY_ID', flag: '--s3-access-key-id', kind: 'string', def: '', doc: 'Access key id for the S3 store.' },
  { key: 's3SecretAccessKey', env: 'PARLEY_S3_SECRET_ACCESS_KEY', flag: '--s3-secret-access-key', kind: 'string', def: '', doc: 'Secret access key for the S3 store.' },
  { key: 's3Prefix', env: 'PARLEY_S3_PREFIX', flag: '--s3-prefix', kind: 'string', def: '', doc: 'Put before every object key (e.g. `parley/`), so several deployments can share a bucket.' },
  { key: 'pushCoalesceMs', env: 'PARLEY_PUSH_COALESCE_MS', flag: '--push-coalesce-ms', kind: 'int', def: 2000, doc: 'Push notifications: messages to one conversation within this window make one notification per user (with a count). The first waits this long.' },
  { key: 'pushFanoutMax', env: 'PARLEY_PUSH_FANOUT_MAX', flag: '--push-fanout-max', kind: 'int', def: 10000, doc: 'Conversations with more members than this send no push notifications.' },
  { key: 'pushMaxAttempts', env: 'PARLEY_PUSH_MAX_ATTEMPTS', flag: '--push-max-attempts', kind: 'int', def: 5, doc: 'Attempts per push (and per webhook batch) before it counts as failed.' },
  { key: 'pushRetryBaseMs', env: 'PARLEY_PUSH_RETRY_BASE_MS', flag: '--push-retry-base-ms', kind: 'int', def: 1000, doc: 'First retry delay; it doubles per attempt (up to 5 minutes), with jitter, and is never shorter than the provider\'s Retry-After.' },
  { key: 'pushQueueMax', env: 'PARLEY_PUSH_QUEUE_MAX', flag: '--push-queue-max', kind: 'int', def: 10000, doc: 'Pushes a node holds (waiting, retrying or in flight); past it new ones are dropped and counted.' },
  { key: 'pushConcurrency', env: 'PARLEY_PUSH_CONCURRENCY', flag: '--push-concurrency', kind: 'int', def: 32, doc: 'Requests to push providers a node has in flight at once.' },
  { key: 'pushTimeoutMs', env: 'PARLEY_PUSH_TIMEOUT_MS', flag: '--push-timeout-ms', kind: 'int', def: 10000, doc: 'Longest wait for one push provider or webhook request.' },
  { key: 'pushBreakerFailures', env: 'PARLEY_PUSH_BREAKER_FAILURES', flag: '--push-breaker-failures', kind: 'int', def: 5, doc: 'Consecutive failures (5xx, timeouts, refused connections) that open a provider\'s circuit breaker.' },
  { key: 'pushBreakerMs', env: 'PARLEY_PUSH_BREAKER_MS', flag: '--push-breaker-ms', kind: 'int', def: 30000, doc: 'How long an open circuit breaker sends nothing to its provider before one probe.' },
  { key: 'vapidPublicKey', env: 'PARLEY_VAPID_PUBLIC_KEY', flag: '--vapid-public-key', kind: 'string', def: '', doc: 'Web Push VAPID public key (base64url). With the private key; when both are empty a pair is generated once and kept in the store, shared by every node.' },
  { key: 'vapidPrivateKey', env: 'PARLEY_VAPID_PRIVATE_KEY', flag: '--vapid-private-key', kind: 'string', def: '', doc: 'Web Push VAPID private key (base64url).' },
  { key: 'vapidSubject', env: 'PARLEY_VAPID_SUBJECT', flag: '--vapid-subject', kind: 'string', def: '', doc: 'Contact push services may use: a `mailto:` or `https:` URL. Set it in production (Apple refuses pushes without a real one); `PARLEY_PUBLIC_URL` when that is https, else `mailto:push@parley.invalid`.' },
  { key: 'apnsKeyFile', env: 'PARLEY_APNS_KEY_FILE', flag: '--apns-key-file', kind: 'string', def: '', doc: 'APNs token-auth key (the .p8 file). APNs is on when this, the key id and the team id are set.' },
  { key: 'apnsKeyId', env: 'PARLEY_APNS_KEY_ID', flag: '--apns-key-id', kind: 'string', def: '', doc: 'APNs key id (10 characters).' },
  { key: 'apnsTeamId', env: 'PARLEY_APNS_TEAM_ID', flag: '--apns-team-id', kind: 'string', def: '', doc: 'Apple developer team id.' },
  { key: 'apnsTopic', env: 'PARLEY_APNS_TOPIC', flag: '--apns-topic', kind: 'string', def: '', doc: 'The app\'s bundle id, for subscriptions that name none.' },
  { key: 'apnsUrl', env: 'PARLEY_APNS_URL', flag: '--apns-url', kind: 'string', def: 'https://api.push.apple.com', doc: 'APNs server (`https://api.sandbox.push.apple.com` for development builds).' },
  { key: 'fcmCredentialsFile', env: 'PARLEY_FCM_CREDENTIALS', flag: '--fcm-credentials', kind: 'string', def: '', doc: 'Firebase service-account JSON file (project_id, client_email, private_key, token_uri). FCM is on when set.' },
  { key: 'fcmUrl', env: 'PARLEY_FCM_URL', flag: '--fcm-url', kind: 'string', def: 'https://fcm.googleapis.com', doc: 'FCM HTTP v1 server.' },
  { key: 'pushWebhookUrl', env: 'PARLEY_PUSH_WEBHOOK_URL', flag: '--push-webhook-url', kind: 'string', def: '', doc: 'Fallback: notifications no push delivered (no subscription, or every push failed) are POSTed here in batches, signed; for e-mail digests and the like.' },
  { key: 'pushWebhookSecret', env: 'PARLEY_PUSH_WEBHOOK_SECRET', flag: '--push-webhook-secret', kind: 'string', def: '', doc: 'HMAC-SHA256 key of the webhook\'s `X-Parley-Signature`; required with the URL.' },
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
  // The pool holds 10 connections and one stays free for reads (engines/postgres/store.ts).
  if (cfg.databaseAppendBatches < 1 || cfg.databaseAppendBatches > 9) {
    throw new Error('PARLEY_DATABASE_APPEND_BATCHES must be between 1 and 9');
  }
  new TypePolicy(cfg.attachmentTypes);
  if (cfg.s3Endpoint && (!cfg.s3Bucket || !cfg.s3AccessKeyId || !cfg.s3SecretAccessKey)) {
    throw new Error('PARLEY_S3_ENDPOINT needs PARLEY_S3_BUCKET, PARLEY_S3_ACCESS_KEY_ID and PARLEY_S3_SECRET_ACCESS_KEY');
  }
  return cfg;
}

export function settingsMarkdown(): string {
  const rows = SETTINGS.map((s) => `| \`${s.env}\` | \`${s.flag}\` | \`${String(s.def) || '(empty)'}\` | ${s.doc} |`);
  return ['| env var | flag | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
