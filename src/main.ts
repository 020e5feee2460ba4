/**
 * The composition root: config → source → store → plugins → server, with telemetry beside them. The only
 * module that knows every part; the parts know only what flows into them. A plan (from a Corefile, or from the
 * flags, which build the same server blocks) says which plugins each server block runs; serve() builds each
 * block's chain in the declared order over one store, and returns a handle whose shutdown() goes through lame
 * duck (DNS still answered, /ready at 503) and close() stops everything at once.
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { LOG_LEVELS, type LogLevel, type ProxyConfig, type ServeConfig } from './config/index.js';
import { planServers, type BlockPlan } from './config/plan.js';
import { readResolvConf } from './config/resolv-conf.js';
import { CorefileError } from './corefile/errors.js';
import { parseCorefile } from './corefile/parser.js';
import type { ServerBlock } from './corefile/types.js';
import { formatHostPort, type HostPort } from './ip.js';
import { chainOf } from './plugins/chain.js';
import { corefileFromFlags } from './plugins/from-flags.js';
import type { BindConfig } from './plugins/bind/setup.js';
import type { BufsizeConfig } from './plugins/bufsize/setup.js';
import type { NsidConfig } from './plugins/nsid/setup.js';
import type { HealthConfig } from './plugins/health/setup.js';
import type { KubernetesConfig } from './plugins/kubernetes/setup.js';
import { registerSourceMetrics } from './plugins/kubernetes/metrics.js';
import { queryLogRules, type LogConfig } from './plugins/log/setup.js';
import { PLUGINS } from './plugins/order.js';
import type { Handler, RunningPlugin, SetupContext } from './plugins/plugin.js';
import type { PrometheusConfig } from './plugins/prometheus/setup.js';
import type { ReadyConfig } from './plugins/ready/setup.js';
import { registerReloadMetrics } from './plugins/reload/metrics.js';
import type { ReloadConfig } from './plugins/reload/setup.js';
import { corefileHash, watchCorefile, type CorefileWatch } from './plugins/reload/watch.js';
import { LoopbackVips, registerProxyMetrics, ServiceProxy, type Dialer } from './proxy/index.js';
import { DnsServer, QueryAnswerer, reusePortAvailable, type BoundAddress, type ZoneRoute } from './server/index.js';
import type { WorkerPool } from './workers/pool.js';
import type { KubeSource } from './source/kube.js';
import { ManifestSource } from './source/manifests.js';
import { RecordStore } from './store/index.js';
import { createTelemetry, FailureTop, Registry, TelemetryEndpoints, TOP_DEFAULTS, type Listener, type Logger, type TopReport } from './telemetry/index.js';
import type { MultisocketConfig } from './plugins/multisocket/setup.js';
import { nameToKey } from './wire/index.js';

export interface RunningServer {
  readonly addresses: readonly BoundAddress[];
  /** Where /health, /ready, /metrics and /debug/top listen. */
  readonly http: ReadonlyMap<string, HostPort>;
  /** Why it is not ready (undefined when it is): what a worker thread reports to the main one. */
  notReady(): string | undefined;
  /** Its metrics as prom-client's JSON, for the main thread to sum with its own. */
  metricsJson(): Promise<MetricsJson>;
  /** Its failing names (/debug/top), for the main thread to sum with its own; undefined when it counts none. */
  topReport(): TopReport | undefined;
  /** Applies a Corefile the main thread has reloaded (a worker thread watches no file of its own). */
  applyCorefile(text: string, hash: string): Promise<void>;
  /** Lame duck for the health plugin's `lameduck` (answering DNS, /ready 503), then close. */
  shutdown(): Promise<void>;
  close(): Promise<void>;
}

