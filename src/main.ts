/**
 * The composition root: config → source → store → plugins → server, with telemetry beside them. The only
 * module that knows every part; the parts know only what flows into them. serve() returns a handle whose
 * shutdown() goes through lame duck (DNS still answered, /ready at 503) and close() stops everything at once.
 */
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { formatHostPort } from './ip.js';
import type { ListenAddress, ServeConfig } from './config/index.js';
import { readResolvConf } from './config/resolv-conf.js';
import { Autopath } from './plugins/autopath/index.js';
import { registerAutopathMetrics } from './plugins/autopath/metrics.js';
import { AnswerCache, CacheHandler } from './plugins/cache/index.js';
import { registerCacheMetrics } from './plugins/cache/metrics.js';
import { chainOf } from './plugins/chain.js';
import { Forwarder, type UpstreamAddress } from './plugins/forward/index.js';
import { registerForwardMetrics } from './plugins/forward/metrics.js';
import { KubernetesHandler } from './plugins/kubernetes/handler.js';
import { ClusterResolver } from './plugins/kubernetes/index.js';
import { registerKubernetesMetrics } from './plugins/kubernetes/metrics.js';
import { PLUGIN_ORDER, type PluginName } from './plugins/order.js';
import type { Handler } from './plugins/plugin.js';
import { LoopbackVips, registerProxyMetrics, ServiceProxy, type Dialer } from './proxy/index.js';
import { DnsServer, QueryAnswerer, type BoundAddress } from './server/index.js';
import type { KubeSource } from './source/kube.js';
import { ManifestSource } from './source/manifests.js';
import { anyReady, RecordStore, type StoreView } from './store/index.js';
import { createTelemetry, Registry, TelemetryEndpoints, type Listener, type Logger } from './telemetry/index.js';
import { nameToKey } from './wire/index.js';

export interface RunningServer {
  readonly addresses: readonly BoundAddress[];
  /** Where /health, /ready and /metrics listen. */
  readonly http: ReadonlyMap<string, ListenAddress>;
  /** Lame duck for `lameduckMs` (answering DNS, /ready 503), then close. */
  shutdown(): Promise<void>;
  close(): Promise<void>;
}

export function version(): string {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}

