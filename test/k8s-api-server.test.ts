// The test API server against the real @kubernetes/client-node 1.4.0: pins both the server's list/watch
// semantics and exactly how the client surfaces each fault (see the header of support/k8s-api-server.ts).

import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiException, CoreV1Api, DiscoveryV1Api, type KubeConfig, Watch } from '@kubernetes/client-node';
import { FakeKubeApiServer, type FakeKubeApiServerOptions, type KubeObject } from './support/k8s-api-server.js';

let api: FakeKubeApiServer | undefined;
const controllers: Promise<AbortController>[] = [];

afterEach(async () => {
  for (const c of controllers.splice(0)) {
    // A watch whose headers never came has no controller; stop() below ends its request.
    void c.then((ctl) => ctl.abort(), () => undefined);
  }
  await api?.stop();
  api = undefined;
});

async function startServer(options: FakeKubeApiServerOptions = {}): Promise<FakeKubeApiServer> {
  api = new FakeKubeApiServer(options);
  await api.start();
  return api;
}

interface Seen {
  type: string;
  object: Record<string, any>;
}

/** Watch.watch() with its callbacks turned into an event array and a promise of the done() argument. */
function watch(kc: KubeConfig, path: string, query: Record<string, string | number | boolean | undefined> = {}) {
  const events: Seen[] = [];
  let settle!: (err: unknown) => void;
  const done = new Promise<unknown>((resolve) => (settle = resolve));
  const controller = new Watch(kc).watch(path, query, (type, object) => events.push({ type, object }), (err) => settle(err));
  controllers.push(controller);
  const summary = (): string[] => events.map((e) => `${e.type} ${e.object.metadata?.name ?? e.object.reason ?? ''}`.trim());
  return { events, done, controller, summary };
}

/** Polls `cond` every 5 ms for at most `timeoutMs`. */
async function eventually(cond: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Settles to 'pending' if `p` has not settled within `ms`. */
const settledWithin = <T>(p: Promise<T>, ms: number): Promise<T | 'pending'> =>
  Promise.race([p, new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms))]);

const svc = (namespace: string, name: string, labels?: Record<string, string>): KubeObject => ({
  metadata: { name, namespace, ...(labels ? { labels } : {}) },
  spec: { clusterIP: '10.96.0.10', ports: [{ port: 53, protocol: 'UDP' }] },
});

const pod = (namespace: string, name: string, phase: string): KubeObject => ({
  metadata: { name, namespace },
  spec: { nodeName: 'node-1' },
  status: { phase, podIP: '10.244.0.5' },
});

const apiError = async (p: Promise<unknown>): Promise<ApiException<string>> => {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ApiException);
  return err as ApiException<string>;
};

