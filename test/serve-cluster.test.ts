// The whole process against a cluster: `clusterdns serve --kubeconfig` (dist/cli.js, a real child process) watching
// the test API server in this process over real HTTP list and watch, answering real `dig`, reporting on
// /health, /ready and /metrics. What a kubelet, Prometheus and a pod see while the API server misbehaves.
//
// Every wait is a poll with a deadline. Where a deadline is long (10-15 s) it covers the source's jittered
// backoff (base 0.5 s, doubling) after a fault that lasted a second or so; the usual wait is well under a second.

import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dig, lines, type DigResult } from './support/dig.js';
import { FakeKubeApiServer, type KubeObject, type ResourceName } from './support/k8s-api-server.js';
import { runCli, startServer, type ServerProcess } from './support/server-process.js';
import { get, metrics, select, value } from './support/http.js';

const POD_FIELD_SELECTOR = 'status.phase!=Succeeded,status.phase!=Failed';
const WATCHED: readonly ResourceName[] = ['namespaces', 'services', 'endpointslices'];

// ---- fixtures ------------------------------------------------------------------------------------------------

const ns = (name: string): KubeObject => ({ metadata: { name } });

const svc = (namespace: string, name: string, clusterIP: string): KubeObject => ({
  metadata: { name, namespace },
  spec: { clusterIP, selector: { app: name }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
});

const headless = (namespace: string, name: string, withSelector = true): KubeObject => ({
  metadata: { name, namespace },
  spec: { clusterIP: 'None', ...(withSelector && { selector: { app: name } }), ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
});

const externalName = (namespace: string, name: string, target: string): KubeObject => ({
  metadata: { name, namespace },
  spec: { type: 'ExternalName', externalName: target },
});

const slice = (namespace: string, name: string, service: string, ips: string[], options: { ready?: boolean; triggeredAt?: Date } = {}): KubeObject => ({
  metadata: {
    name,
    namespace,
    labels: { 'kubernetes.io/service-name': service },
    ...(options.triggeredAt !== undefined && { annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': options.triggeredAt.toISOString() } }),
  },
  addressType: 'IPv4',
  endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: options.ready ?? true } })),
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
});

const pod = (namespace: string, name: string, ip: string, phase = 'Running'): KubeObject => ({
  metadata: { name, namespace },
  spec: { nodeName: 'node-1' },
  status: { phase, podIP: ip, podIPs: [{ ip }] },
});

/** `default` with one ClusterIP service `web` (10.96.0.10) and its ready endpoints. */
function seedWeb(api: FakeKubeApiServer): void {
  api.create('namespaces', ns('default'));
  api.create('services', svc('default', 'web', '10.96.0.10'));
  api.create('endpointslices', slice('default', 'web-1', 'web', ['10.244.0.10', '10.244.0.11']));
}

const WEB = 'web.default.svc.cluster.local.';
const WEB_ANSWER = lines(`${WEB} 5 IN A 10.96.0.10`);

// ---- harness -------------------------------------------------------------------------------------------------

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startApi(seed?: (api: FakeKubeApiServer) => void): Promise<FakeKubeApiServer> {
  const api = new FakeKubeApiServer();
  await api.start();
  cleanups.push(() => api.stop());
  seed?.(api);
  return api;
}

async function kubeconfigFile(api: FakeKubeApiServer): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clusterdns-serve-cluster-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'kubeconfig');
  await writeFile(file, api.kubeconfigYaml());
  return file;
}

/** The real process watching `api`; stopped (by PID, in afterEach) before the API server goes. */
async function serveCluster(api: FakeKubeApiServer, args: readonly string[] = []): Promise<ServerProcess> {
  const server = await startServer(['--kubeconfig', await kubeconfigFile(api), ...args]);
  cleanups.push(() => server.stop());
  return server;
}

async function waitReady(server: ServerProcess, timeout = 10_000): Promise<void> {
  await vi.waitFor(async () => expect((await get(server, '/ready')).status).toBe(200), { timeout, interval: 50 });
}

const query = (server: ServerProcess, name: string, type = 'A', ...flags: string[]): Promise<DigResult> => dig(server.port, [name, type, ...flags]);

