/**
 * proxy/ — the userspace TCP proxy for ClusterIP services (kube-proxy's former userspace mode, over the same
 * store the DNS answers come from). It owns one listener per `VIP:port` of every TCP port of every ClusterIP
 * service (listener.ts), the choice of a ready backend for each new connection (balancer.ts: round-robin,
 * ClientIP affinity, penalties for backends that fail to connect), the connections themselves with bounded
 * connect retries, backpressure, half-close, an idle timeout and draining (connection.ts), the loopback
 * addresses of `--proxy-vip loopback` (vips.ts) and its per-service metrics (metrics.ts). It reads the store's
 * view and applies every change live; it knows nothing of DNS or of the Kubernetes client, and writes nothing
 * but its own sockets.
 */
import type { Logger } from 'pino';
import { formatHostPort } from '../ip.js';
import { serviceKey, SERVING, splitServiceKey, TERMINATING, type EndpointSet, type ServicePort, type ServiceRecord, type StoreChanges, type StoreView } from '../store/index.js';
import type { Target } from './balancer.js';
import { ServiceStats, type Dialer } from './connection.js';
import { PortListener, type ListenerOwner } from './listener.js';
import type { LoopbackVips } from './vips.js';

export { LoopbackVips, type LoopbackRange } from './vips.js';
export { registerProxyMetrics } from './metrics.js';
export type { Dialer } from './connection.js';
export type { Target } from './balancer.js';

export interface ProxyOptions {
  /** Where each service is listened on: its cluster IPs, or one address from `loopback`. */
  readonly vips: { readonly mode: 'cluster-ip' } | { readonly mode: 'loopback'; readonly allocator: LoopbackVips };
  /** How long the connections to a backend that left the ready set may go on before they are closed. */
  readonly drainMs: number;
  readonly idleTimeoutMs: number;
  /** Open connections across all services at most; more are reset at once. */
  readonly maxConnections: number;
  /** How to reach an endpoint; TCP to its address when absent. */
  readonly dialer?: Dialer;
  /** Clock for affinity and penalties (tests step it). */
  readonly now?: () => number;
}

interface ProxiedService {
  readonly stats: ServiceStats;
  /** By `VIP|port`. */
  readonly listeners: Map<string, PortListener>;
}

export class ServiceProxy implements ListenerOwner {
  private readonly services = new Map<string, ProxiedService>();
  /** Services gone from the store whose connections are still draining: their counters stay until then. */
  private readonly departed = new Map<string, ServiceStats>();
  private readonly retiring = new Set<PortListener>();
  private readonly unsubscribe: () => void;
  private started = false;
  private active = 0;
  /** Connections reset at once because `maxConnections` were open. */
  rejectedConnections = 0;

  constructor(private readonly store: StoreView, private readonly options: ProxyOptions, private readonly log: Logger) {
    this.unsubscribe = store.subscribe((changes) => this.apply(changes));
  }

  /** Starts listening once the store has its first complete view (a partial one would reset good clients). */
  start(): void {
    this.apply({ services: new Set(), namespaces: new Set() });
  }

  close(): void {
    this.unsubscribe();
    for (const { listeners } of this.services.values()) for (const listener of listeners.values()) listener.close();
    for (const listener of this.retiring) listener.close();
    this.services.clear();
    this.retiring.clear();
  }

  /** Counters by service, including services that are gone but still have connections draining. */
  *stats(): Iterable<{ namespace: string; service: string; stats: ServiceStats }> {
    const labelled = (key: string, stats: ServiceStats) => {
      const { namespace, name } = splitServiceKey(key);
      return { namespace, service: name, stats };
    };
    for (const [key, { stats }] of this.services) yield labelled(key, stats);
    for (const [key, stats] of this.departed) yield labelled(key, stats);
  }

  /** `VIP:port`s wanted but not bound (the address is not local, the port is taken): retried in the background. */
  get unboundListeners(): number {
    let count = 0;
    for (const { listeners } of this.services.values()) for (const listener of listeners.values()) if (!listener.bound) count++;
    return count;
  }

  admit(): boolean {
    if (this.active >= this.options.maxConnections) {
      this.rejectedConnections++;
      return false;
    }
    this.active++;
    return true;
  }

