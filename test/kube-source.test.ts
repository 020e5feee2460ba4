// KubeSource against the test API server (real HTTP list and watch on 127.0.0.1), writing a real RecordStore that
// a real ClusterResolver answers from. Every fault test holds one invariant: nothing known is lost while the
// fault lasts — the DNS answers for names that exist keep coming, and the store never (not even for one change
// notification) lacks a service that survives the fault.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { ClusterResolver } from '../src/plugins/kubernetes/index.js';
import {
  backoffDelay,
  KubeSource,
  kubeConfigFromText,
  loadKubeConfig,
  POD_FIELD_SELECTOR,
  type Clock,
  type KubeSourceOptions,
  type WatchState,
} from '../src/source/kube.js';
import { parseWatchLine, type WatchLine } from '../src/source/kube-api.js';
import { RecordStore } from '../src/store/index.js';
import { nameToKey, newQuery, rcodeName, RRClass, RRType } from '../src/wire/index.js';
import { FakeKubeApiServer, type FakeKubeApiServerOptions, type KubeObject, type RequestRecord } from './support/k8s-api-server.js';

// ---- fixtures ------------------------------------------------------------------------------------------------

const ns = (name: string): KubeObject => ({ metadata: { name } });

const svc = (namespace: string, name: string, clusterIP: string): KubeObject => ({
  metadata: { name, namespace },
  spec: { clusterIP, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
});

const headless = (namespace: string, name: string): KubeObject => ({
  metadata: { name, namespace },
  spec: { clusterIP: 'None', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
});

const slice = (namespace: string, name: string, service: string, ips: string[]): KubeObject => ({
  metadata: { name, namespace, labels: { 'kubernetes.io/service-name': service } },
  addressType: 'IPv4',
  endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true } })),
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
});

const pod = (namespace: string, name: string, ip: string, phase = 'Running'): KubeObject => ({
  metadata: { name, namespace },
  spec: { nodeName: 'node-1' },
  status: { phase, podIP: ip, podIPs: [{ ip }] },
});

/** A small cluster: a ClusterIP service and a headless one in `default`, each with endpoints. */
function seed(server: FakeKubeApiServer): void {
  server.create('namespaces', ns('default'));
  server.create('namespaces', ns('kube-system'));
  server.create('services', svc('default', 'web', '10.96.0.10'));
  server.create('endpointslices', slice('default', 'web-1', 'web', ['10.244.0.10', '10.244.0.11']));
  server.create('services', headless('default', 'db'));
  server.create('endpointslices', slice('default', 'db-1', 'db', ['10.244.1.1', '10.244.1.2']));
  server.create('services', svc('kube-system', 'kube-dns', '10.96.0.53'));
}

// ---- harness -------------------------------------------------------------------------------------------------

interface Harness {
  server: FakeKubeApiServer;
  store: RecordStore;
  source: KubeSource;
  resolver: ClusterResolver;
  logs: Array<Record<string, unknown>>;
  states: WatchState[];
}

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  vi.unstubAllEnvs();
});

/** Test tuning: fast backoff and probes, a watchdog that only the watchdog tests shorten. */
const FAST: Partial<KubeSourceOptions> = {
  backoff: { baseMs: 5, capMs: 40 },
  probeMs: 40,
  watchdogMs: 10_000,
  requestTimeoutMs: 2_000,
};

async function setup(opts: {
  server?: FakeKubeApiServerOptions;
  source?: Partial<KubeSourceOptions>;
  fill?: (server: FakeKubeApiServer) => void;
  start?: boolean;
} = {}): Promise<Harness> {
  const server = new FakeKubeApiServer(opts.server);
  await server.start();
  cleanups.push(() => server.stop());
  (opts.fill ?? seed)(server);
  const store = new RecordStore();
  const logs: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const source = new KubeSource(kubeConfigFromText(server.kubeconfigYaml()), store, log, { watchPods: false, ...FAST, ...opts.source });
  cleanups.push(() => source.close());
  const states: WatchState[] = [];
  source.onStateChange((state) => states.push(state));
  const resolver = new ClusterResolver(store, { zone: 'cluster.local', ttl: 5, pods: 'verified', selfAddresses: [] });
  cleanups.push(() => resolver.close());
  if (opts.start !== false) {
    await source.start();
    await source.synced();
    await settled(server, source);
  }
  return { server, store, source, resolver, logs, states };
}

/** Every watch open and connected: a fault injected now hits established streams. */
async function settled(server: FakeKubeApiServer, source: KubeSource): Promise<void> {
  await eventually(() => source.states().every((s) => s.connected) && server.openWatches() >= source.states().length, 'every watch established');
}

