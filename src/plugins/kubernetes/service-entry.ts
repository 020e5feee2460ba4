/**
 * The names one Service owns in the cluster zone, per the Kubernetes DNS spec 1.1.0 (§2.3 ClusterIP, §2.4
 * headless, §2.5 ExternalName) and, where the spec is silent, as CoreDNS's kubernetes plugin answers:
 *
 *   <svc>.<ns>.svc.<zone>                 A/AAAA (cluster IPs, or ready endpoints if headless), SRV per port, or CNAME
 *   _<port>._<proto>.<svc>.<ns>.svc.<zone> SRV per named port (targets: the service, or each endpoint name)
 *   <endpoint>.<svc>.<ns>.svc.<zone>      A/AAAA of a ready endpoint (its hostname, else its dashed IP or pod name)
 *   <reversed ip>.in-addr.arpa|ip6.arpa   PTR for cluster IPs and ready endpoint addresses
 *
 * Only the service and port names go into the name table (`contributions`); endpoint names and reverse names,
 * one or two per endpoint, are answered through this entry (`endpointRecords`, `ptrTargets`), which keeps the
 * table's size proportional to services rather than endpoints. A headless service with no ready endpoints owns
 * no names at all (§2.4.1: NXDOMAIN), nor, with `ignore empty_service`, does a ClusterIP one.
 */
import { dashedIp } from '../../ip.js';
import { anyReady, NO_ENDPOINTS, READY, type EndpointSet, type ServiceRecord, type SlicePort } from '../../store/index.js';
import { EdeCode, encodeEde, nameToKey, RRType, type ResourceRecord } from '../../wire/index.js';
import { noReadyEndpoints } from './explain.js';
import type { RecordSource } from './table.js';

/** A table name and what answers there. */
export interface NamedSource extends RecordSource {
  readonly key: string;
}

/** `_<port>._<proto>.<svc>...`: SRV records of one named port, answered by its service's entry. */
class PortName implements NamedSource {
  constructor(readonly key: string, private readonly entry: ServiceEntry, readonly port: string, readonly protocol: string) {}

  records(owner: string): ResourceRecord[] {
    return this.entry.portRecords(owner, this);
  }

  get ede(): Buffer | undefined {
    return this.entry.ede;
  }
}

/** How every entry of a zone answers: the plugin's options, fixed for its life. */
export interface EntryRules {
  readonly ttl: number;
  /** Whether a ClusterIP service with no ready endpoint says so in an EDE. */
  readonly explain: boolean;
  /** `ignore empty_service`: a ClusterIP service with no ready endpoint owns no names (CoreDNS: NXDOMAIN). */
  readonly ignoreEmpty: boolean;
  /** `endpoint_pod_names`: an endpoint without a hostname is named by its pod, where the store kept the name. */
  readonly podNames: boolean;
}

/** The first label of an endpoint's name, as CoreDNS picks it: its hostname, its pod name (when asked), its dashed IP. */
export function endpointLabel(set: EndpointSet, row: number, podNames: boolean): string {
  return set.hostnames?.[row] ?? (podNames ? set.podNames?.[row] : undefined) ?? dashedIp(set.ips[row]!);
}

export class ServiceEntry implements NamedSource {
  /** The table names this service adds (its own name and its port names), so a rebuild takes exactly these away. */
  readonly contributions: readonly NamedSource[] = [];
  readonly key: string;
  /** Endpoints DNS answers with: ready ones, or all with publishNotReadyAddresses (then the store's own set). */
  private readonly endpoints: EndpointSet;
  /** On the answers of a ClusterIP service with no ready endpoint (when `explain`): its address connects nowhere. */
  readonly ede: Buffer | undefined;

  constructor(
    readonly service: ServiceRecord,
    allEndpoints: EndpointSet,
    zoneKey: string,
    private readonly rules: EntryRules,
  ) {
    this.key = nameToKey(`${service.name}.${service.namespace}.svc`).slice(0, -1) + zoneKey;
    this.endpoints = service.kind === 'ExternalName' ? NO_ENDPOINTS
      : service.publishNotReadyAddresses ? allEndpoints : readyOnly(allEndpoints);
    this.ede = rules.explain && service.kind === 'ClusterIP' && !anyReady(allEndpoints)
      ? encodeEde(EdeCode.OTHER, noReadyEndpoints(service.name, service.clusterIPs))
      : undefined;
    if (!this.exists) return;
    // Built to size (concat, not push): most services have one or two names, and push() reserves 17 slots.
    const ports = service.kind === 'ExternalName' ? []
      : [...this.namedPorts()].map(([prefix, port]) => new PortName(prefix + this.key, this, port.name, port.protocol));
    this.contributions = [this as NamedSource].concat(ports);
  }

  /**
   * A headless service without a ready endpoint has no names (spec §2.4.1); with `ignore empty_service` neither
   * has a ClusterIP one, so that a client's search path goes on to its next entry (CoreDNS's reason).
   */
  get exists(): boolean {
    if (this.endpoints.ips.length > 0 || this.service.kind === 'ExternalName') return true;
    return this.service.kind === 'ClusterIP' && !this.rules.ignoreEmpty;
  }

  /**
   * Every address with a reverse name pointing here: the cluster IPs and the answered endpoints. A cluster IP
   * keeps its PTR under `ignore empty_service`, as CoreDNS's reverse lookup does not look at endpoints.
   */
  addresses(): string[] {
    return [...this.service.clusterIPs, ...this.endpoints.ips];
  }

