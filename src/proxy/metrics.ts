/**
 * The proxy's metrics, declared in one place and read from its plain counters when scraped, so the
 * connection path never touches prom-client. Labels are `namespace` and `service` only (bounded by the
 * cluster's services, never by clients or backends).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ServiceStats } from './connection.js';

export interface ProxyMetricsSource {
  stats(): Iterable<{ namespace: string; service: string; stats: ServiceStats }>;
  readonly rejectedConnections: number;
  readonly unboundListeners: number;
}

const PER_SERVICE: ReadonlyArray<{ name: string; help: string; kind: 'counter' | 'gauge'; read: (stats: ServiceStats) => number }> = [
  { name: 'clusterdns_proxy_connections_active', kind: 'gauge', help: 'Proxied connections open now (connecting, spliced or draining).', read: (s) => s.active },
  { name: 'clusterdns_proxy_connections_total', kind: 'counter', help: 'Connections accepted on the service\'s VIP ports.', read: (s) => s.total },
  { name: 'clusterdns_proxy_client_bytes_total', kind: 'counter', help: 'Bytes received from clients and passed on to backends.', read: (s) => s.clientBytes },
  { name: 'clusterdns_proxy_backend_bytes_total', kind: 'counter', help: 'Bytes received from backends and passed on to clients (counted as written to clients).', read: (s) => s.backendBytes },
  { name: 'clusterdns_proxy_connect_failures_total', kind: 'counter', help: 'Connect attempts to a backend that were refused, unreachable or timed out.', read: (s) => s.connectFailures },
  { name: 'clusterdns_proxy_retries_total', kind: 'counter', help: 'Connect attempts after a first one failed, to the next backend.', read: (s) => s.retries },
  { name: 'clusterdns_proxy_no_endpoint_resets_total', kind: 'counter', help: 'Client connections reset at once because the service had no ready endpoint.', read: (s) => s.noEndpointResets },
];

export function registerProxyMetrics(registry: Registry, source: ProxyMetricsSource): void {
  for (const { name, help, kind, read } of PER_SERVICE) {
    const Metric = kind === 'counter' ? Counter : Gauge;
    new Metric({
      name,
      help,
      labelNames: ['namespace', 'service'],
      registers: [registry],
      collect() {
        this.reset();
        for (const { namespace, service, stats } of source.stats()) {
          if (this instanceof Counter) this.inc({ namespace, service }, read(stats));
          else (this as Gauge).set({ namespace, service }, read(stats));
        }
      },
    });
  }
  new Counter({
    name: 'clusterdns_proxy_connections_rejected_total',
    help: 'Client connections reset at once because --proxy-max-connections were open.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(source.rejectedConnections);
    },
  });
  new Gauge({
    name: 'clusterdns_proxy_listeners_unbound',
    help: 'Service VIP:port pairs that cannot be listened on (the VIP is on no local interface, or the port is taken); retried.',
    registers: [registry],
    collect() {
      this.set(source.unboundListeners);
    },
  });
}
