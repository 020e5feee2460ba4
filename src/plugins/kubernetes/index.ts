/**
 * plugins/kubernetes — answers the cluster zone and the reverse zones for cluster addresses, authoritatively,
 * from the live store (never from a cache: a changed endpoint is answered at once).
 *
 * Owns the name table (which names exist), the records each Service contributes (service-entry.ts), the zone's
 * own records (SOA, NS and its glue, dns-version TXT), pod records, and the choice between an answer, NODATA,
 * NXDOMAIN and, before the store's first sync, SERVFAIL. Reads the store; writes nothing but its own table.
 * Answers are prepared when a name is first asked after a change and reused until the next change, with the
 * Extended DNS Error that explains them (explain.ts) prepared alongside; while the API server is unreachable each
 * also says how old the state it comes from is.
 */
import { canonicalIp, ipv6Bytes, undashIp } from '../../ip.js';
import { NO_ENDPOINTS, serviceKey, splitServiceKey, type ServiceRecord, type StoreChanges, type StoreView } from '../../store/index.js';
import {
  EdeCode,
  emptyAnswer,
  encodeEde,
  firstLabel,
  labelsOf,
  isInZone,
  joinEde,
  nameToKey,
  parentKey,
  prepareAnswer,
  Rcode,
  RRClass,
  RRType,
  type PreparedAnswer,
  type ResourceRecord,
} from '../../wire/index.js';
import type { Question } from '../../wire/index.js';
import { notSynced, outOfTouch, whyMissing, type EdeHints, type ZoneFacts } from './explain.js';
import { endpointLabel, ServiceEntry, type EntryRules } from './service-entry.js';
import { NameTable, type NameNode } from './table.js';

/** The Kubernetes DNS-Based Service Discovery schema version we implement (spec §2.2). */
export const DNS_SCHEMA_VERSION = '1.1.0';
/** CoreDNS serves dns-version with this TTL. */
const DNS_VERSION_TTL = 28800;
const REVERSE_ZONES = [['in-addr.arpa', 4], ['ip6.arpa', 6]] as const;

export type PodMode = 'insecure' | 'verified' | 'disabled';

export interface ClusterZoneOptions {
  /** The cluster domain, e.g. `cluster.local`. */
  readonly zone: string;
  readonly ttl: number;
  readonly pods: PodMode;
  /**
   * Addresses this server answers on. The NS glue is the cluster IP of any service with one of these as an
   * endpoint (the kube-dns Service, as CoreDNS finds it), else these addresses themselves.
   */
  readonly selfAddresses: readonly string[];
  /**
   * Pass reverse names of addresses that are not ours on to the next step instead of answering NXDOMAIN
   * (CoreDNS's `fallthrough in-addr.arpa ip6.arpa`): on when an upstream can answer them.
   */
  readonly reverseFallthrough?: boolean;
  /**
   * The addresses to answer for a ClusterIP service in place of its cluster IPs (A/AAAA and PTR), when a proxy
   * gives services addresses of its own (`--proxy-vip loopback`): a name that resolves is then reachable.
   */
  readonly virtualIPs?: (service: ServiceRecord) => readonly string[];
  /** Which Extended DNS Error texts answers carry (explain.ts); `all` by default. */
  readonly hints?: EdeHints;
  /**
   * `noendpoints`: answer as CoreDNS does when it does not watch endpoints at all: no endpoint names or endpoint
   * PTRs, and headless services, which only endpoints answer, do not exist. The store keeps them for the proxy.
   */
  readonly noEndpoints?: boolean;
  /** `ignore empty_service`: a ClusterIP service with no ready endpoint is NXDOMAIN, as CoreDNS answers it. */
  readonly ignoreEmptyService?: boolean;
  /**
   * `endpoint_pod_names`: an endpoint without a hostname is named by its pod (the store must keep pod names:
   * the source's `endpointPodNames`), as CoreDNS names it; by its dashed IP otherwise.
   */
  readonly endpointPodNames?: boolean;
  /** Milliseconds; Date.now by default. Times the wait for the first sync, and the state's age while out of touch. */
  readonly now?: () => number;
}

