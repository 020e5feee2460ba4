/**
 * telemetry/ — how clusterdns reports on itself: the pino logger factory (JSON on stderr, stdout stays free
 * for command output), the Prometheus registry with CoreDNS's metric names plus our own `clusterdns_*` ones
 * (query-metrics.ts for the per-query ones), and the /health /ready /metrics endpoints (http.ts).
 * It reads the other parts only through the callbacks it is given; nothing here is on the query path except
 * QueryMetrics.observe.
 */
import pino, { type Logger } from 'pino';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LogLevel } from '../config/index.js';
import { QueryMetrics, type Listener } from './query-metrics.js';

export type { Logger };
export { QueryMetrics, PLUGINS, type Listener } from './query-metrics.js';
export { TelemetryEndpoints, type Readiness } from './http.js';

export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { name: 'clusterdns' } }, pino.destination({ fd: 2, sync: true }));
}

/** One watched kind's state, as the Kubernetes source reports it. */
export interface WatchStateView {
  readonly kind: string;
  readonly connected: boolean;
  readonly relists: number;
  readonly lastEventAt: number | undefined;
}

export interface TelemetrySources {
  readonly version: string;
  readonly listeners: readonly Listener[];
  /** ClusterIP and headless services that have no ready endpoint (the "selector matches nothing" case). */
  servicesWithoutReadyEndpoints(): number;
  /** Names in the cluster and reverse zones. */
  clusterNames(): number;
  /** TCP connections closed at once because the cap was reached. */
  rejectedTcpConnections(): number;
  /** The watch state, when a cluster is watched. */
  watchStates?(): readonly WatchStateView[];
}

export interface Telemetry {
  readonly registry: Registry;
  readonly queries: QueryMetrics;
  /** Observes the delay from an EndpointSlice change being triggered to its answer being served. */
  observeProgramming(serviceKind: 'cluster_ip' | 'headless_with_selector' | 'headless_without_selector', seconds: number): void;
}

export function createTelemetry(sources: TelemetrySources): Telemetry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const queries = new QueryMetrics(sources.listeners);
  queries.register(registry);

  new Gauge({
    name: 'coredns_build_info',
    help: 'A metric with a constant \'1\' value labeled by version, revision, and goversion from which CoreDNS was built.',
    labelNames: ['version', 'revision', 'goversion'],
    registers: [registry],
  }).set({ version: `clusterdns-${sources.version}`, revision: '', goversion: `node${process.versions.node}` }, 1);

  const programming = new Histogram({
    name: 'coredns_kubernetes_dns_programming_duration_seconds',
    help: 'Histogram of the time (in seconds) it took to program a dns instance.',
    labelNames: ['service_kind'],
    buckets: Array.from({ length: 20 }, (_, i) => 0.001 * 2 ** i),
    registers: [registry],
  });

  new Gauge({
    name: 'clusterdns_services_without_ready_endpoints',
    help: 'ClusterIP and headless services with no ready endpoint: their selector may match no pod.',
    registers: [registry],
    collect() {
      this.set(sources.servicesWithoutReadyEndpoints());
    },
  });
  new Gauge({
    name: 'clusterdns_cluster_names',
    help: 'Names that exist in the cluster and reverse zones.',
    registers: [registry],
    collect() {
      this.set(sources.clusterNames());
    },
  });
  new Counter({
    name: 'clusterdns_tcp_connections_rejected_total',
    help: 'TCP connections closed at once because --max-tcp-connections were open.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sources.rejectedTcpConnections());
    },
  });

  const watchStates = sources.watchStates;
  if (watchStates !== undefined) {
    new Gauge({
      name: 'clusterdns_watch_connected',
      help: '1 while the watch of a resource is established, 0 while it is being retried.',
      labelNames: ['resource'],
      registers: [registry],
      collect() {
        for (const state of watchStates()) this.set({ resource: state.kind }, state.connected ? 1 : 0);
      },
    });
    new Counter({
      name: 'clusterdns_watch_relists_total',
      help: 'Lists made again after a 410 Gone (the watch fell too far behind).',
      labelNames: ['resource'],
      registers: [registry],
      collect() {
        this.reset();
        for (const state of watchStates()) this.inc({ resource: state.kind }, state.relists);
      },
    });
    new Gauge({
      name: 'clusterdns_watch_last_event_age_seconds',
      help: 'Seconds since the last watch event or bookmark of a resource (absent before the first).',
      labelNames: ['resource'],
      registers: [registry],
      collect() {
        this.reset();
        const now = Date.now();
        for (const state of watchStates()) {
          if (state.lastEventAt !== undefined) this.set({ resource: state.kind }, (now - state.lastEventAt) / 1000);
        }
      },
    });
  }

  return {
    registry,
    queries,
    observeProgramming: (serviceKind, seconds) => programming.observe({ service_kind: serviceKind }, Math.max(seconds, 0)),
  };
}
