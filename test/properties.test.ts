/**
 * Property tests (fast-check), where an invariant is cheaper to state than to fuzz:
 *  - the store: replaceAll after any sequence of watch events reads exactly as a fresh store given the same list
 *    (the reconcile of a relist, whole or one namespace's), through every read of the store's view;
 *  - the glibc search walk (src/resolve/glibc.ts resSearch) against a small model of res_search: the names
 *    tried, in order, where it stops, and the h_errno it ends with, for any name, search list, ndots and replies;
 *  - the cache (src/plugins/cache/): on a stepped clock, the TTLs a client sees count down from the upstream's
 *    and never increase between two hits of one stored answer.
 * Each runs a fixed number of cases with fast-check's shrinking; FC_SEED replays a failure's seed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AnswerCache } from '../src/plugins/cache/index.js';
import { resSearch, type HErrno, type NameOutcome, type SearchSettings } from '../src/resolve/glibc.js';
import { RecordStore, type EndpointSliceRecord, type PodRecord, type RecordsByKind, type ResourceKind, type ServiceRecord } from '../src/store/index.js';
import { decodeMessage, nameToKey, preparedRecords, Rcode, RRClass, RRType, type Message, type Question, type WireRecord } from '../src/wire/index.js';

const seed = process.env.FC_SEED === undefined ? {} : { seed: Number(process.env.FC_SEED) };
const RUNS = { numRuns: 300, ...seed };

// ---- the store ------------------------------------------------------------------------------------------------

const NAMESPACES = ['a', 'b'];
const NAMES = ['x', 'y', 'z'];
const IPS = ['10.0.0.1', '10.0.0.2', '10.0.0.3', 'fd00::1'];

const namespaceRecord = fc.record({ name: fc.constantFrom(...NAMESPACES, 'c') });
const serviceRecord: fc.Arbitrary<ServiceRecord> = fc.record({
  namespace: fc.constantFrom(...NAMESPACES),
  name: fc.constantFrom(...NAMES),
  kind: fc.constantFrom('ClusterIP' as const, 'Headless' as const),
  clusterIPs: fc.subarray(['10.96.0.1', '10.96.0.2']),
  ports: fc.constantFrom([], [{ name: 'http', port: 80, protocol: 'TCP' as const, targetPort: 8080 }]),
  publishNotReadyAddresses: fc.boolean(),
  hasSelector: fc.boolean(),
}).map((service) => (service.kind === 'Headless' ? { ...service, clusterIPs: [] } : service));
const sliceRecord: fc.Arbitrary<EndpointSliceRecord> = fc.record({
  namespace: fc.constantFrom(...NAMESPACES),
  name: fc.constantFrom('s1', 's2', 's3'),
  serviceName: fc.constantFrom(...NAMES),
  ips: fc.subarray(IPS.slice(0, 3)),
  conditions: fc.array(fc.constantFrom(1, 3, 0, 6), { minLength: 3, maxLength: 3 }),
  port: fc.constantFrom(8080, 9090),
}).map(({ ips, conditions, port, ...slice }) => ({
  ...slice,
  addressType: 'IPv4' as const,
  ports: [{ name: 'http', port, protocol: 'TCP' as const }],
  endpoints: { ips, conditions: conditions.slice(0, ips.length) },
}));
const podRecord: fc.Arbitrary<PodRecord> = fc.record({ namespace: fc.constantFrom(...NAMESPACES), name: fc.constantFrom('p1', 'p2'), ips: fc.subarray(IPS) });

type AnyRecord = { [K in ResourceKind]: { kind: K; record: RecordsByKind[K] } }[ResourceKind];
const anyRecord: fc.Arbitrary<AnyRecord> = fc.oneof(
  namespaceRecord.map((record) => ({ kind: 'namespace' as const, record })),
  serviceRecord.map((record) => ({ kind: 'service' as const, record })),
  sliceRecord.map((record) => ({ kind: 'endpointslice' as const, record })),
  podRecord.map((record) => ({ kind: 'pod' as const, record })),
);
type WatchEvent = { type: 'put'; item: AnyRecord } | { type: 'delete'; item: AnyRecord };
const watchEvent: fc.Arbitrary<WatchEvent> = fc.record({ type: fc.constantFrom('put' as const, 'delete' as const), item: anyRecord });

const keyOf = (item: AnyRecord): string => (item.kind === 'namespace' ? item.record.name : `${item.record.namespace}/${item.record.name}`);

/** A list as the API server gives one: each name once. */
const relist = (maxLength: number): fc.Arbitrary<AnyRecord[]> => fc.uniqueArray(anyRecord, { maxLength, selector: (item) => `${item.kind} ${keyOf(item)}` });