interface Zone {
  readonly key: string;
  /** The address family of a reverse zone; undefined for the cluster zone. */
  readonly reverse: 4 | 6 | undefined;
  /** NXDOMAIN answers by question length (the SOA's compression offsets depend on it)... */
  nxdomain: Array<PreparedAnswer | undefined>;
  /** ...prepared in this generation. */
  nxdomainGeneration: number;
}

/** Names outside the table (endpoint, reverse, pod and unknown names) remembered per generation, at most this many. */
const COMPUTED_CACHE_LIMIT = 50_000;

export class ClusterResolver {
  private readonly table = new NameTable();
  private readonly entries = new Map<string, ServiceEntry>();
  /**
   * Address → the service with a reverse name for it (a cluster IP or an answered endpoint), or the services when
   * several have: almost always one, and an array per address cost ~40 B at 100k endpoints.
   */
  private readonly byAddress = new Map<string, ServiceEntry | ServiceEntry[]>();
  /** Sorted hex forms of every indexed address, for "is anything below this reverse name?"; built on demand. */
  private reversePrefixes: { generation: number; v4: string[]; v6: string[] } | undefined;
  /**
   * Names not in the table, valid for `computedGeneration` (a value of `changes`): their records and prepared answers by qtype, or
   * null for a name that does not exist, so a repeated unknown name (half of a search-path walk) costs one lookup.
   */
  private computed = new Map<string, { readonly records: ResourceRecord[]; readonly answers: Map<number, PreparedAnswer> } | null>();
  private computedGeneration = 0;
  private readonly pinnedNamespaces = new Set<string>();
  private readonly selfAddresses: ReadonlySet<string>;
  /** Services that front this server (their endpoints include one of our addresses): their IPs are the NS glue. */
  private readonly fronting = new Set<string>();
  private readonly zones: Zone[];
  private readonly clusterZone: Zone;
  private readonly podZoneKey: string;
  private readonly nsKey: string;
  private readonly hostmasterKey: string;
  /** Bumped when every prepared answer must go (see apply). */
  private generation = 0;
  /** The SOA serial the prepared answers of this generation carry. */
  private preparedSerial = -1;
  /** Bumped on every store change: what names outside the table (computed) were prepared for. */
  private changes = 0;
  /** Names whose prepared answers followed a CNAME to another name of the zone (an ExternalName service). */
  private readonly chased = new Set<NameNode>();
  private readonly unsubscribe: () => void;
  private readonly hints: EdeHints;
  private readonly now: () => number;
  private readonly startedAt: number;
  /**
   * While the API server is unreachable: the EDE that says how old the state is, for one second of age, and the
   * answers marked with it (withAge).
   */
  private aged: { since: number; seconds: number; option: Buffer; answers: WeakMap<PreparedAnswer, PreparedAnswer> } | undefined;
  /** The SERVFAIL before the first sync, prepared once per second waited (its text counts the seconds). */
  private notReady: { seconds: number; answer: PreparedAnswer } | undefined;
  /**
   * NXDOMAIN answers with their explanation, per name, valid for `missingGeneration` (a value of `changes`: any
   * service's change may change a text, "found in" another namespace), at most COMPUTED_CACHE_LIMIT.
   */
  private missing = new Map<string, PreparedAnswer>();
  private missingGeneration = 0;
  /** Service name → the namespaces holding one (hints `all` only): for "found in". One namespace is a string. */
  private readonly namespacesByName = new Map<string, string | string[]>();
  private readonly facts: ZoneFacts;
  private readonly rules: EntryRules;

