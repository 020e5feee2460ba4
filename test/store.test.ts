/**
 * The record store: merging slices, ready rules, reconciliation by difference that never drops a survivor, and
 * no-op updates that tell no one; and what the cluster zone's prepared answers keep under endpoint churn.
 */
import { describe, expect, it } from 'vitest';
import { ClusterResolver } from '../src/plugins/kubernetes/index.js';
import { newQuery, nameToKey, preparedRecords, RRClass, RRType, type PreparedAnswer, type Query } from '../src/wire/index.js';
import { READY, RecordStore, type EndpointSet, type EndpointSliceRecord, type ServiceRecord, type StoreChanges } from '../src/store/index.js';

const service = (name: string, ip: string, namespace = 'default'): ServiceRecord => ({
  namespace, name, kind: 'ClusterIP', clusterIPs: [ip], ports: [], publishNotReadyAddresses: false, hasSelector: true,
});

const slice = (name: string, serviceName: string, endpoints: Array<[string, boolean]>): EndpointSliceRecord => ({
  namespace: 'default',
  name,
  serviceName,
  addressType: 'IPv4',
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  endpoints: { ips: endpoints.map(([ip]) => ip), conditions: endpoints.map(([, ready]) => (ready ? READY : 0)) },
});

const rows = (set: EndpointSet): Array<[string, boolean]> => set.ips.map((ip, i) => [ip, (set.conditions[i]! & READY) !== 0]);

describe('RecordStore', () => {
  it('merges endpoints of all slices of a service; an address in two slices once, ready copy first', () => {
    const store = new RecordStore();
    store.upsert('service', service('web', '10.96.0.1'));
    store.upsert('endpointslice', slice('web-b', 'web', [['10.0.0.2', false], ['10.0.0.3', true]]));
    store.upsert('endpointslice', slice('web-a', 'web', [['10.0.0.1', true], ['10.0.0.2', true]]));
    expect(rows(store.endpointsOf('default', 'web'))).toEqual([['10.0.0.1', true], ['10.0.0.2', true], ['10.0.0.3', true]]);
    store.remove('endpointslice', 'default', 'web-a');
    expect(rows(store.endpointsOf('default', 'web'))).toEqual([['10.0.0.2', false], ['10.0.0.3', true]]);
  });

  it('replaceAll reconciles by difference: survivors are neither removed nor re-announced', () => {
    const store = new RecordStore();
    store.replaceAll('service', [service('a', '10.96.0.1'), service('b', '10.96.0.2'), service('c', '10.96.0.3')]);
    const seen: StoreChanges[] = [];
    store.subscribe((changes) => seen.push({ ...changes, services: new Set(changes.services) }));
    let missing = 0;
    store.subscribe(() => { if (store.getService('default', 'a') === undefined) missing++; });

    store.replaceAll('service', [service('a', '10.96.0.1'), service('b', '10.96.0.22'), service('d', '10.96.0.4')]);
    expect(seen).toHaveLength(1);
    expect([...seen[0]!.services].sort()).toEqual(['default/b', 'default/c', 'default/d']);
    expect(missing).toBe(0);
    expect(store.getService('default', 'b')?.clusterIPs).toEqual(['10.96.0.22']);
    expect(store.getService('default', 'c')).toBeUndefined();
  });

  it('replaceAll scoped to a namespace leaves the other namespaces alone', () => {
    const store = new RecordStore();
    store.replaceAll('service', [service('a', '10.96.0.1', 'one'), service('b', '10.96.0.2', 'two'), service('c', '10.96.0.3', 'one')]);
    store.replaceAll('service', [service('a', '10.96.0.1', 'one')], { namespace: 'one' });
    expect([...store.services()].map((s) => `${s.namespace}/${s.name}`).sort()).toEqual(['one/a', 'two/b']);
  });

  it('a namespace exists with its object or with a service in it', () => {
    const store = new RecordStore();
    store.upsert('namespace', { name: 'empty' });
    store.upsert('service', service('x', '10.96.0.9', 'implicit'));
    expect(store.namespaceExists('empty')).toBe(true);
    expect(store.namespaceExists('implicit')).toBe(true);
    expect(store.namespaceExists('nope')).toBe(false);
    store.remove('service', 'implicit', 'x');
    expect(store.namespaceExists('implicit')).toBe(false);
  });

  it('indexes pods by IP, shared addresses (hostNetwork) included', () => {
    const store = new RecordStore();
    store.upsert('pod', { namespace: 'a', name: 'p1', ips: ['10.0.0.1'] });
    store.upsert('pod', { namespace: 'b', name: 'p2', ips: ['10.0.0.1', 'fd00::1'] });
    expect(store.podsByIP('10.0.0.1')).toEqual(['a/p1', 'b/p2']);
    expect([store.podAt('10.0.0.1', 'a'), store.podAt('10.0.0.1', 'b'), store.podAt('10.0.0.1', 'c')]).toEqual(['p1', 'p2', undefined]);
    store.upsert('pod', { namespace: 'b', name: 'p2', ips: ['fd00::1'] });
    expect(store.podsByIP('10.0.0.1')).toEqual(['a/p1']);
    expect(store.namespaceHasPods('b')).toBe(true);
    store.remove('pod', 'b', 'p2');
    expect(store.namespaceHasPods('b')).toBe(false);
    expect(store.podsByIP('fd00::1')).toEqual([]);
  });

  it('batches writes into one notification', () => {
    const store = new RecordStore();
    let notifications = 0;
    store.subscribe(() => notifications++);
    store.batch(() => {
      store.upsert('service', service('a', '10.96.0.1'));
      store.upsert('endpointslice', slice('a-1', 'a', [['10.0.0.1', true]]));
      store.markSynced();
    });
    expect(notifications).toBe(1);
    expect(store.synced).toBe(true);
  });
});