/** Everything a reader of the store can see. */
function view(store: RecordStore): unknown {
  const out: Record<string, unknown> = {
    namespaces: [...store.namespaces()].sort(),
    services: [...store.services()].map((service) => JSON.stringify(service)).sort(),
    serviceCount: store.serviceCount,
    podCount: store.podCount,
  };
  for (const namespace of [...NAMESPACES, 'c']) {
    out[`exists ${namespace}`] = store.namespaceExists(namespace);
    out[`hasPods ${namespace}`] = store.namespaceHasPods(namespace);
    for (const name of NAMES) out[`endpoints ${namespace}/${name}`] = store.endpointsOf(namespace, name);
    // Pods sharing an address (host network): which one podAt names depends on arrival order; that it names one
    // of them, and only when there is one, does not.
    for (const ip of IPS) {
      const pod = store.podAt(ip, namespace);
      const candidates = store.podsByIP(ip).filter((key) => key.startsWith(`${namespace}/`));
      out[`podAt ${ip} ${namespace}`] = pod === undefined ? candidates.length === 0 : candidates.includes(`${namespace}/${pod}`);
    }
  }
  for (const ip of IPS) out[`pods ${ip}`] = [...store.podsByIP(ip)].sort();
  return out;
}

describe('store: replaceAll after any watch events reads as a fresh list', () => {
  it('a whole relist of every kind', () => {
    fc.assert(fc.property(fc.array(watchEvent, { maxLength: 30 }), relist(15), (events, list) => {
      const watched = new RecordStore(() => 0);
      for (const event of events) {
        if (event.type === 'put') watched.upsert(event.item.kind, event.item.record);
        else watched.remove(event.item.kind, event.item.kind === 'namespace' ? '' : event.item.record.namespace, event.item.record.name);
      }
      const fresh = new RecordStore(() => 0);
      for (const store of [watched, fresh]) {
        store.batch(() => {
          for (const kind of ['namespace', 'service', 'endpointslice', 'pod'] as const) {
            store.replaceAll(kind, list.filter((item) => item.kind === kind).map((item) => item.record) as Array<RecordsByKind[typeof kind]>);
          }
        });
      }
      expect(view(watched)).toEqual(view(fresh));
    }), RUNS);
  });

  it("one namespace's relist replaces that namespace's records of the kind and leaves the rest as the events left them", () => {
    const namespaced = fc.constantFrom('service' as const, 'endpointslice' as const, 'pod' as const);
    fc.assert(fc.property(fc.array(watchEvent, { maxLength: 30 }), namespaced, relist(10), (events, kind, list) => {
      const watched = new RecordStore(() => 0);
      // The model: the last record put under each key, until deleted.
      const model = new Map<string, AnyRecord>();
      for (const event of events) {
        const key = `${event.item.kind} ${keyOf(event.item)}`;
        if (event.type === 'put') {
          watched.upsert(event.item.kind, event.item.record);
          model.set(key, event.item);
        } else {
          watched.remove(event.item.kind, event.item.kind === 'namespace' ? '' : event.item.record.namespace, event.item.record.name);
          model.delete(key);
        }
      }
      const relisted = list.filter((item) => item.kind === kind && item.record.namespace === 'a');
      watched.replaceAll(kind, relisted.map((item) => item.record) as Array<RecordsByKind[typeof kind]>, { namespace: 'a' });
      for (const [key, item] of model) if (item.kind === kind && item.record.namespace === 'a') model.delete(key);
      for (const item of relisted) model.set(`${item.kind} ${keyOf(item)}`, item);
      const fresh = new RecordStore(() => 0);
      for (const item of model.values()) fresh.upsert(item.kind, item.record);
      expect(view(watched)).toEqual(view(fresh));
    }), RUNS);
  });
});

// ---- the glibc search walk ------------------------------------------------------------------------------------

type Reply = 'found' | 'nxdomain' | 'nodata' | 'servfail' | 'unreachable' | 'refused';
const OUTCOMES: Record<Reply, NameOutcome> = {
  found: { found: true },
  nxdomain: { found: false, herrno: 'HOST_NOT_FOUND' },
  nodata: { found: false, herrno: 'NO_DATA' },
  servfail: { found: false, herrno: 'TRY_AGAIN', servfail: true },
  unreachable: { found: false, herrno: 'TRY_AGAIN', unreachable: true },
  refused: { found: false, herrno: 'NO_RECOVERY' },
};

/**
 * res_search as a list: the candidates in order (as is first with at least ndots dots, then each search domain,
 * then as is unless asked already, the root was among the domains walked, or no-tld-query holds for a dotless
 * name), walked
 * until one is found; an unreachable server in the list ends everything, any failure but NXDOMAIN, NODATA and
 * SERVFAIL ends the list part (and a root entry after that point does not count as on the list).
 */