/** What serve() runs: the server blocks with their plugins' configs, and the settings outside any plugin. */
export interface ServePlan {
  readonly blocks: readonly BlockPlan[];
  /** False for `clusterdns proxy`: the blocks give the source and the endpoints, but no DNS is answered. */
  readonly answersDns: boolean;
  readonly tcpIdleTimeoutMs: number;
  readonly maxTcpConnections: number;
  /** The node's resolv.conf: the search domains autopath appends. */
  readonly resolvConf: string;
  readonly proxy: ProxyConfig | undefined;
  readonly logLevel: LogLevel;
  /** The Corefile it came from, and that text's hash (what the reload plugin compares). */
  readonly corefile?: { readonly path: string; readonly hash: string };
  /** Threads answering DNS (the multisocket plugin); 1: this one alone. */
  readonly workers: number;
  /** What it was made from, for a worker thread to make it again (a plan holds functions, which cannot cross). */
  readonly origin: PlanOrigin;
}

export type PlanOrigin =
  | { readonly kind: 'flags'; readonly config: ServeConfig; readonly command: 'serve' | 'proxy' | 'dev' }
  | { readonly kind: 'corefile'; readonly path: string; readonly text: string };

/** The plan `origin` stands for, made again (in a worker thread). */
export function planFromOrigin(origin: PlanOrigin, logLevel: LogLevel): ServePlan {
  return origin.kind === 'flags' ? planFromFlags(origin.config, origin.command) : planFromCorefile(origin.path, logLevel, origin.text);
}

import { version } from './version.js';

export { version };

/** The plan the flags stand for: the Corefile they build, through the same plugin setups. */
export function planFromFlags(config: ServeConfig, command: 'serve' | 'proxy' | 'dev' = 'serve'): ServePlan {
  return planOf(corefileFromFlags(config), {
    answersDns: command !== 'proxy',
    tcpIdleTimeoutMs: config.tcpIdleTimeoutMs,
    maxTcpConnections: config.maxTcpConnections,
    resolvConf: config.resolvConf,
    proxy: config.proxy,
    logLevel: config.logLevel,
    origin: { kind: 'flags', config, command },
  });
}

/** The plan a Corefile gives (`serve --conf PATH`, `-conf PATH`); what no plugin says keeps its default. */
export function planFromCorefile(path: string, logLevel: LogLevel, text = readCorefile(path)): ServePlan {
  return planOf(parseCorefile(text, { file: path }), {
    corefile: { path, hash: corefileHash(text) },
    answersDns: true,
    tcpIdleTimeoutMs: 10_000,
    maxTcpConnections: 1000,
    resolvConf: '/etc/resolv.conf',
    proxy: undefined,
    logLevel,
    origin: { kind: 'corefile', path, text },
  });
}

function readCorefile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new CorefileError({ file: path, line: 0 }, `cannot read the Corefile: ${(error as Error).message}`);
  }
}

export function planOf(blocks: readonly ServerBlock[], settings: Omit<ServePlan, 'blocks' | 'workers'>): ServePlan {
  const planned = planServers(blocks, PLUGINS);
  const sockets = new Set(planned.flatMap((block) => block.plugins.filter(({ setup }) => setup.name === 'multisocket').map(({ config }) => (config as MultisocketConfig).sockets)));
  if (sockets.size > 1) {
    const at = planned.find((block) => block.plugins.some(({ setup }) => setup.name === 'multisocket'))!;
    throw new CorefileError(at, `plugin "multisocket": server blocks give different numbers (${[...sockets].join(', ')}); give one: the threads answer for every block`);
  }
  // `debug` in any block raises the process's level to debug; a level already below it (trace) stays.
  const logLevel = asksDebug({ blocks: planned }) && LOG_LEVELS.indexOf(settings.logLevel) < LOG_LEVELS.indexOf('debug') ? 'debug' : settings.logLevel;
  const plan = { ...settings, logLevel, blocks: planned, workers: [...sockets][0] ?? 1 };
  // One store per process: every kubernetes plugin must read the same source.
  const sources = new Set(pluginConfigs<KubernetesConfig>(plan, 'kubernetes').map((config) => JSON.stringify(config.source)));
  if (sources.size > 1) {
    const second = plan.blocks.filter((block) => block.plugins.some(({ setup }) => setup.name === 'kubernetes'))[1]!;
    throw new CorefileError(second, 'plugin "kubernetes": every server block\'s kubernetes must watch the same cluster (or manifests)');
  }
  return Object.freeze(plan);
}

