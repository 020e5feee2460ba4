/**
 * The composition root: config → source → store → resolvers → server, with telemetry beside them. The only
 * module that knows every part; the parts know only what flows into them. serve() returns a handle whose
 * shutdown() goes through lame duck (DNS still answered, /ready at 503) and close() stops everything at once.
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { ListenAddress, ServeConfig } from './config/index.js';
import { LoopbackVips, registerProxyMetrics, ServiceProxy, type Dialer } from './proxy/index.js';
import { ClusterResolver } from './resolvers/cluster/index.js';
import { DnsServer, QueryAnswerer, type BoundAddress } from './server/index.js';
import type { KubeSource } from './source/kube.js';
import { ManifestSource } from './source/manifests.js';
import { RecordStore, type StoreView } from './store/index.js';
import { createTelemetry, TelemetryEndpoints, type Listener, type Logger } from './telemetry/index.js';

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
  const store = new RecordStore();
  let manifests: ManifestSource | undefined;
  let kube: KubeSource | undefined;
  let dialer: Dialer | undefined;
  if (config.manifests !== undefined) {
    manifests = new ManifestSource(config.manifests, store, log.child({ part: 'source' }));
    await manifests.start();
  } else {
    // Loaded only when a cluster is watched: importing @kubernetes/client-node costs ~72 MB of RSS and 0.35 s.
    const { KubeSource, loadKubeConfig } = await import('./source/kube.js');
    const kubeConfig = loadKubeConfig(config.kubeconfig);
    const portForward = config.proxy?.via === 'port-forward';
    if (portForward) {
      // Through the API server to the pod behind an endpoint address, which the watched Pods name.
      const { portForwardDialer } = await import('./source/kube-portforward.js');
      dialer = portForwardDialer(kubeConfig, (ip, namespace) => store.podsByIP(ip).find((pod) => pod.namespace === namespace));
    }
    kube = new KubeSource(kubeConfig, store, log.child({ part: 'kube' }), {
      namespaces: config.namespaces,
      watchPods: config.pods === 'verified' || portForward,
      onEndpointsProgrammed: ({ namespace, service, triggeredAtMs }) => {
        const record = store.getService(namespace, service);
        if (record === undefined || record.kind === 'ExternalName') return;
        const label = record.kind === 'ClusterIP' ? 'cluster_ip' : record.hasSelector ? 'headless_with_selector' : 'headless_without_selector';
        telemetry.observeProgramming(label, (Date.now() - triggeredAtMs) / 1000);
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
    ...(vips !== undefined && { virtualIPs: (service) => vips.addressesOf(service) }),
  });
  let server: DnsServer | undefined;
  const telemetry = createTelemetry({
    version: version(),
    listeners: config.listen.map(listenerLabels),
    servicesWithoutReadyEndpoints: () => servicesWithoutReadyEndpoints(store),
    clusterNames: () => cluster.nameCount,
    rejectedTcpConnections: () => server?.rejectedConnections ?? 0,
    ...(kube !== undefined && { watchStates: () => kube.states() }),
  });
  const proxy = config.proxy === undefined ? undefined : new ServiceProxy(store, {
    ...config.proxy,
    vips: vips === undefined ? { mode: 'cluster-ip' } : { mode: 'loopback', allocator: vips },
    ...(dialer !== undefined && { dialer }),
  }, log.child({ part: 'proxy' }));
  if (proxy !== undefined) registerProxyMetrics(telemetry.registry, proxy);
  const answerer = new QueryAnswerer([cluster], { metrics: telemetry.queries, log: log.child({ part: 'query' }), logQueries: config.logQueries });
  server = new DnsServer(answerer, config, log.child({ part: 'server' }));
  let lameDuck = false;
  const endpoints = new TelemetryEndpoints(telemetry.registry, {
    notReadyReason: () => {
      if (lameDuck) return 'lame duck: shutting down';
      if (store.synced) return undefined;
      const waiting = kube?.states().filter((state) => !state.synced).map((state) => `${state.kind}s${state.reason ? ` (${state.reason})` : ''}`);
      return `waiting for the first sync of ${waiting?.join(', ') ?? 'the manifests'}`;
    },
  });

  const closeAll = async (): Promise<void> => {
    await server?.close();
    await endpoints.close();
    await kube?.close();
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
    proxy?.start();
  } catch (error) {
    await closeAll();
    throw error;
  }
  log.info({
    zone: config.zone,
    listen: addresses.map(formatAddress),
    http: Object.fromEntries([...endpoints.bound].map(([path, address]) => [path.slice(1), formatAddress(address)])),
    source: manifests !== undefined ? config.manifests : 'kubernetes',
    names: cluster.nameCount,
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

export function formatAddress(address: { host: string; port: number }): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** CoreDNS's server label (`dns://:53` for every address) and family label of a listen address. */
function listenerLabels(address: { host: string; port: number }): Listener {
  const wildcard = address.host === '0.0.0.0' || address.host === '::';
  return { server: `dns://${wildcard ? '' : formatAddress(address).replace(/:\d+$/, '')}:${address.port}`, family: address.host.includes(':') ? 2 : 1 };
}

function servicesWithoutReadyEndpoints(store: StoreView): number {
  let count = 0;
  for (const service of store.services()) {
    if (service.kind === 'ExternalName') continue;
    if (!store.endpointsOf(service.namespace, service.name).some((endpoint) => endpoint.ready)) count++;
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
