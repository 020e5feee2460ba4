/**
 * store/ — the in-memory record store: the one source of truth that plugins and the proxy read.
 *
 * Owns slim Namespace, Service, EndpointSlice and Pod records (records.ts), the indexes over them (service by
 * name, slices by service, pods by IP), the merged endpoint view of a service, whether the first full sync has
 * happened and since when the source has been out of touch with the API server, and change notification in batches. It knows nothing of DNS wire formats or of the Kubernetes client:
 * sources write through RecordStore's methods, readers get the read-only `StoreView`.
 */
import {
  READY,
  type EndpointSet,
  type EndpointSliceRecord,
  type NamespaceRecord,
  type PodRecord,
  type RecordsByKind,
  type ResourceKind,
  type ServiceRecord,
  type SlicePort,
} from './records.js';

export type * from './records.js';
export { READY, SERVING, TERMINATING } from './records.js';

/**
 * What changed in one batch. Service keys are `namespace/name` and cover the service and its endpoints.
 * A batch may name nothing when only pods or the sync state changed: readers then drop what they derived.
 */
export interface StoreChanges {
  readonly services: ReadonlySet<string>;
  readonly namespaces: ReadonlySet<string>;
}

export type StoreListener = (changes: StoreChanges) => void;

/**
 * One write as a source made it, replayable on another store: what a worker's replica is kept equal with
 * (workers/). Records are the slim plain objects of records.ts, so a write crosses a thread as it is.
 */
export type StoreWrite =
  | { readonly op: 'upsert'; readonly kind: ResourceKind; readonly record: RecordsByKind[ResourceKind] }
  | { readonly op: 'remove'; readonly kind: ResourceKind; readonly namespace: string; readonly name: string }
  | { readonly op: 'replaceAll'; readonly kind: ResourceKind; readonly records: ReadonlyArray<RecordsByKind[ResourceKind]>; readonly scope?: { readonly namespace: string } }
  | { readonly op: 'synced' }
  | { readonly op: 'outOfTouch'; readonly since: number | undefined };

/** Gets each batch of writes that changed something, with the time of the change (the SOA serial's source). */
export type WriteSink = (writes: readonly StoreWrite[], atMs: number) => void;

export interface StoreView {
  readonly synced: boolean;
  /**
   * While the source cannot reach what it mirrors (the API server): the last moment the records were known to
   * match it, in milliseconds since the epoch. Undefined while it can.
   */
  readonly outOfTouchSince: number | undefined;
  /** Milliseconds since the epoch of the last change that touched any record. */
  readonly lastChangeMs: number;
  namespaceExists(namespace: string): boolean;
  namespaces(): Iterable<string>;
  getService(namespace: string, name: string): ServiceRecord | undefined;
  services(): Iterable<ServiceRecord>;
  readonly serviceCount: number;
  /** Addresses of the service merged across its slices, in a stable order; empty when it has none. */
  endpointsOf(namespace: string, name: string): EndpointSet;
  /** The pods (`namespace/name`) with this address. */
  podsByIP(ip: string): readonly string[];
  /** The name of a pod of `namespace` with this address (host-network pods share one), or undefined. */
  podAt(ip: string, namespace: string): string | undefined;
  namespaceHasPods(namespace: string): boolean;
  readonly podCount: number;
  subscribe(listener: StoreListener): () => void;
}

export const serviceKey = (namespace: string, name: string): string => `${namespace}/${name}`;
/** The namespace and name of a serviceKey. */
export function splitServiceKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** An exact copy of an optional per-row column (`hostnames`, `podNames`), or undefined when no row has a value. */
export function sizedColumn(column: ReadonlyArray<string | undefined>): Array<string | undefined> | undefined {
  return column.some((value) => value !== undefined) ? column.slice() : undefined;
}

export const NO_ENDPOINTS: EndpointSet = Object.freeze({ ips: [], conditions: [], hostnames: undefined, podNames: undefined, ports: [] });