/** Polls dig until `check` passes. Each poll is a query: not for servers whose query counts a test asserts. */
async function eventually(server: ServerProcess, name: string, check: (result: DigResult) => void, timeout = 5_000): Promise<DigResult> {
  return vi.waitFor(async () => {
    const result = await query(server, name);
    check(result);
    return result;
  }, { timeout, interval: 50 });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---- tests ---------------------------------------------------------------------------------------------------

describe('serve --kubeconfig: before the first sync', () => {
  it('answers SERVFAIL (never NXDOMAIN) and /ready names what it waits for, until the last kind is listed', async () => {
    const api = await startApi(seedWeb);
    api.failAll(503, { resource: 'endpointslices', verb: 'list' });
    const server = await serveCluster(api);

    // Namespaces and Services are listed and watched (web is in the store); EndpointSlices keep failing.
    await api.waitForWatch('namespaces');
    await api.waitForWatch('services');
    await api.waitForRequests((r) => r.resource === 'endpointslices' && r.verb === 'list', { count: 1 });
    await vi.waitFor(async () => {
      const ready = await get(server, '/ready');
      expect(ready.status).toBe(503);
      // It names the kind still waited for and why (the API's 503), and not the kinds already listed.
      expect(ready.body).toMatch(/endpointslices/);
      expect(ready.body).toMatch(/\b503\b/);
      expect(ready.body).not.toMatch(/\bservices\b|\bnamespaces\b/);
    }, { timeout: 5_000, interval: 50 });
    expect(await get(server, '/health')).toEqual({ status: 200, body: 'OK' });

    const known = await query(server, WEB);
    const unknown = await query(server, 'nothing.default.svc.cluster.local.');
    const known6 = await query(server, WEB, 'AAAA', '+tcp');
    expect([known.status, unknown.status, known6.status]).toEqual(['SERVFAIL', 'SERVFAIL', 'SERVFAIL']);
    expect(known.answer).toEqual([]);
    // The sync is still incomplete: nothing was listed since.
    expect((await get(server, '/ready')).status).toBe(503);

    api.clearFaults();
    await waitReady(server);
    const after = await query(server, WEB);
    expect(after.status).toBe('NOERROR');
    expect(lines(...after.answer)).toEqual(WEB_ANSWER);
    expect((await query(server, 'nothing.default.svc.cluster.local.')).status).toBe('NXDOMAIN');
    expect(await get(server, '/ready')).toEqual({ status: 200, body: 'OK' });
  });
});

describe('serve --kubeconfig: live changes', () => {
  it('follows Services and EndpointSlices created, changed and deleted through the API', async () => {
    const api = await startApi((a) => a.create('namespaces', ns('default')));
    const server = await serveCluster(api);
    await waitReady(server);
    const API = 'api.default.svc.cluster.local.';
    const DB = 'db.default.svc.cluster.local.';
    expect((await query(server, API)).status).toBe('NXDOMAIN');

    api.create('services', svc('default', 'api', '10.96.1.1'));
    api.create('endpointslices', slice('default', 'api-1', 'api', ['10.244.1.1']));
    api.create('services', headless('default', 'db'));
    api.create('endpointslices', slice('default', 'db-1', 'db', ['10.244.2.1', '10.244.2.2']));
    await eventually(server, API, (r) => expect(lines(...r.answer)).toEqual(lines(`${API} 5 IN A 10.96.1.1`)));
    await eventually(server, DB, (r) => expect(lines(...r.answer)).toEqual(lines(`${DB} 5 IN A 10.244.2.1`, `${DB} 5 IN A 10.244.2.2`)));

    // A new cluster IP; a headless service's endpoint moves.
    api.update('services', svc('default', 'api', '10.96.1.2'));
    api.update('endpointslices', slice('default', 'db-1', 'db', ['10.244.2.1', '10.244.2.9']));
    await eventually(server, API, (r) => expect(lines(...r.answer)).toEqual(lines(`${API} 5 IN A 10.96.1.2`)));
    await eventually(server, DB, (r) => expect(lines(...r.answer)).toEqual(lines(`${DB} 5 IN A 10.244.2.1`, `${DB} 5 IN A 10.244.2.9`)));

    api.delete('endpointslices', { metadata: { name: 'api-1', namespace: 'default' } });
    api.delete('services', { metadata: { name: 'api', namespace: 'default' } });
    api.delete('endpointslices', { metadata: { name: 'db-1', namespace: 'default' } });
    await eventually(server, API, (r) => expect(r.status).toBe('NXDOMAIN'));
    // A headless service with no ready endpoint has no A record (spec 2.4.1: NXDOMAIN)...
    await eventually(server, DB, (r) => expect(r.status).toBe('NXDOMAIN'));
    // ...but it still exists: endpoints that come back are answered again,
    api.create('endpointslices', slice('default', 'db-2', 'db', ['10.244.2.3']));
    await eventually(server, DB, (r) => expect(r.answer).toEqual([`${DB} 5 IN A 10.244.2.3`]));
    // until the service itself goes, whatever its slices say.
    api.delete('services', { metadata: { name: 'db', namespace: 'default' } });
    await eventually(server, DB, (r) => expect(r.status).toBe('NXDOMAIN'));
  });
});

describe('serve --kubeconfig: API faults while querying', () => {
  it('keeps answering every known name, and stays ready, through closed, expired, down and failing watches', async () => {
    const api = await startApi(seedWeb);
    const server = await serveCluster(api);
    await waitReady(server);
    const allWatching = async (): Promise<void> => {
      for (const resource of WATCHED) await api.waitForWatch(resource, { timeoutMs: 15_000 });
    };
    // After each fault: once every watch is back, a change to every watched kind is answered. The events also
    // end the source's run of failures (each stream resets its backoff on a watch that delivered something), so
    // the next fault starts from the shortest backoff.
    let changes = 0;
    const changeEveryKind = async (): Promise<void> => {
      await allWatching();
      const name = `change-${++changes}`;
      const host = `${name}.default.svc.cluster.local.`;
      api.create('namespaces', ns(name));
      api.create('services', headless('default', name));
      api.create('endpointslices', slice('default', `${name}-1`, name, [`10.244.9.${changes}`]));
      await eventually(server, host, (r) => expect(r.answer).toEqual([`${host} 5 IN A 10.244.9.${changes}`]), 15_000);
      await eventually(server, `${name}.svc.cluster.local.`, (r) => expect(r.status).toBe('NOERROR'), 15_000);
    };
    await changeEveryKind();

    // One query and one /ready probe after another, each reply tagged with the fault under way when it came.
    let phase = 'before';
    const replies: Array<{ phase: string; result: DigResult }> = [];
    const readiness: Array<{ phase: string; status: number }> = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        const during = phase;
        replies.push({ phase: during, result: await query(server, WEB) });
        readiness.push({ phase: during, status: (await get(server, '/ready')).status });
      }
    })();
    const queriedDuring = (name: string): Promise<void> =>
      vi.waitFor(() => expect(replies.filter((r) => r.phase === name).length).toBeGreaterThan(0), { timeout: 5_000, interval: 20 });

    try {
      phase = 'abrupt close';
      expect(api.closeWatches({ abrupt: true })).toBe(WATCHED.length);
      await queriedDuring(phase);
      await changeEveryKind();

      phase = '410 expired';
      const lists = api.requestCount((r) => r.resource === 'services' && r.verb === 'list');
      api.expireWatches();
      await queriedDuring(phase);
      await api.waitForRequests((r) => r.resource === 'services' && r.verb === 'list', { count: lists + 1, timeoutMs: 10_000 });
      await changeEveryKind();
      expect(value(await metrics(server), 'clusterdns_watch_relists_total', { resource: 'service' })).toBeGreaterThanOrEqual(1);

      phase = 'API server down';
      await api.stop();
      await vi.waitFor(async () => expect(value(await metrics(server), 'clusterdns_watch_connected', { resource: 'service' })).toBe(0), { timeout: 5_000, interval: 50 });
      await sleep(1_000);
      await queriedDuring(phase);
      await api.start();
      await changeEveryKind();

      phase = 'HTTP 500';
      api.failAll(500);
      api.closeWatches();
      // The fault bites: the source reports the service watch down while the old records keep being served.
      await vi.waitFor(async () => expect(value(await metrics(server), 'clusterdns_watch_connected', { resource: 'service' })).toBe(0), { timeout: 5_000, interval: 50 });
      await sleep(500);
      await queriedDuring(phase);
      api.clearFaults();
      await changeEveryKind();
      phase = 'after';
      await queriedDuring(phase);
    } finally {
      running = false;
      await loop;
    }

    const bad = replies.filter(({ result }) => result.status !== 'NOERROR' || JSON.stringify(lines(...result.answer)) !== JSON.stringify(WEB_ANSWER));
    expect(bad.map(({ phase: p, result }) => `${p}: ${result.status} ${result.answer.join(' | ')}`)).toEqual([]);
    expect(readiness.filter(({ status }) => status !== 200)).toEqual([]);
    const perPhase: Record<string, number> = {};
    for (const { phase: p } of replies) perPhase[p] = (perPhase[p] ?? 0) + 1;
    expect(Object.keys(perPhase), JSON.stringify(perPhase)).toEqual(['before', 'abrupt close', '410 expired', 'API server down', 'HTTP 500', 'after']);

    // The watches are whole again: a change made now still arrives.
    await changeEveryKind();
    expect(value(await metrics(server), 'clusterdns_watch_connected', { resource: 'service' })).toBe(1);
  }, 90_000);
});

