/** The record store: merging slices, ready rules, and reconciliation by difference that never drops a survivor. */
import { describe, expect, it } from 'vitest';
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