/** Polls `cond` every 5 ms for at most `timeoutMs`. */
async function eventually(cond: () => boolean, what = 'condition', timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Asks the resolver `name type` and returns the rcode and the A records' addresses, sorted. */
function ask(resolver: ClusterResolver, name: string, type: keyof typeof RRType = 'A'): { rcode: string; ips: string[] } {
  const q = newQuery();
  q.key = nameToKey(name);
  q.qtype = RRType[type];
  q.qclass = RRClass.IN;
  const answer = resolver.resolve(q);
  if (answer === undefined) return { rcode: 'NOT-OURS', ips: [] };
  return { rcode: rcodeName(answer.rcode), ips: aRecords(answer.answer).sort() };
}

/** The A records' addresses in an answer section (names are compressed pointers or plain labels). */
function aRecords(section: Buffer): string[] {
  const ips: string[] = [];
  let offset = 0;
  while (offset < section.length) {
    for (;;) {
      const length = section[offset]!;
      if ((length & 0xc0) === 0xc0) {
        offset += 2;
        break;
      }
      offset += 1 + length;
      if (length === 0) break;
    }
    const type = section.readUInt16BE(offset);
    const rdlength = section.readUInt16BE(offset + 8);
    const rdata = section.subarray(offset + 10, offset + 10 + rdlength);
    if (type === RRType.A) ips.push([...rdata].join('.'));
    offset += 10 + rdlength;
  }
  return ips;
}

const WEB = 'web.default.svc.cluster.local';
const DB = 'db.default.svc.cluster.local';

/** What the cluster answers while all is well; checked before, during and after each fault. */
function expectSeedAnswers(resolver: ClusterResolver): void {
  expect(ask(resolver, WEB)).toEqual({ rcode: 'NOERROR', ips: ['10.96.0.10'] });
  expect(ask(resolver, DB)).toEqual({ rcode: 'NOERROR', ips: ['10.244.1.1', '10.244.1.2'] });
  expect(ask(resolver, 'kube-dns.kube-system.svc.cluster.local')).toEqual({ rcode: 'NOERROR', ips: ['10.96.0.53'] });
}

/**
 * Records every change notification after which one of `keys` (`namespace/name`) lacks its service or has lost
 * endpoints it had when the guard was set: the "never removed, not even briefly" invariant.
 */
function guard(store: RecordStore, keys: string[]): string[] {
  const violations: string[] = [];
  const endpoints = new Map(keys.map((key) => {
    const [namespace, name] = key.split('/') as [string, string];
    return [key, store.endpointsOf(namespace, name).ips.length];
  }));
  const unsubscribe = store.subscribe(() => {
    for (const key of keys) {
      const [namespace, name] = key.split('/') as [string, string];
      if (store.getService(namespace, name) === undefined) violations.push(`${key} removed`);
      if (store.endpointsOf(namespace, name).ips.length < endpoints.get(key)!) violations.push(`${key} lost endpoints`);
    }
  });
  cleanups.push(unsubscribe);
  return violations;
}

const SEED_KEYS = ['default/web', 'default/db', 'kube-system/kube-dns'];

const lists = (server: FakeKubeApiServer, resource: RequestRecord['resource']): RequestRecord[] =>
  server.requests.filter((r) => r.resource === resource && r.verb === 'list');
const watches = (server: FakeKubeApiServer, resource: RequestRecord['resource']): RequestRecord[] =>
  server.requests.filter((r) => r.resource === resource && r.verb === 'watch');

const stateOf = (source: KubeSource, kind: WatchState['kind']): WatchState => source.states().find((s) => s.kind === kind)!;

const warnings = (logs: Array<Record<string, unknown>>, kind: string): Array<Record<string, unknown>> =>
  logs.filter((l) => l.kind === kind && l.msg === 'cannot watch; retrying with backoff, serving the last known records meanwhile');

// ---- tests ---------------------------------------------------------------------------------------------------

describe('sync', () => {
  it('lists in pages (limit/continue) and writes every object; the cluster zone is SERVFAIL until then', async () => {
    const h = await setup({
      source: { pageSize: 4 },
      fill: (server) => {
        seed(server);
        for (let i = 0; i < 11; i++) server.create('services', svc('bulk', `s${i}`, `10.96.1.${i + 1}`));
      },
      start: false,
    });
    expect(ask(h.resolver, WEB).rcode).toBe('SERVFAIL');
    await h.source.start();
    await h.source.synced();
    expect(h.store.synced).toBe(true);
    expect(h.source.isSynced).toBe(true);
    await settled(h.server, h.source);

    expect(h.store.serviceCount).toBe(14);
    for (let i = 0; i < 11; i++) expect(ask(h.resolver, `s${i}.bulk.svc.cluster.local`).ips).toEqual([`10.96.1.${i + 1}`]);
    expectSeedAnswers(h.resolver);
    expect(ask(h.resolver, 'nope.default.svc.cluster.local').rcode).toBe('NXDOMAIN');

    const serviceLists = lists(h.server, 'services');
    expect(serviceLists).toHaveLength(4); // 14 services, 4 a page
    expect(serviceLists.map((r) => r.query['limit'])).toEqual(['4', '4', '4', '4']);
    expect(serviceLists[0]?.query['continue']).toBeUndefined();
    expect(serviceLists.slice(1).every((r) => r.query['continue'] !== undefined)).toBe(true);
    // Then one watch per kind from the list's resourceVersion, with bookmarks; never pods unless asked.
    for (const resource of ['namespaces', 'services', 'endpointslices'] as const) {
      expect(watches(h.server, resource)[0]?.query).toEqual({ watch: 'true', resourceVersion: h.server.resourceVersion, allowWatchBookmarks: 'true' });
      expect(watches(h.server, resource)[0]?.path).toBe(resource === 'endpointslices' ? '/apis/discovery.k8s.io/v1/endpointslices' : `/api/v1/${resource}`);
    }
    expect(h.server.requestCount((r) => r.resource === 'pods')).toBe(0);
    expect(h.source.states().map((s) => s.kind)).toEqual(['namespace', 'service', 'endpointslice']);
    await eventually(() => h.source.states().every((s) => s.connected), 'all connected');
    expect(h.source.states().every((s) => s.synced && s.relists === 0)).toBe(true);
  });

  it('sizes list pages by their bytes: a small first page, then as many items as fit pageBytes, at most pageSize', async () => {
    const h = await setup({
      source: { pageSize: 500, pageBytes: 4_000 },
      fill: (server) => {
        seed(server);
        for (let i = 0; i < 200; i++) server.create('services', svc('bulk', `s${i}`, `10.96.1.${i + 1}`));
      },
    });
    expect(h.store.serviceCount).toBe(203);
    const limits = lists(h.server, 'services').map((r) => Number(r.query['limit']));
    expect(limits[0]).toBe(50); // nothing known of the items yet
    expect(limits[1]).toBeGreaterThan(1);
    expect(limits[1]).toBeLessThan(50); // 50 services weigh more than 4,000 bytes
    expect(lists(h.server, 'namespaces').map((r) => r.query['limit'])).toEqual(['50']); // 2 small items: one page
  });

  it('is not synced (SERVFAIL, not NXDOMAIN) while one kind has not listed, even with the others in the store', async () => {
    const h = await setup({ start: false });
    h.server.failAll(503, { resource: 'endpointslices', verb: 'list' });
    await h.source.start();
    await eventually(() => stateOf(h.source, 'service').synced && lists(h.server, 'endpointslices').length >= 3, 'services listed, slices retried');
    expect(h.store.getService('default', 'web')).toBeDefined();
    expect(h.store.synced).toBe(false);
    expect(ask(h.resolver, WEB).rcode).toBe('SERVFAIL');
    expect(ask(h.resolver, 'nope.default.svc.cluster.local').rcode).toBe('SERVFAIL');
    expect(stateOf(h.source, 'endpointslice')).toMatchObject({ synced: false, connected: false });
    expect(stateOf(h.source, 'endpointslice').reason).toMatch(/503/);

    h.server.clearFaults();
    await h.source.synced();
    expectSeedAnswers(h.resolver);
    expect(ask(h.resolver, 'nope.default.svc.cluster.local').rcode).toBe('NXDOMAIN');
    expect(warnings(h.logs, 'endpointslice')).toHaveLength(1); // one log for the state change, not one per retry
  });
});

describe('events', () => {
  it('propagates add, change and delete of services and endpoint slices', async () => {
    const h = await setup();
    h.server.create('services', svc('default', 'api', '10.96.0.20'));
    h.server.create('endpointslices', slice('default', 'db-2', 'db', ['10.244.1.3']));
    await eventually(() => ask(h.resolver, 'api.default.svc.cluster.local').rcode === 'NOERROR' && h.store.endpointsOf('default', 'db').ips.length === 3);
    expect(ask(h.resolver, DB).ips).toEqual(['10.244.1.1', '10.244.1.2', '10.244.1.3']);

    h.server.update('services', svc('default', 'api', '10.96.0.21'));
    h.server.update('endpointslices', slice('default', 'db-1', 'db', ['10.244.1.1']));
    await eventually(() => ask(h.resolver, 'api.default.svc.cluster.local').ips[0] === '10.96.0.21' && h.store.endpointsOf('default', 'db').ips.length === 2);

    h.server.delete('services', { metadata: { name: 'api', namespace: 'default' } });
    h.server.delete('endpointslices', { metadata: { name: 'db-2', namespace: 'default' } });
    h.server.create('namespaces', ns('empty'));
    await eventually(() => ask(h.resolver, 'api.default.svc.cluster.local').rcode === 'NXDOMAIN' && h.store.namespaceExists('empty'));
    expect(ask(h.resolver, DB).ips).toEqual(['10.244.1.1']);
    expect(ask(h.resolver, 'empty.svc.cluster.local').rcode).toBe('NOERROR'); // exists: NODATA

    // A slice that loses its service label no longer names endpoints of that service.
    h.server.update('endpointslices', { ...slice('default', 'db-1', 'db', ['10.244.1.1']), metadata: { name: 'db-1', namespace: 'default' } });
    await eventually(() => h.store.endpointsOf('default', 'db').ips.length === 0);
    expect(ask(h.resolver, DB).rcode).toBe('NXDOMAIN'); // headless without ready endpoints (§2.4.1)
    expect(lists(h.server, 'services')).toHaveLength(1);
  });

  it('logs an unusable object once by name and skips it; its last good record stays; the rest is served', async () => {
    const h = await setup({
      fill: (server) => {
        seed(server);
        server.create('services', { metadata: { name: 'broken', namespace: 'default' }, spec: { clusterIP: 'not-an-ip' } });
      },
    });
    expectSeedAnswers(h.resolver);
    expect(h.store.getService('default', 'broken')).toBeUndefined();
    const skipped = (): Array<Record<string, unknown>> => h.logs.filter((l) => l.msg === 'skipping an object clusterdns cannot use');
    expect(skipped()).toHaveLength(1);
    expect(skipped()[0]).toMatchObject({ kind: 'service', object: 'default/broken' });

    h.server.update('services', { metadata: { name: 'broken', namespace: 'default', labels: { again: '1' } }, spec: { clusterIP: 'still-not' } });
    h.server.update('services', svc('default', 'web', 'bogus')); // a good service turns bad: keep what we had
    h.server.create('services', svc('default', 'after', '10.96.0.30'));
    await eventually(() => h.store.getService('default', 'after') !== undefined);
    expect(skipped().map((l) => l.object)).toEqual(['default/broken', 'default/web']);
    expect(ask(h.resolver, WEB).ips).toEqual(['10.96.0.10']);

    h.server.update('services', svc('default', 'broken', '10.96.0.40'));
    await eventually(() => ask(h.resolver, 'broken.default.svc.cluster.local').ips[0] === '10.96.0.40');
  });
});

describe('watch faults', () => {
  it('a cleanly closed watch resumes from the last resourceVersion: no relist, events in between arrive', async () => {
    const h = await setup();
    const violations = guard(h.store, SEED_KEYS);
    const created = h.server.create('services', svc('default', 'a', '10.96.0.31'));
    await eventually(() => h.store.getService('default', 'a') !== undefined);

    expect(h.server.closeWatches({ resource: 'services' })).toBe(1);
    h.server.create('services', svc('default', 'b', '10.96.0.32')); // while no watch is open
    expectSeedAnswers(h.resolver);
    await h.server.waitForWatch('services');
    await eventually(() => h.store.getService('default', 'b') !== undefined);

    const [, second] = watches(h.server, 'services');
    expect(second?.query['resourceVersion']).toBe(created.metadata.resourceVersion);
    expect(lists(h.server, 'services')).toHaveLength(1);
    expect(stateOf(h.source, 'service')).toMatchObject({ connected: true, relists: 0 });
    expect(warnings(h.logs, 'service')).toHaveLength(0); // a routine close is not a state change
    expect(violations).toEqual([]);
    expectSeedAnswers(h.resolver);
  });

  it('lines that are JSON but no event (null, a number, an array, an object that is not one) are skipped; the watch goes on', async () => {
    // Found by fuzzing (fuzz/targets/watch-lines.ts): `null` threw out of the stream's data handler, an uncaught
    // exception that ended the process; an event whose object was a string failed the watch.
    const h = await setup();
    const violations = guard(h.store, SEED_KEYS);
    h.server.sendRaw('null\n5\n[]\n"text"\n{"type":"ADDED","object":"web"}\n{"type":"MODIFIED","object":[1]}\n', { resource: 'services' });
    h.server.create('services', svc('default', 'after', '10.96.0.33'));
    await eventually(() => h.store.getService('default', 'after') !== undefined);
    expect(watches(h.server, 'services')).toHaveLength(1); // the same watch: not failed, not restarted
    expect(stateOf(h.source, 'service')).toMatchObject({ connected: true, relists: 0 });
    expect(violations).toEqual([]);
    expectSeedAnswers(h.resolver);
  });

  it('an abrupt close (FIN, or TCP reset) is retried from the last resourceVersion without a relist', async () => {
    const h = await setup();
    const violations = guard(h.store, SEED_KEYS);
    h.server.closeWatches({ abrupt: true });
    expectSeedAnswers(h.resolver);
    await h.server.waitForWatch('services');
    await h.server.waitForWatch('endpointslices');
    h.server.closeWatches({ abrupt: 'reset', resource: 'endpointslices' });
    h.server.create('endpointslices', slice('default', 'web-2', 'web', ['10.244.0.12']));
    expectSeedAnswers(h.resolver);
    await eventually(() => h.store.endpointsOf('default', 'web').ips.length === 3, 'new slice after reset');

    for (const resource of ['namespaces', 'services', 'endpointslices'] as const) expect(lists(h.server, resource)).toHaveLength(1);
    expect(watches(h.server, 'endpointslices').length).toBeGreaterThanOrEqual(3);
    expect(h.source.states().every((s) => s.relists === 0)).toBe(true);
    await eventually(() => h.source.states().every((s) => s.connected), 'reconnected');
    expect(violations).toEqual([]);
  });

  it('an ERROR event with code 410 relists and reconciles by difference: deleted goes, added comes, survivors stay', async () => {
    const h = await setup();
    const lastSeen = h.server.create('services', svc('default', 'doomed', '10.96.0.66')).metadata.resourceVersion;
    await eventually(() => h.store.getService('default', 'doomed') !== undefined);
    const violations = guard(h.store, SEED_KEYS);

    // The watch drops and cannot come back (503) while the cluster changes and history is compacted.
    h.server.failAll(503, { resource: 'services', verb: 'watch' });
    h.server.closeWatches({ resource: 'services' });
    await h.server.waitForRequests((r) => r.resource === 'services' && r.verb === 'watch', { count: 3 });
    h.server.delete('services', { metadata: { name: 'doomed', namespace: 'default' } });
    h.server.create('services', svc('default', 'newcomer', '10.96.0.77'));
    h.server.update('services', svc('default', 'web', '10.96.0.11'));
    h.server.compact();
    expect(ask(h.resolver, 'doomed.default.svc.cluster.local').ips).toEqual(['10.96.0.66']); // last known, still served
    expect(ask(h.resolver, WEB).ips).toEqual(['10.96.0.10']);
    expect(stateOf(h.source, 'service').connected).toBe(false);

    h.server.clearFaults(); // the next watch, from the old resourceVersion, gets ERROR 410 in a 200 stream
    await eventually(() => stateOf(h.source, 'service').relists === 1 && h.store.getService('default', 'newcomer') !== undefined, 'relist');
    expect(ask(h.resolver, 'doomed.default.svc.cluster.local').rcode).toBe('NXDOMAIN');
    expect(ask(h.resolver, 'newcomer.default.svc.cluster.local').ips).toEqual(['10.96.0.77']);
    expect(ask(h.resolver, WEB).ips).toEqual(['10.96.0.11']);
    expect(violations).toEqual([]);
    expect(lists(h.server, 'services')).toHaveLength(2);
    expect(lists(h.server, 'endpointslices')).toHaveLength(1); // only the expired collection is listed again
    await eventually(() => h.server.openWatches('services') === 1 && stateOf(h.source, 'service').connected, 'watching again');
    // Every retry during the outage asked for the last resourceVersion seen; after the relist, the list's.
    const rvs = watches(h.server, 'services').slice(1).map((r) => r.query['resourceVersion']);
    expect(rvs.at(-1)).toBe(h.server.resourceVersion);
    expect(new Set(rvs.slice(0, -1))).toEqual(new Set([lastSeen]));
    expect(h.states.filter((s) => s.kind === 'service').map((s) => s.relists).at(-1)).toBe(1);
  });

  it('an ERROR 410 in the middle of an open stream (expireWatches) relists every kind without losing anything', async () => {
    const h = await setup();
    const violations = guard(h.store, SEED_KEYS);
    h.server.expireWatches();
    expectSeedAnswers(h.resolver);
    await eventually(() => h.source.states().every((s) => s.relists === 1), 'relists');
    await eventually(() => h.server.openWatches() === 3, 'watching again');
    for (const resource of ['namespaces', 'services', 'endpointslices'] as const) expect(lists(h.server, resource)).toHaveLength(2);
    expectSeedAnswers(h.resolver);
    expect(violations).toEqual([]);
    expect(h.logs.filter((l) => l.msg === 'resourceVersion expired (410 Gone): listing again')).toHaveLength(3);
  });

  it('an HTTP 410 answer to a watch relists and reconciles', async () => {
    const h = await setup({ server: { watchTooOld: 'http' } });
    const violations = guard(h.store, SEED_KEYS);
    h.server.failAll(500, { resource: 'endpointslices', verb: 'watch' });
    h.server.closeWatches({ resource: 'endpointslices' });
    await h.server.waitForRequests((r) => r.resource === 'endpointslices' && r.verb === 'watch', { count: 3 });
    h.server.update('endpointslices', slice('default', 'web-1', 'web', ['10.244.0.10', '10.244.0.11', '10.244.0.12']));
    h.server.compact();
    expectSeedAnswers(h.resolver);
    h.server.clearFaults();
    await eventually(() => stateOf(h.source, 'endpointslice').relists === 1 && h.store.endpointsOf('default', 'web').ips.length === 3, 'relist');
    expect(lists(h.server, 'endpointslices')).toHaveLength(2);
    await eventually(() => watches(h.server, 'endpointslices').at(-1)?.query['resourceVersion'] === h.server.resourceVersion, 'watch from the relist');
    expect(violations).toEqual([]);
    expectSeedAnswers(h.resolver);
  });

  it('500, 503, 403 and 401 on watches are retried with backoff, forever, and logged once per state change', async () => {
    const h = await setup();
    const violations = guard(h.store, SEED_KEYS);
    for (const code of [500, 503, 403, 401]) {
      h.server.failAll(code, { resource: 'services', verb: 'watch' });
      const before = watches(h.server, 'services').length;
      h.server.closeWatches({ resource: 'services' });
      await h.server.waitForRequests((r) => r.resource === 'services' && r.verb === 'watch', { count: before + 4 });
      expect(stateOf(h.source, 'service').connected).toBe(false);
      expect(stateOf(h.source, 'service').reason).toContain(`HTTP ${code}`);
      expectSeedAnswers(h.resolver);
      h.server.create('services', svc('default', `during-${code}`, '10.96.2.1'));
      h.server.clearFaults();
      await eventually(() => h.store.getService('default', `during-${code}`) !== undefined, `resume after ${code}`);
      await eventually(() => stateOf(h.source, 'service').connected, 'connected');
    }
    expect(lists(h.server, 'services')).toHaveLength(1); // every failure resumed from the resourceVersion
    expect(warnings(h.logs, 'service')).toHaveLength(4); // one per outage, not one per retry
    expect(h.logs.filter((l) => l.kind === 'service' && l.msg === 'watch connected again')).toHaveLength(4);
    const serviceStates = h.states.filter((s) => s.kind === 'service').map((s) => s.connected);
    expect(serviceStates.filter((c) => !c).length).toBeGreaterThanOrEqual(4);
    expect(violations).toEqual([]);
  });

  it('a silent watch (no event, no bookmark) is aborted by the watchdog and restarted; a hung request times out', async () => {
    // Probes (every watch fails here) give up after 3 × probeMs: longer than requestTimeoutMs, which holds.
    const h = await setup({ server: { bookmarkIntervalMs: 20 }, source: { watchdogMs: 150, requestTimeoutMs: 200, probeMs: 100 } });
    const violations = guard(h.store, SEED_KEYS);
    await sleep(400); // healthy watches with bookmarks every 20 ms: the watchdog never fires
    expect(watches(h.server, 'services')).toHaveLength(1);
    expect(stateOf(h.source, 'service').lastEventAt).toBeGreaterThan(Date.now() - 1_000);

    h.server.hang(); // open streams go silent, new requests are held with no answer at all
    h.server.create('services', svc('default', 'during-hang', '10.96.0.88'));
    await eventually(() => !stateOf(h.source, 'service').connected, 'watchdog fired', 2_000);
    expect(stateOf(h.source, 'service').reason).toMatch(/no event or bookmark for 150 ms/);
    await eventually(() => /no answer to the watch request within 200 ms/.test(stateOf(h.source, 'service').reason ?? ''), 'header timeout', 3_000);
    expectSeedAnswers(h.resolver);

    h.server.resume();
    await eventually(() => h.store.getService('default', 'during-hang') !== undefined, 'event after resume');
    await eventually(() => h.server.openWatches('services') === 1 && stateOf(h.source, 'service').connected, 'one watch again');
    expect(lists(h.server, 'services')).toHaveLength(1);
    expect(violations).toEqual([]);
    expect(warnings(h.logs, 'service')).toHaveLength(1);
  });

  it('a silent stream whose headers did arrive (hang with sendWatchHeaders) is caught by the watchdog too', async () => {
    const h = await setup({ server: { bookmarkIntervalMs: 20 }, source: { watchdogMs: 100, requestTimeoutMs: 5_000 } });
    h.server.hang({ sendWatchHeaders: true });
    h.server.closeWatches({ resource: 'services' }); // ended at resume: still silent now
    await eventually(() => watches(h.server, 'services').length >= 3, 'restarts by the watchdog', 3_000);
    // Headers alone no longer count as connected once a stream has gone silent: no flapping, no log per retry.
    expect(stateOf(h.source, 'service')).toMatchObject({ connected: false, reason: 'no event or bookmark for 100 ms' });
    expect(warnings(h.logs, 'service')).toHaveLength(1);
    expectSeedAnswers(h.resolver);
    h.server.resume();
    await eventually(() => stateOf(h.source, 'service').connected, 'connected', 3_000);
    expectSeedAnswers(h.resolver);
  });
});

describe('list faults', () => {
  it('500, 503, 403 and 401 on the first list are retried with backoff until they pass', async () => {
    const h = await setup({ start: false, source: { backoff: { baseMs: 4, capMs: 40 }, random: () => 0.5 } });
    h.server.failNext(2, 500, { resource: 'services', verb: 'list' });
    h.server.failNext(2, 503, { resource: 'services', verb: 'list' });
    h.server.failNext(2, 403, { resource: 'services', verb: 'list' });
    h.server.failNext(2, 401, { resource: 'services', verb: 'list' });
    await h.source.start();
    await h.source.synced();
    expect(lists(h.server, 'services')).toHaveLength(9);
    expectSeedAnswers(h.resolver);
    expect(warnings(h.logs, 'service')).toHaveLength(1);
    expect(warnings(h.logs, 'service')[0]?.reason).toMatch(/^list: HTTP 500 InternalError/);
    // Full jitter (here the midpoint) over a ceiling that doubles per failure up to the cap.
    const delays = h.logs.filter((l) => l.kind === 'service' && l.msg === 'backing off').map((l) => [l.attempt, l.delayMs]);
    expect(delays).toEqual([[1, 2], [2, 4], [3, 8], [4, 16], [5, 20], [6, 20], [7, 20], [8, 20]]);
  });

  it('a list that hangs is abandoned after requestTimeoutMs and retried', async () => {
    const h = await setup({ start: false, source: { requestTimeoutMs: 100 } });
    h.server.hang();
    await h.source.start();
    await eventually(() => lists(h.server, 'services').length >= 3, 'list retried after timeouts', 3_000);
    expect(stateOf(h.source, 'service').reason).toMatch(/no complete answer within 100 ms/);
    expect(h.store.synced).toBe(false);
    h.server.resume();
    await h.source.synced();
    expectSeedAnswers(h.resolver);
  });

  it('a continue token that expired (410, compaction between pages) restarts the list from the beginning', async () => {
    const h = await setup({
      start: false,
      source: { pageSize: 2 },
      fill: (server) => {
        seed(server);
        for (let i = 0; i < 5; i++) server.create('services', svc('bulk', `s${i}`, `10.96.1.${i + 1}`));
      },
    });
    const firstPage = h.server.waitForRequests((r) => r.resource === 'services' && r.verb === 'list');
    await h.source.start();
    await firstPage;
    h.server.hang(); // hold the second page while history is compacted past the list's snapshot
    h.server.create('services', svc('bulk', 'late', '10.96.1.99'));
    h.server.compact();
    h.server.resume();
    await h.source.synced();
    expect(h.store.serviceCount).toBe(9);
    expect(ask(h.resolver, 'late.bulk.svc.cluster.local').ips).toEqual(['10.96.1.99']);
    const serviceLists = lists(h.server, 'services');
    expect(serviceLists[1]?.query['continue']).toBeDefined();
    expect(serviceLists[2]?.query['continue']).toBeUndefined(); // after the 410: from the start
    expect(serviceLists).toHaveLength(2 + 5); // 2 pages before the 410, then 9 services in 5 pages
    expectSeedAnswers(h.resolver);
  });

  it('the API server going away and coming back on the same port: refused connections are retried, then resumed', async () => {
    const h = await setup();
    const violations = guard(h.store, SEED_KEYS);
    await h.server.stop();
    const downFrom = h.logs.length;
    await eventually(() => h.source.states().every((s) => !s.connected), 'all retrying');
    await sleep(100);
    expectSeedAnswers(h.resolver);
    for (const kind of ['namespace', 'service', 'endpointslice']) {
      expect(warnings(h.logs, kind)).toHaveLength(1);
      expect(warnings(h.logs, kind)[0]?.reason).toMatch(/ECONNREFUSED|ECONNRESET|ended abruptly/);
    }
    h.server.create('services', svc('default', 'while-down', '10.96.0.99')); // etcd goes on
    h.server.delete('services', { metadata: { name: 'kube-dns', namespace: 'kube-system' } });

    await h.server.start();
    await eventually(() => h.store.getService('default', 'while-down') !== undefined, 'caught up', 3_000);
    await eventually(() => h.store.getService('kube-system', 'kube-dns') === undefined, 'deletion caught up');
    await eventually(() => h.source.states().every((s) => s.connected), 'connected');
    for (const kind of ['namespace', 'service', 'endpointslice']) {
      expect(h.logs.slice(downFrom).filter((l) => l.kind === kind && l.msg === 'backing off').length).toBeGreaterThanOrEqual(1);
    }
    expect(lists(h.server, 'services')).toHaveLength(1); // history was kept: resumed, not relisted
    expect(violations.filter((v) => !v.startsWith('kube-system/kube-dns'))).toEqual([]);
    expect(ask(h.resolver, WEB).ips).toEqual(['10.96.0.10']);
    expect(ask(h.resolver, DB).ips).toEqual(['10.244.1.1', '10.244.1.2']);
  });
});

describe('scope', () => {
  it('watches pods only when asked, with the field selector that leaves out finished pods', async () => {
    const fill = (server: FakeKubeApiServer): void => {
      seed(server);
      server.create('pods', pod('default', 'runner', '10.244.0.10'));
      server.create('pods', pod('default', 'finished', '10.244.0.99', 'Succeeded'));
    };
    const without = await setup({ fill });
    expect(without.server.requestCount((r) => r.resource === 'pods')).toBe(0);
    expect(without.store.podCount).toBe(0);
    await without.source.close();

    const h = await setup({ fill, source: { watchPods: true } });
    expect(h.source.states().map((s) => s.kind)).toEqual(['namespace', 'service', 'endpointslice', 'pod']);
    expect(h.store.podsByIP('10.244.0.10')).toEqual(['default/runner']);
    expect(h.store.podsByIP('10.244.0.99')).toEqual([]);
    expect(lists(h.server, 'pods')[0]?.query['fieldSelector']).toBe(POD_FIELD_SELECTOR);
    await h.server.waitForWatch('pods');
    expect(watches(h.server, 'pods')[0]?.query['fieldSelector']).toBe(POD_FIELD_SELECTOR);
    expect(ask(h.resolver, '10-244-0-10.default.pod.cluster.local').ips).toEqual(['10.244.0.10']);

    h.server.create('pods', pod('default', 'second', '10.244.0.11'));
    h.server.update('pods', pod('default', 'runner', '10.244.0.10', 'Succeeded')); // leaves the selection: DELETED
    await eventually(() => h.store.podsByIP('10.244.0.11').length === 1 && h.store.podsByIP('10.244.0.10').length === 0);
    expect(ask(h.resolver, '10-244-0-10.default.pod.cluster.local').rcode).toBe('NXDOMAIN');
  });

  it('keeps endpoints\' pod names only when asked (endpoint_pod_names), and never beside a hostname', async () => {
    const fill = (server: FakeKubeApiServer): void => {
      seed(server);
      const named = slice('default', 'web-2', 'web', ['10.244.0.12', '10.244.0.13']);
      const [first, second] = named.endpoints as Array<Record<string, unknown>>;
      first!.targetRef = { kind: 'Pod', namespace: 'default', name: 'web-abc12' };
      Object.assign(second!, { hostname: 'web-b', targetRef: { kind: 'Pod', namespace: 'default', name: 'web-def34' } });
      server.create('endpointslices', named);
    };
    const without = await setup({ fill });
    expect(without.store.endpointsOf('default', 'web').podNames).toBeUndefined();
    await without.source.close();

    const h = await setup({ fill, source: { endpointPodNames: true } });
    const web = h.store.endpointsOf('default', 'web');
    expect(web.ips.map((ip, row) => [ip, web.hostnames?.[row], web.podNames?.[row]])).toEqual([
      ['10.244.0.10', undefined, undefined],
      ['10.244.0.11', undefined, undefined],
      ['10.244.0.12', undefined, 'web-abc12'],
      ['10.244.0.13', 'web-b', undefined],
    ]);
  });

  it('with namespaces, watches each on its namespaced path; a relist of one namespace leaves the others alone', async () => {
    const h = await setup({
      source: { namespaces: ['default', 'team'] },
      fill: (server) => {
        seed(server);
        server.create('namespaces', ns('team'));
        server.create('services', svc('team', 'app', '10.96.3.1'));
        server.create('services', svc('team', 'old', '10.96.3.2'));
        server.create('endpointslices', slice('team', 'app-1', 'app', ['10.244.3.1']));
      },
    });
    expect(new Set(lists(h.server, 'services').map((r) => r.path))).toEqual(new Set(['/api/v1/namespaces/default/services', '/api/v1/namespaces/team/services']));
    expect(new Set(lists(h.server, 'endpointslices').map((r) => r.path))).toEqual(new Set([
      '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices', '/apis/discovery.k8s.io/v1/namespaces/team/endpointslices',
    ]));
    expect(lists(h.server, 'namespaces').map((r) => r.path)).toEqual(['/api/v1/namespaces']);
    expect(ask(h.resolver, WEB).ips).toEqual(['10.96.0.10']);
    expect(ask(h.resolver, 'app.team.svc.cluster.local').ips).toEqual(['10.96.3.1']);
    expect(ask(h.resolver, 'kube-dns.kube-system.svc.cluster.local').rcode).toBe('NXDOMAIN'); // not watched
    expect([...h.store.namespaces()].sort()).toEqual(['default', 'team']);
    h.server.create('namespaces', ns('other'));
    h.server.create('services', svc('other', 'x', '10.96.4.1'));
    await h.server.waitForWatch('services', { count: 2 });
    await sleep(50);
    expect(h.store.namespaceExists('other')).toBe(false);
    expect(h.store.getService('other', 'x')).toBeUndefined();
    expect(h.server.requests.filter((r) => r.path.includes('/namespaces/kube-system/') || r.path.includes('/namespaces/other/'))).toEqual([]);

    const violations = guard(h.store, ['default/web', 'default/db', 'team/app']);
    h.server.failAll(503, { resource: 'services', verb: 'watch' });
    h.server.closeWatches({ resource: 'services', abrupt: true });
    await h.server.waitForRequests((r) => r.resource === 'services' && r.verb === 'watch' && r.namespace === 'team', { count: 3 });
    h.server.delete('services', { metadata: { name: 'old', namespace: 'team' } });
    h.server.create('services', svc('team', 'fresh', '10.96.3.3'));
    h.server.compact();
    h.server.clearFaults();
    await eventually(() => stateOf(h.source, 'service').relists === 2 && h.store.getService('team', 'fresh') !== undefined, 'both relisted');
    expect(h.store.getService('team', 'old')).toBeUndefined();
    expect(ask(h.resolver, WEB).ips).toEqual(['10.96.0.10']);
    expect(violations).toEqual([]);
  });
});

describe('namespaceLabels (namespace_labels)', () => {
  const labelled = (name: string, dns: string): KubeObject => ({ metadata: { name, labels: { dns } } });

  it('a relist (410) while namespaces were relabelled and services changed reconciles what is served, and what is held', async () => {
    const h = await setup({
      source: { namespaceLabels: 'dns=public', watchPods: true },
      fill: (server) => {
        server.create('namespaces', labelled('shop', 'public'));
        server.create('namespaces', labelled('payroll', 'private'));
        server.create('services', svc('shop', 'web', '10.96.1.1'));
        server.create('endpointslices', slice('shop', 'web-1', 'web', ['10.244.1.1']));
        server.create('services', svc('payroll', 'web', '10.96.2.1'));
        server.create('pods', pod('payroll', 'web-0', '10.244.2.1'));
      },
    });
    expect([...h.store.namespaces()]).toEqual(['shop']);
    expect(ask(h.resolver, 'web.shop.svc.cluster.local').ips).toEqual(['10.96.1.1']);
    expect(ask(h.resolver, 'web.payroll.svc.cluster.local').rcode).toBe('NXDOMAIN');
    expect(h.store.podCount).toBe(0);

    // Every watch is cut off while the cluster changes and its history is compacted: each kind lists again.
    h.server.failAll(503, { verb: 'watch' });
    h.server.closeWatches({ abrupt: true });
    await h.server.waitForRequests((r) => r.verb === 'watch' && r.resource === 'namespaces', { count: 3 });
    h.server.update('namespaces', labelled('shop', 'private'));
    h.server.update('namespaces', labelled('payroll', 'public'));
    h.server.create('services', svc('payroll', 'api', '10.96.2.2'));
    h.server.create('services', svc('shop', 'cart', '10.96.1.2'));
    h.server.compact();
    h.server.clearFaults();
    await eventually(() => h.source.states().every((state) => state.relists === 1 && state.connected), 'every kind relisted');
    await eventually(() => h.store.getService('payroll', 'api') !== undefined, 'payroll served');
    expect([...h.store.namespaces()]).toEqual(['payroll']);
    expect([...h.store.services()].map((record) => `${record.namespace}/${record.name}`).sort()).toEqual(['payroll/api', 'payroll/web']);
    expect(h.store.endpointsOf('shop', 'web').ips).toEqual([]);
    expect(h.store.podsByIP('10.244.2.1')).toEqual(['payroll/web-0']);

    // What shop had, including what the relist brought while it did not match, is back when it matches again.
    h.server.update('namespaces', labelled('shop', 'public'));
    await eventually(() => h.store.getService('shop', 'cart') !== undefined, 'shop served again');
    expect(ask(h.resolver, 'web.shop.svc.cluster.local').ips).toEqual(['10.96.1.1']);
    expect(h.store.endpointsOf('shop', 'web').ips).toEqual(['10.244.1.1']);
    // A deleted namespace takes what is in it along, and so does a service deleted while hidden.
    h.server.delete('services', { metadata: { name: 'web', namespace: 'payroll' } });
    h.server.delete('namespaces', { metadata: { name: 'payroll' } });
    await eventually(() => !h.store.namespaceExists('payroll'), 'payroll gone');
    expect(h.store.podCount).toBe(0);
    h.server.create('namespaces', labelled('payroll', 'public'));
    await eventually(() => h.store.namespaceExists('payroll'), 'payroll back');
    expect([...h.store.services()].map((record) => `${record.namespace}/${record.name}`).sort()).toEqual(['payroll/api', 'shop/cart', 'shop/web']);
  });

  it('cannot go with namespaces', async () => {
    const h = await setup({ source: { namespaces: ['default'], namespaceLabels: 'dns=public' }, start: false });
    await expect(h.source.start()).rejects.toThrow('namespaces and namespace_labels cannot both be set');
  });
});

describe('back to current after an outage', () => {
  /**
   * Real time that the test can also jump ahead: timers run on their own, and those a jump passes fire as it
   * passes them, in due order, with a little real time between steps for the requests they start to fail.
   */
  class JumpClock implements Clock {
    private offset = 0;
    private readonly timers = new Map<number, { at: number; callback: () => void; real: NodeJS.Timeout }>();
    private ids = 0;

    now(): number {
      return Date.now() + this.offset;
    }

    setTimeout(callback: () => void, ms: number): unknown {
      const id = ++this.ids;
      const real = setTimeout(() => {
        this.timers.delete(id);
        callback();
      }, ms);
      this.timers.set(id, { at: this.now() + ms, callback, real });
      return id;
    }

    clearTimeout(handle: unknown): void {
      const timer = this.timers.get(handle as number);
      if (timer === undefined) return;
      clearTimeout(timer.real);
      this.timers.delete(handle as number);
    }

    async jump(ms: number, stepMs = 100): Promise<void> {
      for (let passed = 0; passed < ms; passed += stepMs) {
        this.offset += stepMs;
        for (const [id, timer] of [...this.timers].sort(([, a], [, b]) => a.at - b.at)) {
          if (timer.at > this.now() || !this.timers.has(id)) continue;
          this.clearTimeout(id);
          timer.callback();
        }
        await sleep(3);
      }
    }
  }

  const KINDS = ['namespace', 'service', 'endpointslice', 'pod'] as const;
  const outages = {
    'refused (the API server is gone)': { begin: (server: FakeKubeApiServer) => server.stop(), end: (server: FakeKubeApiServer) => server.start(), relist: false },
    'HTTP 503 to every request': {
      begin: async (server: FakeKubeApiServer) => {
        server.failAll(503);
        server.closeWatches({ abrupt: true });
      },
      end: async (server: FakeKubeApiServer) => server.clearFaults(),
      relist: false,
    },
    'refused, and its history compacted meanwhile (410 Gone: every kind lists again)': {
      begin: (server: FakeKubeApiServer) => server.stop(),
      end: async (server: FakeKubeApiServer) => {
        server.compact();
        await server.start();
      },
      relist: true,
    },
  };

  it.each(Object.keys(outages) as Array<keyof typeof outages>)('%s for 60 s: at most 2 tries a second, and every kind is current within 2 s of the return', async (outage) => {
    const clock = new JumpClock();
    // The production schedule: backoff 0.5 s doubling to 30 s, probes 0.5 to 1 s apart.
    const h = await setup({
      source: { clock, backoff: { baseMs: 500, capMs: 30_000 }, probeMs: 1_000, watchPods: true },
      fill: (server) => {
        seed(server);
        server.create('pods', pod('default', 'runner', '10.244.0.10'));
      },
    });
    const violations = guard(h.store, ['default/web', 'default/db']);
    const tries = (): number => h.logs.filter((l) => l.msg === 'backing off').length;
    const before = tries();
    const downAt = clock.now();
    await outages[outage].begin(h.server);
    await eventually(() => h.source.states().every((s) => !s.connected), 'every watch retrying');
    await clock.jump(60_000);

    // Each failed try backs off once: the first failure of each kind, then one probe per 0.5 to 1 s.
    expect(tries() - before).toBeLessThanOrEqual(KINDS.length + 2 * 61);
    expect(tries() - before).toBeGreaterThan(60);
    for (const state of h.source.states()) {
      expect(state.connected).toBe(false);
      expect(state.retryingSince! - downAt, state.kind).toBeLessThan(1_000);
    }
    const next = h.source.states().map((s) => s.nextTryAt).filter((at) => at !== undefined);
    expect(next.length).toBeGreaterThan(0);
    for (const at of next) expect(at - clock.now()).toBeLessThanOrEqual(1_000);
    const warnings = h.source.warnings();
    expect(warnings).toHaveLength(KINDS.length);
    for (const [index, kind] of KINDS.entries()) {
      expect(warnings[index]).toMatch(new RegExp(`^watch of ${kind}s: retrying for 6\\d\\.\\d s \\(.+\\), (next try in [01]\\.\\d s|trying now); serving the last known records$`));
    }
    expectSeedAnswers(h.resolver);

    // Meanwhile, at the API server (etcd goes on):
    h.server.create('namespaces', ns('fresh'));
    h.server.create('services', svc('default', 'while-down', '10.96.0.99'));
    h.server.delete('services', { metadata: { name: 'kube-dns', namespace: 'kube-system' } });
    h.server.update('endpointslices', slice('default', 'db-1', 'db', ['10.244.1.1', '10.244.1.2', '10.244.1.3']));
    h.server.create('pods', pod('default', 'second', '10.244.0.11'));

    await outages[outage].end(h.server);
    const back = Date.now();
    const current = (): boolean => h.source.states().every((s) => s.connected)
      && h.store.namespaceExists('fresh')
      && h.store.getService('default', 'while-down') !== undefined
      && h.store.getService('kube-system', 'kube-dns') === undefined
      && h.store.endpointsOf('default', 'db').ips.length === 3
      && h.store.podsByIP('10.244.0.11').length === 1;
    await eventually(current, 'every kind connected and current', 5_000);
    expect(Date.now() - back).toBeLessThan(2_000);
    expect(ask(h.resolver, DB).ips).toEqual(['10.244.1.1', '10.244.1.2', '10.244.1.3']);
    expect(ask(h.resolver, 'while-down.default.svc.cluster.local').ips).toEqual(['10.96.0.99']);
    expect(h.source.warnings()).toEqual([]);
    for (const state of h.source.states()) expect(state).toMatchObject({ retryingSince: undefined, nextTryAt: undefined });
    // Resumed from the resourceVersion, or (history gone) listed once more and reconciled by difference.
    expect(lists(h.server, 'services')).toHaveLength(outages[outage].relist ? 2 : 1);
    expect(violations).toEqual([]);
  }, 30_000);

  it('a black-holed API server (requests lost, never answered): probes give up after 3 × probeMs, and its return is seen at once', async () => {
    const h = await setup({ source: { backoff: { baseMs: 500, capMs: 30_000 }, probeMs: 200, requestTimeoutMs: 10_000 } });
    const violations = guard(h.store, SEED_KEYS);
    h.server.hang(); // every request from now on is held with no answer
    h.server.closeWatches({ abrupt: true });
    await eventually(() => h.source.states().some((s) => /no answer to the watch request within 600 ms/.test(s.reason ?? '')), 'a probe given up', 5_000);
    await sleep(1_000);
    expect(h.source.states().every((s) => !s.connected)).toBe(true);
    h.server.create('services', svc('default', 'behind-the-hole', '10.96.0.77'));
    h.server.resume({ answerHeld: false }); // the held requests stay lost; new ones are answered
    const back = Date.now();
    await eventually(() => h.source.states().every((s) => s.connected) && h.store.getService('default', 'behind-the-hole') !== undefined, 'current again', 15_000);
    expect(Date.now() - back).toBeLessThan(2_000);
    expect(violations).toEqual([]);
    expectSeedAnswers(h.resolver);
  });
});

describe('lifecycle', () => {
  it('close() stops every loop, request and timer, even mid-backoff and mid-hang', async () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const baseline = timers();
    // The first retry at once, every later one after ~20 s: close() comes in the middle of a long backoff.
    let draws = 0;
    const random = (): number => (draws++ === 0 ? 0 : 1 - 1e-9);
    const h = await setup({ source: { backoff: { baseMs: 10_000, capMs: 20_000 }, watchdogMs: 60_000, random } });
    h.server.failAll(503, { resource: 'services', verb: 'watch' });
    h.server.closeWatches({ resource: 'services' });
    await h.server.waitForRequests((r) => r.resource === 'services' && r.verb === 'watch', { count: 2 });
    await eventually(() => !stateOf(h.source, 'service').connected, 'in backoff');
    h.server.hang(); // and the other watches are silent streams
    const started = Date.now();
    await h.source.close();
    expect(Date.now() - started).toBeLessThan(1_000);
    h.server.resume();
    await eventually(() => h.server.openWatches() === 0, 'watches closed');
    await sleep(20);
    expect(timers()).toBeLessThanOrEqual(baseline);
    await h.source.close(); // idempotent
  });

  it('close() before the first sync rejects synced()', async () => {
    const h = await setup({ start: false });
    h.server.failAll(503);
    await h.source.start();
    const synced = h.source.synced();
    await h.source.close();
    await expect(synced).rejects.toMatchObject({ code: 'E_CLOSED' });
  });

  it('backoff is full jitter over an exponential ceiling with a cap', () => {
    const rows: Array<[attempt: number, random: number, ms: number]> = [
      [1, 0.999999, 499], [2, 0.999999, 999], [3, 0.5, 1000], [6, 0.999999, 15_999], [7, 1 - 1e-9, 29_999],
      [50, 0.5, 15_000], [1, 0, 0],
    ];
    for (const [attempt, random, ms] of rows) expect(backoffDelay(attempt, () => random, 500, 30_000), `attempt ${attempt}`).toBe(ms);
  });
});

