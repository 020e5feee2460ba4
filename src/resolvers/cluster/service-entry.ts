/**
 * The names one Service owns in the cluster zone, per the Kubernetes DNS spec 1.1.0 (§2.3 ClusterIP, §2.4
 * headless, §2.5 ExternalName) and, where the spec is silent, as CoreDNS's kubernetes plugin answers:
 *
 *   <svc>.<ns>.svc.<zone>                 A/AAAA (cluster IPs, or ready endpoints if headless), SRV per port, or CNAME
 *   _<port>._<proto>.<svc>.<ns>.svc.<zone> SRV per named port (targets: the service, or each endpoint name)
 *   <endpoint>.<svc>.<ns>.svc.<zone>      A/AAAA of a ready endpoint (its hostname, else its dashed IP)
 *   <reversed ip>.in-addr.arpa|ip6.arpa   PTR for cluster IPs and ready endpoint addresses
 *
 * A headless service with no ready endpoints owns no names at all (§2.4.1: NXDOMAIN).
 */
import { dashedIp, reverseName } from '../../ip.js';
import type { Endpoint, ServiceRecord, SlicePort } from '../../store/index.js';
import { nameToKey, RRType, type ResourceRecord } from '../../wire/index.js';
import type { RecordSource } from './table.js';

export class ServiceEntry {
  /** Every (name, source) this service adds to the table, so a rebuild can take exactly these away. */
  readonly contributions: Array<readonly [string, RecordSource]> = [];
  readonly key: string;
  /** Endpoints DNS answers with: ready ones, or all with publishNotReadyAddresses. */
  private readonly endpoints: readonly Endpoint[];
  /** The endpoint-name key of each entry in `endpoints`. */
  private readonly endpointKeys: readonly string[];

  constructor(
    readonly service: ServiceRecord,
    allEndpoints: readonly Endpoint[],
    zoneKey: string,
    private readonly ttl: number,
  ) {
    this.key = nameToKey(`${service.name}.${service.namespace}.svc`).slice(0, -1) + zoneKey;
    this.endpoints = service.kind === 'ExternalName'
      ? []
      : allEndpoints.filter((endpoint) => endpoint.ready || service.publishNotReadyAddresses);
    this.endpointKeys = this.endpoints.map((endpoint) => {
      const label = endpoint.hostname ?? dashedIp(endpoint.ip);
      return String.fromCharCode(label.length) + label.toLowerCase() + this.key;
    });
    if (service.kind === 'Headless' && this.endpoints.length === 0) return;

    this.add(this.key, { records: (owner) => this.serviceRecords(owner) });
    for (const ip of service.clusterIPs) this.add(nameToKey(reverseName(ip)), new PtrSource(this.key, ttl));
    if (service.kind === 'ExternalName') return;

    for (const [portKey, port] of this.namedPorts()) {
      this.add(portKey + this.key, { records: (owner) => this.portRecords(owner, port) });
    }
    const endpointNames = new Set(this.endpointKeys);
    for (const endpointKey of endpointNames) {
      this.add(endpointKey, { records: (owner) => this.endpointNameRecords(owner) });
    }
    this.endpoints.forEach((endpoint, i) => {
      this.add(nameToKey(reverseName(endpoint.ip)), new PtrSource(this.endpointKeys[i]!, ttl));
    });
  }

  /** True when one of `addresses` is an endpoint of this service (used to find the DNS service itself). */
  fronts(addresses: ReadonlySet<string>): boolean {
    return this.endpoints.some((endpoint) => addresses.has(endpoint.ip));
  }

  private add(key: string, source: RecordSource): void {
    this.contributions.push([key, source]);
  }

  /** `_<name>._<proto>.` prefixes of the named ports: the service's ports, or for headless the slices' ports. */
  private namedPorts(): Map<string, { name: string; protocol: string }> {
    const ports: readonly SlicePort[] = this.service.kind === 'Headless'
      ? this.endpoints.flatMap((endpoint) => endpoint.ports)
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

  private serviceRecords(owner: string): ResourceRecord[] {
    const { service, ttl } = this;
    if (service.kind === 'ExternalName') {
      return [{ owner, ttl, data: { type: RRType.CNAME, target: nameToKey(service.externalName!) } }];
    }
    if (service.kind === 'ClusterIP') {
      const addresses = service.clusterIPs.map((ip) => addressRecord(owner, ttl, ip));
      return [...addresses, ...srvRecords(owner, ttl, service.ports.map((port) => [port.port, this.key] as const))];
    }
    const addresses = uniqueAddresses(this.endpoints).map((ip) => addressRecord(owner, ttl, ip));
    const targets = this.endpoints.flatMap((endpoint, i) => endpoint.ports.map((port) => [port.port, this.endpointKeys[i]!] as const));
    return [...addresses, ...srvRecords(owner, ttl, targets)];
  }

  private portRecords(owner: string, wanted: { name: string; protocol: string }): ResourceRecord[] {
    const matches = (port: SlicePort): boolean => port.name === wanted.name && port.protocol === wanted.protocol;
    if (this.service.kind === 'ClusterIP') {
      return srvRecords(owner, this.ttl, this.service.ports.filter(matches).map((port) => [port.port, this.key] as const));
    }
    const targets = this.endpoints.flatMap((endpoint, i) =>
      endpoint.ports.filter(matches).map((port) => [port.port, this.endpointKeys[i]!] as const));
    return srvRecords(owner, this.ttl, targets);
  }

  private endpointNameRecords(owner: string): ResourceRecord[] {
    const records: ResourceRecord[] = [];
    this.endpoints.forEach((endpoint, i) => {
      if (this.endpointKeys[i] === owner) records.push(addressRecord(owner, this.ttl, endpoint.ip));
    });
    return records;
  }
}

class PtrSource implements RecordSource {
  constructor(private readonly target: string, private readonly ttl: number) {}

  records(owner: string): ResourceRecord[] {
    return [{ owner, ttl: this.ttl, data: { type: RRType.PTR, target: this.target } }];
  }
}

function addressRecord(owner: string, ttl: number, ip: string): ResourceRecord {
  return { owner, ttl, data: { type: ip.includes(':') ? RRType.AAAA : RRType.A, ip } };
}

function uniqueAddresses(endpoints: readonly Endpoint[]): string[] {
  return [...new Set(endpoints.map((endpoint) => endpoint.ip))];
}

/** One SRV per (port, target), priority 0, weights split evenly: floor(100 / N) each, as CoreDNS gives them. */
function srvRecords(owner: string, ttl: number, targets: ReadonlyArray<readonly [number, string]>): ResourceRecord[] {
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
