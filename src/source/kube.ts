/**
 * The Kubernetes API source: watches Namespaces, Services, discovery.k8s.io/v1 EndpointSlices and (only when
 * asked) Pods, and keeps the store's slim records in step with them. With its kube-* siblings, the only part of
 * clusterdns that imports @kubernetes/client-node: its kubeconfig schema and credential plugins (kube-config.ts),
 * never its generated API or its informer cache, which would hold every whole API object.
 *
 * Each watched collection runs its own list+watch loop (kube-stream.ts); their retries share one view of whether
 * the API server is reachable (kube-reach.ts), so all of them are back the moment it answers again. Once every
 * one of them has completed its first list the store is marked synced; until then the cluster zone answers
 * SERVFAIL. Nothing here ever clears the store: through API outages, 410s, errors and silent watches, the last
 * known records keep being served, and while every watch fails the store is told since when (markOutOfTouch), so
 * answers can say how old what they serve is.
 *
 * With `namespaces`, Services, EndpointSlices and Pods are watched per namespace on the namespaced paths
 * (`/api/v1/namespaces/<ns>/services`), so the API server does the filtering and a namespace-scoped Role is
 * enough for them; Namespaces (cluster-scoped) are watched whole and filtered here. Without it, one cluster-wide
 * watch per kind. With `namespaceLabels`, every watch is cluster-wide and a gate (namespace-gate.ts) lets into the
 * store only what is in a namespace whose labels match.
 */
import type { Logger } from 'pino';
import { ClusterDnsError, ConfigError } from '../errors.js';
import type { RecordsByKind, RecordStore, ResourceKind } from '../store/index.js';
import {
  CollectionStream,
  storeSink,
  type CollectionSpec,
  type RecordSink,
  type StreamState,
  type StreamTuning,
} from './kube-stream.js';
import type { Json } from './kube-api.js';
import { checkCluster, isPlainLoopback, type KubeAccess } from './kube-config.js';
import { Reachability, REAL_CLOCK, type Clock, type ReachMember } from './kube-reach.js';
import { parseLabelSelector } from './label-selector.js';
import { NamespaceGate } from './namespace-gate.js';
import { toEndpointSlice, toNamespace, toPod, toService } from './objects.js';

export { kubeConfigFromText, loadKubeConfig, type KubeAccess } from './kube-config.js';
export { backoffDelay } from './kube-stream.js';
export type { Clock } from './kube-reach.js';

/** Finished pods never hold an IP that DNS should vouch for; the server leaves them out. */
export const POD_FIELD_SELECTOR = 'status.phase!=Succeeded,status.phase!=Failed';

export const KUBE_DEFAULTS = {
  /** Items per list page at most (client-go's default). */
  pageSize: 500,
  /** JSON per list page to aim for. */
  pageBytes: 1 << 20,
  /** Real servers send a bookmark about every minute; five silent minutes means the watch is dead. */
  watchdogMs: 5 * 60_000,
  /** A list page, or a watch's response headers, that takes longer than this is abandoned and retried. */
  requestTimeoutMs: 60_000,
  backoffBaseMs: 500,
  backoffCapMs: 30_000,
  /** While every watch fails, one probe of the API server about every 0.75 s (0.5 to 1 s apart). */
  probeMs: 1_000,
} as const;