describe('RecordStore: updates that change nothing', () => {
  it('an update that changes nothing stored (a resync, a status or label edit) tells no reader', () => {
    const store = new RecordStore();
    store.upsert('service', service('web', '10.96.0.1'));
    store.upsert('endpointslice', slice('web-1', 'web', [['10.0.0.1', true]]));
    store.upsert('pod', { namespace: 'default', name: 'web-0', ips: ['10.0.0.1'] });
    const heard: string[][] = [];
    store.subscribe((changes) => heard.push([...changes.services]));

    store.upsert('service', service('web', '10.96.0.1'));
    store.upsert('endpointslice', slice('web-1', 'web', [['10.0.0.1', true]]));
    store.upsert('pod', { namespace: 'default', name: 'web-0', ips: ['10.0.0.1'] });
    expect(heard).toEqual([]);

    store.upsert('endpointslice', slice('web-1', 'web', [['10.0.0.1', false]]));
    expect(heard).toEqual([['default/web']]);
  });
});

describe('ClusterResolver under endpoint churn', () => {
  const question = (name: string, qtype: number): Query => {
    const q = newQuery();
    q.key = nameToKey(name);
    q.qtype = qtype;
    q.qclass = RRClass.IN;
    return q;
  };
  const WEB = question('web.default.svc.cluster.local', RRType.A);
  const WEB_AAAA = question('web.default.svc.cluster.local', RRType.AAAA);
  const DB = question('db.default.svc.cluster.local', RRType.A);
  const ALIAS = question('alias.default.svc.cluster.local', RRType.A);
  /** The A records the resolver answers `q` with. */
  const addresses = (resolver: ClusterResolver, q: Query): string[] =>
    preparedRecords(q.key, q.qtype, resolver.resolve(q)!).answer.flatMap((record) => (record.type === RRType.A ? [[...record.rdata].join('.')] : []));

  function cluster(now: () => number): { store: RecordStore; resolver: ClusterResolver } {
    const store = new RecordStore(now);
    store.upsert('namespace', { name: 'default' });
    store.upsert('service', service('web', '10.96.0.1'));
    store.upsert('service', { ...service('db', ''), kind: 'Headless', clusterIPs: [] });
    store.upsert('endpointslice', slice('db-1', 'db', [['10.0.0.1', true]]));
    store.upsert('service', { ...service('alias', ''), kind: 'ExternalName', clusterIPs: [], externalName: 'web.default.svc.cluster.local', hasSelector: false });
    store.markSynced();
    return { store, resolver: new ClusterResolver(store, { zone: 'cluster.local', ttl: 5, pods: 'disabled', selfAddresses: [] }) };
  }

  it("a change to one service keeps the other names' prepared answers; the changed name answers anew at once", () => {
    let now = 1_000_000;
    const { store, resolver } = cluster(() => now);
    const web = resolver.resolve(WEB);
    const webNoData = resolver.resolve(WEB_AAAA);
    expect(addresses(resolver, DB)).toEqual(['10.0.0.1']);

    now += 10; // the same second: the SOA serial stays
    store.upsert('endpointslice', slice('db-1', 'db', [['10.0.0.2', true]]));
    expect(addresses(resolver, DB)).toEqual(['10.0.0.2']);
    expect(resolver.resolve(WEB), 'web was not touched: its prepared answer stays').toBe(web);
    expect(resolver.resolve(WEB_AAAA)).toBe(webNoData);

    // A new second moves the SOA serial, which negative answers carry: those are prepared again.
    now += 1000;
    store.upsert('endpointslice', slice('db-1', 'db', [['10.0.0.3', true]]));
    expect(resolver.resolve(WEB_AAAA)).not.toBe(webNoData);
    const serialOf = (answer: PreparedAnswer | undefined): number => {
      const soa = preparedRecords(WEB_AAAA.key, RRType.AAAA, answer!).authority[0]!;
      return soa.rdata.readUInt32BE(soa.rdata.length - 20);
    };
    expect(serialOf(resolver.resolve(WEB_AAAA))).toBe(Math.floor(now / 1000));
  });

  it('an ExternalName that points at another service follows that service at once', () => {
    let now = 2_000_000;
    const { store, resolver } = cluster(() => now);
    expect(addresses(resolver, ALIAS)).toEqual(['10.96.0.1']);
    now += 10;
    store.upsert('service', service('web', '10.96.0.2'));
    expect(addresses(resolver, ALIAS)).toEqual(['10.96.0.2']);
  });
});