export async function serve(config: ServeConfig, log: Logger): Promise<RunningServer> {
  const outside = await outsideTheZone(config, log);
  const store = new RecordStore();
  const registry = new Registry();
  let manifests: ManifestSource | undefined;
  let kube: KubeSource | undefined;
  let dialer: Dialer | undefined;
  if (config.manifests !== undefined) {
    manifests = new ManifestSource(config.manifests, store, log.child({ part: 'source' }));
    await manifests.start();
  } else {
    // Loaded only when a cluster is watched: the HTTP and TLS stack and the kubeconfig parts cost ~4 MB of RSS.
    const { KubeSource, loadKubeConfig } = await import('./source/kube.js');
    const kubeConfig = loadKubeConfig(config.kubeconfig);
    const portForward = config.proxy?.via === 'port-forward';
    if (portForward) {
      // Through the API server to the pod behind an endpoint address, which the watched Pods name.
      const { portForwardDialer } = await import('./source/kube-portforward.js');
      dialer = portForwardDialer(kubeConfig, (ip, namespace) => store.podAt(ip, namespace));
    }
    kube = new KubeSource(kubeConfig, store, log.child({ part: 'kube' }), {
      namespaces: config.namespaces,
      // Autopath needs to know which namespace a client's address is a pod of; port-forward, which pod has an address.
      watchPods: config.pods === 'verified' || config.autopath || portForward,
      onEndpointsProgrammed: ({ namespace, service, triggeredAtMs }) => {
        const record = store.getService(namespace, service);
        if (record === undefined || record.kind === 'ExternalName') return;
        const label = record.kind === 'ClusterIP' ? 'cluster_ip' : record.hasSelector ? 'headless_with_selector' : 'headless_without_selector';
        observeProgramming(label, (Date.now() - triggeredAtMs) / 1000);
      },
    });
  }

  // Subscribed before the resolver, so an address is released before anything can ask for it again.
  const vips = config.proxy?.vip === 'loopback' ? new LoopbackVips(store, config.proxy.range) : undefined;
  const cluster = new ClusterResolver(store, {
    zone: config.zone,
    ttl: config.ttl,
    pods: config.pods,
    selfAddresses: selfAddresses(config),
    reverseFallthrough: outside.upstreams.length > 0,
    ...(vips !== undefined && { virtualIPs: (service) => vips.addressesOf(service) }),
  });
  const observeProgramming = registerKubernetesMetrics(registry, {
    servicesWithoutReadyEndpoints: () => servicesWithoutReadyEndpoints(store),
    clusterNames: () => cluster.nameCount,
    ...(kube !== undefined && { watchStates: () => kube.states() }),
  });
  const plugins = new Map<PluginName, Handler>([['kubernetes', new KubernetesHandler(cluster)]]);
  let forwarder: Forwarder | undefined;
  let stopWatchingResolvConf = (): void => {};
  if (outside.upstreams.length > 0 || config.stubDomains.length > 0) {
    const forward: Forwarder = new Forwarder({
      upstreams: outside.upstreams,
      stubDomains: config.stubDomains.map((stub) => ({ zoneKey: nameToKey(stub.zone), upstreams: stub.upstreams })),
      policy: config.forwardPolicy,
      maxFails: config.maxFails,
      tryTimeoutMs: config.upstreamTimeoutMs,
      deadlineMs: 2 * config.upstreamTimeoutMs,
      maxConcurrent: config.maxConcurrent,
      observer: registerForwardMetrics(registry, () => forward.states()),
      log: log.child({ part: 'forward' }),
    });
    forwarder = forward;
    plugins.set('forward', forward);
    if (config.cacheSize > 0) {
      const cache = new AnswerCache({
        maxEntries: config.cacheSize,
        maxTtl: config.cacheMaxTtl,
        maxNegativeTtl: config.cacheMaxNegativeTtl,
        serveStale: config.serveStale,
        now: Date.now,
      });
      registerCacheMetrics(registry, () => cache.stats());
      plugins.set('cache', new CacheHandler(cache, [nameToKey(config.zone)]));
    }
  }
  if (config.autopath) {
    const autopath = new Autopath(store, { zone: config.zone, hostSearch: outside.hostSearch, ttl: config.ttl });
    registerAutopathMetrics(registry, () => autopath.completions);
    plugins.set('autopath', autopath);
  }
  const handlers = PLUGIN_ORDER.flatMap((name) => plugins.get(name) ?? []);
  let server: DnsServer | undefined;
  const telemetry = createTelemetry(registry, {
    version: version(),
    listeners: config.listen.map(listenerLabels),
    plugins: handlers.map((handler) => handler.name),
    rejectedTcpConnections: () => server?.rejectedConnections ?? 0,
  });
  const answerer = new QueryAnswerer(chainOf(handlers), { metrics: telemetry.queries, log: log.child({ part: 'query' }), logQueries: config.logQueries });
  const proxy = config.proxy === undefined ? undefined : new ServiceProxy(store, {
    ...config.proxy,
    vips: vips === undefined ? { mode: 'cluster-ip' } : { mode: 'loopback', allocator: vips },
    ...(dialer !== undefined && { dialer }),
  }, log.child({ part: 'proxy' }));
  if (proxy !== undefined) registerProxyMetrics(telemetry.registry, proxy);
  server = new DnsServer(answerer, config, log.child({ part: 'server' }));
  let lameDuck = false;
  const endpoints = new TelemetryEndpoints(telemetry.registry, {
    notReadyReason: () => {
      if (lameDuck) return 'lame duck: shutting down';
      if (store.synced) return undefined;
      const waiting = kube?.states().filter((state) => !state.synced).map((state) => `${state.kind}s${state.reason ? ` (${state.reason})` : ''}`);
      return `waiting for the first sync of ${waiting?.join(', ') ?? 'the manifests'}`;
    },
    warnings: () => (forwarder?.states() ?? [])
      .filter((state) => state.looping)
      .map((state) => `forwarding loop: upstream ${state.to} sends queries back to this server, so it is not used`),
  });

  const closeAll = async (): Promise<void> => {
    await server?.close();
    await endpoints.close();
    await kube?.close();
    stopWatchingResolvConf();
    forwarder?.close();
    manifests?.close();
    proxy?.close();
    cluster.close();
    vips?.close();
  };
  let addresses: BoundAddress[];
  try {
    addresses = await server.start();
    telemetry.queries.describeListeners(addresses.map(listenerLabels));
    await endpoints.start(config);
    await kube?.start();
    // In the background: the probes need this server answering, and must not hold up serving the cluster zone.
    void forwarder?.detectLoops();
    if (forwarder !== undefined && config.upstreams === undefined) stopWatchingResolvConf = followResolvConf(config.resolvConf, forwarder, outside.upstreams, log);
    proxy?.start();
  } catch (error) {
    await closeAll();
    throw error;
  }
  log.info({
    zone: config.zone,
    listen: addresses.map(formatHostPort),
    http: Object.fromEntries([...endpoints.bound].map(([path, address]) => [path.slice(1), formatHostPort(address)])),
    source: manifests !== undefined ? config.manifests : 'kubernetes',
    names: cluster.nameCount,
    upstreams: outside.upstreams.map(formatHostPort),
    ...(config.stubDomains.length > 0 && { stubDomains: config.stubDomains.map((stub) => `${stub.zone}=${stub.upstreams.map(formatHostPort).join(',')}`) }),
    autopath: config.autopath,
  }, 'serving');

  let closing: Promise<void> | undefined;
  return {
    addresses,
    http: new Map([...endpoints.bound].map(([path, address]) => [path.slice(1), address])),
    shutdown() {
      if (lameDuck) return closing ?? Promise.resolve();
      lameDuck = true;
      log.info({ lameduckMs: config.lameduckMs }, 'lame duck: still answering, /ready reports 503');
      closing = new Promise<void>((resolve) => setTimeout(resolve, config.lameduckMs)).then(closeAll);
      return closing;
    },
    close() {
      closing ??= closeAll();
      return closing;
    },
  };
}

