/**
 * telemetry/ — how clusterdns reports on itself: the pino logger factory (JSON on stderr, stdout stays free
 * for command output), the Prometheus registry with CoreDNS's metric names plus our own `clusterdns_*` ones
 * (query-metrics.ts for the per-query ones), the failing names' top-k (top.ts, served as /debug/top with the page
 * of top-page.ts), and the /health /ready /metrics endpoints (http.ts). Each plugin
 * registers its own metrics on the registry (plugins/<name>/metrics.ts); nothing here names a plugin. It reads
 * the other parts only through the callbacks it is given; nothing here is on the query path except
 * QueryMetrics.observe and FailureTop.record.
 */
import pino, { type Logger } from 'pino';
import { collectDefaultMetrics, Counter, Gauge, type Registry } from 'prom-client';
import type { LogLevel } from '../config/index.js';
import { QueryMetrics, type Listener } from './query-metrics.js';

export type { Logger };
export { Registry } from 'prom-client';
export { QueryMetrics, type Listener } from './query-metrics.js';
export { TelemetryEndpoints, type Readiness } from './http.js';
export { FailureTop, TOP_DEFAULTS, type TopReport } from './top.js';

export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { name: 'clusterdns' } }, pino.destination({ fd: 2, sync: true }));
}

export interface TelemetrySources {
  /** Which thread this is: 0 the main one, then each worker's number (workers/). */
  readonly thread?: number;
  /**
   * False in a worker thread: the process's own series (CPU, memory, build info) come from the main thread
   * once, not once per thread, when the threads' metrics are summed.
   */
  readonly process?: boolean;
  readonly version: string;
  readonly listeners: readonly Listener[];
  /** The `plugin` label values of coredns_dns_responses_total: the names the chain's plugins give themselves. */
  readonly plugins: readonly string[];
  /** TCP connections closed at once because the cap was reached. */
  rejectedTcpConnections(): number;
}

export interface Telemetry {
  readonly registry: Registry;
  readonly queries: QueryMetrics;
}

/** The server's own metrics on `registry`, where the plugins have registered theirs. */
export function createTelemetry(registry: Registry, sources: TelemetrySources): Telemetry {
  const queries = new QueryMetrics(sources.listeners, sources.plugins);
  queries.register(registry);
  countedElsewhere(registry, 'clusterdns_tcp_connections_rejected_total', 'TCP connections closed at once because --max-tcp-connections were open.', sources.rejectedTcpConnections);
  // How the kernel spreads queries over the threads' sockets (a series per thread, summed over none).
  const thread = String(sources.thread ?? 0);
  new Counter({ name: 'clusterdns_thread_responses_total', help: 'DNS responses sent by each thread (0: the main one; see --workers).', labelNames: ['thread'], registers: [registry], collect() {
    this.reset();
    this.inc({ thread }, queries.responsesSent());
  } });
  if (sources.process === false) return { registry, queries };

  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'coredns_build_info',
    help: 'A metric with a constant \'1\' value labeled by version, revision, and goversion from which CoreDNS was built.',
    labelNames: ['version', 'revision', 'goversion'],
    registers: [registry],
  }).set({ version: `clusterdns-${sources.version}`, revision: '', goversion: `node${process.versions.node}` }, 1);

  return { registry, queries };
}

/** A counter whose value another part keeps as a plain number, read at scrape time (nothing on the query path). */
export function countedElsewhere(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({ name, help, registers: [registry], collect() {
    this.reset();
    this.inc(read());
  } });
}

const shared = new WeakMap<Registry, Map<string, unknown>>();

/**
 * One `create()` per registry and name: a plugin in several server blocks registers its metrics once, and each
 * instance adds its own source to what `create` returned (the series then sum over the instances).
 */
export function perRegistry<T>(registry: Registry, name: string, create: () => T): T {
  let byName = shared.get(registry);
  if (byName === undefined) shared.set(registry, (byName = new Map()));
  if (!byName.has(name)) byName.set(name, create());
  return byName.get(name) as T;
}

/** Adds `source` to a shared list of metric sources; the returned function takes it out again (the plugin closed). */
export function addSource<T>(sources: T[], source: T): () => void {
  sources.push(source);
  return () => {
    const at = sources.indexOf(source);
    if (at >= 0) sources.splice(at, 1);
  };
}
