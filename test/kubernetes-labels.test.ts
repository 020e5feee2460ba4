/**
 * The kubernetes plugin's `labels EXPRESSION` (CoreDNS's): only Services, EndpointSlices and Pods whose labels
 * match are served. The whole process with real dig, from a watched cluster (the test API server filters by the
 * labelSelector clusterdns sends, as kube-apiserver does) and from manifest files (clusterdns filters them
 * itself); the selector's own rules as a unit; and the setup's errors.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseLabelSelector } from '../src/source/label-selector.js';
import { dig } from './support/dig.js';
import { FakeKubeApiServer, type KubeObject } from './support/k8s-api-server.js';
import { freePort, runCli, startServer } from './support/server-process.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clusterdns-labels-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A Service and, as the EndpointSlice controller makes it, a slice carrying the Service's labels. */
function service(name: string, clusterIP: string, labels: Record<string, string>, endpoint: string): KubeObject[] {
  return [
    { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default', labels }, spec: { clusterIP, selector: { app: name }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } },
    {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name: `${name}-x1`, namespace: 'default', labels: { ...labels, 'kubernetes.io/service-name': name } },
      addressType: 'IPv4', ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
      endpoints: [{ addresses: [endpoint], conditions: { ready: true } }],
    },
  ];
}

const OBJECTS = [
  ...service('web', '10.96.0.10', { app: 'web', env: 'prod' }, '10.244.0.10'),
  ...service('canary', '10.96.0.11', { app: 'web', env: 'dev' }, '10.244.0.11'),
  ...service('api', '10.96.0.12', { app: 'api' }, '10.244.0.12'),
];
// Written as two words, as users write it: the Corefile splits the selector at its spaces.
const SELECTOR = 'app in (web, api), env!=dev';

async function corefileWith(kubernetesOptions: string): Promise<{ path: string; port: number }> {
  const dir = await tempDir();
  const port = await freePort();
  const path = join(dir, 'Corefile');
  await writeFile(path, `.:${port} {\n    bind 127.0.0.1\n    kubernetes cluster.local {\n        ${kubernetesOptions.replaceAll('\n', '\n        ')}\n    }\n}\n`);
  return { path, port };
}

async function expectServed(port: number): Promise<void> {
  const a = async (name: string): Promise<readonly string[]> => (await dig(port, [`${name}.default.svc.cluster.local`, 'A'])).answer;
  expect(await a('web')).toEqual(['web.default.svc.cluster.local. 5 IN A 10.96.0.10']);
  // api has no env label: `env!=dev` holds for it, as the API server reads it.
  expect(await a('api')).toEqual(['api.default.svc.cluster.local. 5 IN A 10.96.0.12']);
  expect((await dig(port, ['canary.default.svc.cluster.local', 'A'])).status).toBe('NXDOMAIN');
  // The slice went with its service: the endpoint's reverse name is not served either.
  expect((await dig(port, ['11.0.244.10.in-addr.arpa', 'PTR'])).answer).toEqual([]);
}

describe('labels EXPRESSION', () => {
  it('from a watched cluster: the API server filters lists and watches by the selector, a later change included', async () => {
    const api = new FakeKubeApiServer();
    await api.start();
    cleanups.push(() => api.stop());
    api.create('namespaces', { metadata: { name: 'default' } });
    for (const object of OBJECTS) api.create(object.kind === 'Service' ? 'services' : 'endpointslices', object);
    const dir = await tempDir();
    await writeFile(join(dir, 'kubeconfig'), api.kubeconfigYaml());
    const { path, port } = await corefileWith(`kubeconfig ${join(dir, 'kubeconfig')}\nlabels ${SELECTOR}`);
    const server = await startServer([], '127.0.0.1', { corefile: path });
    cleanups.push(() => server.stop());
    await vi.waitFor(async () => expect((await dig(port, ['web.default.svc.cluster.local', 'A'])).status).toBe('NOERROR'), { timeout: 10_000, interval: 100 });
    await expectServed(port);
    const sent = api.requests.filter((request) => request.path.endsWith('/services') || request.path.endsWith('/endpointslices'));
    expect(new Set(sent.map((request) => request.query.labelSelector))).toEqual(new Set(['app in (web,api),env!=dev']));
    // Relabelled at the API server: it leaves the selection, and the watch says so.
    api.update('services', { ...OBJECTS[0]!, metadata: { ...OBJECTS[0]!.metadata, labels: { app: 'web', env: 'dev' } } });
    await vi.waitFor(async () => expect((await dig(port, ['web.default.svc.cluster.local', 'A'])).status).toBe('NXDOMAIN'), { timeout: 5000, interval: 100 });
  });

  it('from manifest files: clusterdns filters them with the API server\'s rules', async () => {
    const dir = await tempDir();
    const manifests = join(dir, 'cluster.json');
    await writeFile(manifests, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }, ...OBJECTS] }));
    const { path, port } = await corefileWith(`manifests ${manifests}\nlabels ${SELECTOR}`);
    const server = await startServer([], '127.0.0.1', { corefile: path });
    cleanups.push(() => server.stop());
    await expectServed(port);
  });

  it.each([
    ['no expression', 'labels', /Corefile:5: plugin "kubernetes": option "labels" wants 1 to any arguments, got 0 \(usage: labels EXPRESSION\)/],
    ['a broken requirement', 'labels app in web', /Corefile:5: plugin "kubernetes": option "labels": "app in web" is not a requirement/],
    ['an empty value in a set', 'labels app in (web,)', /Corefile:5: plugin "kubernetes": option "labels": "app in \(web,\)": an empty value/],
  ])('refuses %s, naming the line', async (_what, option, message) => {
    const { path } = await corefileWith(`manifests /nonexistent\n${option}`);
    const run = await runCli(['-conf', path]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
  });
});

describe('label selectors (src/source/label-selector.ts), as the API server reads them', () => {
  it.each([
    ['app=web', { app: 'web' }, true],
    ['app==web', { app: 'api' }, false],
    ['app!=web', {}, true],
    ['app', { app: '' }, true],
    ['!app', { app: 'web' }, false],
    ['env notin (dev,test)', {}, true],
    ['env in (dev, test)', { env: 'test' }, true],
    ['app.kubernetes.io/name=web, tier', { 'app.kubernetes.io/name': 'web' }, false],
  ] as const)('%s against %j: %s', (text, labels, expected) => {
    expect(parseLabelSelector(text).matches(labels)).toBe(expected);
  });

  it('writes one canonical form for the API server', () => {
    expect(parseLabelSelector(' app in ( web , api ) ,env != dev, !canary,tier').text).toBe('app in (web,api),env!=dev,!canary,tier');
  });

  it.each(['', 'a b', 'app=web,', '-app=web', 'app=web!'])('refuses %j', (text) => {
    expect(() => parseLabelSelector(text)).toThrow();
  });
});