  /** PTR targets for `ip`: the service for a cluster IP, the endpoint name for an endpoint address. */
  ptrTargets(ip: string): string[] {
    const targets = this.service.clusterIPs.includes(ip) ? [this.key] : [];
    this.endpoints.ips.forEach((address, row) => {
      if (address === ip) targets.push(this.endpointKey(row));
    });
    return targets;
  }

  /** True when an answered endpoint is named `label` (the first label of `<label>.<svc>...`). */
  hasEndpoint(label: string): boolean {
    return this.endpoints.ips.some((_ip, row) => this.endpointLabel(row) === label);
  }

  /** A/AAAA at the endpoint name `owner` (whose first label is `label`). */
  endpointRecords(owner: string, label: string): ResourceRecord[] {
    return this.endpoints.ips.filter((_ip, row) => this.endpointLabel(row) === label).map((ip) => addressRecord(owner, this.rules.ttl, ip));
  }

  /** True when one of `addresses` is an endpoint of this service (used to find the DNS service itself). */
  fronts(addresses: ReadonlySet<string>): boolean {
    return this.endpoints.ips.some((ip) => addresses.has(ip));
  }

  /** The records at the service's own name. */
  records(owner: string): ResourceRecord[] {
    const { service } = this;
    const { ttl } = this.rules;
    if (service.kind === 'ExternalName') {
      return [{ owner, ttl, data: { type: RRType.CNAME, target: nameToKey(service.externalName!) } }];
    }
    if (service.kind === 'ClusterIP') {
      const addresses = service.clusterIPs.map((ip) => addressRecord(owner, ttl, ip));
      return [...addresses, ...srvRecords(owner, ttl, service.ports.map((port) => [port.port, this.key] as const))];
    }
    // The store's set holds each address once.
    const addresses = this.endpoints.ips.map((ip) => addressRecord(owner, ttl, ip));
    return [...addresses, ...srvRecords(owner, ttl, this.endpointTargets(() => true))];
  }

  /** `<label>.<svc>...` for the endpoint in `row`. */
  private endpointKey(row: number): string {
    const label = this.endpointLabel(row);
    return String.fromCharCode(label.length) + label + this.key;
  }

  private endpointLabel(row: number): string {
    return endpointLabel(this.endpoints, row, this.rules.podNames);
  }

  /** (port, endpoint name) for every answered endpoint and each of its slice's ports that `matches`. */
  private endpointTargets(matches: (port: SlicePort) => boolean): Array<readonly [number, string]> {
    return this.endpoints.ports.flatMap((ports, row) => ports.filter(matches).map((port) => [port.port, this.endpointKey(row)] as const));
  }

  /** `_<name>._<proto>.` prefixes of the named ports: the service's ports, or for headless the slices' ports. */
  private namedPorts(): Map<string, { name: string; protocol: string }> {
    const ports: readonly SlicePort[] = this.service.kind === 'Headless'
      ? [...new Set(this.endpoints.ports)].flat() // rows of one slice share its ports array
      : this.service.ports;
    const prefixes = new Map<string, { name: string; protocol: string }>();
    for (const port of ports) {
      if (port.name === '') continue;
      const name = `_${port.name}`;
      const proto = `_${port.protocol.toLowerCase()}`;
      const prefix = String.fromCharCode(name.length) + name + String.fromCharCode(proto.length) + proto;
      prefixes.set(prefix, { name: port.name, protocol: port.protocol });
    }
    return prefixes;
  }

  /** The SRV records at a named port's name (for its PortName). */
  portRecords(owner: string, wanted: { readonly port: string; readonly protocol: string }): ResourceRecord[] {
    const matches = (port: SlicePort): boolean => port.name === wanted.port && port.protocol === wanted.protocol;
    if (this.service.kind === 'ClusterIP') {
      return srvRecords(owner, this.rules.ttl, this.service.ports.filter(matches).map((port) => [port.port, this.key] as const));
    }
    return srvRecords(owner, this.rules.ttl, this.endpointTargets(matches));
  }
}

/** The ready rows of a set: the set itself when every row is ready, as in a healthy cluster. */
export function readyOnly(set: EndpointSet): EndpointSet {
  const rows = set.conditions.flatMap((bits, row) => ((bits & READY) !== 0 ? [row] : []));
  if (rows.length === set.ips.length) return set;
  const { hostnames, podNames } = set;
  return {
    ips: rows.map((row) => set.ips[row]!),
    conditions: rows.map((row) => set.conditions[row]!),
    hostnames: hostnames === undefined ? undefined : rows.map((row) => hostnames[row]),
    podNames: podNames === undefined ? undefined : rows.map((row) => podNames[row]),
    ports: rows.map((row) => set.ports[row]!),
  };
}

export function addressRecord(owner: string, ttl: number, ip: string): ResourceRecord {
  return { owner, ttl, data: { type: ip.includes(':') ? RRType.AAAA : RRType.A, ip } };
}

/** One SRV per (port, target), priority 0, weights split evenly: floor(100 / N) each, as CoreDNS gives them. */
export function srvRecords(owner: string, ttl: number, targets: ReadonlyArray<readonly [number, string]>): ResourceRecord[] {
  const seen = new Set<string>();
  const unique = targets.filter(([port, target]) => {
    const id = `${port} ${target}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
  const weight = unique.length === 0 ? 0 : Math.floor(100 / unique.length);
  return unique.map(([port, target]) => ({ owner, ttl, data: { type: RRType.SRV, priority: 0, weight, port, target } }));
}