  released(): void {
    this.active--;
    for (const [key, stats] of this.departed) if (stats.active === 0) this.departed.delete(key);
  }

  retired(listener: PortListener): void {
    this.retiring.delete(listener);
  }

  private apply(changes: StoreChanges): void {
    if (!this.store.synced) return;
    if (!this.started) {
      this.started = true;
      for (const service of this.store.services()) this.reconcile(serviceKey(service.namespace, service.name));
      return;
    }
    for (const key of changes.services) this.reconcile(key);
  }

  /** Brings one service's listeners and their targets in line with the store. */
  private reconcile(key: string): void {
    const { namespace, name } = splitServiceKey(key);
    const service = this.store.getService(namespace, name);
    const wanted = service?.kind === 'ClusterIP' ? this.listenAddresses(service) : new Map<string, { vip: string; port: ServicePort }>();
    let proxied = this.services.get(key);
    if (proxied === undefined) {
      if (wanted.size === 0) return;
      proxied = { stats: this.departed.get(key) ?? new ServiceStats(), listeners: new Map() };
      this.departed.delete(key);
      this.services.set(key, proxied);
    }
    for (const [listenKey, listener] of proxied.listeners) {
      if (wanted.has(listenKey)) continue;
      proxied.listeners.delete(listenKey);
      this.retiring.add(listener);
      listener.retire();
    }
    const endpoints = this.store.endpointsOf(namespace, name);
    for (const [listenKey, { vip, port }] of wanted) {
      let listener = proxied.listeners.get(listenKey);
      if (listener === undefined) {
        const log = this.log.child({ namespace, service: name });
        listener = new PortListener(namespace, vip, port.port, proxied.stats, this, this.options, log, this.options.now);
        proxied.listeners.set(listenKey, listener);
        listener.open();
      }
      // In cluster-ip mode each VIP reaches the endpoints of its own family, as kube-proxy programs each family.
      const family = this.options.vips.mode === 'cluster-ip' ? (vip.includes(':') ? 6 : 4) : undefined;
      const affinityMs = service!.affinityTimeoutSeconds === undefined ? undefined : service!.affinityTimeoutSeconds * 1000;
      listener.setTargets(targetsOf(port, endpoints, family), affinityMs);
    }
    if (proxied.listeners.size === 0) {
      this.services.delete(key);
      if (proxied.stats.active > 0) this.departed.set(key, proxied.stats);
    }
  }

  /** The `VIP|port` keys a ClusterIP service is listened on: every TCP port on every VIP. */
  private listenAddresses(service: ServiceRecord): Map<string, { vip: string; port: ServicePort }> {
    const { vips } = this.options;
    const addresses = vips.mode === 'loopback' ? vips.allocator.addressesOf(service) : service.clusterIPs;
    if (addresses.length === 0) this.log.warn({ namespace: service.namespace, service: service.name }, '--proxy-range is full: this service gets no address');
    const wanted = new Map<string, { vip: string; port: ServicePort }>();
    for (const port of service.ports) {
      if (port.protocol !== 'TCP') continue;
      for (const vip of addresses) wanted.set(`${vip}|${port.port}`, { vip, port });
    }
    return wanted;
  }
}

/**
 * Where a service port's connections go: each ready endpoint (serving and not terminating) at the port the
 * EndpointSlice lists under the service port's name, which is where the EndpointSlice controller publishes a
 * targetPort it has resolved (by name, per pod). A slice without that port (hand-written) falls back to a
 * numeric targetPort; an endpoint with neither is left out.
 */
export function targetsOf(port: ServicePort, endpoints: EndpointSet, family: 4 | 6 | undefined): Target[] {
  const targets: Target[] = [];
  const { ips, conditions, ports } = endpoints;
  for (let row = 0; row < ips.length; row++) {
    if ((conditions[row]! & (SERVING | TERMINATING)) !== SERVING) continue;
    const ip = ips[row]!;
    if (family !== undefined && ip.includes(':') !== (family === 6)) continue;
    const listed = ports[row]!.find((candidate) => candidate.name === port.name && candidate.protocol === 'TCP');
    const number = listed?.port ?? (typeof port.targetPort === 'number' ? port.targetPort : undefined);
    if (number === undefined) continue;
    targets.push({ ip, port: number, key: formatHostPort({ host: ip, port: number }) });
  }
  return targets;
}
