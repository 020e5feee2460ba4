/**
 * Extended DNS Errors (RFC 8914) on the wire: the option as §2 lays it out, sent only to clients that sent OPT,
 * never at the cost of a record or of truncation, and passed through from another server's reply.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeEde,
  decodeMessage,
  emptyAnswer,
  encodeEde,
  MAX_EDE_TEXT,
  nameToKey,
  newQuery,
  parseQuery,
  prepareAnswer,
  prepareMessage,
  Rcode,
  RRType,
  writeReply,
  type ReplyNotes,
} from '../src/wire/index.js';
import { closest, editDistance } from '../src/plugins/kubernetes/explain.js';
import { mergeBehindCname } from '../src/plugins/kubernetes/handler.js';
import { ClusterResolver } from '../src/plugins/kubernetes/index.js';
import { READY, RecordStore, type EndpointSliceRecord, type ServiceRecord } from '../src/store/index.js';
import { query } from './support/query-bytes.js';

function reply(packet: Buffer, answer: ReturnType<typeof emptyAnswer>, limit: number): { bytes: Buffer; notes: ReplyNotes } {
  const q = newQuery();
  expect(parseQuery(packet, q)).toBe(0);
  const notes: ReplyNotes = { ede: undefined };
  return { bytes: writeReply(packet, q, answer, limit, notes), notes };
}

/** The EDE options of a reply's OPT record, as a client decodes them. */
function optRdata(bytes: Buffer): Buffer {
  return decodeMessage(bytes).ede ?? Buffer.alloc(0);
}

const NAME = 'cart.default.svc.cluster.local';

describe('the EDE option (RFC 8914 §2)', () => {
  it('is OPTION-CODE 15, OPTION-LENGTH, a 16-bit INFO-CODE and the UTF-8 EXTRA-TEXT', () => {
    const option = encodeEde(0, 'no service "cart"');
    expect(option.readUInt16BE(0)).toBe(15);
    expect(option.readUInt16BE(2)).toBe(2 + 17);
    expect(option.readUInt16BE(4)).toBe(0);
    expect(option.subarray(6).toString('utf8')).toBe('no service "cart"');
    expect(decodeEde(Buffer.concat([option, encodeEde(22, '')]))).toEqual([[0, 'no service "cart"'], [22, '']]);
  });

  it(`keeps EXTRA-TEXT to ${MAX_EDE_TEXT} bytes, never cutting a UTF-8 character`, () => {
    const long = encodeEde(0, 'é'.repeat(100));
    expect(long.length - 6).toBeLessThanOrEqual(MAX_EDE_TEXT);
    expect(long.subarray(6).toString('utf8')).toBe('é'.repeat(MAX_EDE_TEXT / 2));
    const odd = encodeEde(0, `x${'é'.repeat(100)}`);
    expect(odd.subarray(6).toString('utf8')).toBe(`x${'é'.repeat((MAX_EDE_TEXT - 2) / 2)}`);
  });
});