export interface KubeSourceOptions {
  /** Watch only these namespaces (CoreDNS's `namespaces`); all when absent or empty. */
  readonly namespaces?: readonly string[];
  /** Watch Pods (for `pods verified`, search-path completion); only IP → namespace/name is kept. */
  readonly watchPods: boolean;
  /** Keep each endpoint's pod name (`targetRef.name`), for `endpoint_pod_names`; false by default. */
  readonly endpointPodNames?: boolean;
  /**
   * A label selector (label-selector.ts, canonical) for Services, EndpointSlices and Pods: the kubernetes plugin's
   * `labels`. The API server filters by it (Namespaces are not filtered), as CoreDNS's lists and watches do; the
   * EndpointSlice controller copies a Service's labels onto its slices, so a Service and its slices go together.
   */
  readonly labels?: string;
  /**
   * A label selector (canonical) for Namespaces: the kubernetes plugin's `namespace_labels`. Only the namespaces
   * that match are served, with their Services, EndpointSlices and Pods (namespace-gate.ts); a namespace that is
   * relabelled comes and goes without a list. Not with `namespaces`.
   */
  readonly namespaceLabels?: string;
  readonly pageSize?: number;
  readonly pageBytes?: number;
  /** A watch with no event and no bookmark for a whole period of this is aborted and restarted. */
  readonly watchdogMs?: number;
  readonly requestTimeoutMs?: number;
  /** Retry delays: full jitter over base × 2^(n−1), at most cap. */
  readonly backoff?: { readonly baseMs: number; readonly capMs: number };
  /** While every watch fails, the probes of the API server are 0.5 to 1 times this apart. */
  readonly probeMs?: number;
  /** Random source in [0, 1) for the jitter. */
  readonly random?: () => number;
  /** Time and timers for the waits between retries, `lastEventAt` and `retryingSince`. */
  readonly clock?: Clock;
  /**
   * Told when a watched EndpointSlice change is in the store, with the time the change was triggered (the
   * `endpoints.kubernetes.io/last-change-trigger-time` annotation), for the DNS programming latency metric.
   */
  readonly onEndpointsProgrammed?: (change: { namespace: string; service: string; triggeredAtMs: number }) => void;
}

/** One watched kind's health, for /ready, metrics and logs (its namespaces' streams taken together). */
export interface WatchState {
  readonly kind: ResourceKind;
  /** Every watch of the kind is established (it has not failed since it last connected). */
  readonly connected: boolean;
  /** Lists made again after a 410 Gone. */
  readonly relists: number;
  /** Milliseconds since the epoch (per `now`) of the last event or bookmark, if any yet. */
  readonly lastEventAt: number | undefined;
  /** Every watch of the kind has completed its first list. */
  readonly synced: boolean;
  /** Why it is not connected, while it is not. */
  readonly reason: string | undefined;
  /** Since when (clock ms) a watch of the kind has been retrying, while one is. */
  readonly retryingSince: number | undefined;
  /** When (clock ms) the next try of a retrying watch of the kind is due; undefined while each is trying. */
  readonly nextTryAt: number | undefined;
}

export type WatchStateListener = (state: WatchState) => void;

interface KindDef<K extends ResourceKind> {
  readonly kind: K;
  readonly prefix: string;
  readonly resource: string;
  readonly namespaced: boolean;
  readonly convert: (object: Json) => RecordsByKind[K] | undefined;
  readonly fieldSelector?: string;
}

const NAMESPACES: KindDef<'namespace'> = { kind: 'namespace', prefix: '/api/v1', resource: 'namespaces', namespaced: false, convert: toNamespace };
const SERVICES: KindDef<'service'> = { kind: 'service', prefix: '/api/v1', resource: 'services', namespaced: true, convert: toService };
const ENDPOINT_SLICES: KindDef<'endpointslice'> = {
  kind: 'endpointslice', prefix: '/apis/discovery.k8s.io/v1', resource: 'endpointslices', namespaced: true, convert: (object) => toEndpointSlice(object, false),
};
const PODS: KindDef<'pod'> = {
  kind: 'pod', prefix: '/api/v1', resource: 'pods', namespaced: true, convert: toPod, fieldSelector: POD_FIELD_SELECTOR,
};

/**
 * Every collection this source may list and watch, as RBAC names it (API group, resource); Pods only with
 * `watchPods`. manifests/clusterrole.yaml grants exactly these, with verbs list and watch
 * (test/manifests.test.ts holds the two together).
 */