  constructor(private readonly store: StoreView, private readonly options: ClusterZoneOptions) {
    this.hints = options.hints ?? 'all';
    this.rules = {
      ttl: options.ttl,
      // With noendpoints nothing is known of the endpoints, so nothing is said about their readiness either.
      explain: this.hints !== 'off' && options.noEndpoints !== true,
      ignoreEmpty: options.ignoreEmptyService === true,
      podNames: options.endpointPodNames === true,
    };
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
    this.facts = {
      hints: this.hints,
      pods: options.pods,
      namespaceExists: (namespace) => store.namespaceExists(namespace),
      namespaces: () => store.namespaces(),
      serviceKind: (namespace, name) => this.entries.get(serviceKey(namespace, name))?.service.kind,
      ownsNames: (namespace, name) => this.entries.get(serviceKey(namespace, name))?.exists === true,
      namespacesWith: (name) => {
        const found = this.namespacesByName.get(name);
        return found === undefined ? [] : typeof found === 'string' ? [found] : found;
      },
      endpointsOf: (namespace, name) => store.endpointsOf(namespace, name),
      endpointsServed: options.noEndpoints !== true,
      endpointLabel: (endpoints, row) => endpointLabel(endpoints, row, this.rules.podNames),
    };
    this.selfAddresses = new Set(options.selfAddresses.map((ip) => canonicalIp(ip) ?? ip));
    this.zones = [[options.zone, undefined] as const, ...REVERSE_ZONES].map(([name, reverse]) => ({
      key: nameToKey(name),
      reverse,
      nxdomain: [],
      nxdomainGeneration: 0,
    }));
    this.clusterZone = this.zones[0]!;
    const zoneKey = this.clusterZone.key;
    this.podZoneKey = nameToKey('pod').slice(0, -1) + zoneKey;
    this.nsKey = nameToKey('ns.dns').slice(0, -1) + zoneKey;
    this.hostmasterKey = nameToKey('hostmaster').slice(0, -1) + zoneKey;

    for (const zone of this.zones) {
      this.table.pin(zone.key);
      this.table.attach(zone.key, { records: (owner) => this.apexRecords(owner) });
    }
    this.table.attach(this.nsKey, { records: (owner) => this.glueRecords(owner) });
    this.table.attach(nameToKey('dns-version').slice(0, -1) + zoneKey, {
      records: (owner) => [{ owner, ttl: DNS_VERSION_TTL, data: { type: RRType.TXT, texts: [DNS_SCHEMA_VERSION] } }],
    });

    this.apply({
      services: new Set([...store.services()].map((service) => serviceKey(service.namespace, service.name))),
      namespaces: new Set(store.namespaces()),
    });
    this.unsubscribe = store.subscribe((changes) => this.apply(changes));
  }

  close(): void {
    this.unsubscribe();
  }

  /** How many names exist in the table (for metrics and tests). */
  get nameCount(): number {
    return this.table.size;
  }

  /**
   * The answer for a question in one of our zones, or undefined when the name is not ours to answer.
   * Synchronous and allocation-free once a name's answer is prepared.
   */
  resolve(q: Question): PreparedAnswer | undefined {
    const answer = this.fromStore(q);
    const since = this.store.outOfTouchSince;
    // In touch with the API server, what this costs the hot path is the comparison.
    if (since === undefined || answer === undefined || !this.store.synced) return answer;
    return this.withAge(answer, since);
  }

  private fromStore(q: Question): PreparedAnswer | undefined {
    if (q.qclass !== RRClass.IN && q.qclass !== RRClass.ANY) return undefined;
    if (!this.store.synced) return this.zoneOf(q.key) === undefined ? undefined : this.notReadyAnswer();
    const node = this.table.get(q.key);
    if (node !== undefined) return this.answerAt(node, q.qtype);
    const zone = this.zoneOf(q.key);
    if (zone === undefined) return undefined;
    const answer = this.computedAnswer(zone, q.key, q.qtype);
    if (answer !== undefined) return answer;
    return zone.reverse !== undefined && this.options.reverseFallthrough === true ? undefined : this.nxdomain(zone, q.key);
  }

  /**
   * A store change drops the prepared answers of the names it touched (the changed services' names lose them as
   * their sources are re-attached), not of the whole zone: under endpoint churn the other names keep answering
   * from what was prepared. The whole zone is prepared again only when something every name may carry changes:
   * a namespace, the NS glue, or the SOA serial (whole seconds, so at most once a second under churn). Answers
   * that followed a CNAME into the zone are dropped whenever any service changes. Pod and sync-only batches drop
   * only the names outside the table (pod names).
   */
  private apply(changes: StoreChanges): void {
    const fronting = [...this.fronting].join();
    for (const key of changes.services) this.rebuildService(key);
    for (const namespace of changes.namespaces) this.pinNamespace(namespace);
    if (changes.services.size > 0) {
      for (const node of this.chased) node.answers = undefined;
      this.chased.clear();
    }
    const serial = this.serial();
    if (changes.namespaces.size > 0 || serial !== this.preparedSerial || fronting !== [...this.fronting].join()) {
      this.generation++;
      this.preparedSerial = serial;
    }
    this.changes++;
  }

