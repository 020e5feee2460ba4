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
import type { CacheStats } from '../resolvers/cache/index.js';
import type { ForwardObserver, UpstreamState } from '../resolvers/forward/index.js';
import { rcodeName } from '../wire/index.js';
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
  /** When forwarding is on: */
  upstreamStates?(): readonly UpstreamState[];
  cacheStats?(): CacheStats;
  autopathCompletions?(): number;
}

export interface Telemetry {
  readonly registry: Registry;
  readonly queries: QueryMetrics;
  /** Observes the delay from an EndpointSlice change being triggered to its answer being served. */
  observeProgramming(serviceKind: 'cluster_ip' | 'headless_with_selector' | 'headless_without_selector', seconds: number): void;
  /** Counts what the forwarder does. */
  readonly forward: ForwardObserver;
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
  countedElsewhere(registry, 'clusterdns_tcp_connections_rejected_total', 'TCP connections closed at once because --max-tcp-connections were open.', sources.rejectedTcpConnections);

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
    forward: forwardMetrics(registry, sources),
    observeProgramming: (serviceKind, seconds) => programming.observe({ service_kind: serviceKind }, Math.max(seconds, 0)),
  };
}

/** CoreDNS's forward, cache and autopath metrics (names and labels as dashboards know them), plus ours. */
function forwardMetrics(registry: Registry, sources: TelemetrySources): ForwardObserver {
  const requests = new Counter({ name: 'coredns_forward_requests_total', help: 'Counter of requests made per upstream.', labelNames: ['to'], registers: [registry] });
  const responses = new Counter({ name: 'coredns_forward_responses_total', help: 'Counter of responses received per upstream.', labelNames: ['to', 'rcode'], registers: [registry] });
  const duration = new Histogram({
    name: 'coredns_proxy_request_duration_seconds',
    help: 'Histogram of the time each request took.',
    labelNames: ['proxy_name', 'to', 'rcode'],
    buckets: Array.from({ length: 16 }, (_, i) => 0.00025 * 2 ** i),
    registers: [registry],
  });
  const healthcheckFailures = new Counter({ name: 'coredns_forward_healthcheck_failures_total', help: 'Counter of the number of failed healthchecks.', labelNames: ['to'], registers: [registry] });
  const broken = new Counter({ name: 'coredns_forward_healthcheck_broken_total', help: 'Counter of the number of complete failures of the healthchecks.', registers: [registry] });
  const rejects = new Counter({ name: 'coredns_forward_max_concurrent_rejects_total', help: 'Counter of the number of queries rejected because the concurrent queries were at maximum.', registers: [registry] });
  const coalesced = new Counter({ name: 'clusterdns_forward_coalesced_total', help: 'Queries that joined an identical upstream query already in flight instead of sending their own.', registers: [registry] });
  const upstreamStates = sources.upstreamStates;
  if (upstreamStates !== undefined) {
    new Gauge({
      name: 'clusterdns_forward_upstream_up',
      help: '1 while an upstream is considered healthy, 0 while it is down and probed.',
      labelNames: ['to'],
      registers: [registry],
      collect() {
        for (const state of upstreamStates()) this.set({ to: state.to }, state.up ? 1 : 0);
      },
    });
    new Gauge({
      name: 'clusterdns_forward_loop_detected',
      help: '1 for an upstream that forwards our queries back to us; it is not used.',
      labelNames: ['to'],
      registers: [registry],
      collect() {
        for (const state of upstreamStates()) this.set({ to: state.to }, state.looping ? 1 : 0);
      },
    });
  }
  const cacheStats = sources.cacheStats;
  if (cacheStats !== undefined) {
    const counter = (name: string, help: string, read: (stats: CacheStats) => number): void =>
      countedElsewhere(registry, name, help, () => read(cacheStats()));
    new Gauge({
      name: 'coredns_cache_entries',
      help: 'The number of elements in the cache.',
      labelNames: ['type'],
      registers: [registry],
      collect() {
        for (const [type, count] of Object.entries(cacheStats().entries)) this.set({ type }, count);
      },
    });
    new Counter({
      name: 'coredns_cache_hits_total',
      help: 'The count of cache hits.',
      labelNames: ['type'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [type, count] of Object.entries(cacheStats().hits)) this.inc({ type }, count);
      },
    });
    counter('coredns_cache_misses_total', 'The count of cache misses.', (stats) => stats.misses);
    counter('coredns_cache_requests_total', 'The count of cache requests.', (stats) => stats.requests);
    counter('coredns_cache_prefetch_total', 'The number of times the cache has prefetched a cached item.', (stats) => stats.prefetches);
    counter('coredns_cache_served_stale_total', 'The number of requests served from stale cache entries.', (stats) => stats.servedStale);
  }
  const autopathCompletions = sources.autopathCompletions;
  if (autopathCompletions !== undefined) {
    countedElsewhere(registry, 'coredns_autopath_success_count_total', 'Counter of requests that did autopath.', autopathCompletions);
  }
  return {
    request: (to) => requests.inc({ to }),
    response: (to, rcode, seconds) => {
      const code = rcodeName(rcode);
      responses.inc({ to, rcode: code });
      duration.observe({ proxy_name: 'forward', to, rcode: code }, seconds);
    },
    healthcheckFailure: (to) => healthcheckFailures.inc({ to }),
    allDown: () => broken.inc(),
    rejected: () => rejects.inc(),
    coalesced: () => coalesced.inc(),
  };
}

/** A counter whose value another part keeps as a plain number, read at scrape time (nothing on the query path). */
function countedElsewhere(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({ name, help, registers: [registry], collect() {
    this.reset();
    this.inc(read());
  } });
}