function asksDebug(plan: Pick<ServePlan, 'blocks'>): boolean {
  return pluginConfigs(plan, 'debug').length > 0;
}

function pluginConfigs<C>(plan: Pick<ServePlan, 'blocks'>, name: string): C[] {
  return plan.blocks.flatMap((block) => block.plugins.filter(({ setup }) => setup.name === name).map(({ config }) => config as C));
}

/** The one address a process-wide endpoint plugin (health, ready, prometheus) gives, if any block has it. */
function processWide<C extends { readonly address: HostPort }>(plan: ServePlan, name: string): C | undefined {
  const configs = pluginConfigs<C>(plan, name);
  const addresses = new Set(configs.map((config) => formatHostPort(config.address)));
  if (addresses.size > 1) throw new CorefileError({ file: 'Corefile', line: 1 }, `plugin "${name}": server blocks give different addresses (${[...addresses].join(', ')}); give one`);
  return configs[0];
}

/** Where a plan listens: DNS (each block's bind addresses on its port), and the process-wide HTTP endpoints. */
export interface PlanAddresses {
  readonly dns: readonly HostPort[];
  readonly health?: HostPort;
  readonly ready?: HostPort;
  readonly metrics?: HostPort;
}

export function addressesOf(plan: ServePlan): PlanAddresses {
  const health = processWide<HealthConfig>(plan, 'health')?.address;
  const ready = processWide<ReadyConfig>(plan, 'ready')?.address;
  const metrics = processWide<PrometheusConfig>(plan, 'prometheus')?.address;
  return { dns: listenAddresses(plan.blocks), ...(health && { health }), ...(ready && { ready }), ...(metrics && { metrics }) };
}

export interface ServeOptions {
  /**
   * In a worker thread (workers/): the store the main thread keeps equal to its own, and the addresses the main
   * thread bound (with their real ports), bound again here beside its sockets.
   */
  readonly replica?: { readonly store: RecordStore; readonly listen: readonly HostPort[]; readonly thread: number };
  /** The plugins' time and timers (SetupContext's `now` and `after`): real ones unless a test steps its own. */
  readonly clock?: PluginClock;
}

/** Time and timers for the plugins, injected so tests step them. */
export type PluginClock = Pick<SetupContext, 'now' | 'after'>;