  /** The SOA serial: the store's last change, in whole seconds, as CoreDNS's. */
  private serial(): number {
    return Math.floor(this.store.lastChangeMs / 1000) >>> 0;
  }

  private rebuildService(key: string): void {
    const old = this.entries.get(key);
    if (old !== undefined) {
      for (const source of old.contributions) this.table.detach(source.key, source);
      for (const ip of old.addresses()) this.unindexAddress(ip, old);
      this.entries.delete(key);
      this.fronting.delete(key);
    }
    const { namespace, name } = splitServiceKey(key);
    const stored = this.store.getService(namespace, name);
    if (this.hints === 'all' && (old === undefined) !== (stored === undefined)) this.indexName(name, namespace, stored !== undefined);
    if (stored === undefined) return;
    const virtualIPs = this.options.virtualIPs;
    const service = virtualIPs !== undefined && stored.kind === 'ClusterIP' ? { ...stored, clusterIPs: virtualIPs(stored) } : stored;
    const endpoints = this.options.noEndpoints === true ? NO_ENDPOINTS : this.store.endpointsOf(namespace, name);
    const entry = new ServiceEntry(service, endpoints, this.clusterZone.key, this.rules);
    for (const source of entry.contributions) this.table.attach(source.key, source);
    for (const ip of entry.addresses()) {
      const owners = this.byAddress.get(ip);
      if (owners === undefined) this.byAddress.set(ip, entry);
      else if (owners !== entry && !(Array.isArray(owners) && owners.includes(entry))) this.byAddress.set(ip, [...ownersOf(owners), entry]);
    }
    this.entries.set(key, entry);
    if (service.clusterIPs.length > 0 && entry.fronts(this.selfAddresses)) this.fronting.add(key);
  }

  private indexName(name: string, namespace: string, present: boolean): void {
    const found = this.namespacesByName.get(name);
    const namespaces = (found === undefined ? [] : typeof found === 'string' ? [found] : found).filter((other) => other !== namespace);
    if (present) namespaces.push(namespace);
    if (namespaces.length === 0) this.namespacesByName.delete(name);
    else this.namespacesByName.set(name, namespaces.length === 1 ? namespaces[0]! : namespaces);
  }

  private notReadyAnswer(): PreparedAnswer {
    const seconds = Math.max(0, Math.floor((this.now() - this.startedAt) / 1000));
    if (this.notReady?.seconds !== seconds) {
      this.notReady = { seconds, answer: emptyAnswer(Rcode.SERVFAIL, false, encodeEde(EdeCode.NOT_READY, notSynced(seconds))) };
    }
    return this.notReady.answer;
  }

  /**
   * `answer` while the API server is unreachable: the same records (never fewer: the last known state is the best
   * there is) and one more EDE, how old that state is (explain.ts). INFO-CODE 0 (Other), not 3 (Stale Answer):
   * RFC 8914 gives 3 to a resolver that answers from its cache because it could not resolve in time, and downstream
   * resolvers may treat it so; this is the zone's authoritative answer from its own data, which may well be
   * current. The answer's own EDE, the more specific one, stays and comes first: RFC 8914 allows several options
   * in a reply, and where only one fits it is the first (response.ts). The text is encoded once per second of age,
   * and each prepared answer copied with it once per text.
   */
  private withAge(answer: PreparedAnswer, since: number): PreparedAnswer {
    const seconds = Math.max(0, Math.floor((this.now() - since) / 1000));
    let aged = this.aged;
    if (aged?.since !== since || aged.seconds !== seconds) {
      aged = { since, seconds, option: encodeEde(EdeCode.OTHER, outOfTouch(seconds)), answers: new WeakMap() };
      this.aged = aged;
    }
    let marked = aged.answers.get(answer);
    if (marked === undefined) {
      marked = { ...answer, ede: joinEde(answer.ede, aged.option) };
      aged.answers.set(answer, marked);
    }
    return marked;
  }

  private unindexAddress(ip: string, entry: ServiceEntry): void {
    const owners = ownersOf(this.byAddress.get(ip)).filter((owner) => owner !== entry);
    if (owners.length === 0) this.byAddress.delete(ip);
    else this.byAddress.set(ip, owners.length === 1 ? owners[0]! : owners);
  }

