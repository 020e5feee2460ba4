/**
 * The proxy's decisions without sockets: the balancer (round-robin, ClientIP affinity on a stepped clock, connect
 * penalties), which endpoints and ports a service port reaches, and the loopback VIP allocator.
 */
import { describe, expect, it } from 'vitest';
import { Balancer, type Target } from '../src/proxy/balancer.js';
import { LoopbackVips, targetsOf } from '../src/proxy/index.js';
import { READY, RecordStore, SERVING, TERMINATING, type EndpointSet, type ServicePort, type ServiceRecord, type SlicePort } from '../src/store/index.js';

const target = (ip: string, port = 8080): Target => ({ ip, port, key: `${ip}:${port}` });
const [A, B, C] = [target('10.0.0.1'), target('10.0.0.2'), target('10.0.0.3')];
const NONE: ReadonlySet<string> = new Set();

/** A balancer on a clock the test moves. */
function balancer(targets: readonly Target[], affinityMs?: number): { lb: Balancer; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  const lb = new Balancer(affinityMs, 2000, () => clock.now);
  lb.update(targets, affinityMs);
  return { lb, clock };
}

const picks = (lb: Balancer, count: number, client = '10.1.0.2'): string[] =>
  Array.from({ length: count }, () => lb.pick(client, NONE, false)?.ip ?? 'none');

describe('Balancer', () => {
  it('takes the targets in turn, skipping the ones a connection already failed on', () => {
    const { lb } = balancer([A, B, C]);
    expect(picks(lb, 4)).toEqual([A.ip, B.ip, C.ip, A.ip]);
    expect(lb.pick('x', new Set([B.key]), false)).toEqual(C);
    expect(lb.pick('x', new Set([A.key, B.key, C.key]), false)).toBeUndefined();
  });

  it('ClientIP affinity: the same target per client while used within the timeout, which each use renews', () => {
    const { lb, clock } = balancer([A, B, C], 10_000);
    expect(picks(lb, 3, 'one')).toEqual([A.ip, A.ip, A.ip]);
    expect(picks(lb, 2, 'two')).toEqual([B.ip, B.ip]);
    clock.now += 9_000;
    expect(picks(lb, 1, 'one')).toEqual([A.ip]);
    clock.now += 9_000; // 18 s after the first pick, 9 s after the last: still within 10 s of the last use
    expect(picks(lb, 1, 'one')).toEqual([A.ip]);
    clock.now += 10_000;
    expect(picks(lb, 1, 'one')).toEqual([C.ip]);
  });

  it('a retry ignores the affinity and pins the client to where it went instead', () => {
    const { lb } = balancer([A, B, C], 10_000);
    expect(picks(lb, 1, 'one')).toEqual([A.ip]);
    expect(lb.pick('one', new Set([A.key]), true)).toEqual(B);
    expect(picks(lb, 2, 'one')).toEqual([B.ip, B.ip]);
  });

  it('a failed target sits out 1 s, then gets one probe at a time; failures double the penalty, a success ends it', () => {
    const { lb, clock } = balancer([A, B, C]);
    lb.failed(A);
    expect(picks(lb, 4)).toEqual([B.ip, C.ip, B.ip, C.ip]);
    clock.now += 1000;
    expect(picks(lb, 3)).toEqual([A.ip, B.ip, C.ip]);
    // A's probe is in flight: the others keep going around it.
    expect(picks(lb, 2)).toEqual([B.ip, C.ip]);
    lb.failed(A);
    clock.now += 1999;
    expect(picks(lb, 3)).toEqual([B.ip, C.ip, B.ip]);
    clock.now += 1;
    expect(picks(lb, 1)).toEqual([C.ip]);
    expect(picks(lb, 1)).toEqual([A.ip]);
    lb.succeeded(A);
    expect(picks(lb, 3)).toEqual([B.ip, C.ip, A.ip]);
  });

  it('when every target is penalised it still picks one: a penalty is a preference, not an outage', () => {
    const { lb } = balancer([A, B]);
    lb.failed(A);
    lb.failed(B);
    expect(lb.pick('x', NONE, false)).toBeDefined();
  });

  it('an update keeps penalties of targets that stay and drops affinities to targets that left', () => {
    const { lb } = balancer([A, B, C], 10_000);
    expect(picks(lb, 1, 'one')).toEqual([A.ip]);
    lb.failed(B);
    lb.update([B, C], 10_000);
    expect(picks(lb, 3, 'one')).toEqual([C.ip, C.ip, C.ip]);
    expect(lb.has(A.key)).toBe(false);
  });
});

