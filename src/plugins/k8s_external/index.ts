/**
 * plugins/k8s_external — answers an external zone (`example.org`) with the addresses Services are reached on
 * from outside the cluster, as CoreDNS's k8s_external: `<svc>.<ns>.<zone>` gets A/AAAA for `spec.externalIPs`
 * and load-balancer ingress IPs (a CNAME for an ingress hostname), `_<port>._<proto>.<svc>.<ns>.<zone>` and the
 * service name get SRV, and the apex its SOA and NS (`ns1.<apex>.<zone>`, with glue). With `headless`, a headless
 * service without external IPs answers with its ready endpoints, also by endpoint name. A reverse zone among its
 * zones (`0.19.198.in-addr.arpa`) gets PTR records for the external IPs: `<svc>.<ns>.<first zone>`, one per
 * service with that address, as CoreDNS's; any other reverse name there is NXDOMAIN.
 *
 * Reads the store only (the service records' `externalIPs`); writes nothing. Answers are prepared when a name is
 * first asked and dropped on any store change, since the serial in every SOA moves with it.
 */
import { canonicalIp, reverseName } from '../../ip.js';
import { NO_ENDPOINTS, type EndpointSet, type ServiceRecord, type StoreView } from '../../store/index.js';
import { emptyAnswer, isInZone, labelsOf, nameToKey, prepareAnswer, Rcode, RRClass, RRType, type PreparedAnswer, type ResourceRecord } from '../../wire/index.js';
import type { Client, Handler, Next, Question, Reply, Result } from '../plugin.js';
import { mergeBehindCname } from '../kubernetes/handler.js';
import { addressRecord, endpointLabel, readyOnly, srvRecords } from '../kubernetes/service-entry.js';

export interface ExternalOptions {
  /** Absolute, lower-case zones; the first is the external zone, which names the PTR targets. */
  readonly zones: readonly string[];
  /** The label(s) under each zone holding the name server's records: `dns` by default. */
  readonly apex: string;
  readonly ttl: number;
  readonly headless: boolean;
  /** The kubernetes plugin's `endpoint_pod_names`, for endpoint names. */
  readonly endpointPodNames: boolean;
  /** The NS glue when no service with external IPs fronts this server. */
  readonly selfAddresses: readonly string[];
}

/** What a name is: records (maybe none: NODATA), or undefined when it does not exist (NXDOMAIN). */
type Found = ResourceRecord[] | undefined;

/** Prepared answers kept per generation, at most this many names. */
const CACHE_LIMIT = 50_000;

export class ExternalZone implements Handler {
  readonly name = 'k8s_external';
  private readonly zoneKeys: readonly string[];
  private prepared = new Map<string, Map<number, PreparedAnswer>>();
  /** Reverse name key of an external IP → its PTR targets; built when a reverse name is first asked. */
  private reverse: Map<string, string[]> | undefined;
  private readonly unsubscribe: () => void;
  private readonly notReady = emptyAnswer(Rcode.SERVFAIL);

  constructor(private readonly store: StoreView, private readonly options: ExternalOptions) {
    this.zoneKeys = options.zones.map((zone) => nameToKey(zone));
    this.unsubscribe = store.subscribe(() => {
      this.prepared = new Map();
      this.reverse = undefined;
    });
  }

  close(): void {
    this.unsubscribe();
  }

  resolve(q: Question, client: Client, next: Next): Result {
    const zone = this.zoneKeys.find((key) => isInZone(q.key, key));
    if (zone === undefined || (q.qclass !== RRClass.IN && q.qclass !== RRClass.ANY)) return next(q, client);
    if (!this.store.synced) return { answer: this.notReady, plugin: this.name };
    const answer = this.answer(zone, q.key, q.qtype);
    const own: Reply = { answer, plugin: this.name };
    const targetKey = answer.chaseTarget;
    if (targetKey === undefined) return own;
    // A load balancer known by its hostname: its addresses are the rest of the chain's to find (CoreDNS asks
    // its upstream), merged behind our CNAME.
    const merge = (target: Reply): Reply => (target.plugin === '' ? own : { answer: mergeBehindCname(q.key, q.qtype, answer, targetKey, target.answer), plugin: this.name });
    const target = next({ ...q, key: targetKey }, client);
    return target instanceof Promise ? target.then(merge) : merge(target);
  }