function model(name: string, settings: SearchSettings, reply: (name: string) => Reply): { tries: string[]; found: boolean; herrno?: HErrno } {
  const abs = (text: string): string => (text.endsWith('.') ? text : `${text}.`);
  if (name.endsWith('.')) {
    const r = reply(name);
    return r === 'found' ? { tries: [name], found: true } : { tries: [name], found: false, herrno: OUTCOMES[r].herrno! };
  }
  const dots = name.split('.').length - 1;
  const domains = settings.search.map((entry) => entry.replace(/^\./, ''));
  const first = dots >= settings.ndots ? [abs(name)] : [];
  const tries: string[] = [];
  let saved: HErrno | undefined;
  for (const candidate of first) {
    tries.push(candidate);
    if (reply(candidate) === 'found') return { tries, found: true };
    saved = OUTCOMES[reply(candidate)].herrno;
  }
  const seen: Reply[] = [];
  // As glibc's root_on_list: known only once the walk reaches the root entry, not when it stopped before it.
  let rootWalked = false;
  for (const domain of domains) {
    rootWalked ||= domain === '';
    const candidate = abs(domain === '' ? name : `${name}.${domain}`);
    tries.push(candidate);
    const r = reply(candidate);
    if (r === 'found') return { tries, found: true };
    if (r === 'unreachable') return { tries, found: false, herrno: 'TRY_AGAIN' };
    seen.push(r);
    if (r === 'refused') break;
  }
  if (first.length === 0 && !rootWalked && !(dots === 0 && domains.length > 0 && settings.noTldQuery)) {
    tries.push(abs(name));
    if (reply(abs(name)) === 'found') return { tries, found: true };
  }
  const last = OUTCOMES[reply(tries.at(-1)!)].herrno!;
  return { tries, found: false, herrno: saved ?? (seen.includes('nodata') ? 'NO_DATA' : seen.includes('servfail') ? 'TRY_AGAIN' : last) };
}