export const WATCHED_RESOURCES: ReadonlyArray<{ readonly group: string; readonly resource: string }> = [NAMESPACES, SERVICES, ENDPOINT_SLICES, PODS]
  .map(({ prefix, resource }) => Object.freeze({ group: /^\/apis\/([^/]+)\//.exec(prefix)?.[1] ?? '', resource }));


export class KubeSource {
  private readonly streams: Array<{ readonly kind: ResourceKind; readonly state: StreamState; readonly reach: ReachMember; readonly run: () => Promise<void> }> = [];
  private readonly kinds: ResourceKind[];
  private readonly controller = new AbortController();
  private readonly listeners = new Set<WatchStateListener>();
  private readonly lastStates = new Map<ResourceKind, string>();
  private loops: Array<Promise<void>> = [];
  private started = false;
  private closed = false;
  private syncedOnce = false;
  private readonly syncedPromise: Promise<void>;
  private resolveSynced!: () => void;
  private rejectSynced!: (error: Error) => void;
  private startedAt = 0;
  private readonly clock: Clock;
  private readonly reach: Reachability;
  /** With `namespaceLabels`: what stands between the streams and the store. */
  private gate: NamespaceGate | undefined;

  constructor(
    private readonly access: KubeAccess,
    private readonly store: RecordStore,
    private readonly log: Logger,
    private readonly options: KubeSourceOptions,
  ) {
    this.clock = options.clock ?? REAL_CLOCK;
    // The records are as of the moment the server was taken to be down: the last of the watches that still had
    // it has just failed, and until then each change reached the store. (A watch on a network that went silent
    // is only given up by its watchdog, so there the count starts up to watchdogMs late.)
    this.reach = new Reachability(
      { probeMs: options.probeMs ?? KUBE_DEFAULTS.probeMs, random: options.random ?? Math.random, clock: this.clock },
      (down) => store.markOutOfTouch(down ? this.clock.now() : undefined),
    );
    this.kinds = ['namespace', 'service', 'endpointslice', ...(options.watchPods ? ['pod' as const] : [])];
    this.syncedPromise = new Promise<void>((resolve, reject) => {
      this.resolveSynced = resolve;
      this.rejectSynced = reject;
    });
    // close() before sync rejects it; callers that never asked must not see an unhandled rejection.
    this.syncedPromise.catch(() => undefined);
  }

  /** Starts every list+watch loop and returns; it does not wait for the first sync (see `synced()`). */
  async start(): Promise<void> {
    if (this.started) throw new ClusterDnsError('E_STATE', 'KubeSource.start() called twice');
    if (this.closed) throw new ClusterDnsError('E_STATE', 'KubeSource.start() after close()');
    this.started = true;
    checkCluster(this.access.cluster, this.access.origin);
    if (isPlainLoopback(this.access.cluster) && !this.access.cluster.skipTLSVerify) {
      this.log.debug({ server: this.access.cluster.server }, 'plain http:// to a loopback address (kubectl proxy?), accepted as kubectl does');
    }
    const namespaces = this.options.namespaces?.length ? [...new Set(this.options.namespaces)] : undefined;
    if (namespaces !== undefined && this.options.namespaceLabels !== undefined) {
      throw new ConfigError('namespaces and namespace_labels cannot both be set');
    }
    if (this.options.namespaceLabels !== undefined) {
      const selector = parseLabelSelector(this.options.namespaceLabels);
      this.gate = new NamespaceGate(this.store);
      this.addKind({ ...NAMESPACES, convert: (object) => (selector.matches(namespaceLabels(object)) ? toNamespace(object) : undefined) }, undefined);
    } else {
      this.addKind(NAMESPACES, undefined, namespaces); // cluster-scoped: one watch, filtered here
    }
    this.addKind(SERVICES, namespaces);
    this.addKind(this.options.endpointPodNames === true ? { ...ENDPOINT_SLICES, convert: (object) => toEndpointSlice(object, true) } : ENDPOINT_SLICES, namespaces);
    if (this.options.watchPods) this.addKind(PODS, namespaces);
    this.startedAt = Date.now();
    this.log.info({ kinds: this.kinds, namespaces: namespaces ?? 'all', server: this.access.server },
      'watching the Kubernetes API');
    this.loops = this.streams.map(({ run }) => run());
  }

  /** Resolves once every watched kind has completed its first list (the store is then marked synced). */
  synced(): Promise<void> {
    return this.syncedPromise;
  }

  get isSynced(): boolean {
    return this.syncedOnce;
  }

  /** The state of each watched kind, in a fixed order (namespace, service, endpointslice, pod). */
  states(): WatchState[] {
    return this.kinds.map((kind) => this.stateOf(kind));
  }

  /**
   * A line per watched kind that is not connected, for /ready's warnings: since when it retries, why, and when
   * it tries next.
   */
  warnings(): string[] {
    const now = this.clock.now();
    return this.states().filter((state) => !state.connected && state.retryingSince !== undefined).map((state) => {
      const next = state.nextTryAt === undefined ? 'trying now' : `next try in ${seconds(state.nextTryAt - now)}`;
      return `watch of ${state.kind}s: retrying for ${seconds(now - state.retryingSince!)} (${state.reason ?? 'failed'}), ${next}; serving the last known records`;
    });
  }

  /** Told of each change of a kind's state: connected, synced, relists, reason (not of every event). */
  onStateChange(listener: WatchStateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops every watch and request and waits for the loops to end; no timer or socket is left behind. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.controller.abort();
    this.reach.close();
    await Promise.all(this.loops);
    this.rejectSynced(new ClusterDnsError('E_CLOSED', 'the Kubernetes source closed before its first sync'));
  }

  private endpointsProgrammed(object: Json): void {
    const metadata = (object.metadata ?? {}) as { namespace?: unknown; labels?: Record<string, unknown>; annotations?: Record<string, unknown> };
    const trigger = metadata.annotations?.['endpoints.kubernetes.io/last-change-trigger-time'];
    const service = metadata.labels?.['kubernetes.io/service-name'];
    const triggeredAtMs = typeof trigger === 'string' ? Date.parse(trigger) : NaN;
    if (Number.isNaN(triggeredAtMs) || typeof service !== 'string' || typeof metadata.namespace !== 'string') return;
    this.options.onEndpointsProgrammed?.({ namespace: metadata.namespace, service, triggeredAtMs });
  }

  private addKind<K extends ResourceKind>(def: KindDef<K>, namespaces: readonly string[] | undefined, keepNames?: readonly string[]): void {
    const tuning: StreamTuning = {
      pageSize: this.options.pageSize ?? KUBE_DEFAULTS.pageSize,
      pageBytes: this.options.pageBytes ?? KUBE_DEFAULTS.pageBytes,
      watchdogMs: this.options.watchdogMs ?? KUBE_DEFAULTS.watchdogMs,
      requestTimeoutMs: this.options.requestTimeoutMs ?? KUBE_DEFAULTS.requestTimeoutMs,
      backoffBaseMs: this.options.backoff?.baseMs ?? KUBE_DEFAULTS.backoffBaseMs,
      backoffCapMs: this.options.backoff?.capMs ?? KUBE_DEFAULTS.backoffCapMs,
      random: this.options.random ?? Math.random,
      now: () => this.clock.now(),
    };
    const allowed = keepNames === undefined ? undefined : new Set(keepNames);
    const keep = allowed === undefined ? undefined : (record: RecordsByKind[K]): boolean => allowed.has(record.name);
    const add = (spec: CollectionSpec<K>, sink: RecordSink<K>): void => {
      const log = this.log.child({ kind: def.kind, ...(spec.namespace !== undefined && { namespace: spec.namespace }) });
      const reach = this.reach.join();
      const stream = new CollectionStream(this.access, spec, sink, log, tuning, this.controller.signal, reach, () => this.changed(def.kind));
      this.streams.push({ kind: def.kind, state: stream.state, reach, run: () => stream.run() });
    };
    const observe = def.kind === 'endpointslice' && this.options.onEndpointsProgrammed !== undefined
      ? (object: Json): void => this.endpointsProgrammed(object)
      : undefined;
    const labelled = this.options.labels !== undefined && def.kind !== 'namespace';
    const base = {
      kind: def.kind,
      convert: def.convert,
      ...(def.fieldSelector !== undefined && { fieldSelector: def.fieldSelector }),
      ...(labelled && { labelSelector: this.options.labels }),
      ...(keep && { keep }),
      ...(observe && { observe }),
    };
    if (namespaces === undefined || !def.namespaced) {
      add({ ...base, path: `${def.prefix}/${def.resource}` }, this.gate === undefined ? storeSink(this.store, def.kind) : this.gate.sink(def.kind));
      return;
    }
    for (const namespace of namespaces) {
      add({ ...base, namespace, path: `${def.prefix}/namespaces/${namespace}/${def.resource}` }, storeSink(this.store, def.kind, namespace));
    }
  }

  private stateOf(kind: ResourceKind): WatchState {
    const entries = this.streams.filter((entry) => entry.kind === kind);
    const streams = entries.map((entry) => entry.state);
    const lastEventAt = extreme(streams.map((state) => state.lastEventAt), Math.max);
    const retrying = entries.filter((entry) => !entry.state.connected && entry.state.retryingSince !== undefined);
    return {
      kind,
      connected: streams.length > 0 && streams.every((state) => state.connected),
      relists: streams.reduce((sum, state) => sum + state.relists, 0),
      lastEventAt,
      synced: streams.length > 0 && streams.every((state) => state.listed),
      reason: streams.find((state) => state.reason !== undefined)?.reason,
      retryingSince: extreme(retrying.map((entry) => entry.state.retryingSince), Math.min),
      nextTryAt: extreme(retrying.map((entry) => entry.reach.nextTryAt()), Math.min),
    };
  }

  private changed(kind: ResourceKind): void {
    const state = this.stateOf(kind);
    const { lastEventAt: _event, nextTryAt: _next, ...compared } = state;
    const signature = JSON.stringify(compared);
    if (this.lastStates.get(kind) !== signature) {
      this.lastStates.set(kind, signature);
      for (const listener of this.listeners) {
        try {
          listener(state);
        } catch (error) {
          this.log.error({ err: error }, 'a watch-state listener threw');
        }
      }
    }
    if (!this.syncedOnce && this.streams.every(({ state }) => state.listed)) {
      this.syncedOnce = true;
      this.store.markSynced();
      this.log.info({ ms: Date.now() - this.startedAt, services: this.store.serviceCount, pods: this.store.podCount }, 'synced: every watched kind is listed');
      this.resolveSynced();
    }
  }
}

/** A Namespace object's labels, for `namespaceLabels`; the record the store keeps has none. */
function namespaceLabels(object: Json): Record<string, string> | undefined {
  const labels = (object.metadata as { labels?: unknown } | undefined)?.labels;
  return typeof labels === 'object' && labels !== null ? labels as Record<string, string> : undefined;
}

/** The extreme (by `pick`, Math.min or Math.max) of the defined values, or undefined when none is. */
function extreme(values: ReadonlyArray<number | undefined>, pick: (...numbers: number[]) => number): number | undefined {
  const defined = values.filter((value) => value !== undefined);
  return defined.length === 0 ? undefined : pick(...defined);
}

/** `1.2 s`, never negative (a due time just past reads as 0 s). */
const seconds = (ms: number): string => `${(Math.max(ms, 0) / 1000).toFixed(1)} s`;