  private answer(zone: string, key: string, qtype: number): PreparedAnswer {
    let byType = this.prepared.get(key);
    if (byType === undefined) {
      if (this.prepared.size >= CACHE_LIMIT) this.prepared = new Map();
      byType = new Map();
      this.prepared.set(key, byType);
    }
    let answer = byType.get(qtype);
    if (answer === undefined) {
      answer = this.prepare(zone, key, qtype);
      byType.set(qtype, answer);
    }
    return answer;
  }

  private prepare(zone: string, key: string, qtype: number): PreparedAnswer {
    const found = this.recordsAt(zone, key);
    const soa = [this.soa(zone)];
    if (found === undefined) return prepareAnswer(key, { rcode: Rcode.NXDOMAIN, authoritative: true, authority: soa });
    const cname = found.find((record) => record.data.type === RRType.CNAME);
    const answer = cname !== undefined && qtype !== RRType.SRV ? [cname]
      : found.filter((record) => record.data.type === qtype || (qtype === RRType.ANY && record.data.type !== RRType.CNAME));
    if (answer.length === 0) return prepareAnswer(key, { rcode: Rcode.NOERROR, authoritative: true, authority: soa });
    const chaseTarget = cname !== undefined && answer[0] === cname && qtype !== RRType.CNAME && cname.data.type === RRType.CNAME
      ? cname.data.target : undefined;
    return prepareAnswer(key, { rcode: Rcode.NOERROR, authoritative: true, chaseTarget, answer, additional: this.additional(zone, answer) });
  }

  /** The addresses of SRV and NS targets in this zone. */
  private additional(zone: string, answer: readonly ResourceRecord[]): ResourceRecord[] {
    const targets = new Set<string>();
    for (const record of answer) if (record.data.type === RRType.SRV || record.data.type === RRType.NS) targets.add(record.data.target);
    return [...targets].flatMap((target) => (isInZone(target, zone) ? this.recordsAt(zone, target) ?? [] : []))
      .filter((record) => record.data.type === RRType.A || record.data.type === RRType.AAAA);
  }

  private recordsAt(zone: string, key: string): Found {
    const { ttl } = this.options;
    if (key === zone) return [this.soa(zone), { owner: zone, ttl, data: { type: RRType.NS, target: this.nsKey(zone) } }];
    const apexKey = nameToKey(this.options.apex).slice(0, -1) + zone;
    if (isInZone(key, apexKey)) {
      if (key === apexKey) return [];
      if (key === this.nsKey(zone)) return this.glue().map((ip) => addressRecord(key, ttl, ip));
      return undefined;
    }
    if (isReverseZone(zone)) {
      const targets = this.reverseIndex().get(key);
      return targets?.map((target) => ({ owner: key, ttl, data: { type: RRType.PTR, target } }));
    }
    const labels = labelsOf(key.slice(0, key.length - zone.length));
    const namespace = labels.at(-1)!;
    if (!this.store.namespaceExists(namespace)) return undefined;
    if (labels.length === 1) return [];
    if (labels.length > 4) return undefined;
    const service = this.store.getService(namespace, labels.at(-2)!);
    if (service === undefined) return undefined;
    const serviceKey = key.slice(key.length - zone.length - namespace.length - labels.at(-2)!.length - 2);
    const endpoints = this.headlessEndpoints(service);
    if (endpoints !== undefined) return this.endpointRecords(endpoints, serviceKey, key, labels);
    const external = service.externalIPs ?? [];
    if (external.length === 0) return undefined;
    const ips = external.filter((address) => canonicalIp(address) !== undefined);
    const hostname = ips.length === 0 ? nameToKey(external[0]!) : undefined;
    const srvTarget = hostname ?? serviceKey;
    if (labels.length === 2) {
      const own = hostname !== undefined ? [{ owner: key, ttl, data: { type: RRType.CNAME, target: hostname } } as ResourceRecord]
        : ips.map((ip) => addressRecord(key, ttl, ip));
      return [...own, ...srvRecords(key, ttl, service.ports.map((port) => [port.port, srvTarget] as const))];
    }
    const protocols = new Set(service.ports.filter((port) => port.name !== '').map((port) => `_${port.protocol.toLowerCase()}`));
    // `_tcp.<svc>.<ns>.<zone>`: the empty non-terminal above `_http._tcp.…`.
    if (labels.length === 3) return protocols.has(labels[0]!) ? [] : undefined;
    const ports = service.ports.filter((port) => port.name !== '' && `_${port.name}` === labels[0] && `_${port.protocol.toLowerCase()}` === labels[1]);
    return ports.length === 0 ? undefined : srvRecords(key, ttl, ports.map((port) => [port.port, srvTarget] as const));
  }