  /** `<ns>.svc.<zone>` exists (NODATA, not NXDOMAIN) for every namespace, even one with no services. */
  private pinNamespace(namespace: string): void {
    const key = nameToKey(`${namespace}.svc`).slice(0, -1) + this.clusterZone.key;
    const exists = this.store.namespaceExists(namespace);
    if (exists && !this.pinnedNamespaces.has(namespace)) {
      this.table.pin(key);
      this.pinnedNamespaces.add(namespace);
    } else if (!exists && this.pinnedNamespaces.delete(namespace)) {
      this.table.unpin(key);
    }
  }

  private zoneOf(key: string): Zone | undefined {
    for (const zone of this.zones) if (isInZone(key, zone.key)) return zone;
    return undefined;
  }

  private answerAt(node: NameNode, qtype: number): PreparedAnswer {
    if (node.answers === undefined || node.generation !== this.generation) {
      node.answers = new Map();
      node.generation = this.generation;
    }
    let answer = node.answers.get(qtype);
    if (answer === undefined) {
      answer = this.prepareAt(node, qtype);
      node.answers.set(qtype, answer);
    }
    return answer;
  }

  private prepareAt(node: NameNode, qtype: number): PreparedAnswer {
    const records = node.records();
    const cname = records.find((record) => record.data.type === RRType.CNAME);
    let answer: ResourceRecord[];
    let chaseTarget: string | undefined;
    if (cname !== undefined && qtype !== RRType.CNAME && qtype !== RRType.ANY) {
      const chased = this.chase(cname, qtype);
      answer = [cname, ...chased.records];
      chaseTarget = chased.outside;
      // Its answer holds another name's records: it goes when any service changes (apply).
      if (chased.outside === undefined) this.chased.add(node);
    } else {
      answer = qtype === RRType.ANY ? records : records.filter((record) => record.data.type === qtype);
    }
    if (answer.length === 0) return this.negative(node.key, Rcode.NOERROR);
    // A service address that will not connect says so (explain.ts); its source built the text when it changed.
    const ede = node.sources.find((source) => source.ede !== undefined)?.ede;
    return prepareAnswer(node.key, { rcode: Rcode.NOERROR, authoritative: true, chaseTarget, ede, answer, additional: this.additionalFor(answer) });
  }

  /**
   * Follows a CNAME through our own zones (an ExternalName naming another service), at most 8 deep; `outside`
   * is the target it ends at when that is not ours, for the next resolver steps to answer.
   */
  private chase(cname: ResourceRecord, qtype: number): { records: ResourceRecord[]; outside?: string } {
    const chain: ResourceRecord[] = [];
    const seen = new Set<string>();
    for (let link = cname; link.data.type === RRType.CNAME && chain.length < 8; ) {
      const target = link.data.target;
      if (seen.has(target)) break;
      seen.add(target);
      if (this.zoneOf(target) === undefined) return { records: chain, outside: target };
      const records = this.recordsAt(target) ?? [];
      const next = records.find((record) => record.data.type === RRType.CNAME);
      if (next === undefined) return { records: [...chain, ...records.filter((record) => record.data.type === qtype)] };
      chain.push(next);
      link = next;
    }
    return { records: chain };
  }

  /** The addresses of SRV and NS targets we know, so clients need no second query. */
  private additionalFor(answer: readonly ResourceRecord[]): ResourceRecord[] {
    const targets = new Set<string>();
    for (const record of answer) {
      if (record.data.type === RRType.SRV || record.data.type === RRType.NS) targets.add(record.data.target);
    }
    const additional: ResourceRecord[] = [];
    for (const target of targets) {
      for (const record of this.recordsAt(target) ?? []) {
        if (record.data.type === RRType.A || record.data.type === RRType.AAAA) additional.push(record);
      }
    }
    return additional;
  }

  private negative(key: string, rcode: number, ede?: Buffer): PreparedAnswer {
    const zone = this.zoneOf(key)!;
    return prepareAnswer(key, { rcode, authoritative: true, ede, authority: this.apexRecords(zone.key).filter((r) => r.data.type === RRType.SOA) });
  }

