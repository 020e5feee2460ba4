/**
 * The kubernetes plugin's metrics: CoreDNS's programming-duration histogram, and our own gauges of the zone and
 * of the API watch. Read at scrape time from the callbacks given; only observeProgramming runs on a change.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { anyReady, type StoreView } from '../../store/index.js';
import { addSource, perRegistry } from '../../telemetry/index.js';

/** One watched kind's state, as the Kubernetes source reports it. */
export interface WatchStateView {
  readonly kind: string;
  readonly connected: boolean;
  readonly relists: number;
  readonly lastEventAt: number | undefined;
  /** Since when (ms since the epoch) a watch of the kind has been retrying, while one is. */
  readonly retryingSince: number | undefined;
  /** When its next try is due, while it waits for one. */
  readonly nextTryAt: number | undefined;
}

export type ServiceKindLabel = 'cluster_ip' | 'headless_with_selector' | 'headless_without_selector';

/** The zone's gauges: services without a ready endpoint (the "selector matches nothing" case), names served. */
export function registerKubernetesMetrics(registry: Registry, store: StoreView, clusterNames: () => number): () => void {
  return addSource(perRegistry(registry, 'kubernetes', () => {
    const sources: Array<() => number> = [];
    register(registry, store, () => sources.reduce((sum, source) => sum + source(), 0));
    return sources;
  }), clusterNames);
}

function register(registry: Registry, store: StoreView, clusterNames: () => number): void {
  new Gauge({
    name: 'clusterdns_services_without_ready_endpoints',
    // Every worker thread holds the same state: summed over them it would count it once per thread.
    aggregator: 'max',
    help: 'ClusterIP and headless services with no ready endpoint: their selector may match no pod.',
    registers: [registry],
    collect() {
      this.set(servicesWithoutReadyEndpoints(store));
    },
  });
  new Gauge({
    name: 'clusterdns_cluster_names',
    // Every worker thread holds the same state: summed over them it would count it once per thread.
    aggregator: 'max',
    help: 'Names that exist in the cluster and reverse zones.',
    registers: [registry],
    collect() {
      this.set(clusterNames());
    },
  });

}

/**
 * The API watch's metrics (absent with a manifest source): CoreDNS's programming-duration histogram and our watch
 * gauges. Returns the observer of the delay from an EndpointSlice change being triggered to its answer.
 */
export function registerSourceMetrics(registry: Registry, watchStates: () => readonly WatchStateView[]): (serviceKind: ServiceKindLabel, seconds: number) => void {
  const programming = new Histogram({
    name: 'coredns_kubernetes_dns_programming_duration_seconds',
    help: 'Histogram of the time (in seconds) it took to program a dns instance.',
    labelNames: ['service_kind'],
    buckets: Array.from({ length: 20 }, (_, i) => 0.001 * 2 ** i),
    registers: [registry],
  });

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
    name: 'clusterdns_watch_retrying_seconds',
    help: 'Seconds the watch of a resource has been retrying, 0 while it is established.',
    labelNames: ['resource'],
    registers: [registry],
    collect() {
      const now = Date.now();
      for (const state of watchStates()) this.set({ resource: state.kind }, state.retryingSince === undefined ? 0 : Math.max(now - state.retryingSince, 0) / 1000);
    },
  });
  new Gauge({
    name: 'clusterdns_watch_next_try_seconds',
    help: 'Seconds until a retrying watch of a resource tries again, 0 while it is established or trying.',
    labelNames: ['resource'],
    registers: [registry],
    collect() {
      const now = Date.now();
      for (const state of watchStates()) this.set({ resource: state.kind }, state.nextTryAt === undefined ? 0 : Math.max(state.nextTryAt - now, 0) / 1000);
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
  return (serviceKind, seconds) => programming.observe({ service_kind: serviceKind }, Math.max(seconds, 0));
}

function servicesWithoutReadyEndpoints(store: StoreView): number {
  let count = 0;
  for (const service of store.services()) {
    if (service.kind === 'ExternalName') continue;
    if (!anyReady(store.endpointsOf(service.namespace, service.name))) count++;
  }
  return count;
}