  private reverseIndex(): Map<string, string[]> {
    if (this.reverse !== undefined) return this.reverse;
    const index = new Map<string, string[]>();
    const external = this.zoneKeys[0]!;
    for (const service of this.store.services()) {
      for (const address of service.externalIPs ?? []) {
        const ip = canonicalIp(address);
        if (ip === undefined) continue;
        const key = nameToKey(reverseName(ip));
        const target = nameToKey(`${service.name}.${service.namespace}`).slice(0, -1) + external;
        const targets = index.get(key);
        if (targets === undefined) index.set(key, [target]);
        else if (!targets.includes(target)) targets.push(target);
      }
    }
    return (this.reverse = index);
  }

  /** With `headless`, a headless service without external IPs answers with its endpoints (ready, or all). */
  private headlessEndpoints(service: ServiceRecord): EndpointSet | undefined {
    if (!this.options.headless || service.kind !== 'Headless' || (service.externalIPs?.length ?? 0) > 0) return undefined;
    const all = this.store.endpointsOf(service.namespace, service.name);
    return service.publishNotReadyAddresses ? all : readyOnly(all);
  }

  private endpointRecords(set: EndpointSet, serviceKey: string, key: string, labels: readonly string[]): Found {
    const { ttl } = this.options;
    if (set === NO_ENDPOINTS || set.ips.length === 0) return undefined;
    const label = (row: number): string => endpointLabel(set, row, this.options.endpointPodNames);
    const endpointKey = (row: number): string => String.fromCharCode(label(row).length) + label(row) + serviceKey;
    const rows = set.ips.map((_ip, row) => row);
    const srv = (owner: string, chosen: number[], port?: readonly string[]): ResourceRecord[] => srvRecords(owner, ttl, chosen.flatMap((row) =>
      set.ports[row]!.filter((p) => port === undefined || (`_${p.name}` === port[0] && `_${p.protocol.toLowerCase()}` === port[1]))
        .map((p) => [p.port, endpointKey(row)] as const)));
    if (labels.length === 2) return [...rows.map((row) => addressRecord(key, ttl, set.ips[row]!)), ...srv(key, rows)];
    if (labels.length === 3) {
      const chosen = rows.filter((row) => label(row) === labels[0]);
      if (chosen.length > 0) return [...chosen.map((row) => addressRecord(key, ttl, set.ips[row]!)), ...srv(key, chosen)];
      return set.ports.some((ports) => ports.some((p) => p.name !== '' && `_${p.protocol.toLowerCase()}` === labels[0])) ? [] : undefined;
    }
    const records = srv(key, rows, labels);
    return records.length === 0 ? undefined : records;
  }

  private nsKey(zone: string): string {
    return nameToKey(`ns1.${this.options.apex}`).slice(0, -1) + zone;
  }

  /** The external addresses of the services in front of this server (their endpoints hold our address), else ours. */
  private glue(): readonly string[] {
    const self = new Set(this.options.selfAddresses.map((ip) => canonicalIp(ip) ?? ip));
    const fronting: string[] = [];
    for (const service of this.store.services()) {
      if (service.externalIPs === undefined) continue;
      if (!this.store.endpointsOf(service.namespace, service.name).ips.some((ip) => self.has(ip))) continue;
      fronting.push(...service.externalIPs.filter((address) => canonicalIp(address) !== undefined));
    }
    return fronting.length > 0 ? fronting : [...self];
  }

  /** CoreDNS's: `ns1.<apex>.<zone>` and `hostmaster.<apex>.<zone>`, the serial the store's last change in seconds. */
  private soa(zone: string): ResourceRecord {
    const { ttl, apex } = this.options;
    const serial = Math.floor(this.store.lastChangeMs / 1000) >>> 0;
    const rname = nameToKey(`hostmaster.${apex}`).slice(0, -1) + zone;
    return { owner: zone, ttl, data: { type: RRType.SOA, mname: this.nsKey(zone), rname, serial, refresh: 7200, retry: 1800, expire: 86400, minimum: ttl } };
  }
}

function isReverseZone(zone: string): boolean {
  return isInZone(zone, nameToKey('in-addr.arpa.')) || isInZone(zone, nameToKey('ip6.arpa.'));
}
