/**
 * The core services of one node, wired to the engine ports. Transports talk to
 * this and nothing below it.
 */
import type { Config } from '../config.js';
import type { Store } from './ports/store.js';
import type { Bus } from './ports/bus.js';
import type { Presence } from './ports/presence.js';
import type { Limiter } from './ports/limiter.js';
import type { Registry } from './ports/registry.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { IdGenerator } from './ids.js';
import { MembershipCache } from './membership.js';
import { Fanout } from './fanout.js';
import { LastSeqs } from './last-seq.js';
import { Hub } from './hub.js';
import { AuthService } from './auth.js';
import { ConversationService } from './conversations.js';
import { MessagingService } from './messaging.js';
import { SyncService } from './sync.js';
import { EphemeralService } from './ephemeral.js';
import { PresenceService } from './presence.js';
import { OnlineCounts } from './online-count.js';
import { RateLimits } from './limits.js';
import { DiscoveryService } from './discovery.js';
import { BlockService } from './blocks.js';
import { RetentionService } from './retention.js';
import { SearchService } from './search.js';
import { LoginThrottle, failureRule } from './login-throttle.js';
import { KeyService } from './keys.js';
import { EnvelopeCheck } from './envelopes.js';
import type { Blobs } from './ports/blobs.js';
import { AttachmentService } from './attachments.js';
import { TypePolicy } from '../protocol/media-types.js';
import { join } from 'node:path';
import type { NotifierEngines } from './ports/notifier.js';
import { PushService } from './push/service.js';

export interface Engines {
  store: Store;
  bus: Bus;
  presence: Presence;
  limiter: Limiter;
  registry: Registry;
  blobs: Blobs;
  notifier: NotifierEngines;
}

export class Core {
  readonly ids: IdGenerator;
  readonly membership: MembershipCache;
  readonly fanout: Fanout;
  readonly lastSeqs: LastSeqs;
  readonly hub: Hub;
  readonly auth: AuthService;
  readonly conversations: ConversationService;
  readonly messaging: MessagingService;
  readonly sync: SyncService;
  readonly ephemeral: EphemeralService;
  readonly presence: PresenceService;
  readonly onlineCounts: OnlineCounts;
  readonly limits: RateLimits;
  readonly discovery: DiscoveryService;
  readonly blocks: BlockService;
  readonly retention: RetentionService;
  readonly search: SearchService;
  readonly keys: KeyService;
  readonly attachments: AttachmentService;
  readonly push: PushService;

