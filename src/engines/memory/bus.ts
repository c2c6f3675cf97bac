/**
 * In-process engine of the Bus port (see core/ports/bus.ts for the contract).
 *
 * Nodes attached to one `MemoryBusHub` behave like chat nodes sharing a
 * broker, so cluster behaviour can be tested in one process; a plain
 * `new MemoryBus()` is a single node with a hub of its own.
 */
import type { Bus, BusHandler, BusMessage } from '../../core/ports/bus.js';

/** Told when a node's handler throws; the other nodes still get the message. */
export type HandlerErrorReporter = (error: unknown, topic: string) => void;

export interface MemoryBusHubOptions {
  /** @default writes the error to stderr */
  onHandlerError?: HandlerErrorReporter;
}

export class MemoryBusHub {
  private readonly subscribers = new Map<string, Set<MemoryBus>>();
  private readonly onHandlerError: HandlerErrorReporter;

  constructor(options: MemoryBusHubOptions = {}) {
    this.onHandlerError =
      options.onHandlerError ?? ((error, topic) => console.error(`bus handler failed on ${topic}:`, error));
  }

  /** Topics with at least one subscribed node: it shrinks as nodes unsubscribe. */
  get topicCount(): number {
    return this.subscribers.size;
  }

  /** A new node on this hub. */
  node(): MemoryBus {
    return new MemoryBus(this);
  }

  /** @internal */
  add(topic: string, node: MemoryBus): void {
    let nodes = this.subscribers.get(topic);
    if (!nodes) this.subscribers.set(topic, (nodes = new Set()));
    nodes.add(node);
  }

  /** @internal */
  remove(topic: string, node: MemoryBus): void {
    const nodes = this.subscribers.get(topic);
    if (nodes?.delete(node) && nodes.size === 0) this.subscribers.delete(topic);
  }

  /** @internal */
  deliver(topic: string, message: BusMessage): void {
    const nodes = this.subscribers.get(topic);
    if (!nodes) return;
    // Copy so that a handler re-subscribing during delivery cannot make a node
    // receive this message twice. A lone node needs no copy: unsubscribing
    // drops its set, so re-subscribing lands in a fresh one.
    const targets = nodes.size === 1 ? nodes : [...nodes];
    for (const node of targets) {
      try {
        node.receive(topic, message);
      } catch (error) {
        this.onHandlerError(error, topic);
      }
    }
  }
}

export class MemoryBus implements Bus {
  private readonly topics = new Set<string>();
  private handler: BusHandler | undefined;
  private closed = false;

  constructor(private readonly hub: MemoryBusHub = new MemoryBusHub()) {}

  async publish(topic: string, message: BusMessage): Promise<void> {
    this.assertOpen();
    this.hub.deliver(topic, message);
  }

  async subscribe(topic: string): Promise<void> {
    this.assertOpen();
    if (this.topics.has(topic)) return;
    this.topics.add(topic);
    this.hub.add(topic, this);
  }

  async unsubscribe(topic: string): Promise<void> {
    if (!this.topics.delete(topic)) return;
    this.hub.remove(topic, this);
  }

  onMessage(handler: BusHandler): void {
    this.handler = handler;
  }

  healthy(): boolean {
    return !this.closed;
  }

  /** An in-process bus never loses its link, so it never recovers. */
  onRecovered(): void {}

  async close(): Promise<void> {
    this.closed = true;
    for (const topic of this.topics) this.hub.remove(topic, this);
    this.topics.clear();
  }

  /** @internal Called by the hub. */
  receive(topic: string, message: BusMessage): void {
    // A node that left the topic during this delivery must not get it.
    if (this.topics.has(topic)) this.handler?.(topic, message);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('bus is closed');
  }
}