describe('loadKubeConfig', () => {
  it('reads --kubeconfig, else in-cluster, else $KUBECONFIG; refuses what can never work with a ConfigError', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clusterdns-kube-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const server = new FakeKubeApiServer();
    await server.start();
    cleanups.push(() => server.stop());
    const file = join(dir, 'config');
    writeFileSync(file, server.kubeconfigYaml());
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '');
    vi.stubEnv('KUBECONFIG', '');

    expect(loadKubeConfig(file).server).toBe(server.url);
    vi.stubEnv('KUBECONFIG', file);
    expect(loadKubeConfig().server).toBe(server.url);
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '10.96.0.1');
    vi.stubEnv('KUBERNETES_SERVICE_PORT', '443');
    expect(loadKubeConfig().server).toBe('https://10.96.0.1:443');
    expect(loadKubeConfig(file).server).toBe(server.url); // an explicit path wins

    expect(() => loadKubeConfig(join(dir, 'missing'))).toThrow(ConfigError);
    const insecure = join(dir, 'insecure');
    // Plain http:// elsewhere than loopback (where kubectl proxy serves, and which is taken as kubectl takes it).
    writeFileSync(insecure, server.kubeconfigYaml().replace('    insecure-skip-tls-verify: true\n', '').replace('127.0.0.1', '10.0.0.1'));
    expect(() => loadKubeConfig(insecure)).toThrow(/needs insecure-skip-tls-verify/);
  });
});