const REAL_CLOCK: PluginClock = {
  now: Date.now,
  after: (ms, callback) => {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};

export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

export async function serve(givenPlan: ServePlan, log: Logger, options: ServeOptions = {}): Promise<RunningServer> {
  let plan = givenPlan;
  if (plan.workers > 1 && !reusePortAvailable()) {
    log.warn({ workers: plan.workers, platform: process.platform, node: process.versions.node }, 'SO_REUSEPORT is not available here: one thread answers');
    plan = { ...plan, workers: 1 };
  }
  const replica = options.replica;
  const store = replica?.store ?? new RecordStore();
  const registry = new Registry();
  // The watch and the proxy run in the main thread only; a replica's store is fed from it.
  const kubeConfig = replica === undefined ? pluginConfigs<KubernetesConfig>(plan, 'kubernetes')[0] : undefined;
  const resolvConf = await readResolvConf(plan.resolvConf);
  // The kubelet gives pods the host's `search` line after the cluster's own domains.
  const search = [...new Set(resolvConf.searchLine.map((domain) => domain.replace(/\.$/, '').toLowerCase()).filter((domain) => domain !== ''))];

  let manifests: ManifestSource | undefined;
  let kube: KubeSource | undefined;
  let dialer: Dialer | undefined;
  const source = kubeConfig?.source;
  if (source === undefined) {
    // Nothing to watch: synced now (a replica is synced when the main thread's store is).
    if (replica === undefined) store.markSynced();
  } else if (source.kind === 'manifests') {
    manifests = new ManifestSource(source.path, store, log.child({ part: 'source' }), source.labels, source.namespaceLabels);
    await manifests.start();
  } else {
    // Loaded only when a cluster is watched: the HTTP and TLS stack and the kubeconfig parts cost ~4 MB of RSS.
    const { KubeSource, loadKubeConfig } = await import('./source/kube.js');
    const access = loadKubeConfig(source.kubeconfig, source.endpoint, {
      ...(source.context !== undefined && { context: source.context }),
      ...(source.tls !== undefined && { tls: source.tls }),
    });
    const portForward = plan.proxy?.via === 'port-forward';
    if (portForward) {
      // Through the API server to the pod behind an endpoint address, which the watched Pods name.
      const { portForwardDialer } = await import('./source/kube-portforward.js');
      dialer = portForwardDialer(access, (ip, namespace) => store.podAt(ip, namespace));
    }
    const observeProgramming = registerSourceMetrics(registry, () => kube?.states() ?? []);
    kube = new KubeSource(access, store, log.child({ part: 'kube' }), {
      namespaces: source.namespaces,
      // Autopath needs to know which namespace a client's address is a pod of; port-forward, which pod has an address.
      watchPods: watchesPods(plan) || portForward,
      endpointPodNames: keepsPodNames(plan),
      ...(source.labels !== undefined && { labels: source.labels }),
      ...(source.namespaceLabels !== undefined && { namespaceLabels: source.namespaceLabels }),
      onEndpointsProgrammed: ({ namespace, service, triggeredAtMs }) => {
        const record = store.getService(namespace, service);
        if (record === undefined || record.kind === 'ExternalName') return;
        const label = record.kind === 'ClusterIP' ? 'cluster_ip' : record.hasSelector ? 'headless_with_selector' : 'headless_without_selector';
        observeProgramming(label, (Date.now() - triggeredAtMs) / 1000);
      },
    });
  }

  // Subscribed before the plugins, so an address is released before anything can ask for it again.
  const vips = plan.proxy?.vip === 'loopback' ? new LoopbackVips(store, plan.proxy.range) : undefined;
  // Listen addresses by listener index; a reload may add some (new indexes) and remove some (left undefined).
  // As configured (a port may be 0): what routes match; a replica binds the main thread's real ports instead.
  let listen: Array<HostPort | undefined> = plan.answersDns ? listenAddresses(plan.blocks) : [];
  let parts: ChainParts = { store, registry, log, clock: options.clock ?? REAL_CLOCK, resolvConf: { path: plan.resolvConf, search }, selfAddresses: selfAddresses(listen), ...(vips !== undefined && { vips }) };
  let chains = buildChains(plan, listen, parts);
  let server: DnsServer | undefined;
  const telemetry = createTelemetry(registry, {
    process: replica === undefined,
    thread: replica?.thread ?? 0,
    version: version(),
    listeners: listen.map((address) => listenerLabels(address!)),
    plugins: PLUGINS.map((setup) => setup.name),
    rejectedTcpConnections: () => server?.rejectedConnections ?? 0,
  });
  // Failing names are counted where they can be read: beside /metrics, for the life of the process (reloads too).
  // Each thread counts what it answered; the main thread's /debug/top sums the worker threads' in (workers/).
  // Worked out once: the endpoints below listen where it says (a replica serves none of them itself).
  const endpointsAt = addressesOf(plan);
  const failures = plan.answersDns && endpointsAt.metrics !== undefined ? new FailureTop({ ...TOP_DEFAULTS, now: Date.now }) : undefined;
  const answerer = new QueryAnswerer(chains.routes, { metrics: telemetry.queries, log: log.child({ part: 'query' }), ...(failures !== undefined && { failures }) });
  const proxy = plan.proxy === undefined || replica !== undefined ? undefined : new ServiceProxy(store, {
    ...plan.proxy,
    vips: vips === undefined ? { mode: 'cluster-ip' } : { mode: 'loopback', allocator: vips },
    ...(dialer !== undefined && { dialer }),
  }, log.child({ part: 'proxy' }));
  if (proxy !== undefined) registerProxyMetrics(telemetry.registry, proxy);
  server = new DnsServer(answerer, {
    listen: replica?.listen ?? listen.map((address) => address!),
    tcpIdleTimeoutMs: plan.tcpIdleTimeoutMs,
    maxTcpConnections: plan.maxTcpConnections,
    reusePort: plan.workers > 1,
  }, log.child({ part: 'server' }));
  let pool: WorkerPool | undefined;
  const health = processWide<HealthConfig>(plan, 'health');
  let lameDuck = false;
  const notReady = (): string | undefined => {
    if (lameDuck) return 'lame duck: shutting down';
    if (store.synced) {
      const waiting = [...chains.running.map((plugin) => plugin.notReady?.()), pool?.notReady()].filter((reason) => reason !== undefined);
      return waiting.length === 0 ? undefined : `not ready: ${waiting.join(', ')}`;
    }
    const waiting = kube?.states().filter((state) => !state.synced).map((state) => `${state.kind}s${state.reason ? ` (${state.reason})` : ''}`);
    return `waiting for the first sync of ${waiting?.join(', ') ?? (replica !== undefined ? 'the main thread\'s store' : 'the manifests')}`;
  };
  const endpoints = new TelemetryEndpoints(telemetry.registry, {
    notReadyReason: notReady,
    warnings: () => [...(kube?.warnings() ?? []), ...chains.running.flatMap((plugin) => plugin.warnings?.() ?? [])],
  }, async () => (pool === undefined ? registry.metrics() : pool.metrics(await registry.getMetricsAsJSON())),
  failures === undefined ? undefined : () => (pool === undefined ? failures.report() : pool.top(failures.report())));

  const closeAll = async (): Promise<void> => {
    await pool?.close();
    await server?.close();
    await endpoints.close();
    await kube?.close();
    manifests?.close();
    proxy?.close();
    reloading?.close();
    for (const plugin of chains.running) await plugin.close?.();
    vips?.close();
  };
  const reloadConfig = pluginConfigs<ReloadConfig>(plan, 'reload')[0];
  const reloadMetrics = plan.corefile !== undefined && reloadConfig !== undefined && replica === undefined ? registerReloadMetrics(registry) : undefined;
  reloadMetrics?.loaded(plan.corefile!.hash);
  // Compared with what the Corefile said (its multisocket), not with what this machine allowed.
  let current = givenPlan;
  /** A changed Corefile: parsed and validated whole, then the chains swapped; else the old one keeps serving. */
  const reload = async (text: string, hash: string): Promise<void> => {
    let next: ServePlan;
    try {
      next = planFromCorefile(current.corefile!.path, current.logLevel, text);
      const unchanged = sameRuntime(current, next);
      if (unchanged !== undefined) throw new CorefileError({ file: current.corefile!.path, line: 1 }, `${unchanged} changed: that needs a restart; the running configuration stays`);
    } catch (error) {
      reloadMetrics?.failed();
      log.error({ corefile: current.corefile!.path }, `reload failed, still serving the previous Corefile: ${(error as Error).message}`);
      return;
    }
    // Addresses kept keep their sockets and listener index; new ones are bound as new listeners; the ones gone
    // are closed after the grace below, answering through the old chains until then.
    const wanted = new Map(listenAddresses(next.blocks).map((address) => [formatHostPort(address), address]));
    const kept = listen.map((address) => (address !== undefined && wanted.has(formatHostPort(address)) ? address : undefined));
    const added = [...wanted.values()].filter((address) => !kept.some((have) => have !== undefined && formatHostPort(have) === formatHostPort(address)));
    const nextListen = [...kept, ...added];
    const removed = listen.flatMap((address, index) => (address !== undefined && kept[index] === undefined ? [index] : []));
    const old = chains;
    const nextParts = { ...parts, selfAddresses: selfAddresses(nextListen) };
    const fresh = buildChains(next, nextListen, nextParts);
    const boundNow: BoundAddress[] = [];
    try {
      for (const plugin of fresh.running) await plugin.start?.();
      for (const [offset, address] of added.entries()) {
        const index = listen.length + offset;
        const bound = await server!.listen(address, index);
        boundNow.push(bound);
        telemetry.queries.describeListener(index, listenerLabels(bound));
      }
    } catch (error) {
      for (const plugin of fresh.running) await plugin.close?.();
      for (const offset of boundNow.keys()) await server!.release(listen.length + offset);
      reloadMetrics?.failed();
      log.error({ err: error, corefile: current.corefile!.path }, `reload failed, still serving the previous Corefile: ${(error as Error).message}`);
      return;
    }
    if (asksDebug(current) !== asksDebug(next)) {
      log.warn({ corefile: current.corefile!.path }, 'the debug plugin was added or removed: the log level changes when clusterdns restarts');
    }
    for (const index of removed) fresh.routes[index] = old.routes[index]!;
    chains = fresh;
    current = next;
    listen = nextListen;
    parts = nextParts;
    answerer.setRoutes(fresh.routes);
    reloadMetrics?.loaded(hash);
    pool?.reload(text, hash);
    log.info({
      corefile: next.corefile!.path,
      hash: hash.slice(0, 16),
      ...(boundNow.length > 0 && { listening: boundNow.map(formatHostPort) }),
      ...(removed.length > 0 && { closing: removed.map((index) => formatHostPort(old.listen[index]!)) }),
    }, 'reloaded the Corefile: new queries use it');
    // Queries already inside the old chains (waiting on an upstream) finish there before it goes, and so do the
    // listeners the new Corefile has no more.
    setTimeout(() => {
      for (const index of removed) {
        void server!.release(index);
        fresh.routes[index] = [];
      }
      void Promise.all(old.running.map((plugin) => plugin.close?.()));
    }, OLD_CHAIN_GRACE_MS).unref();
  };
  let reloading: CorefileWatch | undefined;
  let addresses: BoundAddress[];
  try {
    for (const plugin of chains.running) await plugin.start?.();
    addresses = await server.start();
    addresses.forEach((address, index) => telemetry.queries.describeListener(index, listenerLabels(address)));
    if (replica === undefined && plan.workers > 1 && addresses.length > 0) {
      // The other threads bind the addresses this one has: with their real ports, when 0 was asked.
      const { WorkerPool } = await import('./workers/pool.js');
      pool = new WorkerPool(plan.workers - 1, { origin: plan.origin, logLevel: plan.logLevel, listen: addresses, store, registry, log: log.child({ part: 'workers' }) });
      await pool.start();
    }
    const { health: healthAt, ready: readyAt, metrics: metricsAt } = replica === undefined ? endpointsAt : {};
    await endpoints.start({
      ...(healthAt !== undefined && { health: healthAt }),
      ...(readyAt !== undefined && { ready: readyAt }),
      ...(metricsAt !== undefined && { metrics: metricsAt }),
    });
    await kube?.start();
    proxy?.start();
    if (reloadMetrics !== undefined) reloading = watchCorefile(plan.corefile!.path, plan.corefile!.hash, reloadConfig!, (text, hash) => void reload(text, hash));
  } catch (error) {
    await closeAll();
    throw error;
  }
  if (replica === undefined) log.info({
    zones: plan.blocks.map((block) => `${block.zones.join(' ')}:${block.port}`),
    ...(plan.workers > 1 && { workers: plan.workers }),
    listen: addresses.map(formatHostPort),
    http: Object.fromEntries([...endpoints.bound].map(([path, address]) => [path.slice(1), formatHostPort(address)])),
    source: source === undefined ? 'none' : source.kind === 'manifests' ? source.path : 'kubernetes',
    plugins: plan.blocks.map((block) => block.plugins.map(({ setup }) => setup.name).join(',')),
  }, 'serving');

  const lameduckMs = health?.lameduckMs ?? 0;
  let closing: Promise<void> | undefined;
  return {
    addresses,
    http: new Map([...endpoints.bound].map(([path, address]) => [path.slice(1), address])),
    notReady,
    metricsJson: () => registry.getMetricsAsJSON(),
    topReport: () => failures?.report(),
    applyCorefile: (text, hash) => reload(text, hash),
    shutdown() {
      if (lameDuck) return closing ?? Promise.resolve();
      lameDuck = true;
      log.info({ lameduckMs }, 'lame duck: still answering, /ready reports 503');
      closing = new Promise<void>((resolve) => setTimeout(resolve, lameduckMs)).then(closeAll);
      return closing;
    },
    close() {
      closing ??= closeAll();
      return closing;
    },
  };
}

/** How long a replaced chain's plugins live on after a reload: past any upstream wait a query may be in. */
const OLD_CHAIN_GRACE_MS = 10_000;

interface ChainParts {
  readonly store: RecordStore;
  readonly registry: Registry;
  readonly log: Logger;
  readonly clock: PluginClock;
  readonly resolvConf: { readonly path: string; readonly search: readonly string[] };
  readonly selfAddresses: readonly string[];
  readonly vips?: LoopbackVips;
}

/** Every block's plugins created over the one store, and the zones each listener routes to their chains. */
function buildChains(plan: ServePlan, listen: ReadonlyArray<HostPort | undefined>, parts: ChainParts): Chains {
  const running: RunningPlugin[] = [];
  const routes: ZoneRoute[][] = listen.map(() => []);
  for (const block of plan.blocks) {
    const configs = new Map(block.plugins.map(({ setup, config }) => [setup.name, config]));
    const vips = parts.vips;
    const context = {
      zones: block.zones,
      store: parts.store,
      registry: parts.registry,
      log: parts.log.child({ part: 'plugin' }),
      now: parts.clock.now,
      after: parts.clock.after,
      selfAddresses: parts.selfAddresses,
      resolvConf: parts.resolvConf,
      configOf: (name: string) => configs.get(name),
      ...(vips !== undefined && { virtualIPs: (service: Parameters<LoopbackVips['addressesOf']>[0]) => vips.addressesOf(service) }),
    };
    const plugins = block.plugins.map(({ setup, config }) => setup.create(config, context));
    running.push(...plugins);
    const chain = chainOf(plugins.flatMap((plugin): Handler[] => (plugin.handler === undefined ? [] : [plugin.handler])));
    const reportError = plugins.find((plugin) => plugin.reportError !== undefined)?.reportError;
    const hosts = (configs.get('bind') as BindConfig | undefined)?.hosts;
    const logged = configs.get('log') as LogConfig | undefined;
    const queryLog = logged === undefined ? undefined : queryLogRules(logged);
    const maxUdpReply = (configs.get('bufsize') as BufsizeConfig | undefined)?.size;
    const nsid = (configs.get('nsid') as NsidConfig | undefined)?.option;
    listen.forEach((address, index) => {
      if (address === undefined || address.port !== block.port || (hosts !== undefined && !hosts.includes(address.host))) return;
      for (const zone of block.zones) {
        routes[index]!.push({ zoneKey: nameToKey(zone), chain, ...(queryLog !== undefined && { queryLog, local: address.host }), ...(reportError !== undefined && { reportError }), ...(maxUdpReply !== undefined && { maxUdpReply }), ...(nsid !== undefined && { nsid }) });
      }
    });
  }
  return { running, routes, listen };
}

/** The running plugins of a plan, and per listener index the routes into their chains. */
interface Chains {
  readonly running: RunningPlugin[];
  readonly routes: ZoneRoute[][];
  /** The listen addresses the routes are for, by listener index. */
  readonly listen: ReadonlyArray<HostPort | undefined>;
}

/** Pods are watched when a pod record must be verified or autopath must know a client's namespace. */
function watchesPods(plan: ServePlan): boolean {
  return pluginConfigs<KubernetesConfig>(plan, 'kubernetes').some((config) => config.pods === 'verified') || pluginConfigs(plan, 'autopath').length > 0;
}

/** Endpoints keep their pod names only where a kubernetes plugin names endpoints by them: 100k names are ~5 MB. */
function keepsPodNames(plan: ServePlan): boolean {
  return pluginConfigs<KubernetesConfig>(plan, 'kubernetes').some((config) => config.endpointPodNames);
}

/** What a reload cannot change in a running process, or undefined when `next` keeps all of it. */
function sameRuntime(current: ServePlan, next: ServePlan): string | undefined {
  const source = (plan: ServePlan): string => JSON.stringify(pluginConfigs<KubernetesConfig>(plan, 'kubernetes')[0]?.source);
  if (source(current) !== source(next)) return 'the kubernetes source (kubeconfig, endpoint, tls, manifests, namespaces, namespace_labels or labels)';
  if (!watchesPods(current) && watchesPods(next)) return 'watching pods (pods verified or autopath, newly asked for)';
  // Manifest files always keep pod names; a watched cluster's endpoints were stored without them.
  const watched = pluginConfigs<KubernetesConfig>(current, 'kubernetes')[0]?.source.kind === 'cluster';
  if (watched && !keepsPodNames(current) && keepsPodNames(next)) return 'keeping endpoints\' pod names (endpoint_pod_names, newly asked for)';
  if (current.workers !== next.workers) return 'the number of threads (multisocket)';
  for (const name of ['health', 'ready', 'prometheus']) {
    if (JSON.stringify(pluginConfigs(current, name)) !== JSON.stringify(pluginConfigs(next, name))) return `the ${name} plugin`;
  }
  return undefined;
}

/** Every (address, port) a block listens on: its `bind` addresses (default every IPv4 address) on its port. */
function listenAddresses(blocks: readonly BlockPlan[]): HostPort[] {
  const seen = new Map<string, HostPort>();
  for (const block of blocks) {
    const bound = block.plugins.find(({ setup }) => setup.name === 'bind')?.config as BindConfig | undefined;
    for (const host of bound?.hosts ?? ['0.0.0.0']) seen.set(formatHostPort({ host, port: block.port }), { host, port: block.port });
  }
  return [...seen.values()];
}

/** CoreDNS's server label (`dns://:53` for every address) and family label of a listen address. */
function listenerLabels(address: HostPort): Listener {
  const wildcard = address.host === '0.0.0.0' || address.host === '::';
  return { server: `dns://${wildcard ? '' : formatHostPort(address).replace(/:\d+$/, '')}:${address.port}`, family: address.host.includes(':') ? 2 : 1 };
}

/** The addresses clients reach us on: the listen addresses, or every interface address for a wildcard. */
function selfAddresses(listen: ReadonlyArray<HostPort | undefined>): string[] {
  const interfaces = Object.values(networkInterfaces()).flat().filter((entry) => entry !== undefined);
  return listen.flatMap((address) => {
    if (address === undefined) return [];
    const { host } = address;
    if (host === '0.0.0.0') return interfaces.filter((entry) => entry.family === 'IPv4').map((entry) => entry.address);
    if (host === '::') return interfaces.filter((entry) => entry.family === 'IPv6').map((entry) => entry.address);
    return [host];
  });
}
