/**
 * The slim records the store holds: only the fields DNS answers and the proxy need, built by a source at
 * ingestion. Whole API objects are never kept (CoreDNS once ran out of memory at scale by keeping them).
 */
import type { IpFamily } from '../ip.js';

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
}

export interface SlicePort {
  readonly name: string;
  readonly port: number;
  readonly protocol: Protocol;
}

export interface SliceEndpoint {
  /** Canonical text; empty for FQDN slices, which give no address records. */
  readonly addresses: readonly string[];
  readonly hostname?: string;
  /** `conditions.ready`, missing counts as ready. Terminating endpoints are not ready. */
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
}

export interface EndpointSliceRecord {
  readonly namespace: string;
  readonly name: string;
  /** From the `kubernetes.io/service-name` label. */
  readonly serviceName: string;
  readonly addressType: 'IPv4' | 'IPv6' | 'FQDN';
  readonly ports: readonly SlicePort[];
  readonly endpoints: readonly SliceEndpoint[];
}

/** Only what `pods verified` and search-path completion need: where an IP lives. */
export interface PodRecord {
  readonly namespace: string;
  readonly name: string;
  readonly ips: readonly string[];
}

/** One address of a service, merged across all its slices (an address in two slices appears once). */
export interface Endpoint {
  readonly ip: string;
  readonly family: IpFamily;
  readonly hostname?: string;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  /** The ports of the slice this address came from (named targetPorts resolve against these). */
  readonly ports: readonly SlicePort[];
}

export type ResourceKind = 'namespace' | 'service' | 'endpointslice' | 'pod';

export interface RecordsByKind {
  namespace: NamespaceRecord;
  service: ServiceRecord;
  endpointslice: EndpointSliceRecord;
  pod: PodRecord;
}
