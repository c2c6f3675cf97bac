/**
 * Registry port: the nodes of a cluster announce where they listen and how
 * loaded they are; discovery picks the least-loaded healthy one.
 *
 * Contract:
 * - `heartbeat` records (or refreshes) a node's entry; an entry not refreshed
 *   within `ttlMs` stops being listed by `healthy` (and may be deleted).
 * - `leave` removes a node at once (drain, shutdown).
 * - `healthy` lists the live entries, least loaded first: fewest connections,
 *   then lowest event-loop lag, then node id, so every node answers alike.
 */
import type { Millis } from '../../protocol/model.js';

export interface NodeInfo {
  nodeId: string;
  /** Where clients reach this node: `http://host:port` and `ws://host:port/v1/ws`. */
  url: string;
  wsUrl: string;
  connections: number;
  eventLoopLagMs: number;
  /** When this heartbeat was sent. */
  at: Millis;
}

export interface Registry {
  heartbeat(info: NodeInfo, ttlMs: number): Promise<void>;
  leave(nodeId: string): Promise<void>;
  healthy(now: Millis): Promise<NodeInfo[]>;
  close(): Promise<void>;
}

/** The order `healthy` promises; shared so every engine sorts alike. */
export function byLoad(a: NodeInfo, b: NodeInfo): number {
  return a.connections - b.connections || a.eventLoopLagMs - b.eventLoopLagMs || (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0);
}