describe('list', () => {
  it('pages with limit/continue over one snapshot and returns every object', async () => {
    const server = await startServer();
    for (const ns of ['b', 'a']) for (const n of ['s3', 's1', 's2', 's4']) server.create('services', svc(ns, n));
    const core = server.kubeConfig().makeApiClient(CoreV1Api);

    const first = await core.listServiceForAllNamespaces({ limit: 3 });
    expect(first.kind).toBe('ServiceList');
    expect(first.apiVersion).toBe('v1');
    expect(first.metadata?.remainingItemCount).toBe(5);
    const snapshotRv = first.metadata?.resourceVersion;
    expect(snapshotRv).toBe(server.resourceVersion);
    // Writes between pages do not leak into the paged list: it reads one snapshot, like etcd.
    server.delete('services', { metadata: { name: 's4', namespace: 'b' } });
    server.create('services', svc('a', 's0'));

    const names = first.items.map((s) => `${s.metadata?.namespace}/${s.metadata?.name}`);
    let cont = first.metadata?._continue;
    let pages = 1;
    while (cont) {
      const page = await core.listServiceForAllNamespaces({ limit: 3, _continue: cont });
      expect(page.metadata?.resourceVersion).toBe(snapshotRv);
      names.push(...page.items.map((s) => `${s.metadata?.namespace}/${s.metadata?.name}`));
      cont = page.metadata?._continue;
      pages++;
    }
    expect(pages).toBe(3);
    expect(names).toEqual(['a/s1', 'a/s2', 'a/s3', 'a/s4', 'b/s1', 'b/s2', 'b/s3', 'b/s4']);
    expect(server.requests.map((r) => r.query['limit'])).toEqual(['3', '3', '3']);
  });

  it('serves each resource on its real paths, items without kind/apiVersion, with uid and creationTimestamp', async () => {
    const server = await startServer({ now: () => new Date('2025-01-02T03:04:05.678Z') });
    server.create('namespaces', { metadata: { name: 'default' } });
    server.create('services', svc('default', 'kubernetes'));
    server.create('services', svc('kube-system', 'kube-dns'));
    server.create('endpointslices', {
      metadata: { name: 'kube-dns-abc', namespace: 'kube-system', labels: { 'kubernetes.io/service-name': 'kube-dns' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.244.0.2'], conditions: { ready: true } }],
      ports: [{ name: 'dns', port: 53, protocol: 'UDP' }],
    });
    server.create('pods', pod('kube-system', 'coredns-1', 'Running'));
    const kc = server.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);

    const namespaces = await core.listNamespace();
    expect(namespaces.kind).toBe('NamespaceList');
    expect(namespaces.items.map((n) => n.metadata?.name)).toEqual(['default']);
    const inKubeSystem = await core.listNamespacedService({ namespace: 'kube-system' });
    expect(inKubeSystem.items.map((s) => s.metadata?.name)).toEqual(['kube-dns']);
    const slices = await discovery.listEndpointSliceForAllNamespaces();
    expect(slices.kind).toBe('EndpointSliceList');
    expect(slices.apiVersion).toBe('discovery.k8s.io/v1');
    expect(slices.items[0]?.endpoints[0]?.addresses).toEqual(['10.244.0.2']);
    expect((await discovery.listNamespacedEndpointSlice({ namespace: 'default' })).items).toEqual([]);
    const pods = await core.listNamespacedPod({ namespace: 'kube-system' });
    expect(pods.kind).toBe('PodList');
    expect(pods.items[0]?.status?.podIP).toBe('10.244.0.5');
    const pod0 = pods.items[0]!;
    // On the wire, typed list items carry no kind/apiVersion (the client does not add them either).
    expect(pod0.kind).toBeUndefined();
    expect(pod0.apiVersion).toBeUndefined();
    expect(pod0.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    // The list calls deserialise creationTimestamp into a Date.
    expect(pod0.metadata?.creationTimestamp).toEqual(new Date('2025-01-02T03:04:05Z'));

    expect(server.requests.map((r) => `${r.verb} ${r.path}`)).toEqual([
      'list /api/v1/namespaces',
      'list /api/v1/namespaces/kube-system/services',
      'list /apis/discovery.k8s.io/v1/endpointslices',
      'list /apis/discovery.k8s.io/v1/namespaces/default/endpointslices',
      'list /api/v1/namespaces/kube-system/pods',
    ]);
    expect(server.requests[0]?.headers['accept']).toBe('application/json, */*;q=0.8');
    expect(server.requestCount('/api/v1/namespaces')).toBe(1);
  });

  it('answers a continue token from before compact() with 410 Expired: ApiException code 410, Status in body', async () => {
    const server = await startServer();
    for (const n of ['a', 'b', 'c']) server.create('services', svc('default', n));
    const core = server.kubeConfig().makeApiClient(CoreV1Api);
    const first = await core.listServiceForAllNamespaces({ limit: 1 });
    server.upsert('services', svc('default', 'a', { changed: 'yes' }));
    server.compact();

    const err = await apiError(core.listServiceForAllNamespaces({ limit: 1, _continue: first.metadata!._continue! }));
    expect(err.code).toBe(410);
    expect(typeof err.body).toBe('string');
    const status = JSON.parse(err.body);
    expect(status).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Expired', code: 410 });
    expect(status.message).toMatch(/^The provided continue parameter is too old/);
  });

  it('filters by label selector: equality, inequality, existence, set', async () => {
    const server = await startServer();
    server.create('services', svc('default', 'web', { app: 'web', tier: 'front' }));
    server.create('services', svc('default', 'api', { app: 'api', tier: 'back' }));
    server.create('services', svc('default', 'db', { app: 'db' }));
    server.create('services', svc('default', 'bare'));
    const core = server.kubeConfig().makeApiClient(CoreV1Api);
    const names = async (labelSelector: string) =>
      (await core.listServiceForAllNamespaces({ labelSelector })).items.map((s) => s.metadata?.name).sort();

    const cases: [string, string[]][] = [
      ['app=web', ['web']],
      ['app==web', ['web']],
      ['app!=web', ['api', 'bare', 'db']],
      ['tier', ['api', 'web']],
      ['!tier', ['bare', 'db']],
      ['app in (web,db)', ['db', 'web']],
      ['app notin (web, db)', ['api', 'bare']],
      ['app,tier!=front', ['api', 'db']],
      ['', ['api', 'bare', 'db', 'web']],
    ];
    for (const [selector, expected] of cases) expect(await names(selector), selector).toEqual(expected);

    const bad = await apiError(core.listServiceForAllNamespaces({ labelSelector: 'app in web' }));
    expect(bad.code).toBe(400);
  });

  it('filters by field selector: metadata.name, metadata.namespace, pod phase; unknown field is 400', async () => {
    const server = await startServer();
    server.create('services', svc('default', 'web'));
    server.create('services', svc('other', 'web'));
    server.create('services', svc('other', 'api'));
    for (const [name, phase] of [['run', 'Running'], ['pend', 'Pending'], ['ok', 'Succeeded'], ['bad', 'Failed']]) {
      server.create('pods', pod('default', name!, phase!));
    }
    const core = server.kubeConfig().makeApiClient(CoreV1Api);
    const svcNames = async (fieldSelector: string) =>
      (await core.listServiceForAllNamespaces({ fieldSelector })).items.map((s) => `${s.metadata?.namespace}/${s.metadata?.name}`);

    expect(await svcNames('metadata.name=web')).toEqual(['default/web', 'other/web']);
    expect(await svcNames('metadata.namespace=other')).toEqual(['other/api', 'other/web']);
    expect(await svcNames('metadata.namespace!=other,metadata.name==web')).toEqual(['default/web']);
    const live = await core.listPodForAllNamespaces({ fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed' });
    expect(live.items.map((p) => p.metadata?.name)).toEqual(['pend', 'run']);

    const bad = await apiError(core.listServiceForAllNamespaces({ fieldSelector: 'spec.bogus=1' }));
    expect(bad.code).toBe(400);
    expect(JSON.parse(bad.body).message).toBe('field label not supported: spec.bogus');
  });
});

describe('watch', () => {
  it("from the list's resourceVersion delivers ADDED, MODIFIED, DELETED in order", async () => {
    const server = await startServer();
    server.create('services', svc('default', 'old'));
    const kc = server.kubeConfig();
    const list = await kc.makeApiClient(CoreV1Api).listServiceForAllNamespaces();
    const w = watch(kc, '/api/v1/services', { resourceVersion: list.metadata?.resourceVersion });
    await server.waitForWatch('services');

    server.create('services', svc('default', 'web'));
    server.update('services', svc('default', 'web', { v: '2' }));
    server.delete('services', { metadata: { name: 'web', namespace: 'default' } });
    server.create('namespaces', { metadata: { name: 'not-a-service' } });
    await eventually(() => w.events.length === 3);

    expect(w.summary()).toEqual(['ADDED web', 'MODIFIED web', 'DELETED web']);
    const rvs = w.events.map((e) => Number(e.object.metadata.resourceVersion));
    expect(rvs).toEqual([...rvs].sort((a, b) => a - b));
    expect(new Set(rvs).size).toBe(3); // the deletion has its own, newer resourceVersion
    expect(w.events[1]?.object).toMatchObject({ kind: 'Service', apiVersion: 'v1', metadata: { labels: { v: '2' } } });
    // Watch objects are not deserialised: creationTimestamp stays a string.
    expect(typeof w.events[0]?.object.metadata.creationTimestamp).toBe('string');
    expect(server.requests.at(-1)?.query).toEqual({ watch: 'true', resourceVersion: list.metadata?.resourceVersion });
  });

  it('replays history after an older resourceVersion; without one sends the current state as ADDED', async () => {
    const server = await startServer();
    const kc = server.kubeConfig();
    const rv0 = server.resourceVersion;
    server.create('services', svc('default', 'a'));
    server.create('services', svc('default', 'b'));
    server.update('services', svc('default', 'a', { v: '2' }));

    const replay = watch(kc, '/api/v1/namespaces/default/services', { resourceVersion: rv0 });
    const fresh = watch(kc, '/api/v1/services');
    await eventually(() => replay.events.length === 3 && fresh.events.length === 2);
    expect(replay.summary()).toEqual(['ADDED a', 'ADDED b', 'MODIFIED a']);
    expect(fresh.summary().sort()).toEqual(['ADDED a', 'ADDED b']);
  });

  it('sends BOOKMARK events periodically and on demand when allowWatchBookmarks=true, never otherwise', async () => {
    const server = await startServer({ bookmarkIntervalMs: 20 });
    const kc = server.kubeConfig();
    const rv = server.resourceVersion;
    const withMarks = watch(kc, '/apis/discovery.k8s.io/v1/endpointslices', { resourceVersion: rv, allowWatchBookmarks: true });
    const without = watch(kc, '/apis/discovery.k8s.io/v1/endpointslices', { resourceVersion: rv });
    await server.waitForWatch('endpointslices', { count: 2 });
    expect(server.requests.map((r) => r.query['allowWatchBookmarks'])).toEqual(['true', undefined]);

    await eventually(() => withMarks.events.length >= 2);
    const mark = withMarks.events[0]!;
    expect(mark.type).toBe('BOOKMARK');
    expect(mark.object).toEqual({ kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', metadata: { resourceVersion: rv } });

    server.create('namespaces', { metadata: { name: 'elsewhere' } }); // moves the global resourceVersion only
    server.sendBookmarks();
    await eventually(() => withMarks.events.some((e) => e.object.metadata.resourceVersion === server.resourceVersion));
    expect(without.events).toEqual([]);
  });

  it('answers a compacted resourceVersion with an ERROR event (code 410) in a 200 stream, then done(null)', async () => {
    const server = await startServer(); // watchTooOld: 'event' is the default, as on a real server
    const kc = server.kubeConfig();
    const stale = server.resourceVersion;
    server.create('services', svc('default', 'a'));
    server.compact();

    const w = watch(kc, '/api/v1/services', { resourceVersion: stale });
    expect(await w.done).toBeNull();
    expect(w.events).toHaveLength(1);
    expect(w.events[0]?.type).toBe('ERROR');
    expect(w.events[0]?.object).toEqual({
      kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason: 'Expired', code: 410,
      message: `too old resource version: ${stale} (${server.resourceVersion})`,
    });
    // The resourceVersion of the compaction point itself is still watchable.
    const ok = watch(kc, '/api/v1/services', { resourceVersion: server.resourceVersion });
    await server.waitForWatch('services');
    expect(await settledWithin(ok.done, 20)).toBe('pending');
  });

  it("answers a compacted resourceVersion with HTTP 410 in 'http' mode: done(Error) with statusCode 410", async () => {
    const server = await startServer({ watchTooOld: 'http' });
    const kc = server.kubeConfig();
    const stale = server.resourceVersion;
    server.create('services', svc('default', 'a'));
    server.compact();

    const w = watch(kc, '/api/v1/services', { resourceVersion: stale });
    const err = (await w.done) as Error & { statusCode?: number };
    expect(err).toBeInstanceOf(Error);
    expect(err.statusCode).toBe(410);
    expect(err.message).toBe('Gone');
    expect(w.events).toEqual([]);
    expect((await w.controller).signal.aborted).toBe(true); // watch() still resolves, to a spent controller
  });

  it('expireWatches() sends ERROR 410 mid-stream and ends the watch', async () => {
    const server = await startServer();
    const w = watch(server.kubeConfig(), '/api/v1/pods', { resourceVersion: server.resourceVersion });
    await server.waitForWatch('pods');
    server.expireWatches();
    expect(await w.done).toBeNull();
    expect(w.events.map((e) => [e.type, e.object.code])).toEqual([['ERROR', 410]]);
    expect(server.openWatches()).toBe(0);
  });

  it('applies selectors to events: an object that starts matching is ADDED, one that stops is DELETED', async () => {
    const server = await startServer();
    const kc = server.kubeConfig();
    const rv = server.resourceVersion;
    const live = watch(kc, '/api/v1/pods', { resourceVersion: rv, fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed' });
    const labelled = watch(kc, '/api/v1/namespaces/default/services', { resourceVersion: rv, labelSelector: 'app=web' });
    await server.waitForWatch('pods');
    await server.waitForWatch('services');

    server.create('pods', pod('default', 'job', 'Pending'));
    server.update('pods', pod('default', 'job', 'Running'));
    server.update('pods', pod('default', 'job', 'Succeeded'));
    server.create('pods', pod('default', 'done-already', 'Failed'));
    server.update('pods', pod('default', 'job', 'Running')); // back in the selection
    server.delete('pods', { metadata: { name: 'done-already', namespace: 'default' } });

    server.create('services', svc('default', 'web', { app: 'web' }));
    server.create('services', svc('other', 'web', { app: 'web' })); // other namespace
    server.create('services', svc('default', 'api', { app: 'api' }));
    server.update('services', svc('default', 'api', { app: 'web' }));
    server.update('services', svc('default', 'web', { app: 'none' }));
    server.delete('services', { metadata: { name: 'web', namespace: 'default' } }); // already out of the selection

    await eventually(() => live.events.length === 4 && labelled.events.length === 3);
    expect(live.summary()).toEqual(['ADDED job', 'MODIFIED job', 'DELETED job', 'ADDED job']);
    expect(live.events[2]?.object.status.phase).toBe('Succeeded');
    expect(labelled.summary()).toEqual(['ADDED web', 'ADDED api', 'DELETED web']);
    expect(server.requests.find((r) => r.resource === 'services')?.namespace).toBe('default');
  });

  it('clean end of the stream (closeWatches, timeoutSeconds) calls done(null)', async () => {
    const server = await startServer();
    const kc = server.kubeConfig();
    const w = watch(kc, '/api/v1/services', { resourceVersion: server.resourceVersion });
    await server.waitForWatch('services');
    expect(server.closeWatches()).toBe(1);
    expect(await w.done).toBeNull();

    // This server accepts fractional timeoutSeconds (the real one wants an integer) so the test stays short.
    const timed = watch(kc, '/api/v1/services', { resourceVersion: server.resourceVersion, timeoutSeconds: 0.05 });
    expect(await timed.done).toBeNull();
    expect(server.openWatches()).toBe(0);
  });

  it('abrupt close calls done(Error "Premature close", code ERR_STREAM_PREMATURE_CLOSE); a TCP reset, ECONNRESET', async () => {
    const server = await startServer();
    const kc = server.kubeConfig();
    const w = watch(kc, '/api/v1/services', { resourceVersion: server.resourceVersion });
    await server.waitForWatch('services');
    server.create('services', svc('default', 'a'));
    await eventually(() => w.events.length === 1);
    server.closeWatches({ abrupt: true });
    const err = (await w.done) as NodeJS.ErrnoException;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toBe('Premature close');
    expect(err.code).toBe('ERR_STREAM_PREMATURE_CLOSE');

    const r = watch(kc, '/api/v1/services', { resourceVersion: server.resourceVersion });
    // Wait until the client has the headers: a reset that overtakes them races (seen: Premature close instead).
    await r.controller;
    server.closeWatches({ abrupt: 'reset' });
    const reset = (await r.done) as NodeJS.ErrnoException;
    expect(reset).toBeInstanceOf(Error);
    expect(reset.code).toBe('ECONNRESET');
  });

  it('a watch aborted by the caller calls done(AbortError) and the server sees it close', async () => {
    const server = await startServer();
    const w = watch(server.kubeConfig(), '/api/v1/services', { resourceVersion: server.resourceVersion });
    await server.waitForWatch('services');
    (await w.controller).abort();
    expect(await w.done).toMatchObject({ name: 'AbortError', type: 'aborted' });
    await server.waitUntil(() => server.openWatches() === 0, 'watch closed');
  });

  it('streams chunked JSON lines with the real headers (raw HTTP)', async () => {
    const server = await startServer();
    server.create('services', svc('default', 'a'));
    server.create('services', svc('default', 'b'));
    const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      request(`${server.url}/api/v1/services?watch=1&resourceVersion=0`, resolve).on('error', reject).end();
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.headers['transfer-encoding']).toBe('chunked');
    res.setEncoding('utf8');
    let text = '';
    res.on('data', (d: string) => (text += d));
    await eventually(() => text.split('\n').length === 3);
    const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l) as { type: string; object: KubeObject });
    expect(lines.map((l) => `${l.type} ${l.object.kind} ${l.object.metadata.name}`)).toEqual(['ADDED Service a', 'ADDED Service b']);
    res.destroy();
  });
});

describe('faults', () => {
  it('5xx and 403 on list reject with ApiException: err.code is the status, err.body the Status text', async () => {
    const server = await startServer();
    const core = server.kubeConfig().makeApiClient(CoreV1Api);
    server.failNext(1, 500);
    server.failNext(1, 403);
    const e500 = await apiError(core.listServiceForAllNamespaces());
    expect(e500.code).toBe(500);
    expect(JSON.parse(e500.body)).toMatchObject({ kind: 'Status', reason: 'InternalError', code: 500 });
    expect(e500.message).toMatch(/^HTTP-Code: 500\n/);
    const e403 = await apiError(core.listNamespacedService({ namespace: 'default' }));
    expect(e403.code).toBe(403);
    expect(JSON.parse(e403.body)).toMatchObject({ reason: 'Forbidden', code: 403 });
    expect(JSON.parse(e403.body).message).toContain('cannot list resource "services" in API group "" in the namespace "default"');
    await expect(core.listServiceForAllNamespaces()).resolves.toMatchObject({ kind: 'ServiceList' });
  });

  it('failAll answers every matching request until clearFaults(); on a watch it is done(Error) with statusCode', async () => {
    const server = await startServer();
    const kc = server.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    server.failAll(503, { resource: 'pods' });
    for (let i = 0; i < 3; i++) expect((await apiError(core.listPodForAllNamespaces())).code).toBe(503);
    await expect(core.listNamespace()).resolves.toMatchObject({ kind: 'NamespaceList' });

    const w = watch(kc, '/api/v1/pods', { resourceVersion: server.resourceVersion });
    expect(await w.done).toMatchObject({ statusCode: 503, message: 'Service Unavailable' });

    server.failNext(1, 403, { verb: 'watch' });
    const forbidden = watch(kc, '/api/v1/services', {});
    expect(await forbidden.done).toMatchObject({ statusCode: 403, message: 'Forbidden' });

    server.clearFaults();
    await expect(core.listPodForAllNamespaces()).resolves.toMatchObject({ kind: 'PodList' });
  });

  it('hang(): lists and new watches get no answer, open watches go silent; resume() delivers everything', async () => {
    const server = await startServer();
    const kc = server.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const open = watch(kc, '/api/v1/services', { resourceVersion: server.resourceVersion });
    await server.waitForWatch('services');

    server.hang();
    server.create('services', svc('default', 'during-hang'));
    const list = core.listServiceForAllNamespaces();
    const late = watch(kc, '/api/v1/services', { resourceVersion: '0' });
    await server.waitForRequests((r) => r.verb === 'watch', { count: 2 });
    expect(await settledWithin(list, 30)).toBe('pending');
    expect(await settledWithin(late.controller, 1)).toBe('pending'); // no headers, so no controller yet
    expect(open.events).toEqual([]);

    server.resume();
    expect((await list).items.map((s) => s.metadata?.name)).toEqual(['during-hang']);
    await late.controller;
    await eventually(() => open.events.length === 1 && late.events.length === 1);
    expect(open.summary()).toEqual(['ADDED during-hang']);
  });

  it('hang({sendWatchHeaders}) lets Watch.watch() resolve to a silent stream; abort gives done(AbortError)', async () => {
    const server = await startServer({ bookmarkIntervalMs: 10 });
    const kc = server.kubeConfig();
    server.hang({ sendWatchHeaders: true });
    const w = watch(kc, '/api/v1/services', { resourceVersion: server.resourceVersion, allowWatchBookmarks: true });
    const controller = await w.controller;
    server.create('services', svc('default', 'x'));
    expect(await settledWithin(w.done, 40)).toBe('pending');
    expect(w.events).toEqual([]);
    controller.abort();
    expect(await w.done).toMatchObject({ name: 'AbortError' });
  });

  it('stop()/start(): down means ECONNREFUSED (FetchError) for list and watch, open watches end; same port, same store', async () => {
    const server = await startServer();
    const urlBefore = server.url;
    server.create('services', svc('default', 'kept'));
    const kc = server.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const open = watch(kc, '/api/v1/services', { resourceVersion: server.resourceVersion });
    await server.waitForWatch('services');

    await server.stop();
    expect(await open.done).toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
    const refused = await core.listServiceForAllNamespaces().then(() => undefined, (e: unknown) => e);
    expect(refused).toMatchObject({ name: 'FetchError', type: 'system', code: 'ECONNREFUSED' });
    expect(refused).not.toBeInstanceOf(ApiException);
    const down = watch(kc, '/api/v1/services', {});
    expect(await down.done).toMatchObject({ name: 'FetchError', code: 'ECONNREFUSED' });

    const rvBefore = Number(server.resourceVersion);
    server.create('services', svc('default', 'while-down'));
    await server.start();
    expect(server.url).toBe(urlBefore);
    const list = await core.listServiceForAllNamespaces();
    expect(list.items.map((s) => s.metadata?.name)).toEqual(['kept', 'while-down']);
    expect(Number(list.metadata?.resourceVersion)).toBe(rvBefore + 1);

    const graceful = watch(kc, '/api/v1/services', { resourceVersion: server.resourceVersion });
    await server.waitForWatch('services');
    await server.stop({ graceful: true });
    expect(await graceful.done).toBeNull();
  });

  it('with a token, requests without the bearer get 401 (ApiException, body undefined); the kubeconfig carries it', async () => {
    const server = await startServer({ token: 'sekret' });
    const core = server.kubeConfig().makeApiClient(CoreV1Api);
    await expect(core.listNamespace()).resolves.toMatchObject({ kind: 'NamespaceList' });
    expect(server.requests[0]?.headers['authorization']).toBe('Bearer sekret');

    const anonymous = new FakeKubeApiServer({ token: 'other' });
    api = anonymous; // afterEach stops it; the first server is stopped here
    await server.stop();
    await anonymous.start();
    const kc = anonymous.kubeConfig();
    kc.users[0] = { name: 'fake' }; // no token
    const err = await apiError(kc.makeApiClient(CoreV1Api).listNamespace());
    expect(err.code).toBe(401);
    expect(err.body).toBeUndefined();
  });
});