describe('EDE in replies', () => {
  const ede = encodeEde(0, 'no service "cart" in namespace "default"; found in "shop"');
  const nxdomain = emptyAnswer(Rcode.NXDOMAIN, true, ede);

  it('goes in the OPT record of a reply to a query with OPT', () => {
    const { bytes, notes } = reply(query(NAME, RRType.A, 1232), nxdomain, 1232);
    expect(decodeEde(optRdata(bytes))).toEqual([[0, 'no service "cart" in namespace "default"; found in "shop"']]);
    expect(notes.ede).toEqual(ede);
  });

  it('is never sent to a client without OPT (no OPT record at all)', () => {
    const { bytes, notes } = reply(query(NAME, RRType.A), nxdomain, 512);
    expect(bytes.readUInt16BE(10)).toBe(0);
    expect(bytes.includes(Buffer.from('found in'))).toBe(false);
    expect(notes.ede).toBeUndefined();
  });

  it('is left out, not the records, when the reply would not fit: no TC, no record lost', () => {
    const key = nameToKey('db.default.svc.cluster.local');
    const addresses = Array.from({ length: 64 }, (_, i) => ({ owner: key, ttl: 5, data: { type: RRType.A, ip: `10.244.0.${i + 1}` } as const }));
    const records = { rcode: Rcode.NOERROR, authoritative: true, answer: addresses };
    const without = reply(query('db.default.svc.cluster.local', RRType.A, 1232), prepareAnswer(key, records), 1232).bytes;
    // The limit that fits the records exactly: the EDE has no room and stays out.
    const limit = without.length;
    const { bytes, notes } = reply(query('db.default.svc.cluster.local', RRType.A, 1232), prepareAnswer(key, { ...records, ede }), limit);
    expect(bytes.readUInt16BE(2) & 0x0200).toBe(0);
    expect(bytes.readUInt16BE(6)).toBe(64);
    expect(bytes.equals(without)).toBe(true);
    expect(notes.ede).toBeUndefined();
    // With room for it, it goes in.
    const roomy = reply(query('db.default.svc.cluster.local', RRType.A, 1232), prepareAnswer(key, { ...records, ede }), limit + ede.length);
    expect(roomy.notes.ede).toEqual(ede);
    expect(roomy.bytes.readUInt16BE(6)).toBe(64);
  });
});

describe('EDE from another server', () => {
  const cookie = Buffer.from([0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);

  /** An upstream reply: NXDOMAIN with an OPT record holding `rdata`: by default a cookie (per hop) and an EDE (passed on). */
  function upstreamReply(rdata = Buffer.concat([cookie, encodeEde(22, 'no reachable authority for example')])): Buffer {
    const question = query('gone.example', RRType.A, 1232).subarray(12, 12 + 14 + 4);
    const header = Buffer.from([0xab, 0xcd, 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 1]);
    const opt = Buffer.concat([Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]), Buffer.from([rdata.length >> 8, rdata.length & 0xff]), rdata]);
    return Buffer.concat([header, question, opt]);
  }

  it('keeps the EDE options of the OPT record and drops the rest', () => {
    const message = decodeMessage(upstreamReply());
    expect(decodeEde(message.ede!)).toEqual([[22, 'no reachable authority for example']]);
  });

  it('passes them through to an EDNS client', () => {
    const answer = prepareMessage(decodeMessage(upstreamReply()), (record) => record.ttl);
    const { bytes } = reply(query('gone.example', RRType.A, 1232), answer, 1232);
    expect(decodeEde(optRdata(bytes))).toEqual([[22, 'no reachable authority for example']]);
    expect(bytes.includes(Buffer.from([0, 10, 0, 8]))).toBe(false);
  });

  it('behind an ExternalName\'s CNAME: the target server\'s options, then ours', () => {
    const ours = prepareAnswer(nameToKey('ext.default.svc.cluster.local.'), {
      rcode: Rcode.NOERROR,
      authoritative: true,
      ede: encodeEde(0, 'state from the Kubernetes API as of 42 s ago'),
      answer: [{ owner: nameToKey('ext.default.svc.cluster.local.'), ttl: 5, data: { type: RRType.CNAME, target: nameToKey('gone.example.') } }],
    });
    const theirs = prepareMessage(decodeMessage(upstreamReply()), (record) => record.ttl);
    const merged = mergeBehindCname(nameToKey('ext.default.svc.cluster.local.'), RRType.A, ours, nameToKey('gone.example.'), theirs);
    expect(merged.rcode).toBe(Rcode.NXDOMAIN);
    expect(decodeEde(merged.ede!)).toEqual([[22, 'no reachable authority for example'], [0, 'state from the Kubernetes API as of 42 s ago']]);
  });

  it('drops an EDE shorter than its INFO-CODE (malformed) and keeps the message', () => {
    const message = decodeMessage(upstreamReply(Buffer.from([0, 15, 0, 1, 0])));
    expect(message.ede).toBeUndefined();
    expect(message.rcode).toBe(Rcode.NXDOMAIN);
  });
});