describe('RecordStore: mirrored to a replica (a worker)', () => {
  it('a replica fed the mirrored writes, after a snapshot, equals the primary and hears the same changes', () => {
    const primary = new RecordStore();
    primary.upsert('namespace', { name: 'default' });
    primary.upsert('service', service('web', '10.96.0.1'));
    primary.upsert('endpointslice', slice('web-1', 'web', [['10.0.0.1', true]]));
    primary.upsert('pod', { namespace: 'default', name: 'web-0', ips: ['10.0.0.1'] });
    primary.markSynced();

    const replica = new RecordStore();
    replica.apply(primary.snapshot());
    const heard: string[][] = [];
    replica.subscribe((changes) => heard.push([...changes.services]));
    let at = 0;
    primary.mirror((writes, atMs) => {
      at = atMs;
      // As across a thread: structured-cloned.
      replica.apply(structuredClone(writes));
    });

    primary.batch(() => {
      primary.upsert('service', service('db', '10.96.0.2'));
      primary.remove('pod', 'default', 'web-0');
    });
    primary.replaceAll('endpointslice', [slice('web-1', 'web', [['10.0.0.2', true]]), slice('db-1', 'db', [['10.0.0.3', false]])]);
    primary.upsert('service', service('web', '10.96.0.1')); // no change: nothing mirrored, nothing heard

    expect(replica.synced).toBe(true);
    expect(replica.snapshot()).toEqual(primary.snapshot());
    expect(rows(replica.endpointsOf('default', 'db'))).toEqual([['10.0.0.3', false]]);
    expect(heard.map((keys) => keys.sort())).toEqual([['default/db'], ['default/db', 'default/web']]);
    expect(at).toBe(primary.lastChangeMs);
  });
});