  constructor(
    readonly engines: Engines,
    readonly config: Config,
    readonly log: Logger,
    readonly metrics: Metrics,
  ) {
    const { store, bus } = engines;
    this.ids = new IdGenerator(config.nodeId);
    this.membership = new MembershipCache(store.conversations);
    this.lastSeqs = new LastSeqs(store);
    this.fanout = new Fanout(bus);
    this.limits = new RateLimits(engines.limiter, {
      user: { ratePerSec: config.rateUserPerSec, burst: config.rateUserBurst },
      connection: { ratePerSec: config.rateConnPerSec, burst: config.rateConnBurst },
      ...(config.rateSearchPerSec > 0 ? { search: { ratePerSec: config.rateSearchPerSec, burst: config.rateSearchBurst } } : {}),
      onLimited: (scope) => metrics.rateLimited.inc({ scope }),
      onDegraded: (err) => log.warn({ err }, 'shared rate limiter failed; limiting per node'),
      // Across the network (Redis), a node spends a local share of each user's bucket: an eighth
      // of the burst, at most 64, for up to 30 s. People send a message every few seconds, so a
      // share held for only a second served one send and the Redis round trip stayed on almost
      // every write. Holding it longer costs nothing in budget: a share is far below what the
      // bucket refills in that time (50 tokens against 200/s by default).
      ...(config.redisUrl ? { share: { tokens: Math.max(1, Math.min(64, Math.floor(config.rateUserBurst / 8))), ttlMs: 30_000 } } : {}),
    });
    this.blocks = new BlockService(store, this.fanout, this.limits, (a, b, blocked) => this.presence.blockChanged(a, b, blocked));
    this.hub = new Hub(bus, {
      conversationsOf: (userId) => store.conversations.idsForUser(userId),
      onMembershipChanged: (id) => this.membership.invalidate(id),
      onBlocksChanged: (userIds) => this.blocks.invalidate(userIds),
      onRevoked: (deviceId) => this.auth.forgetDevice(deviceId),
      onEventDelivered: (event) => {
        metrics.deliveryLatency.observe(Math.max(0, Date.now() - event.at) / 1000);
        this.lastSeqs.note(event.conversationId, event.seq);
      },
      onDelivered: (type, n) => metrics.framesOut.inc({ type }, n),
      onCatchUp: (peers) => log.warn({ peers }, 'bus recovered from an outage; local clients reconnect and sync'),
    });
    const loginThrottle = new LoginThrottle(engines.limiter, {
      perAccount: failureRule(config.loginFailures, 60_000),
      perAddress: failureRule(config.loginFailuresPerAddress, 1_000),
      onLimited: () => metrics.rateLimited.inc({ scope: 'login' }),
      onDegraded: (err) => log.warn({ err }, 'shared rate limiter failed; login budgets per node'),
    });
    this.auth = new AuthService(store, this.ids, this.fanout, config, loginThrottle);
    this.conversations = new ConversationService(store, this.ids, this.membership, this.fanout, this.blocks);
    const envelopes = new EnvelopeCheck(store, { maxBodyChars: config.maxBodyChars, maxEnvelopeChars: config.maxEncryptedBodyChars });
    this.attachments = new AttachmentService(
      store,
      engines.blobs,
      this.ids,
      this.limits,
      {
        maxBytes: config.maxAttachmentBytes,
        types: new TypePolicy(config.attachmentTypes),
        spoolDir: join(config.dataDir, 'uploads'),
        graceMs: config.attachmentGraceMs,
        sweepMs: config.attachmentSweepMs,
      },
      { onError: (err) => log.warn({ err }, 'attachment sweep failed') },
    );
    this.messaging = new MessagingService(
      store,
      this.ids,
      this.membership,
      this.blocks,
      this.fanout,
      this.limits,
      config.maxBodyChars,
      envelopes,
      {
        appended: (s) => metrics.storeAppend.observe(s),
        sent: (userId, conversationId) => this.ephemeral.stoppedBySending(userId, conversationId),
        created: (message) => this.push.messageCreated(message),
      },
      this.attachments,
    );
    this.sync = new SyncService(store, this.membership, (type, n) => metrics.framesOut.inc({ type }, n));
    this.ephemeral = new EphemeralService(store, this.membership, this.blocks, this.fanout, this.lastSeqs, config.typingTtlMs);
    this.presence = new PresenceService(
      engines.presence,
      bus,
      store,
      this.membership,
      this.blocks,
      this.fanout,
      (userId) => this.hub.localConversationsOf(userId),
      { ttlMs: config.presenceTtlMs, batchMs: config.presenceBatchMs, fanoutMaxMembers: config.presenceFanoutMaxMembers },
      (err) => log.warn({ err }, 'presence engine failed'),
    );
    this.onlineCounts = new OnlineCounts(this.membership, (ids) => this.presence.snapshot(ids));
    this.retention = new RetentionService(store, this.membership, this.fanout, { defaultDays: config.retentionDays, intervalMs: config.retentionSweepMs }, {
      onError: (err) => log.warn({ err }, 'retention sweep failed'),
      onCleared: (n) => metrics.retentionCleared.inc(n),
    });
    this.search = new SearchService(store, this.membership, this.limits);
    this.keys = new KeyService(store, this.membership);
    this.push = new PushService(
      engines.notifier,
      config,
      store,
      this.membership,
      (userId) => this.hub.connectedHere(userId),
      engines.presence, this.blocks, this.ids, this.limits, metrics.registry, log);
    this.discovery = new DiscoveryService(engines.registry, config.registryHeartbeatMs, (err) => log.warn({ err }, 'registry failed'));
  }

  async start(): Promise<void> {
    await this.hub.start();
  }

  /** Stops timers, then the engines; the store finishes in-flight appends first. */
  async close(): Promise<void> {
    await this.discovery.leave();
    await this.presence.flush().catch(() => undefined);
    this.presence.close();
    this.ephemeral.close();
    await this.retention.close();
    await this.attachments.close();
    await this.push.close();
    this.hub.close();
    const { store, bus, presence, limiter, registry, blobs } = this.engines;
    await Promise.allSettled([bus.close(), presence.close(), limiter.close(), registry.close(), blobs.close()]);
    await store.close();
  }
}
