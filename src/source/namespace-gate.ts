/**
 * The kubernetes plugin's `namespace_labels`: only the Namespaces whose labels match are served, and only the
 * Services, EndpointSlices and Pods in them. The gate stands between the watch streams and the store: the
 * Namespace stream tells it which namespaces match (the selector is applied when a Namespace is converted, so one
 * that stops matching arrives here as a drop), and the other streams hand it every record, which it holds per
 * namespace and writes into the store only while its namespace matches.
 *
 * So a namespace relabelled to stop matching takes its records out of the store at once, and one relabelled to
 * match puts them back from what is held, without a list of anything: the watches of Services, EndpointSlices
 * and Pods are cluster-wide and unfiltered, as CoreDNS's are. The store and everything that reads it (the plugins,
 * the proxy, the workers' replicas) only ever see the namespaces served, so no answer or hint can name another.
 * What is held costs a map entry per record: the records are the same objects the store has.
 */
import type { RecordsByKind, RecordStore, ResourceKind } from '../store/index.js';
import type { RecordSink } from './kube-stream.js';

type NamespacedKind = Exclude<ResourceKind, 'namespace'>;
type Held = { [K in NamespacedKind]: Map<string, RecordsByKind[K]> };

export class NamespaceGate {
  /** Namespaces that exist and match. */
  private readonly open = new Set<string>();
  /** Every record the streams have given, by namespace, served or not. */
  private readonly held = new Map<string, Held>();

  constructor(private readonly store: RecordStore) {}

  /** The sink of a stream of `kind`. */
  sink<K extends ResourceKind>(kind: K): RecordSink<K> {
    return (kind === 'namespace' ? this.namespaces() : this.records(kind as NamespacedKind)) as unknown as RecordSink<K>;
  }

  /** The Namespace stream's sink: it is given only the namespaces that match. */
  private namespaces(): RecordSink<'namespace'> {
    return {
      replace: (records) => this.store.batch(() => {
        const matching = new Set(records.map((record) => record.name));
        this.store.replaceAll('namespace', records);
        for (const name of [...this.open]) if (!matching.has(name)) this.close(name);
        for (const name of matching) this.openUp(name);
      }),
      put: (record) => this.store.batch(() => {
        this.store.upsert('namespace', record);
        this.openUp(record.name);
      }),
      drop: (_namespace, name) => this.store.batch(() => {
        this.store.remove('namespace', '', name);
        this.close(name);
      }),
    };
  }

  /** A namespaced kind's sink: everything is held; what is in a matching namespace goes on to the store. */
  private records<K extends NamespacedKind>(kind: K): RecordSink<K> {
    return {
      replace: (records) => {
        for (const held of this.held.values()) held[kind].clear();
        for (const record of records) this.heldIn(record.namespace)[kind].set(record.name, record);
        this.store.replaceAll(kind, records.filter((record) => this.open.has(record.namespace)));
        this.forgetEmpty();
      },
      put: (record) => {
        this.heldIn(record.namespace)[kind].set(record.name, record);
        if (this.open.has(record.namespace)) this.store.upsert(kind, record);
      },
      drop: (namespace, name) => {
        const held = this.held.get(namespace);
        held?.[kind].delete(name);
        if (held !== undefined && isEmpty(held)) this.held.delete(namespace);
        this.store.remove(kind, namespace, name);
      },
    };
  }

  private openUp(namespace: string): void {
    if (this.open.has(namespace)) return;
    this.open.add(namespace);
    const held = this.held.get(namespace);
    if (held === undefined) return;
    for (const kind of KINDS) for (const record of held[kind].values()) this.store.upsert(kind, record);
  }

  private close(namespace: string): void {
    if (!this.open.delete(namespace)) return;
    const held = this.held.get(namespace);
    if (held === undefined) return;
    for (const kind of KINDS) for (const name of held[kind].keys()) this.store.remove(kind, namespace, name);
  }

  private heldIn(namespace: string): Held {
    let held = this.held.get(namespace);
    if (held === undefined) this.held.set(namespace, (held = { service: new Map(), endpointslice: new Map(), pod: new Map() }));
    return held;
  }

  private forgetEmpty(): void {
    for (const [namespace, held] of this.held) if (isEmpty(held)) this.held.delete(namespace);
  }
}

const KINDS: readonly NamespacedKind[] = ['service', 'endpointslice', 'pod'];

const isEmpty = (held: Held): boolean => KINDS.every((kind) => held[kind].size === 0);
