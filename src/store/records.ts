/**
 * The slim records the store holds: only the fields DNS answers and the proxy need, built by a source at
 * ingestion. Whole API objects are never kept (CoreDNS once ran out of memory at scale by keeping them).
 */
export type Protocol = 'TCP' | 'UDP' | 'SCTP';

export interface NamespaceRecord {
  readonly name: string;
}

export interface ServicePort {
  /** Empty for an unnamed port: it gets no `_name._proto` SRV name. */
  readonly name: string;
  readonly port: number;
  readonly protocol: Protocol;
  /** A number, or the name of a container port resolved per endpoint from the EndpointSlice ports. */
  readonly targetPort: number | string;
}

/** Headless is `clusterIP: None`; ExternalName answers a CNAME; every other type has virtual IPs. */
export type ServiceKind = 'ClusterIP' | 'Headless' | 'ExternalName';

export interface ServiceRecord {
  readonly namespace: string;
  readonly name: string;
  readonly kind: ServiceKind;
  /** Canonical text, IPv4 and/or IPv6 (dual-stack); empty unless kind is ClusterIP. */
  readonly clusterIPs: readonly string[];
  /** Lower-case, without trailing dot; only for ExternalName. */
  readonly externalName?: string;
  readonly ports: readonly ServicePort[];
  readonly publishNotReadyAddresses: boolean;
  /** The service selects pods (its EndpointSlices are managed for it), as opposed to hand-made endpoints. */
  readonly hasSelector: boolean;
  /** Set when `sessionAffinity: ClientIP`. */
  readonly affinityTimeoutSeconds?: number;
  /**
   * The addresses the service is reached on from outside (what k8s_external answers): `spec.externalIPs`, then
   * `status.loadBalancer.ingress[]`, each its `ip` (canonical) or else its `hostname` (lower-case), as CoreDNS
   * keeps them. Absent when there are none, as for most services: no array is kept per service.
   */
  readonly externalIPs?: readonly string[];
}

export interface SlicePort {
  readonly name: string;
  readonly port: number;
  readonly protocol: Protocol;
}

/** Bits of an address's conditions (`EndpointColumns.conditions`). */
export const READY = 1;
export const SERVING = 2;
export const TERMINATING = 4;

/**
 * Endpoint addresses as columns: row i is one address, with the conditions and hostname of the endpoint it
 * belongs to (an endpoint with two addresses is two rows). At 100k endpoints an object per endpoint, with its
 * own addresses array, cost about 130 B more per endpoint than these three slots.
 */
export interface EndpointColumns {
  /** Canonical text; none for FQDN slices, which give no address records. */
  readonly ips: readonly string[];
  /**
   * READY (`conditions.ready`, missing counts as ready; terminating endpoints are not ready), SERVING and
   * TERMINATING bits.
   */
  readonly conditions: readonly number[];
  /** The endpoint's hostname per row; absent when no row has one. */
  readonly hostnames?: ReadonlyArray<string | undefined>;
  /**
   * The name of the object the endpoint's `targetRef` points to (its pod), per row without a hostname and only
   * where that name is a DNS label (`endpoint_pod_names` names such endpoints by it); absent when no row has one,
   * and always absent unless the source was asked to keep them (100k pod names are about 5 MB).
   */
  readonly podNames?: ReadonlyArray<string | undefined>;
}

export interface EndpointSliceRecord {
  readonly namespace: string;
  readonly name: string;
  /** From the `kubernetes.io/service-name` label. */
  readonly serviceName: string;
  readonly addressType: 'IPv4' | 'IPv6' | 'FQDN';
  readonly ports: readonly SlicePort[];
  readonly endpoints: EndpointColumns;
}

/** Only what `pods verified` and search-path completion need: where an IP lives. */
export interface PodRecord {
  readonly namespace: string;
  readonly name: string;
  readonly ips: readonly string[];
}

/**
 * A service's addresses merged across all its slices (an address in two slices appears once), with the ports
 * of the slice each row came from (named targetPorts resolve against these).
 */
export interface EndpointSet extends EndpointColumns {
  readonly ports: ReadonlyArray<readonly SlicePort[]>;
}

export type ResourceKind = 'namespace' | 'service' | 'endpointslice' | 'pod';

export interface RecordsByKind {
  namespace: NamespaceRecord;
  service: ServiceRecord;
  endpointslice: EndpointSliceRecord;
  pod: PodRecord;
}
