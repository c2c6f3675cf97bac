/**
 * This node's side of service discovery: it heartbeats its address and load
 * into the Registry, and answers "which node should a client use" with the
 * least-loaded healthy one. A registry that cannot answer (Redis down) must not
 * strand clients, so discovery then falls back to this node itself.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { NodeInfo, Registry } from './ports/registry.js';

export interface SelfInfo {
  nodeId: string;
  url: string;
  wsUrl: string;
  connections: () => number;
}

const LAG_RESOLUTION_MS = 20;
/** Missed beats after which a node drops out of the answer. */
const MISSED_BEATS = 3;

export class DiscoveryService {
  private timer: NodeJS.Timeout | undefined;
  private self: SelfInfo | undefined;
  private readonly lag: IntervalHistogram = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });

  constructor(
    private readonly registry: Registry,
    private readonly heartbeatMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Starts announcing this node; the first beat is awaited so discovery lists it at once. */
  async start(self: SelfInfo): Promise<void> {
    this.self = self;
    this.lag.enable();
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.heartbeatMs).unref();
  }

  private snapshot(): NodeInfo | undefined {
    const self = this.self;
    if (!self) return undefined;
    // Mean delay over the last beat, in ms: a busy node shows it before it is saturated. The
    // histogram records whole timer periods, so an idle loop reads as the resolution itself.
    const mean = Number.isFinite(this.lag.mean) ? this.lag.mean / 1e6 : LAG_RESOLUTION_MS;
    const lagMs = Math.round(Math.max(0, mean - LAG_RESOLUTION_MS) * 10) / 10;
    return { nodeId: self.nodeId, url: self.url, wsUrl: self.wsUrl, connections: self.connections(), eventLoopLagMs: lagMs, at: Date.now() };
  }

  private async beat(): Promise<void> {
    const info = this.snapshot();
    this.lag.reset();
    if (!info) return;
    try {
      await this.registry.heartbeat(info, this.heartbeatMs * MISSED_BEATS);
    } catch (err) {
      this.onError(err);
    }
  }

  /** The least-loaded healthy node, and how many are healthy. */
  async pick(): Promise<{ node: NodeInfo; healthy: number }> {
    try {
      const nodes = await this.registry.healthy(Date.now());
      const best = nodes[0];
      if (best) return { node: best, healthy: nodes.length };
    } catch (err) {
      this.onError(err);
    }
    const me = this.snapshot();
    if (!me) throw new Error('discovery asked before the node started');
    return { node: me, healthy: 1 };
  }

  /** Drain: leave the answer at once, so no new client is sent here. */
  async leave(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.lag.disable();
    if (this.self) await this.registry.leave(this.self.nodeId).catch((err: unknown) => this.onError(err));
    this.self = undefined;
  }
}
