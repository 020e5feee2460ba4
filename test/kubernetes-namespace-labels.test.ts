/**
 * The kubernetes plugin's `namespace_labels EXPRESSION` (CoreDNS's): only namespaces whose labels match are
 * served, with their Services, EndpointSlices and Pods. The whole process with real dig over the test API server
 * and the real client: a namespace that matches and one that does not, then each relabelled through the watch,
 * the answers following without a list of anything; manifest files; and the setup's errors.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dig } from './support/dig.js';
import { FakeKubeApiServer, type KubeObject } from './support/k8s-api-server.js';
import { freePort, runCli, startServer } from './support/server-process.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clusterdns-nslabels-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const namespace = (name: string, labels: Record<string, string>): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });

/** A Service `web` in `ns` with one ready endpoint (its slice), and a running pod behind it. */
function web(ns: string, clusterIP: string, podIP: string): Array<[ 'services' | 'endpointslices' | 'pods', KubeObject]> {
  return [
    ['services', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: ns }, spec: { clusterIP, selector: { app: 'web' }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } }],
    ['endpointslices', {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name: 'web-x1', namespace: ns, labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4', ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
      endpoints: [{ addresses: [podIP], hostname: 'web-0', conditions: { ready: true } }],
    }],
    ['pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-0', namespace: ns }, status: { phase: 'Running', podIP } }],
  ];
}

async function corefileWith(options: string): Promise<{ path: string; port: number }> {
  const dir = await tempDir();
  const port = await freePort();
  const path = join(dir, 'Corefile');
  await writeFile(path, `.:${port} {\n    bind 127.0.0.1\n    kubernetes cluster.local in-addr.arpa {\n        ${options.replaceAll('\n', '\n        ')}\n    }\n}\n`);
  return { path, port };
}