describe('did you mean: the namespace within two edits', () => {
  it.each([
    ['defualt', 'default', 1], // a swap of neighbours is one edit
    ['defaul', 'default', 1],
    ['dfault', 'default', 1],
    ['deflaut', 'default', 2],
    ['kube-sytem', 'kube-system', 1],
    ['prod', 'production', 3], // stops counting past the bound
  ] as const)('%s → %s: %i', (typed, existing, distance) => {
    expect(editDistance(typed, existing, 2)).toBe(Math.min(distance, 3));
  });

  it('agrees with the whole-matrix distance on every short pair over a small alphabet (the band cuts nothing it needs)', () => {
    const full = (x: string, y: string): number => {
      const d = Array.from({ length: x.length + 1 }, (_, i) => Array.from({ length: y.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
      for (let i = 1; i <= x.length; i++) {
        for (let j = 1; j <= y.length; j++) {
          d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
          if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
        }
      }
      return d[x.length]![y.length]!;
    };
    const words = [''];
    for (const word of words) if (word.length < 4) for (const c of 'abc') words.push(word + c);
    for (const x of words) for (const y of words) for (const max of [0, 1, 2]) expect(editDistance(x, y, max)).toBe(Math.min(full(x, y), max + 1));
  });

  it('offers the closest, the first in sort order on a tie, never the name itself, nothing past the bound', () => {
    expect(closest('defualt', ['shop', 'default', 'kube-system'], 2)).toBe('default');
    expect(closest('shpo', ['shop', 'shoe'], 2)).toBe('shop');
    expect(closest('dev1', ['dev2', 'dev3'], 2)).toBe('dev2');
    expect(closest('default', ['default'], 2)).toBeUndefined();
    expect(closest('production', ['default', 'shop'], 2)).toBeUndefined();
  });
});

describe('the cluster zone\'s texts follow the store', () => {
  const service = (namespace: string, name: string): ServiceRecord => ({
    namespace, name, kind: 'ClusterIP', clusterIPs: ['10.96.0.10'], ports: [], publishNotReadyAddresses: false, hasSelector: true,
  });

  it('a service added elsewhere shows up in "found in" at the next query, whatever else was prepared', () => {
    // A clock that stands still: the SOA serial does not move, so only the change itself can renew the text.
    const store = new RecordStore(() => 1_000_000);
    for (const name of ['default', 'shop', 'staging']) store.upsert('namespace', { name });
    store.upsert('service', service('shop', 'cart'));
    // Every namespace holds a service already: adding or removing cart changes no namespace (which would renew all).
    for (const namespace of ['default', 'shop', 'staging']) store.upsert('service', service(namespace, 'api'));
    store.markSynced();
    const zone = new ClusterResolver(store, { zone: 'cluster.local', ttl: 5, pods: 'disabled', selfAddresses: [] });
    const q = { key: nameToKey('cart.default.svc.cluster.local'), qtype: RRType.A, qclass: 1, dnssecOk: false, flags: 0 };
    expect(decodeEde(zone.resolve(q)!.ede!)).toEqual([[0, 'no service "cart" in namespace "default"; found in "shop"']]);
    store.upsert('service', service('staging', 'cart'));
    expect(decodeEde(zone.resolve(q)!.ede!)).toEqual([[0, 'no service "cart" in namespace "default"; found in "shop", "staging"']]);
    store.remove('service', 'shop', 'cart');
    store.remove('service', 'staging', 'cart');
    expect(decodeEde(zone.resolve(q)!.ede!)).toEqual([[0, 'no service "cart" in namespace "default"']]);
    zone.close();
  });

  it('a ClusterIP answer says "no ready endpoints" until one is ready, and no longer', () => {
    const store = new RecordStore(() => 1_000_000);
    store.upsert('namespace', { name: 'default' });
    store.upsert('service', service('default', 'orders'));
    const slice = (ready: boolean): EndpointSliceRecord => ({
      namespace: 'default', name: 'orders-1', serviceName: 'orders', addressType: 'IPv4', ports: [],
      endpoints: { ips: ['10.244.0.5'], conditions: [ready ? READY : 0] },
    });
    store.upsert('endpointslice', slice(false));
    store.markSynced();
    const zone = new ClusterResolver(store, { zone: 'cluster.local', ttl: 5, pods: 'disabled', selfAddresses: [] });
    const q = { key: nameToKey('orders.default.svc.cluster.local'), qtype: RRType.A, qclass: 1, dnssecOk: false, flags: 0 };
    expect(decodeEde(zone.resolve(q)!.ede!)).toEqual([[0, 'service "orders" has no ready endpoints: connections to 10.96.0.10 will fail']]);
    store.upsert('endpointslice', slice(true));
    expect(zone.resolve(q)!.ede).toBeUndefined();
    store.upsert('endpointslice', slice(false));
    expect(zone.resolve(q)!.ede).toBeDefined();
    zone.close();
  });
});

describe('several EDE options in one reply', () => {
  const own = encodeEde(0, 'service "orders" has no ready endpoints: connections to 10.96.0.10 will fail');
  const age = encodeEde(0, 'state from the Kubernetes API as of 42 s ago');
  const key = nameToKey('orders.default.svc.cluster.local');
  const answer = prepareAnswer(key, {
    rcode: Rcode.NOERROR, authoritative: true, ede: Buffer.concat([own, age]), answer: [{ owner: key, ttl: 5, data: { type: RRType.A, ip: '10.96.0.10' } }],
  });
  const packet = query('orders.default.svc.cluster.local', RRType.A, 1232);
  const bare = reply(packet, { ...answer, ede: undefined }, 1232).bytes.length;

  it('go in order while they fit: both, then the first only, then none; never TC, and the notes say what went', () => {
    const both = reply(packet, answer, 1232);
    expect(decodeEde(optRdata(both.bytes)).map(([, text]) => text)).toEqual([
      'service "orders" has no ready endpoints: connections to 10.96.0.10 will fail', 'state from the Kubernetes API as of 42 s ago',
    ]);
    expect(both.notes.ede).toEqual(Buffer.concat([own, age]));
    const first = reply(packet, answer, bare + own.length + age.length - 1);
    expect(decodeEde(optRdata(first.bytes))).toEqual([[0, 'service "orders" has no ready endpoints: connections to 10.96.0.10 will fail']]);
    expect(first.notes.ede).toEqual(own);
    const none = reply(packet, answer, bare + own.length - 1);
    expect(none.notes.ede).toBeUndefined();
    for (const { bytes } of [both, first, none]) {
      expect(bytes.readUInt16BE(2) & 0x0200).toBe(0);
      expect(bytes.readUInt16BE(6)).toBe(1);
    }
  });
});

describe('while the API server is unreachable: the age of the state', () => {
  const service = (name: string): ServiceRecord => ({
    namespace: 'default', name, kind: 'ClusterIP', clusterIPs: ['10.96.0.10'], ports: [], publishNotReadyAddresses: false, hasSelector: true,
  });
  const ask = (name: string): { key: string; qtype: number; qclass: number; dnssecOk: boolean; flags: number } => ({
    key: nameToKey(name), qtype: RRType.A, qclass: 1, dnssecOk: false, flags: 0,
  });
  const texts = (answer: ReturnType<ClusterResolver['resolve']>): string[] => decodeEde(answer!.ede ?? Buffer.alloc(0)).map(([code, text]) => `${code}: ${text}`);

  function zoneAt(clock: { ms: number }): { store: RecordStore; zone: ClusterResolver } {
    const store = new RecordStore(() => 1_000_000);
    store.upsert('namespace', { name: 'default' });
    store.upsert('service', service('web'));
    store.upsert('endpointslice', {
      namespace: 'default', name: 'web-1', serviceName: 'web', addressType: 'IPv4', ports: [], endpoints: { ips: ['10.244.0.5'], conditions: [READY] },
    });
    store.upsert('service', service('orders'));
    return { store, zone: new ClusterResolver(store, { zone: 'cluster.local', ttl: 5, pods: 'disabled', selfAddresses: [], now: () => clock.ms }) };
  }

  it('every answer keeps its records and says how old they are, counted on the clock, one text per second', () => {
    const clock = { ms: 5_000_000 };
    const { store, zone } = zoneAt(clock);
    store.markSynced();
    const web = ask('web.default.svc.cluster.local');
    const fresh = zone.resolve(web)!;
    expect(fresh.ede).toBeUndefined();

    store.markOutOfTouch(clock.ms);
    clock.ms += 42_300;
    const down = zone.resolve(web)!;
    expect(down.answer.equals(fresh.answer)).toBe(true);
    expect(down.rcode).toBe(Rcode.NOERROR);
    expect(texts(down)).toEqual(['0: state from the Kubernetes API as of 42 s ago']);
    // Within the same second: the very same prepared answer, nothing built again.
    clock.ms += 500;
    expect(zone.resolve(web)).toBe(down);
    clock.ms += 500;
    expect(texts(zone.resolve(web))).toEqual(['0: state from the Kubernetes API as of 43 s ago']);
    // NXDOMAIN too, and a more specific text stays, first.
    expect(texts(zone.resolve(ask('cart.default.svc.cluster.local')))).toEqual([
      '0: no service "cart" in namespace "default"', '0: state from the Kubernetes API as of 43 s ago',
    ]);
    expect(texts(zone.resolve(ask('orders.default.svc.cluster.local')))).toEqual([
      '0: service "orders" has no ready endpoints: connections to 10.96.0.10 will fail', '0: state from the Kubernetes API as of 43 s ago',
    ]);

    // Back in touch: the prepared answer as it was, at once.
    store.markOutOfTouch(undefined);
    expect(zone.resolve(web)).toBe(fresh);
    zone.close();
  });

  it('is said with ede_hints off too: it is about the source, not the zone\'s contents', () => {
    const clock = { ms: 5_000_000 };
    const store = new RecordStore(() => 1_000_000);
    store.upsert('namespace', { name: 'default' });
    store.markSynced();
    store.markOutOfTouch(clock.ms - 7_000);
    const zone = new ClusterResolver(store, { zone: 'cluster.local', ttl: 5, pods: 'disabled', selfAddresses: [], hints: 'off', now: () => clock.ms });
    expect(texts(zone.resolve(ask('cart.default.svc.cluster.local')))).toEqual(['0: state from the Kubernetes API as of 7 s ago']);
    zone.close();
  });

  it('says nothing of the kind before the first sync: that is Not Ready', () => {
    const clock = { ms: 5_000_000 };
    const { store, zone } = zoneAt(clock);
    store.markOutOfTouch(clock.ms - 10_000);
    const answer = zone.resolve(ask('web.default.svc.cluster.local'))!;
    expect(answer.rcode).toBe(Rcode.SERVFAIL);
    expect(texts(answer)).toEqual(['14: not yet synced with the Kubernetes API; waiting for 0 s']);
    zone.close();
  });

  it('reaches a replica (a worker thread\'s store) through the mirror and the snapshot, without moving the SOA serial', () => {
    const store = new RecordStore(() => 1_000_000);
    store.upsert('namespace', { name: 'default' });
    store.markSynced();
    const sent: Array<{ writes: readonly unknown[]; atMs: number }> = [];
    store.mirror((writes, atMs) => sent.push({ writes, atMs }));
    const replica = new RecordStore(() => 2_000_000);
    replica.apply(store.snapshot());
    const changed = replica.lastChangeMs;
    store.markOutOfTouch(123_000);
    expect(sent).toEqual([{ writes: [{ op: 'outOfTouch', since: 123_000 }], atMs: store.lastChangeMs }]);
    for (const { writes } of sent) replica.apply(writes as Parameters<RecordStore['apply']>[0]);
    expect(replica.outOfTouchSince).toBe(123_000);
    expect(replica.lastChangeMs).toBe(changed);
    const late = new RecordStore();
    late.apply(store.snapshot());
    expect(late.outOfTouchSince).toBe(123_000);
    store.markOutOfTouch(undefined);
    replica.apply(sent.at(-1)!.writes as Parameters<RecordStore['apply']>[0]);
    expect(replica.outOfTouchSince).toBeUndefined();
  });
});