describe('glibc search walk against its model', () => {
  const label = fc.constantFrom('web', 'default', 'svc', 'example', 'org', 'cluster', 'local');
  const name = fc.tuple(fc.array(label, { minLength: 1, maxLength: 6 }), fc.boolean()).map(([labels, dot]) => `${labels.join('.')}${dot ? '.' : ''}`);
  const search = fc.array(fc.constantFrom('default.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'example.org', '.', '.cluster.local', 'org'), { maxLength: 6 });
  const settings = fc.record({ search, ndots: fc.integer({ min: 0, max: 6 }), noTldQuery: fc.boolean() });
  const replies = fc.func(fc.constantFrom<Reply>('found', 'nxdomain', 'nxdomain', 'nodata', 'servfail', 'unreachable', 'refused'));

  it('tries the same names in the same order, stops at the same one, with the same h_errno', async () => {
    await fc.assert(fc.asyncProperty(name, settings, replies, async (n, s, reply) => {
      const result = await resSearch(n, s, async (candidate) => OUTCOMES[reply(candidate)]);
      const expected = model(n, s, reply);
      expect(result.tries.map((t) => t.name)).toEqual(expected.tries);
      expect(result.found !== undefined).toBe(expected.found);
      if (!expected.found) expect(result.herrno).toBe(expected.herrno);
    }), RUNS);
  });
});

// ---- the cache's TTL countdown --------------------------------------------------------------------------------

const KEY = nameToKey('example.org');
const QUESTION: Question = { key: KEY, qtype: RRType.A, qclass: RRClass.IN, dnssecOk: false, flags: 0 };

function upstreamMessage(ttls: readonly number[], negative: { soaTtl: number; minimum: number } | undefined): Message {
  const record = (ttl: number, i: number): WireRecord => ({ owner: KEY, type: RRType.A, class: RRClass.IN, ttl, rdata: Buffer.from([192, 0, 2, i & 0xff]) });
  const soa = (ttl: number, minimum: number): WireRecord => {
    const rdata = Buffer.concat([Buffer.from(nameToKey('ns.example.org'), 'latin1'), Buffer.from(nameToKey('hostmaster.example.org'), 'latin1'), Buffer.alloc(20)]);
    rdata.writeUInt32BE(minimum, rdata.length - 4);
    return { owner: nameToKey('org'), type: RRType.SOA, class: RRClass.IN, ttl, rdata };
  };
  return {
    id: 1,
    flags: 0x8180 | (negative ? Rcode.NXDOMAIN : 0),
    rcode: negative ? Rcode.NXDOMAIN : Rcode.NOERROR,
    question: { key: KEY, qtype: RRType.A, qclass: RRClass.IN },
    answer: negative ? [] : ttls.map(record),
    authority: negative ? [soa(negative.soaTtl, negative.minimum)] : [],
    additional: [],
  };
}

/** The TTL of every record the client gets in `answer`. */
const ttlsOf = (answer: ReturnType<AnswerCache['store']>): number[] => {
  const message = preparedRecords(KEY, RRType.A, answer);
  return [...message.answer, ...message.authority].map((record) => record.ttl);
};

describe('cache: the TTLs a client sees count down and never increase', () => {
  const options = fc.record({
    maxTtl: fc.constantFrom(3600, 30, 5),
    maxNegativeTtl: fc.constantFrom(1800, 30, 5),
    minTtl: fc.constantFrom(0, 5),
    keepTtl: fc.boolean(),
    prefetch: fc.option(fc.record({ amount: fc.integer({ min: 1, max: 3 }), fraction: fc.constantFrom(0.1, 0.5) }), { nil: undefined }),
  });
  const reply = fc.record({
    ttls: fc.array(fc.oneof(fc.integer({ min: 0, max: 120 }), fc.constantFrom(0x7fffffff, 0xffffffff)), { minLength: 1, maxLength: 4 }),
    negative: fc.option(fc.record({ soaTtl: fc.integer({ min: 0, max: 120 }), minimum: fc.integer({ min: 0, max: 120 }) }), { nil: undefined }),
  });
  // Clock steps in milliseconds: within a second, across seconds, and long jumps.
  const steps = fc.array(fc.oneof(fc.integer({ min: 0, max: 999 }), fc.integer({ min: 1000, max: 5000 }), fc.integer({ min: 0, max: 200_000 })), { minLength: 1, maxLength: 40 });

  it('from one store to the next, every record TTL is at most the upstream one and never goes up', () => {
    fc.assert(fc.property(options, reply, steps, (o, r, clockSteps) => {
      let now = 1_000_000;
      const cache = new AnswerCache({ maxEntries: 10, serveStale: 0, ...o, now: () => now });
      const message = upstreamMessage(r.ttls, r.negative);
      const upstream = [...message.answer, ...message.authority].map((record) => record.ttl);
      let previous = ttlsOf(cache.store(QUESTION, message));
      previous.forEach((ttl, i) => expect(ttl).toBeLessThanOrEqual(upstream[i]!));
      for (const step of clockSteps) {
        now += step;
        const hit = cache.get(QUESTION);
        if (hit === undefined) break; // expired: the next answer is a new upstream one, whose TTLs start afresh
        const ttls = ttlsOf(hit.answer);
        ttls.forEach((ttl, i) => {
          expect(ttl).toBeLessThanOrEqual(previous[i]!);
          expect(ttl).toBeGreaterThanOrEqual(0);
        });
        previous = ttls;
      }
    }), RUNS);
  });

  it('counts down by whole seconds of age (unless keepttl), as the message decoded from the wire says', () => {
    fc.assert(fc.property(reply, steps, (r, clockSteps) => {
      let now = 0;
      const cache = new AnswerCache({ maxEntries: 10, maxTtl: 3600, maxNegativeTtl: 3600, serveStale: 0, now: () => now });
      const message = decodeMessage(encode(upstreamMessage(r.ttls, r.negative)));
      const first = ttlsOf(cache.store(QUESTION, message));
      let age = 0;
      for (const step of clockSteps) {
        now += step;
        age += step;
        const hit = cache.get(QUESTION);
        if (hit === undefined) break;
        expect(ttlsOf(hit.answer)).toEqual(first.map((ttl) => Math.max(0, ttl - Math.floor(age / 1000))));
      }
    }), RUNS);
  });
});

/** A message as an upstream sends it, to go through the decoder the forwarder uses. */
function encode(message: Message): Buffer {
  const records = [...message.answer, ...message.authority];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(message.id, 0);
  header.writeUInt16BE(message.flags, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(message.answer.length, 6);
  header.writeUInt16BE(message.authority.length, 8);
  const question = Buffer.concat([Buffer.from(KEY, 'latin1'), Buffer.from([0, RRType.A, 0, RRClass.IN])]);
  const body = records.map((record) => {
    const fixed = Buffer.alloc(10);
    fixed.writeUInt16BE(record.type, 0);
    fixed.writeUInt16BE(record.class, 2);
    fixed.writeUInt32BE(record.ttl, 4);
    fixed.writeUInt16BE(record.rdata.length, 8);
    return Buffer.concat([Buffer.from(record.owner, 'latin1'), fixed, record.rdata]);
  });
  return Buffer.concat([header, question, ...body]);
}