/** What a client sees of namespace `ns`: its service, endpoint name, reverse name and pod record. */
async function seen(port: number, ns: string, clusterIP: string, podIP: string): Promise<Record<string, string>> {
  const one = async (args: string[]): Promise<string> => {
    const result = await dig(port, args);
    return result.status === 'NOERROR' ? result.answer.join(' | ') || 'NODATA' : result.status;
  };
  const reverse = (ip: string): string => `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  return {
    service: await one([`web.${ns}.svc.cluster.local`, 'A']),
    endpoint: await one([`web-0.web.${ns}.svc.cluster.local`, 'A']),
    namespace: await one([`${ns}.svc.cluster.local`, 'A']),
    ptr: await one([reverse(clusterIP), 'PTR']),
    pod: await one([`${podIP.replaceAll('.', '-')}.${ns}.pod.cluster.local`, 'A']),
  };
}

const served = (ns: string, clusterIP: string, podIP: string): Record<string, string> => ({
  service: `web.${ns}.svc.cluster.local. 5 IN A ${clusterIP}`,
  endpoint: `web-0.web.${ns}.svc.cluster.local. 5 IN A ${podIP}`,
  namespace: 'NODATA',
  ptr: `${clusterIP.split('.').reverse().join('.')}.in-addr.arpa. 5 IN PTR web.${ns}.svc.cluster.local.`,
  pod: `${podIP.replaceAll('.', '-')}.${ns}.pod.cluster.local. 5 IN A ${podIP}`,
});
const hidden = { service: 'NXDOMAIN', endpoint: 'NXDOMAIN', namespace: 'NXDOMAIN', ptr: 'NXDOMAIN', pod: 'NXDOMAIN' };

describe('namespace_labels EXPRESSION', () => {
  it('serves only matching namespaces, and follows a relabelled namespace through the watch without a list', async () => {
    const api = new FakeKubeApiServer();
    await api.start();
    cleanups.push(() => api.stop());
    api.create('namespaces', namespace('team-a', { dns: 'public' }));
    api.create('namespaces', namespace('team-b', { dns: 'private' }));
    api.create('namespaces', namespace('default', { dns: 'public' }));
    for (const [resource, object] of [...web('team-a', '10.96.1.10', '10.244.1.10'), ...web('team-b', '10.96.2.10', '10.244.2.10')]) api.create(resource, object);
    const dir = await tempDir();
    await writeFile(join(dir, 'kubeconfig'), api.kubeconfigYaml());
    // Written with spaces, as users write it: the Corefile splits the selector at them.
    const { path, port } = await corefileWith(`kubeconfig ${join(dir, 'kubeconfig')}\nnamespace_labels dns in (public, shared)\npods verified`);
    const server = await startServer([], '127.0.0.1', { corefile: path });
    cleanups.push(() => server.stop());
    await vi.waitFor(async () => expect((await dig(port, ['web.team-a.svc.cluster.local', 'A'])).status).toBe('NOERROR'), { timeout: 10_000, interval: 100 });

    expect(await seen(port, 'team-a', '10.96.1.10', '10.244.1.10')).toEqual(served('team-a', '10.96.1.10', '10.244.1.10'));
    expect(await seen(port, 'team-b', '10.96.2.10', '10.244.2.10')).toEqual(hidden);
    // The hints of a miss name only what is served: team-a's web, never team-b's.
    const miss = await dig(port, ['web.default.svc.cluster.local', 'A']);
    expect(miss.status).toBe('NXDOMAIN');
    expect(miss.raw).toMatch(/found in "team-a"\)/);
    expect(miss.raw).not.toMatch(/team-b/);

    const lists = (): number => api.requests.filter((request) => request.verb === 'list').length;
    const listed = lists();
    // team-b starts matching: its records come back from what the watch already gave.
    api.update('namespaces', namespace('team-b', { dns: 'shared' }));
    await vi.waitFor(async () => expect((await dig(port, ['web.team-b.svc.cluster.local', 'A'])).status).toBe('NOERROR'), { timeout: 5000, interval: 100 });
    expect(await seen(port, 'team-b', '10.96.2.10', '10.244.2.10')).toEqual(served('team-b', '10.96.2.10', '10.244.2.10'));
    // team-a stops matching: everything of it goes.
    api.update('namespaces', namespace('team-a', { dns: 'private' }));
    await vi.waitFor(async () => expect((await dig(port, ['web.team-a.svc.cluster.local', 'A'])).status).toBe('NXDOMAIN'), { timeout: 5000, interval: 100 });
    expect(await seen(port, 'team-a', '10.96.1.10', '10.244.1.10')).toEqual(hidden);
    // A service added to a namespace that does not match is held, and served once the namespace matches.
    for (const [resource, object] of web('team-a', '10.96.1.10', '10.244.1.10')) api.update(resource, { ...object, metadata: { ...object.metadata, labels: { ...object.metadata.labels, touched: 'yes' } } });
    api.create('services', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'api', namespace: 'team-a' }, spec: { clusterIP: '10.96.1.11', ports: [{ port: 80 }] } });
    api.update('namespaces', namespace('team-a', { dns: 'public' }));
    await vi.waitFor(async () => expect((await dig(port, ['api.team-a.svc.cluster.local', 'A'])).answer).toEqual(['api.team-a.svc.cluster.local. 5 IN A 10.96.1.11']), { timeout: 5000, interval: 100 });
    expect(await seen(port, 'team-a', '10.96.1.10', '10.244.1.10')).toEqual(served('team-a', '10.96.1.10', '10.244.1.10'));
    expect(lists()).toBe(listed);
    // The watches are cluster-wide and unfiltered: the namespaces are matched here, each relabel seen as it is.
    expect(api.requests.filter((request) => request.resource !== undefined).every((request) => request.query.labelSelector === undefined && request.namespace === undefined)).toBe(true);
  });

  it('from manifest files: only matching namespaces and what is in them', async () => {
    const dir = await tempDir();
    const manifests = join(dir, 'cluster.json');
    const objects = [namespace('team-a', { dns: 'public' }), namespace('team-b', { dns: 'private' }),
      ...web('team-a', '10.96.1.10', '10.244.1.10'), ...web('team-b', '10.96.2.10', '10.244.2.10'),
      // In no Namespace of the files: in no namespace that matches.
      ...web('orphan', '10.96.3.10', '10.244.3.10')].map((entry) => (Array.isArray(entry) ? entry[1] : entry));
    await writeFile(manifests, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
    const { path, port } = await corefileWith(`manifests ${manifests}\nnamespace_labels dns=public\npods verified`);
    const server = await startServer([], '127.0.0.1', { corefile: path });
    cleanups.push(() => server.stop());
    expect(await seen(port, 'team-a', '10.96.1.10', '10.244.1.10')).toEqual(served('team-a', '10.96.1.10', '10.244.1.10'));
    expect(await seen(port, 'team-b', '10.96.2.10', '10.244.2.10')).toEqual(hidden);
    expect(await seen(port, 'orphan', '10.96.3.10', '10.244.3.10')).toEqual(hidden);
  });

  it.each([
    ['namespaces beside it (as CoreDNS)', 'namespaces team-a\nnamespace_labels dns=public', /Corefile:3: plugin "kubernetes": namespaces and namespace_labels cannot both be set/],
    ['no expression', 'namespace_labels', /Corefile:5: plugin "kubernetes": option "namespace_labels" wants 1 to any arguments, got 0 \(usage: namespace_labels EXPRESSION\)/],
    ['a broken requirement', 'namespace_labels dns in public', /Corefile:5: plugin "kubernetes": option "namespace_labels": "dns in public" is not a requirement/],
  ])('refuses %s, naming the line', async (_what, options, message) => {
    const { path } = await corefileWith(`kubeconfig /nonexistent\n${options}`);
    const run = await runCli(['-conf', path]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
  });
});