describe('serve --kubeconfig: back to current after an API outage', () => {
  it('answers what changed during a 12 s outage within 2 s of the return; /ready and the metrics show each retrying watch', async () => {
    const api = await startApi((a) => {
      seedWeb(a);
      a.create('services', headless('default', 'db'));
      a.create('endpointslices', slice('default', 'db-1', 'db', ['10.244.1.1', '10.244.1.2']));
      a.create('services', svc('default', 'old', '10.96.0.20'));
    });
    const server = await serveCluster(api);
    await waitReady(server);
    for (const resource of WATCHED) await api.waitForWatch(resource);

    await api.stop();
    // Long enough for each watch's own backoff (0.5 s doubling) to have grown past 8 s: before the watches
    // shared their retries, the last of them came back up to tens of seconds after the API server.
    await sleep(12_000);
    const ready = await get(server, '/ready');
    expect(ready.status).toBe(200);
    for (const kind of WATCHED) {
      expect(ready.body).toMatch(new RegExp(`^warning: watch of ${kind}: retrying for 1\\d\\.\\d s \\(.*ECONNREFUSED.*\\), (next try in [01]\\.\\d s|trying now); serving the last known records$`, 'm'));
    }
    const during = await metrics(server);
    for (const resource of ['namespace', 'service', 'endpointslice']) {
      expect(value(during, 'clusterdns_watch_connected', { resource })).toBe(0);
      expect(value(during, 'clusterdns_watch_retrying_seconds', { resource })).toBeGreaterThan(10);
      expect(value(during, 'clusterdns_watch_next_try_seconds', { resource })).toBeLessThanOrEqual(1);
    }
    expect((await query(server, WEB)).answer).toEqual(WEB_ANSWER);

    // Changes at the API server while clusterdns cannot see it, to every watched kind:
    api.create('namespaces', ns('fresh'));
    api.create('services', svc('default', 'late', '10.96.0.30'));
    api.update('endpointslices', slice('default', 'db-1', 'db', ['10.244.1.2', '10.244.1.3']));
    api.delete('services', { metadata: { name: 'old', namespace: 'default' } });
    const DB = 'db.default.svc.cluster.local.';
    const right = async (): Promise<boolean> => {
      const [db, late, old, fresh] = await Promise.all([
        query(server, DB), query(server, 'late.default.svc.cluster.local.'), query(server, 'old.default.svc.cluster.local.'),
        query(server, 'fresh.svc.cluster.local.'),
      ]);
      return JSON.stringify(db.answer) === JSON.stringify(lines(`${DB} 5 IN A 10.244.1.2`, `${DB} 5 IN A 10.244.1.3`))
        && JSON.stringify(late.answer) === JSON.stringify([`late.default.svc.cluster.local. 5 IN A 10.96.0.30`])
        && old.status === 'NXDOMAIN' && fresh.status === 'NOERROR';
    };
    expect(await right()).toBe(false);

    await api.start();
    const back = Date.now();
    let rightAt: number | undefined;
    while (rightAt === undefined && Date.now() - back < 10_000) {
      if (await right()) rightAt = Date.now();
    }
    expect(rightAt, 'every answer right again').toBeDefined();
    expect(rightAt! - back).toBeLessThan(2_000);
    const after = await get(server, '/ready');
    expect(after).toEqual({ status: 200, body: 'OK' });
    for (const resource of ['namespace', 'service', 'endpointslice']) {
      expect(value(await metrics(server), 'clusterdns_watch_retrying_seconds', { resource })).toBe(0);
    }
  }, 40_000);
});

