// --workers / multisocket on the whole process: threads that bind the same addresses with SO_REUSEPORT over one
// API watch. Real dig from ports of its own (the kernel spreads them by source port), the test API server's real
// list and watch, /metrics and /ready as Prometheus and the kubelet read them.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dig } from './support/dig.js';
import { get, metrics, select } from './support/http.js';
import { FakeKubeApiServer, type KubeObject } from './support/k8s-api-server.js';
import { freePort, runCli, startServer, type ServerProcess } from './support/server-process.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clusterdns-workers-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const svc = (name: string, clusterIP: string): KubeObject => ({
  metadata: { name, namespace: 'default' },
  spec: { clusterIP, selector: { app: name }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
});

/** Per thread, the responses it sent, from /metrics. */
async function perThread(server: ServerProcess): Promise<Record<string, number>> {
  return Object.fromEntries(select(await metrics(server), 'clusterdns_thread_responses_total').map((s) => [s.labels.thread, s.value]));
}

describe('--workers: several threads on the same sockets, one watch', () => {
  it('spreads queries over the threads, follows the API server on every one, and sums their metrics', async () => {
    const api = new FakeKubeApiServer();
    await api.start();
    cleanups.push(() => api.stop());
    api.create('namespaces', { metadata: { name: 'default' } });
    api.create('services', svc('web', '10.96.0.10'));
    const dir = await tempDir();
    await writeFile(join(dir, 'kubeconfig'), api.kubeconfigYaml());
    const server = await startServer(['--kubeconfig', join(dir, 'kubeconfig'), '--workers', '2']);
    cleanups.push(() => server.stop());
    await vi.waitFor(async () => expect((await get(server, '/ready')).status).toBe(200), { timeout: 10_000, interval: 50 });

    const QUERIES = 40;
    for (let i = 0; i < QUERIES; i++) expect((await dig(server.port, ['web.default.svc.cluster.local', 'A'])).answer).toEqual(['web.default.svc.cluster.local. 5 IN A 10.96.0.10']);
    const spread = await perThread(server);
    expect(Object.keys(spread).sort()).toEqual(['0', '1']);
    // dig's source ports are random: each thread gets a share (not a fixed one).
    expect(spread['0']).toBeGreaterThan(0);
    expect(spread['1']).toBeGreaterThan(0);
    const requests = select(await metrics(server), 'coredns_dns_requests_total').reduce((sum, s) => sum + s.value, 0);
    expect(requests, 'every thread counted once in the sum').toBe(QUERIES);

    // One change at the API server reaches every thread's copy: no answer gives the old address.
    api.update('services', svc('web', '10.96.0.99'));
    await vi.waitFor(async () => expect((await dig(server.port, ['web.default.svc.cluster.local', 'A'])).answer[0]).toMatch(/10\.96\.0\.99$/), { timeout: 5000, interval: 50 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (let i = 0; i < 20; i++) expect((await dig(server.port, ['web.default.svc.cluster.local', 'A'])).answer[0]).toMatch(/10\.96\.0\.99$/);
    // One watch per kind, not one per thread.
    expect(api.openWatches('services')).toBe(1);

    // /debug/top counts the failures every thread answered, not just the main thread's.
    for (let i = 0; i < 10; i++) expect((await dig(server.port, ['nope.default.svc.cluster.local', 'A'])).status).toBe('NXDOMAIN');
    const top = await (await fetch(`http://${server.http.metrics}/debug/top`)).json() as { failures: number; names: Array<{ name: string; count: number }> };
    expect(top.failures).toBe(10);
    expect(top.names[0]).toMatchObject({ name: 'nope.default.svc.cluster.local.', count: 10 });
  });

  it('multisocket in a Corefile: a reload reaches every thread', async () => {
    const dir = await tempDir();
    const port = await freePort();
    const corefile = (ttl: number): string => `.:${port} {
    bind 127.0.0.1
    multisocket 2
    reload 2s 100ms
    prometheus 127.0.0.1:0
    kubernetes cluster.local {
        manifests ${new URL('../examples/demo-cluster.yaml', import.meta.url).pathname}
        ttl ${ttl}
    }
}
`;
    await writeFile(join(dir, 'Corefile'), corefile(5));
    const server = await startServer([], '127.0.0.1', { corefile: join(dir, 'Corefile') });
    cleanups.push(() => server.stop());
    await writeFile(join(dir, 'Corefile'), corefile(45));
    await vi.waitFor(async () => expect((await dig(port, ['web.default.svc.cluster.local', 'A'])).answer[0]).toMatch(/ 45 IN A /), { timeout: 8000, interval: 100 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const ttls = new Set<string>();
    for (let i = 0; i < 20; i++) ttls.add((await dig(port, ['web.default.svc.cluster.local', 'A'])).answer[0]!.split(' ')[1]!);
    expect([...ttls]).toEqual(['45']);
    const spread = await perThread(server);
    expect(spread['0']! > 0 && spread['1']! > 0, JSON.stringify(spread)).toBe(true);
  });

  it.each([
    ['0 threads', '.:1053 {\n    multisocket 0\n}\n', /Corefile:2: plugin "multisocket": "0" is not a whole number from 1 to 1024/],
    ['two numbers', '.:1053 {\n    multisocket 2\n}\nexample.org:1053 {\n    multisocket 3\n}\n', /plugin "multisocket": server blocks give different numbers \(2, 3\)/],
  ])('refuses %s, naming the place', async (_, text, message) => {
    const dir = await tempDir();
    await writeFile(join(dir, 'Corefile'), text);
    const run = await runCli(['-conf', join(dir, 'Corefile')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
  });
});
