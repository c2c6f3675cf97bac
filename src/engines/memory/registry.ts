/**
 * In-process Registry: the embedded engine for one node (it lists itself) and
 * for cluster tests that run several nodes in one process.
 */
import { byLoad, type NodeInfo, type Registry } from '../../core/ports/registry.js';
import type { Millis } from '../../protocol/model.js';

export class MemoryRegistry implements Registry {
  private readonly nodes = new Map<string, { info: NodeInfo; expiresAt: Millis }>();

  heartbeat(info: NodeInfo, ttlMs: number): Promise<void> {
    this.nodes.set(info.nodeId, { info: { ...info }, expiresAt: info.at + ttlMs });
    return Promise.resolve();
  }

  leave(nodeId: string): Promise<void> {
    this.nodes.delete(nodeId);
    return Promise.resolve();
  }

  healthy(now: Millis): Promise<NodeInfo[]> {
    const live: NodeInfo[] = [];
    for (const [id, entry] of this.nodes) {
      if (entry.expiresAt > now) live.push({ ...entry.info });
      else this.nodes.delete(id);
    }
    return Promise.resolve(live.sort(byLoad));
  }

  close(): Promise<void> {
    this.nodes.clear();
    return Promise.resolve();
  }
}