/** The upstreams (--upstream, else resolv.conf's nameservers) and the host search domains for autopath. */
async function outsideTheZone(config: ServeConfig, log: Logger): Promise<{ upstreams: readonly UpstreamAddress[]; hostSearch: readonly string[] }> {
  if (config.upstreams !== undefined && !config.autopath) return { upstreams: config.upstreams, hostSearch: [] };
  const resolvConf = await readResolvConf(config.resolvConf);
  let upstreams = config.upstreams;
  if (upstreams === undefined) {
    upstreams = resolvConf.defaultNameserver ? [] : resolvConf.nameservers;
    if (resolvConf.defaultNameserver) log.warn({ resolvConf: config.resolvConf }, 'no nameserver in resolv.conf: forwarding is off (give --upstream)');
  }
  // The kubelet gives pods the host's `search` line after the cluster's own domains.
  const hostSearch = resolvConf.searchLine.map((domain) => domain.replace(/\.$/, '').toLowerCase()).filter((domain) => domain !== '');
  return { upstreams, hostSearch: [...new Set(hostSearch)] };
}

/** How often resolv.conf is looked at for new nameservers (a stat, no read unless it changed). */
const RESOLV_CONF_POLL_MS = 2000;

/** Follows resolv.conf's nameservers when they are the upstreams: a changed set is used (and probed for loops) at once. */
function followResolvConf(path: string, forwarder: Forwarder, initial: readonly UpstreamAddress[], log: Logger): () => void {
  let current = initial.map(formatHostPort).join(' ');
  const onChange = (): void => {
    readResolvConf(path).then((resolvConf) => {
      const next = resolvConf.defaultNameserver ? [] : resolvConf.nameservers;
      const described = next.map(formatHostPort).join(' ');
      if (described === current) return;
      current = described;
      log.info({ resolvConf: path, upstreams: next.map(formatHostPort) }, 'resolv.conf changed: new upstreams');
      return forwarder.setUpstreams(next);
    }).catch((error: unknown) => log.warn({ err: error, resolvConf: path }, 'cannot read resolv.conf; keeping the upstreams'));
  };
  watchFile(path, { interval: RESOLV_CONF_POLL_MS, persistent: false }, onChange);
  return () => unwatchFile(path, onChange);
}

/** CoreDNS's server label (`dns://:53` for every address) and family label of a listen address. */
function listenerLabels(address: { host: string; port: number }): Listener {
  const wildcard = address.host === '0.0.0.0' || address.host === '::';
  return { server: `dns://${wildcard ? '' : formatHostPort(address).replace(/:\d+$/, '')}:${address.port}`, family: address.host.includes(':') ? 2 : 1 };
}

function servicesWithoutReadyEndpoints(store: StoreView): number {
  let count = 0;
  for (const service of store.services()) {
    if (service.kind === 'ExternalName') continue;
    if (!anyReady(store.endpointsOf(service.namespace, service.name))) count++;
  }
  return count;
}

/** The addresses clients reach us on: the listen addresses, or every interface address for a wildcard. */
function selfAddresses(config: ServeConfig): string[] {
  const interfaces = Object.values(networkInterfaces()).flat().filter((entry) => entry !== undefined);
  return config.listen.flatMap(({ host }) => {
    if (host === '0.0.0.0') return interfaces.filter((entry) => entry.family === 'IPv4').map((entry) => entry.address);
    if (host === '::') return interfaces.filter((entry) => entry.family === 'IPv6').map((entry) => entry.address);
    return [host];
  });
}