describe('serve --kubeconfig: metrics', () => {
  it('counts exactly the queries made, with CoreDNS names and labels, and reports the watch state', async () => {
    const api = await startApi((a) => {
      seedWeb(a);
      a.create('services', svc('default', 'idle', '10.96.0.11')); // no slice at all
      a.create('services', headless('default', 'lonely'));
      a.create('endpointslices', slice('default', 'lonely-1', 'lonely', ['10.244.3.1'], { ready: false }));
      a.create('services', externalName('default', 'ext', 'example.org')); // has no endpoints by design: not counted
    });
    const server = await serveCluster(api);
    await waitReady(server); // over HTTP: no DNS query is made before the counted ones

    for (let i = 0; i < 10; i++) expect((await query(server, WEB, 'A')).status).toBe('NOERROR');
    for (let i = 0; i < 3; i++) expect((await query(server, WEB, 'AAAA', '+tcp')).status).toBe('NOERROR');
    for (let i = 0; i < 2; i++) expect((await query(server, 'example.com.', 'MX')).status).toBe('REFUSED');

    const samples = await metrics(server);
    const base = { server: `dns://127.0.0.1:${server.port}`, zone: '.', view: '' };
    expect(select(samples, 'coredns_dns_requests_total').map((s) => ({ ...s.labels, value: s.value }))).toEqual(expect.arrayContaining([
      { ...base, proto: 'udp', family: '1', type: 'A', value: 10 },
      { ...base, proto: 'tcp', family: '1', type: 'AAAA', value: 3 },
      { ...base, proto: 'udp', family: '1', type: 'MX', value: 2 },
    ]));
    expect(select(samples, 'coredns_dns_requests_total')).toHaveLength(3);
    expect(value(samples, 'coredns_dns_requests_total', { ...base, proto: 'udp', family: '1', type: 'A' })).toBe(10);
    expect(value(samples, 'coredns_dns_responses_total', { ...base, rcode: 'NOERROR', plugin: 'kubernetes' })).toBe(13);
    expect(value(samples, 'coredns_dns_responses_total', { ...base, rcode: 'REFUSED', plugin: '' })).toBe(2);
    expect(select(samples, 'coredns_dns_responses_total')).toHaveLength(2);

    for (const histogram of ['coredns_dns_request_duration_seconds', 'coredns_dns_request_size_bytes', 'coredns_dns_response_size_bytes']) {
      const counts = select(samples, `${histogram}_count`, base);
      expect(counts.reduce((sum, s) => sum + s.value, 0), `${histogram}_count`).toBe(15);
      for (const count of counts) {
        const { le: _none, ...series } = count.labels;
        const buckets = select(samples, `${histogram}_bucket`, series).filter((s) => Object.keys(s.labels).length === Object.keys(series).length + 1);
        expect(buckets.length, `${histogram}${JSON.stringify(series)} buckets`).toBeGreaterThan(1);
        const values = buckets.map((s) => s.value);
        expect(values, `${histogram} buckets are cumulative`).toEqual([...values].sort((a, b) => a - b));
        const bounds = buckets.map((s) => (s.labels.le === '+Inf' ? Infinity : Number(s.labels.le)));
        expect(bounds, `${histogram} bounds ascend`).toEqual([...bounds].sort((a, b) => a - b));
        expect(buckets.at(-1)!.labels.le).toBe('+Inf');
        expect(buckets.at(-1)!.value).toBe(count.value);
        expect(value(samples, `${histogram}_sum`, series)).toBeGreaterThan(0);
      }
    }
    expect(select(samples, 'coredns_dns_request_duration_seconds_count', base).map((s) => [s.labels.type, s.value]).sort())
      .toEqual([['A', 10], ['AAAA', 3], ['MX', 2]]);
    expect(select(samples, 'coredns_dns_request_size_bytes_count', base).map((s) => [s.labels.proto, s.value]).sort())
      .toEqual([['tcp', 3], ['udp', 12]]);

    const build = select(samples, 'coredns_build_info');
    expect(build).toHaveLength(1);
    expect(build[0]!.value).toBe(1);
    expect(Object.keys(build[0]!.labels).sort()).toEqual(['goversion', 'revision', 'version']);
    for (const resource of ['namespace', 'service', 'endpointslice']) {
      expect(value(samples, 'clusterdns_watch_connected', { resource }), resource).toBe(1);
    }
    expect(select(samples, 'clusterdns_watch_connected', { resource: 'pod' })).toEqual([]);
    expect(value(samples, 'clusterdns_services_without_ready_endpoints')).toBe(2);
    expect(value(samples, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    // Nothing in the programming-latency histogram: list items are not changes.
    expect(select(samples, 'coredns_kubernetes_dns_programming_duration_seconds_count')).toEqual([]);

    // The gauge follows the store: give `idle` a ready endpoint.
    api.create('endpointslices', slice('default', 'idle-1', 'idle', ['10.244.4.1']));
    await vi.waitFor(async () => expect(value(await metrics(server), 'clusterdns_services_without_ready_endpoints')).toBe(1), { timeout: 5_000, interval: 50 });
  });
});

describe('serve --kubeconfig: DNS programming latency', () => {
  it('observes EndpointSlice changes carrying last-change-trigger-time, labelled by the kind of service', async () => {
    const api = await startApi((a) => {
      a.create('namespaces', ns('default'));
      a.create('services', svc('default', 'old', '10.96.0.5'));
      // Present at the first list: not a change to measure.
      a.create('endpointslices', slice('default', 'old-1', 'old', ['10.244.0.5'], { triggeredAt: new Date() }));
    });
    const server = await serveCluster(api);
    await waitReady(server);
    const programming = async (): Promise<Record<string, number>> => Object.fromEntries(
      select(await metrics(server), 'coredns_kubernetes_dns_programming_duration_seconds_count').map((s) => [s.labels.service_kind, s.value]),
    );
    expect(await programming()).toEqual({});

    // The service must be in the store before its slice's change is measured (the kind comes from it).
    api.create('services', headless('default', 'hl'));
    api.create('services', headless('default', 'manual', false));
    api.create('services', svc('default', 'web', '10.96.0.10'));
    await vi.waitFor(async () => expect(value(await metrics(server), 'clusterdns_services_without_ready_endpoints')).toBe(3), { timeout: 5_000, interval: 50 });

    const triggered = Date.now();
    api.create('endpointslices', slice('default', 'hl-1', 'hl', ['10.244.1.1'], { triggeredAt: new Date(triggered) }));
    await vi.waitFor(async () => expect(await programming()).toEqual({ headless_with_selector: 1 }), { timeout: 5_000, interval: 50 });
    const samples = await metrics(server);
    const sum = value(samples, 'coredns_kubernetes_dns_programming_duration_seconds_sum', { service_kind: 'headless_with_selector' })!;
    expect(sum).toBeGreaterThanOrEqual(0);
    expect(sum).toBeLessThanOrEqual((Date.now() - triggered) / 1000 + 0.01);

    api.create('endpointslices', slice('default', 'manual-1', 'manual', ['10.244.2.1'], { triggeredAt: new Date() }));
    api.create('endpointslices', slice('default', 'web-1', 'web', ['10.244.3.1'], { triggeredAt: new Date() }));
    // No annotation: nothing to measure from.
    api.update('endpointslices', slice('default', 'hl-1', 'hl', ['10.244.1.2']));
    await vi.waitFor(async () => expect(await programming()).toEqual({ headless_with_selector: 1, headless_without_selector: 1, cluster_ip: 1 }), { timeout: 5_000, interval: 50 });
    // And the unannotated change did arrive.
    await eventually(server, 'hl.default.svc.cluster.local.', (r) => expect(r.answer).toEqual(['hl.default.svc.cluster.local. 5 IN A 10.244.1.2']));
    expect(await programming()).toEqual({ headless_with_selector: 1, headless_without_selector: 1, cluster_ip: 1 });
  });
});

describe('serve --kubeconfig: lame duck', () => {
  it('on SIGTERM keeps answering DNS with /ready at 503 for --lameduck, then exits 0', async () => {
    const api = await startApi(seedWeb);
    const server = await serveCluster(api, ['--lameduck', '2']);
    await waitReady(server);
    const exited = once(server.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const signalled = Date.now();
    expect(server.child.kill('SIGTERM')).toBe(true);

    await vi.waitFor(async () => expect((await get(server, '/ready')).status).toBe(503), { timeout: 1_000, interval: 20 });
    expect((await get(server, '/ready')).body).toMatch(/lame duck/);
    expect(await get(server, '/health')).toEqual({ status: 200, body: 'OK' });
    const answer = await query(server, WEB);
    expect(answer.status).toBe('NOERROR');
    expect(lines(...answer.answer)).toEqual(WEB_ANSWER);
    const tcp = await query(server, WEB, 'A', '+tcp');
    expect(lines(...tcp.answer)).toEqual(WEB_ANSWER);
    expect(Date.now() - signalled, 'the checks ran inside the lame-duck window').toBeLessThan(1_800);

    const [code, signal] = await Promise.race([exited, sleep(6_000).then(() => { throw new Error('no exit within 6 s of SIGTERM'); })]);
    const elapsed = Date.now() - signalled;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(elapsed).toBeGreaterThanOrEqual(1_900);
    expect(elapsed).toBeLessThan(5_000);
  });

  it('on SIGINT exits at once, not after the lame duck', async () => {
    const api = await startApi(seedWeb);
    const server = await serveCluster(api, ['--lameduck', '5']);
    await waitReady(server);
    const exited = once(server.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const signalled = Date.now();
    expect(server.child.kill('SIGINT')).toBe(true);
    const [code, signal] = await Promise.race([exited, sleep(4_000).then(() => { throw new Error('no exit within 4 s of SIGINT'); })]);
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalled).toBeLessThan(1_500);
  });
});

describe('serve --kubeconfig --namespaces', () => {
  it('answers only the listed namespaces and never asks the API about the others', async () => {
    const api = await startApi((a) => {
      a.create('namespaces', ns('a'));
      a.create('namespaces', ns('b'));
      a.create('services', svc('a', 'web', '10.96.0.10'));
      a.create('services', svc('b', 'web', '10.96.0.20'));
    });
    const server = await serveCluster(api, ['--namespaces', 'a']);
    await waitReady(server);
    const inA = await query(server, 'web.a.svc.cluster.local.');
    expect(lines(...inA.answer)).toEqual(lines('web.a.svc.cluster.local. 5 IN A 10.96.0.10'));
    expect((await query(server, 'web.b.svc.cluster.local.')).status).toBe('NXDOMAIN');
    expect((await query(server, 'b.svc.cluster.local.')).status).toBe('NXDOMAIN');
    expect((await query(server, 'a.svc.cluster.local.')).status).toBe('NOERROR');

    // Created after the sync: b's first, then a's; once a's is answered, b's would have been too if watched.
    api.create('services', svc('b', 'late', '10.96.0.21'));
    api.create('services', svc('a', 'late', '10.96.0.11'));
    await eventually(server, 'late.a.svc.cluster.local.', (r) => expect(r.answer).toEqual(['late.a.svc.cluster.local. 5 IN A 10.96.0.11']));
    expect((await query(server, 'late.b.svc.cluster.local.')).status).toBe('NXDOMAIN');

    expect(api.requests.filter((r) => r.path.includes('/namespaces/b'))).toEqual([]);
    expect(api.requests.filter((r) => r.namespace !== undefined && r.namespace !== 'a')).toEqual([]);
    const collections = new Set(api.requests.filter((r) => r.resource !== undefined).map((r) => r.path));
    expect([...collections].sort()).toEqual([
      '/api/v1/namespaces', // cluster-scoped: watched whole, filtered in the process
      '/api/v1/namespaces/a/services',
      '/apis/discovery.k8s.io/v1/namespaces/a/endpointslices',
    ]);
    expect(api.requestCount((r) => r.path === '/api/v1/namespaces/a/services' && r.verb === 'watch')).toBeGreaterThanOrEqual(1);
  });
});

describe('serve --kubeconfig --pods verified', () => {
  it('answers pod names for pods that exist, and asks the API only for pods that are not finished', async () => {
    const api = await startApi((a) => {
      a.create('namespaces', ns('default'));
      a.create('pods', pod('default', 'runner', '10.244.0.5'));
      a.create('pods', pod('default', 'finished', '10.244.0.6', 'Succeeded'));
    });
    const server = await serveCluster(api, ['--pods', 'verified']);
    await waitReady(server);
    await api.waitForWatch('pods');

    const runner = await query(server, '10-244-0-5.default.pod.cluster.local.');
    expect(runner.status).toBe('NOERROR');
    expect(runner.answer).toEqual(['10-244-0-5.default.pod.cluster.local. 5 IN A 10.244.0.5']);
    expect((await query(server, '10-244-9-9.default.pod.cluster.local.')).status).toBe('NXDOMAIN');
    expect((await query(server, '10-244-0-6.default.pod.cluster.local.')).status).toBe('NXDOMAIN');
    // The right address in the wrong namespace is not that pod.
    expect((await query(server, '10-244-0-5.other.pod.cluster.local.')).status).toBe('NXDOMAIN');

    // A pod that starts after the sync arrives through the watch.
    api.create('pods', pod('default', 'newcomer', '10.244.0.7'));
    await eventually(server, '10-244-0-7.default.pod.cluster.local.', (r) => expect(r.answer).toEqual(['10-244-0-7.default.pod.cluster.local. 5 IN A 10.244.0.7']));

    const podRequests = api.requests.filter((r) => r.resource === 'pods');
    expect(podRequests.some((r) => r.verb === 'list')).toBe(true);
    expect(podRequests.some((r) => r.verb === 'watch')).toBe(true);
    expect(podRequests.map((r) => r.query.fieldSelector)).toEqual(podRequests.map(() => POD_FIELD_SELECTOR));
  });

  it('does not watch pods without --pods verified', async () => {
    const api = await startApi(seedWeb);
    const server = await serveCluster(api);
    await waitReady(server);
    expect(api.requestCount((r) => r.resource === 'pods')).toBe(0);
  });
});

describe("serve --kubeconfig: kubectl proxy's plain http:// on a loopback address", () => {
  it('is accepted without insecure-skip-tls-verify, as kubectl accepts it, and says so at debug level', async () => {
    const api = await startApi(seedWeb);
    const dir = await mkdtemp(join(tmpdir(), 'clusterdns-kubectl-proxy-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'kubeconfig');
    // What `kubectl proxy` users write: a server URL and nothing else, no credentials, no TLS settings.
    expect(api.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await writeFile(file, `apiVersion: v1\nkind: Config\nclusters: [{ name: proxy, cluster: { server: "${api.url}" } }]\n`
      + 'users: [{ name: none, user: {} }]\ncontexts: [{ name: proxy, context: { cluster: proxy, user: none } }]\ncurrent-context: proxy\n');
    const server = await startServer(['--kubeconfig', file]);
    cleanups.push(() => server.stop());
    await waitReady(server);
    expect(lines(...(await query(server, WEB)).answer)).toEqual(WEB_ANSWER);
    await server.waitForLog((line) => String(line.msg).includes('plain http:// to a loopback address'));
  });
});

describe('serve --kubeconfig: a kubeconfig that cannot work', () => {
  const loopback = ['--listen', '127.0.0.1:0', '--health', '127.0.0.1:0', '--ready', '127.0.0.1:0', '--metrics', '127.0.0.1:0'];

  it('fails at start, naming the path, for a kubeconfig that does not exist', async () => {
    const path = '/nonexistent/clusterdns-kubeconfig';
    const { code, stdout, stderr } = await runCli(['serve', ...loopback, '--kubeconfig', path]);
    expect(code).toBe(2);
    expect(stderr).toContain(path);
    expect(stderr).not.toMatch(/unexpected error|\n\s+at /);
    expect(stdout).toBe('');
  });

  it('refuses --manifests together with --kubeconfig (usage error, exit 2)', async () => {
    const { code, stderr } = await runCli(['serve', ...loopback, '--manifests', 'x', '--kubeconfig', 'y']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--manifests/);
    expect(stderr).toMatch(/--kubeconfig/);
  });
});