/** True when any address of the set is ready. */
export const anyReady = (set: EndpointSet): boolean => set.conditions.some((bits) => (bits & READY) !== 0);

/** One value, or several: most pods have one address and most addresses one pod, and an array costs ~40 B more. */
type OneOrMore = string | readonly string[];
const listOf = (value: OneOrMore | undefined): readonly string[] => (value === undefined ? [] : typeof value === 'string' ? [value] : value);

export class RecordStore implements StoreView {
  private readonly namespaceRecords = new Map<string, NamespaceRecord>();
  private readonly serviceRecords = new Map<string, ServiceRecord>();
  /** How many services each namespace holds: a namespace with services exists even without its object. */
  private readonly servicesPerNamespace = new Map<string, number>();
  private readonly sliceRecords = new Map<string, EndpointSliceRecord>();
  private readonly slicesByService = new Map<string, Set<string>>();
  private readonly mergedEndpoints = new Map<string, EndpointSet>();
  /** Pod key (`namespace/name`) → its addresses; and address → pod keys. Nothing else of a pod is kept. */
  private readonly podRecords = new Map<string, OneOrMore>();
  private readonly podIndex = new Map<string, OneOrMore>();
  private readonly podsPerNamespace = new Map<string, number>();
  private readonly listeners = new Set<StoreListener>();

  private batchDepth = 0;
  /** Where writes are mirrored to, if anywhere; writes inside a write (replaceAll's upserts) are not recorded. */
  private writeSink: WriteSink | undefined;
  private writeDepth = 0;
  private pendingWrites: StoreWrite[] = [];
  private pendingServices = new Set<string>();
  private pendingNamespaces = new Set<string>();
  /** Something not listed per service or namespace changed (pods, the sync state). */
  private pendingOther = false;

  synced = false;
  outOfTouchSince: number | undefined = undefined;
  lastChangeMs = Date.now();

  constructor(private readonly now: () => number = Date.now) {}

  // ---- reading -------------------------------------------------------------------------------------------

  namespaceExists(namespace: string): boolean {
    return this.namespaceRecords.has(namespace) || this.servicesPerNamespace.has(namespace);
  }

  *namespaces(): Iterable<string> {
    yield* this.namespaceRecords.keys();
    for (const namespace of this.servicesPerNamespace.keys()) {
      if (!this.namespaceRecords.has(namespace)) yield namespace;
    }
  }

  getService(namespace: string, name: string): ServiceRecord | undefined {
    return this.serviceRecords.get(serviceKey(namespace, name));
  }

  services(): Iterable<ServiceRecord> {
    return this.serviceRecords.values();
  }

  get serviceCount(): number {
    return this.serviceRecords.size;
  }

  endpointsOf(namespace: string, name: string): EndpointSet {
    const key = serviceKey(namespace, name);
    let merged = this.mergedEndpoints.get(key);
    if (merged === undefined) {
      merged = this.mergeSlices(key);
      this.mergedEndpoints.set(key, merged);
    }
    return merged;
  }

  podsByIP(ip: string): readonly string[] {
    return listOf(this.podIndex.get(ip));
  }

  podAt(ip: string, namespace: string): string | undefined {
    const prefix = serviceKey(namespace, '');
    return this.podsByIP(ip).find((pod) => pod.startsWith(prefix))?.slice(prefix.length);
  }

  namespaceHasPods(namespace: string): boolean {
    return this.podsPerNamespace.has(namespace);
  }

  get podCount(): number {
    return this.podRecords.size;
  }