describe('hostile watch lines (the decoder, line by line)', () => {
  const ROWS: Record<string, { line: string; parsed: WatchLine }> = {
    'an event': { line: '{"type":"ADDED","object":{"metadata":{"name":"a"}}}', parsed: { kind: 'event', type: 'ADDED', object: { metadata: { name: 'a' } } } },
    'an event without an object': { line: '{"type":"BOOKMARK"}', parsed: { kind: 'event', type: 'BOOKMARK', object: {} } },
    'a blank keep-alive line': { line: '', parsed: { kind: 'none' } },
    'half a line': { line: '{"type":"ADD', parsed: { kind: 'none' } },
    // Found by fuzzing: JSON, but no event object.
    'null': { line: 'null', parsed: { kind: 'none' } },
    'a number': { line: '5', parsed: { kind: 'none' } },
    'an array': { line: '[{"type":"ADDED"}]', parsed: { kind: 'none' } },
    'an event whose object is a string': { line: '{"type":"ADDED","object":"web"}', parsed: { kind: 'none' } },
    'an event whose object is an array': { line: '{"type":"ADDED","object":[]}', parsed: { kind: 'none' } },
    'ERROR 410': { line: '{"type":"ERROR","object":{"kind":"Status","code":410}}', parsed: { kind: 'end', end: { type: 'expired' } } },
    'ERROR with a Status that is not an object': {
      line: '{"type":"ERROR","object":"gone"}',
      parsed: { kind: 'end', end: { type: 'failed', reason: 'ERROR event undefined undefined: undefined' } },
    },
  };
  for (const [name, row] of Object.entries(ROWS)) it(name, () => expect(parseWatchLine(row.line)).toEqual(row.parsed));
});