  /**
   * NXDOMAIN for `key`. In the cluster zone it says which label failed and what exists instead (explain.ts), worked
   * out once per name per store change; elsewhere, and for names with nothing to say, one answer per length.
   */
  private nxdomain(zone: Zone, key: string): PreparedAnswer {
    if (zone !== this.clusterZone || this.hints === 'off') return this.plainNxdomain(zone, key);
    if (this.missingGeneration !== this.changes || this.missing.size >= COMPUTED_CACHE_LIMIT) {
      this.missing = new Map();
      this.missingGeneration = this.changes;
    }
    let answer = this.missing.get(key);
    if (answer === undefined) {
      const text = whyMissing(labelsOf(key.slice(0, key.length - zone.key.length)), this.facts);
      answer = text === undefined ? this.plainNxdomain(zone, key) : this.negative(key, Rcode.NXDOMAIN, encodeEde(EdeCode.OTHER, text));
      this.missing.set(key, answer);
    }
    return answer;
  }

  private plainNxdomain(zone: Zone, key: string): PreparedAnswer {
    if (zone.nxdomainGeneration !== this.generation) {
      zone.nxdomain = [];
      zone.nxdomainGeneration = this.generation;
    }
    let answer = zone.nxdomain[key.length];
    if (answer === undefined) {
      answer = this.negative(key, Rcode.NXDOMAIN);
      zone.nxdomain[key.length] = answer;
    }
    return answer;
  }

  /** The records at any name of ours, in the table or computed; undefined when the name does not exist. */
  private recordsAt(key: string): ResourceRecord[] | undefined {
    const node = this.table.get(key);
    if (node !== undefined) return node.records();
    const zone = this.zoneOf(key);
    return zone === undefined ? undefined : this.computedRecords(zone, key);
  }

  /** The answer at a name that is not in the table but may exist (an endpoint, reverse or pod name). */
  private computedAnswer(zone: Zone, key: string, qtype: number): PreparedAnswer | undefined {
    if (this.computedGeneration !== this.changes || this.computed.size >= COMPUTED_CACHE_LIMIT) {
      this.computed = new Map();
      this.computedGeneration = this.changes;
    }
    let name = this.computed.get(key);
    if (name === undefined) {
      const records = this.computedRecords(zone, key);
      name = records === undefined ? null : { records, answers: new Map() };
      this.computed.set(key, name);
    }
    if (name === null) return undefined;
    let prepared = name.answers.get(qtype);
    if (prepared === undefined) {
      const answer = name.records.filter((record) => record.data.type === qtype || qtype === RRType.ANY);
      prepared = answer.length === 0
        ? this.negative(key, Rcode.NOERROR)
        : prepareAnswer(key, { rcode: Rcode.NOERROR, authoritative: true, answer });
      name.answers.set(qtype, prepared);
    }
    return prepared;
  }

  /** Records of a computed name ([] for an empty non-terminal), or undefined when it does not exist. */
  private computedRecords(zone: Zone, key: string): ResourceRecord[] | undefined {
    if (zone.reverse !== undefined) return this.reverseRecords(zone, key, zone.reverse === 6);
    if (isInZone(key, this.podZoneKey)) return this.podRecords(key);
    const parent = parentKey(key);
    const entry = parent === undefined ? undefined : this.table.get(parent)?.sources.find((source) => source instanceof ServiceEntry);
    const label = firstLabel(key);
    return entry?.hasEndpoint(label) ? entry.endpointRecords(key, label) : undefined;
  }

  /**
   * `<dashed-ip>.<ns>.pod.<zone>`: answered for any well-formed address in an existing namespace
   * (`insecure`), only for a pod with that address in that namespace (`verified`), or never (`disabled`).
   * `pod.<zone>` and `<ns>.pod.<zone>` are empty non-terminals while a name below them can exist.
   */
  private podRecords(key: string): ResourceRecord[] | undefined {
    const mode = this.options.pods;
    if (mode === 'disabled') return undefined;
    if (key === this.podZoneKey) return [];
    const namespaceKey = parentKey(key)!;
    const inNamespace = (namespace: string): boolean =>
      this.store.namespaceExists(namespace) && (mode === 'insecure' || this.store.namespaceHasPods(namespace));
    if (namespaceKey === this.podZoneKey) return inNamespace(firstLabel(key)) ? [] : undefined;
    if (parentKey(namespaceKey) !== this.podZoneKey) return undefined;
    const namespace = firstLabel(namespaceKey);
    const ip = undashIp(firstLabel(key));
    if (ip === undefined || !inNamespace(namespace)) return undefined;
    if (mode === 'verified' && this.store.podAt(ip, namespace) === undefined) return undefined;
    return [{ owner: key, ttl: this.options.ttl, data: { type: ip.includes(':') ? RRType.AAAA : RRType.A, ip } }];
  }