  subscribe(listener: StoreListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- writing (sources only) ----------------------------------------------------------------------------

  /** Group writes so listeners hear about them once, after the last one. */
  batch<T>(write: () => T): T {
    this.batchDepth++;
    try {
      return write();
    } finally {
      this.batchDepth--;
      if (this.batchDepth === 0) this.flush();
    }
  }

  /** Every later batch of writes that changes something also goes to `sink` (one sink: the workers' pool). */
  mirror(sink: WriteSink): void {
    this.writeSink = sink;
  }

  /** The writes that make an empty store equal to this one: what a new replica starts from. */
  snapshot(): StoreWrite[] {
    const pods = [...this.podRecords].map(([key, ips]) => ({ ...splitServiceKey(key), ips: listOf(ips) }));
    const writes: StoreWrite[] = [
      { op: 'replaceAll', kind: 'namespace', records: [...this.namespaceRecords.values()] },
      { op: 'replaceAll', kind: 'service', records: [...this.serviceRecords.values()] },
      { op: 'replaceAll', kind: 'endpointslice', records: [...this.sliceRecords.values()] },
      { op: 'replaceAll', kind: 'pod', records: pods },
    ];
    if (this.synced) writes.push({ op: 'synced' });
    if (this.outOfTouchSince !== undefined) writes.push({ op: 'outOfTouch', since: this.outOfTouchSince });
    return writes;
  }

  /** Replays writes another store made (see mirror), as one batch. */
  apply(writes: readonly StoreWrite[]): void {
    this.batch(() => {
      for (const write of writes) {
        switch (write.op) {
          case 'upsert': this.upsert(write.kind, write.record); break;
          case 'remove': this.remove(write.kind, write.namespace, write.name); break;
          case 'replaceAll': this.replaceAll(write.kind, write.records, write.scope); break;
          case 'synced': this.markSynced(); break;
          case 'outOfTouch': this.markOutOfTouch(write.since); break;
        }
      }
    });
  }

  /** Runs a public write, recording it for the mirror unless it is part of another write. */
  private write(recorded: StoreWrite, run: () => void): void {
    if (this.writeSink !== undefined && this.writeDepth === 0) this.pendingWrites.push(recorded);
    this.writeDepth++;
    try {
      this.batch(run);
    } finally {
      this.writeDepth--;
    }
  }

  /** The source has delivered a complete first view; until then the cluster zone answers SERVFAIL. */
  markSynced(): void {
    if (this.synced) return;
    this.write({ op: 'synced' }, () => {
      this.synced = true;
      this.pendingOther = true;
    });
  }

  /**
   * The source lost touch with what it mirrors, its records being as of `since` (ms since the epoch), or is back
   * in touch (undefined). No record changed: readers are not told and the SOA serial stays (readers look at
   * `outOfTouchSince` as they answer); the mirror is told at once.
   */
  markOutOfTouch(since: number | undefined): void {
    if (this.outOfTouchSince === since) return;
    this.outOfTouchSince = since;
    this.writeSink?.([{ op: 'outOfTouch', since }], this.lastChangeMs);
  }

  upsert<K extends ResourceKind>(kind: K, record: RecordsByKind[K]): void {
    this.write({ op: 'upsert', kind, record }, () => {
      switch (kind) {
        case 'namespace': return this.putNamespace(record as NamespaceRecord);
        case 'service': return this.putService(record as ServiceRecord);
        case 'endpointslice': return this.putSlice(record as EndpointSliceRecord);
        case 'pod': return this.putPod(record as PodRecord);
      }
    });
  }

  /** Remove one record; `namespace` is ignored for namespaces. Removing what is not there is a no-op. */
  remove(kind: ResourceKind, namespace: string, name: string): void {
    this.write({ op: 'remove', kind, namespace, name }, () => {
      switch (kind) {
        case 'namespace': return this.dropNamespace(name);
        case 'service': return this.dropService(serviceKey(namespace, name));
        case 'endpointslice': return this.dropSlice(serviceKey(namespace, name));
        case 'pod': return this.dropPod(serviceKey(namespace, name));
      }
    });
  }

  /**
   * Make the records of one kind exactly `records`, by difference: records that are unchanged are not touched
   * and records that still exist are never removed, not even briefly, so answers never flicker during a relist.
   * With `scope.namespace`, only that namespace's records of the kind are replaced (a per-namespace watch).
   */
  replaceAll<K extends ResourceKind>(kind: K, records: Iterable<RecordsByKind[K]>, scope?: { namespace: string }): void {
    const list = [...records];
    this.write({ op: 'replaceAll', kind, records: list, ...(scope !== undefined && { scope }) }, () => {
      const existing = this.recordsOf(kind);
      const seen = new Set<string>();
      const inScope = (key: string): boolean => scope === undefined || key.startsWith(`${scope.namespace}/`);
      for (const record of list) {
        const key = kind === 'namespace' ? record.name : serviceKey((record as ServiceRecord).namespace, record.name);
        seen.add(key);
        // An unchanged record is not touched: upsert ignores it.
        this.upsert(kind, record);
      }
      for (const key of [...existing.keys()]) {
        if (seen.has(key) || !inScope(key)) continue;
        const slash = key.indexOf('/');
        this.remove(kind, key.slice(0, Math.max(slash, 0)), key.slice(slash + 1));
      }
    });
  }

  /** Each kind's records by key, as stored (a pod as its addresses only). */
  private recordsOf(kind: ResourceKind): ReadonlyMap<string, unknown> {
    switch (kind) {
      case 'namespace': return this.namespaceRecords;
      case 'service': return this.serviceRecords;
      case 'endpointslice': return this.sliceRecords;
      case 'pod': return this.podRecords;
    }
  }

  private putNamespace(record: NamespaceRecord): void {
    const existed = this.namespaceRecords.has(record.name);
    this.namespaceRecords.set(record.name, record);
    if (!existed) this.pendingNamespaces.add(record.name);
  }

  private dropNamespace(name: string): void {
    if (this.namespaceRecords.delete(name)) this.pendingNamespaces.add(name);
  }

  // The puts below ignore an update that changes nothing stored (a resync, a status or annotation edit): readers
  // are told of changes only, as CoreDNS compares endpoints before it notifies.

  private putService(record: ServiceRecord): void {
    const key = serviceKey(record.namespace, record.name);
    const current = this.serviceRecords.get(key);
    if (current !== undefined && sameRecord(current, record)) return;
    if (current === undefined) this.countService(record.namespace, +1);
    this.serviceRecords.set(key, record);
    this.pendingServices.add(key);
  }

  private dropService(key: string): void {
    const record = this.serviceRecords.get(key);
    if (record === undefined) return;
    this.serviceRecords.delete(key);
    this.countService(record.namespace, -1);
    this.pendingServices.add(key);
  }

  private countService(namespace: string, delta: number): void {
    const count = (this.servicesPerNamespace.get(namespace) ?? 0) + delta;
    if (count > 0) this.servicesPerNamespace.set(namespace, count);
    else this.servicesPerNamespace.delete(namespace);
    if (count === 0 || count === delta) this.pendingNamespaces.add(namespace);
  }

  private putSlice(record: EndpointSliceRecord): void {
    const key = serviceKey(record.namespace, record.name);
    const current = this.sliceRecords.get(key);
    if (current !== undefined && sameRecord(current, record)) return;
    this.dropSlice(key);
    this.sliceRecords.set(key, record);
    const owner = serviceKey(record.namespace, record.serviceName);
    let slices = this.slicesByService.get(owner);
    if (slices === undefined) this.slicesByService.set(owner, (slices = new Set()));
    slices.add(key);
    this.endpointsChanged(owner);
  }

  private dropSlice(key: string): void {
    const record = this.sliceRecords.get(key);
    if (record === undefined) return;
    this.sliceRecords.delete(key);
    const owner = serviceKey(record.namespace, record.serviceName);
    const slices = this.slicesByService.get(owner);
    slices?.delete(key);
    if (slices?.size === 0) this.slicesByService.delete(owner);
    this.endpointsChanged(owner);
  }

  private endpointsChanged(owner: string): void {
    this.mergedEndpoints.delete(owner);
    this.pendingServices.add(owner);
  }

  private putPod(record: PodRecord): void {
    const key = serviceKey(record.namespace, record.name);
    const current = this.podRecords.get(key);
    if (current !== undefined && sameRecord(current, podValue(record))) return;
    this.dropPod(key);
    this.podRecords.set(key, podValue(record));
    this.podsPerNamespace.set(record.namespace, (this.podsPerNamespace.get(record.namespace) ?? 0) + 1);
    for (const ip of record.ips) {
      const pods = this.podIndex.get(ip);
      this.podIndex.set(ip, pods === undefined ? key : [...listOf(pods), key]);
    }
    this.pendingOther = true;
  }

  private dropPod(key: string): void {
    const ips = this.podRecords.get(key);
    if (ips === undefined) return;
    this.podRecords.delete(key);
    const namespace = key.slice(0, key.indexOf('/'));
    const left = this.podsPerNamespace.get(namespace)! - 1;
    if (left > 0) this.podsPerNamespace.set(namespace, left);
    else this.podsPerNamespace.delete(namespace);
    for (const ip of listOf(ips)) {
      const remaining = listOf(this.podIndex.get(ip)).filter((pod) => pod !== key);
      if (remaining.length === 0) this.podIndex.delete(ip);
      else this.podIndex.set(ip, remaining.length === 1 ? remaining[0]! : remaining);
    }
    this.pendingOther = true;
  }

  private mergeSlices(owner: string): EndpointSet {
    const slices = [...(this.slicesByService.get(owner) ?? [])]
      .map((key) => this.sliceRecords.get(key)!)
      .filter((slice) => slice.addressType !== 'FQDN' && slice.endpoints.ips.length > 0);
    if (slices.length === 0) return NO_ENDPOINTS;
    const only = slices.length === 1 ? slices[0]!.endpoints : undefined;
    if (only !== undefined && new Set(only.ips).size === only.ips.length) {
      // One slice without a repeated address, the usual case: its columns are the set's.
      const ports = new Array<readonly SlicePort[]>(only.ips.length).fill(slices[0]!.ports);
      return { ips: only.ips, conditions: only.conditions, hostnames: only.hostnames, podNames: only.podNames, ports };
    }
    // Slice names sort for a stable answer order whatever order the slices arrived in.
    slices.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const rowOf = new Map<string, number>();
    const ips: string[] = [];
    const conditions: number[] = [];
    const hostnames: Array<string | undefined> = [];
    const podNames: Array<string | undefined> = [];
    const ports: Array<readonly SlicePort[]> = [];
    for (const slice of slices) {
      const { endpoints } = slice;
      endpoints.ips.forEach((ip, i) => {
        const bits = endpoints.conditions[i]!;
        const seen = rowOf.get(ip);
        // The same address in two slices is one endpoint; a ready copy wins over a not-ready one.
        if (seen !== undefined && ((conditions[seen]! & READY) !== 0 || (bits & READY) === 0)) return;
        const row = seen ?? ips.length;
        rowOf.set(ip, row);
        ips[row] = ip;
        conditions[row] = bits;
        hostnames[row] = endpoints.hostnames?.[i];
        podNames[row] = endpoints.podNames?.[i];
        ports[row] = slice.ports;
      });
    }
    // Exact copies: arrays grown an element at a time keep spare slots for as long as they live.
    return { ips: ips.slice(), conditions: conditions.slice(), hostnames: sizedColumn(hostnames), podNames: sizedColumn(podNames), ports: ports.slice() };
  }

  private flush(): void {
    const writes = this.pendingWrites;
    this.pendingWrites = [];
    if (this.pendingServices.size === 0 && this.pendingNamespaces.size === 0 && !this.pendingOther) return;
    const changes: StoreChanges = { services: this.pendingServices, namespaces: this.pendingNamespaces };
    this.pendingServices = new Set();
    this.pendingNamespaces = new Set();
    this.pendingOther = false;
    this.lastChangeMs = this.now();
    for (const listener of this.listeners) listener(changes);
    // Only writes that changed something: a replica equal before is equal after without the rest.
    if (writes.length > 0) this.writeSink?.(writes, this.lastChangeMs);
  }
}

function podValue(record: PodRecord): OneOrMore {
  return record.ips.length === 1 ? record.ips[0]! : record.ips;
}

function sameRecord(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
