/** Prometheus metrics of one node (prom-client), in a registry of its own so tests can run many servers. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly connections: Gauge;
  readonly framesIn: Counter<'type'>;
  readonly framesOut: Counter<'type'>;
  readonly deliveryLatency: Histogram;
  readonly storeAppend: Histogram;
  readonly rateLimited: Counter<'scope'>;
  readonly closes: Counter<'code'>;
  readonly slowReaders: Counter;
  readonly retentionCleared: Counter;

  constructor(connectionCount: () => number) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 });
    this.connections = new Gauge({
      name: 'parley_connections',
      help: 'Authenticated client connections (WebSocket and long-poll) on this node.',
      registers,
      collect() {
        this.set(connectionCount());
      },
    });
    this.framesIn = new Counter({ name: 'parley_frames_in_total', help: 'Client frames received, by type.', labelNames: ['type'], registers });
    this.framesOut = new Counter({ name: 'parley_frames_out_total', help: 'Server frames sent, by type.', labelNames: ['type'], registers });
    this.deliveryLatency = new Histogram({
      name: 'parley_delivery_latency_seconds',
      help: 'From an event being committed to its frame being pushed to local sockets.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.3, 1],
      registers,
    });
    this.storeAppend = new Histogram({
      name: 'parley_store_append_seconds',
      help: 'Time for the store to make one event durable (includes group-commit wait).',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
      registers,
    });
    this.retentionCleared = new Counter({ name: 'parley_retention_cleared_events_total', help: 'Events (messages and others) deleted by retention policies.', registers });
    this.rateLimited = new Counter({ name: 'parley_rate_limited_total', help: 'Requests and frames refused by rate limits, by scope (user writes, connection frames, searches, logins).', labelNames: ['scope'], registers });
    this.closes = new Counter({ name: 'parley_socket_closes_total', help: 'WebSocket closes by code.', labelNames: ['code'], registers });
    this.slowReaders = new Counter({
      name: 'parley_slow_reader_closes_total',
      help: 'Sockets closed with 4009 because their unsent frames passed sendQueueBytes (counted when decided, before the close completes).',
      registers,
    });
  }
}