  /**
   * A reverse name: PTRs for an address of ours, [] for a partial name with one of our addresses below it
   * (an empty non-terminal: NXDOMAIN there would tell resolvers that nothing below exists, RFC 8020).
   */
  private reverseRecords(zone: Zone, key: string, v6: boolean): ResourceRecord[] | undefined {
    const hex = reverseHex(key.slice(0, key.length - zone.key.length), v6);
    if (hex === undefined) return undefined;
    if (hex.length === (v6 ? 32 : 8)) {
      const ip = v6 ? canonicalIp(hex.match(/.{4}/g)!.join(':'))! : hex.match(/.{2}/g)!.map((byte) => parseInt(byte, 16)).join('.');
      const owners = this.byAddress.get(ip);
      if (owners === undefined) return undefined;
      return ownersOf(owners).flatMap((entry) => entry.ptrTargets(ip)).map((target) => ({ owner: key, ttl: this.options.ttl, data: { type: RRType.PTR, target } }));
    }
    if (this.reversePrefixes?.generation !== this.changes) {
      const v4: string[] = [];
      const v6s: string[] = [];
      for (const ip of this.byAddress.keys()) {
        if (ip.includes(':')) v6s.push(ipv6Bytes(ip).toString('hex'));
        else v4.push(ip.split('.').map((octet) => Number(octet).toString(16).padStart(2, '0')).join(''));
      }
      this.reversePrefixes = { generation: this.changes, v4: v4.sort(), v6: v6s.sort() };
    }
    const sorted = v6 ? this.reversePrefixes.v6 : this.reversePrefixes.v4;
    let low = 0;
    let high = sorted.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (sorted[middle]! < hex) low = middle + 1;
      else high = middle;
    }
    return sorted[low]?.startsWith(hex) ? [] : undefined;
  }

  /** SOA and NS of a zone apex. The serial moves with every store change, as CoreDNS's does. */
  private apexRecords(owner: string): ResourceRecord[] {
    const ttl = this.options.ttl;
    const serial = this.serial();
    return [
      {
        owner,
        ttl,
        data: { type: RRType.SOA, mname: this.nsKey, rname: this.hostmasterKey, serial, refresh: 7200, retry: 1800, expire: 86400, minimum: ttl },
      },
      { owner, ttl, data: { type: RRType.NS, target: this.nsKey } },
    ];
  }

  private glueRecords(owner: string): ResourceRecord[] {
    const fronting = [...this.fronting].flatMap((key) => this.entries.get(key)?.service.clusterIPs ?? []);
    const addresses = fronting.length > 0 ? fronting : [...this.selfAddresses];
    return addresses.map((ip) => ({ owner, ttl: this.options.ttl, data: { type: ip.includes(':') ? RRType.AAAA : RRType.A, ip } }));
  }
}

const ownersOf = (owners: ServiceEntry | ServiceEntry[] | undefined): ServiceEntry[] =>
  owners === undefined ? [] : Array.isArray(owners) ? owners : [owners];

/**
 * The hex digits of the address (prefix) a reverse name stands for, most significant first: two per octet
 * under in-addr.arpa (decimal labels, no leading zeros), one per nibble under ip6.arpa. Undefined when the
 * labels cannot be part of an address.
 */
function reverseHex(labels: string, v6: boolean): string | undefined {
  let hex = '';
  let count = 0;
  for (let i = 0; i < labels.length; i += labels.charCodeAt(i) + 1) {
    const label = labels.slice(i + 1, i + 1 + labels.charCodeAt(i));
    if (v6) {
      if (!/^[0-9a-f]$/.test(label)) return undefined;
      hex = label + hex;
    } else {
      if (!/^(0|[1-9][0-9]{0,2})$/.test(label) || Number(label) > 255) return undefined;
      hex = Number(label).toString(16).padStart(2, '0') + hex;
    }
    if (++count > (v6 ? 32 : 4)) return undefined;
  }
  return hex;
}