describe('targetsOf: where a service port connects', () => {
  interface Row { ip: string; bits?: number; ports?: SlicePort[] }
  const row = (ip: string, extra: Omit<Row, 'ip'> = {}): Row => ({ ip, ...extra });
  // The store's merged view: one row per address, with its conditions and the ports of its slice.
  const set = (rows: Row[]): EndpointSet => ({
    ips: rows.map((r) => r.ip),
    conditions: rows.map((r) => r.bits ?? READY | SERVING),
    ports: rows.map((r) => r.ports ?? [{ name: 'http', port: 8080, protocol: 'TCP' }]),
  });
  const port = (targetPort: number | string, name = 'http'): ServicePort => ({ name, port: 80, protocol: 'TCP', targetPort });

  it('the slice port named after the service port, per endpoint (a named targetPort the controller resolved)', () => {
    const endpoints = set([row('10.0.0.1'), row('10.0.0.2', { ports: [{ name: 'http', port: 9090, protocol: 'TCP' }] })]);
    expect(targetsOf(port('web'), endpoints, 4).map((t) => t.key)).toEqual(['10.0.0.1:8080', '10.0.0.2:9090']);
  });

  it('a numeric targetPort when the slice lists no such port; a named one without it reaches nothing', () => {
    const endpoints = set([row('10.0.0.1', { ports: [] })]);
    expect(targetsOf(port(7070, 'other'), endpoints, 4).map((t) => t.key)).toEqual(['10.0.0.1:7070']);
    expect(targetsOf(port('web', 'other'), endpoints, 4)).toEqual([]);
  });

  it('only ready endpoints (serving and not terminating), of the VIP family when one is given', () => {
    const endpoints = set([
      row('10.0.0.1'),
      row('10.0.0.2', { bits: 0 }),
      row('10.0.0.3', { bits: SERVING | TERMINATING }),
      row('fd00::1'),
    ]);
    expect(targetsOf(port('web'), endpoints, 4).map((t) => t.key)).toEqual(['10.0.0.1:8080']);
    expect(targetsOf(port('web'), endpoints, 6).map((t) => t.key)).toEqual(['[fd00::1]:8080']);
    expect(targetsOf(port('web'), endpoints, undefined).map((t) => t.key)).toEqual(['10.0.0.1:8080', '[fd00::1]:8080']);
  });
});

describe('LoopbackVips', () => {
  const service = (name: string, kind: ServiceRecord['kind'] = 'ClusterIP'): ServiceRecord => ({
    namespace: 'default', name, kind, clusterIPs: kind === 'ClusterIP' ? ['10.96.0.1'] : [], ports: [], publishNotReadyAddresses: false, hasSelector: true,
  });

  it('gives a service one stable address in the range, the same again after a restart', () => {
    const first = new LoopbackVips(new RecordStore(), { network: '127.32.0.0', prefix: 16 });
    const again = new LoopbackVips(new RecordStore(), { network: '127.32.0.0', prefix: 16 });
    const [address] = first.addressesOf(service('web'));
    expect(address).toMatch(/^127\.32\.\d+\.\d+$/);
    expect(first.addressesOf(service('web'))).toEqual([address]);
    expect(again.addressesOf(service('web'))).toEqual([address]);
    expect(first.addressesOf(service('db'))).not.toEqual([address]);
  });

  it('a full range gives no address; a service that goes away (or stops being ClusterIP) frees its own', () => {
    const store = new RecordStore();
    const vips = new LoopbackVips(store, { network: '127.32.0.0', prefix: 30 });
    for (const name of ['a', 'b', 'c']) store.upsert('service', service(name));
    const a = vips.addressesOf(service('a'));
    const b = vips.addressesOf(service('b'));
    expect([...a, ...b].sort()).toEqual(['127.32.0.1', '127.32.0.2']);
    expect(vips.addressesOf(service('c'))).toEqual([]);
    store.upsert('service', service('a', 'Headless'));
    expect(vips.addressesOf(service('c'))).toEqual(a);
    store.remove('service', 'default', 'b');
    expect(vips.allocated).toBe(1);
  });
});
