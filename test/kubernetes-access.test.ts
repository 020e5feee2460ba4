/**
 * How the kubernetes plugin reaches the API server, as CoreDNS's options say: `kubeconfig KUBECONFIG [CONTEXT]`
 * (a kubeconfig with two contexts for two test API servers: the named one is watched) and `tls CERT KEY CACERT`
 * with `endpoint` (the test API server over HTTPS, requiring a client certificate signed by its CA; the CA, the
 * server and the client certificates are made here by the openssl CLI). The whole process with real dig; and the
 * start-up errors, naming the file and line, the missing file or the unknown context.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { dig } from './support/dig.js';
import { FakeKubeApiServer } from './support/k8s-api-server.js';
import { freePort, runCli, startServer } from './support/server-process.js';

const run = promisify(execFile);

let dir: string;
const file = (name: string): string => join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clusterdns-k8s-access-'));
  const openssl = (...args: string[]): Promise<unknown> => run('openssl', args, { cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'other-ca']) {
    await openssl('req', '-x509', ...ec, '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=clusterdns test ${ca}`);
  }
  const sign = async (name: string, subject: string, ext: string, ca = 'ca'): Promise<void> => {
    await openssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
    await writeFile(file(`${name}.ext`), ext);
    await openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
  };
  await sign('server', '/CN=kube-apiserver', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await sign('client', '/CN=system:clusterdns', 'extendedKeyUsage=clientAuth\n');
  await sign('stranger', '/CN=stranger', 'extendedKeyUsage=clientAuth\n', 'other-ca');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A test API server with one namespace and one service `web` at `clusterIP`. */
async function apiServer(clusterIP: string, options: ConstructorParameters<typeof FakeKubeApiServer>[0] = {}): Promise<FakeKubeApiServer> {
  const api = new FakeKubeApiServer(options);
  await api.start();
  cleanups.push(() => api.stop());
  api.create('namespaces', { metadata: { name: 'default' } });
  api.create('services', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP, ports: [{ port: 80 }] } });
  return api;
}

let corefiles = 0;
/** A Corefile whose kubernetes stanza has `options` (from its line 4 on); `after` is the block's next lines. */
async function corefileWith(options: string, after = ''): Promise<{ path: string; port: number }> {
  const port = await freePort();
  const path = file(`Corefile-${++corefiles}`);
  await writeFile(path, `.:${port} {\n    bind 127.0.0.1\n    kubernetes cluster.local {\n        ${options.replaceAll('\n', '\n        ')}\n    }\n${after}}\n`);
  return { path, port };
}

async function answerOf(port: number): Promise<readonly string[]> {
  let answer: readonly string[] = [];
  await vi.waitFor(async () => {
    const result = await dig(port, ['web.default.svc.cluster.local', 'A']);
    expect(result.status).toBe('NOERROR');
    answer = result.answer;
  }, { timeout: 10_000, interval: 100 });
  return answer;
}

/** A kubeconfig with contexts `one` (current) and `two`, each its own cluster. */
function twoContexts(one: string, two: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- { name: one, cluster: { server: "${one}", insecure-skip-tls-verify: true } }`,
    `- { name: two, cluster: { server: "${two}", insecure-skip-tls-verify: true } }`,
    'users:',
    '- { name: anyone, user: {} }',
    'contexts:',
    '- { name: one, context: { cluster: one, user: anyone } }',
    '- { name: two, context: { cluster: two, user: anyone } }',
    'current-context: one',
    '',
  ].join('\n');
}

describe('kubeconfig KUBECONFIG [CONTEXT]', () => {
  it('watches the cluster of the named context, not the current one', async () => {
    const one = await apiServer('10.96.0.1');
    const two = await apiServer('10.96.0.2');
    await writeFile(file('two-contexts'), twoContexts(one.url, two.url));
    const { path, port } = await corefileWith(`kubeconfig ${file('two-contexts')} two`);
    const server = await startServer([], '127.0.0.1', { corefile: path });
    cleanups.push(() => server.stop());
    expect(await answerOf(port)).toEqual(['web.default.svc.cluster.local. 5 IN A 10.96.0.2']);
    expect(one.requests).toEqual([]);
  });

  it('without a CONTEXT, the current context', async () => {
    const one = await apiServer('10.96.0.1');
    // The other context points nowhere: were it used, nothing would be answered.
    await writeFile(file('current-context'), twoContexts(one.url, 'http://127.0.0.1:1'));
    const { path, port } = await corefileWith(`kubeconfig ${file('current-context')}`);
    const server = await startServer([], '127.0.0.1', { corefile: path });
    cleanups.push(() => server.stop());
    expect(await answerOf(port)).toEqual(['web.default.svc.cluster.local. 5 IN A 10.96.0.1']);
  });

  it('refuses to start with a context the kubeconfig does not have, listing those it has', async () => {
    await writeFile(file('unknown-context'), twoContexts('http://127.0.0.1:1', 'http://127.0.0.1:1'));
    const { path } = await corefileWith(`kubeconfig ${file('unknown-context')} three`);
    const result = await runCli(['-conf', path]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`kubeconfig from --kubeconfig ${file('unknown-context')}: no context "three" (its contexts: "one", "two")`);
  });
});

describe('tls CERT KEY CACERT', () => {
  const tlsServer = async (): Promise<FakeKubeApiServer> => apiServer('10.96.0.3', {
    tls: { cert: await readFile(file('server.pem')), key: await readFile(file('server.key')), ca: await readFile(file('ca.pem')) },
  });

  it('connects to an https endpoint with the client certificate, verifying the server against the CA', async () => {
    const api = await tlsServer();
    const { path, port } = await corefileWith(`endpoint ${api.url}\ntls ${file('client.pem')} ${file('client.key')} ${file('ca.pem')}`);
    const server = await startServer([], '127.0.0.1', { corefile: path });
    cleanups.push(() => server.stop());
    expect(await answerOf(port)).toEqual(['web.default.svc.cluster.local. 5 IN A 10.96.0.3']);
    const watched = api.requests.filter((request) => request.resource !== undefined);
    expect(watched.length).toBeGreaterThan(0);
    expect(new Set(watched.map((request) => request.clientCN))).toEqual(new Set(['system:clusterdns']));
  });

  it('a client certificate the API server does not trust gets nothing: SERVFAIL and not ready', async () => {
    const api = await tlsServer();
    const readyAt = await freePort();
    const { path, port } = await corefileWith(`endpoint ${api.url}\ntls ${file('stranger.pem')} ${file('stranger.key')} ${file('ca.pem')}`, `    ready 127.0.0.1:${readyAt}\n`);
    const server = await startServer([], '127.0.0.1', { corefile: path });
    cleanups.push(() => server.stop());
    let ready = '';
    await vi.waitFor(async () => {
      const response = await fetch(`http://127.0.0.1:${readyAt}/ready`);
      ready = `${response.status} ${await response.text()}`;
      expect(ready).toMatch(/^503 waiting for the first sync of namespaces \(list: .+\)/);
    }, { timeout: 10_000, interval: 100 });
    expect((await dig(port, ['web.default.svc.cluster.local', 'A'])).status).toBe('SERVFAIL');
    expect(api.requests).toEqual([]);
  });

  it.each([
    ['a missing key file', (endpoint: string) => `endpoint ${endpoint}\ntls ${file('client.pem')} ${file('nope.key')} ${file('ca.pem')}`,
      () => new RegExp(`Corefile-\\d+:5: plugin "kubernetes": option "tls": cannot read the client key ${file('nope.key')}: ENOENT`)],
    ['a key that is not the certificate\'s', (endpoint: string) => `endpoint ${endpoint}\ntls ${file('client.pem')} ${file('stranger.key')} ${file('ca.pem')}`,
      () => /Corefile-\d+:5: plugin "kubernetes": option "tls": .*client\.pem .*stranger\.key .*ca\.pem: .*key values mismatch/],
    ['two files instead of three', (endpoint: string) => `endpoint ${endpoint}\ntls ${file('client.pem')} ${file('client.key')}`,
      () => /Corefile-\d+:5: plugin "kubernetes": option "tls" wants 3 arguments, got 2 \(usage: tls CERT KEY CACERT\)/],
    ['no endpoint (CoreDNS would ignore it)', () => `tls ${file('client.pem')} ${file('client.key')} ${file('ca.pem')}`,
      () => /Corefile-\d+:4: plugin "kubernetes": option "tls" is for connecting to an endpoint URL: add endpoint, or leave tls out/],
    ['an http:// endpoint', () => `endpoint http://127.0.0.1:1\ntls ${file('client.pem')} ${file('client.key')} ${file('ca.pem')}`,
      () => /Corefile-\d+:5: plugin "kubernetes": option "tls" needs an https:\/\/ endpoint, not http:\/\/127\.0\.0\.1:1/],
    ['a kubeconfig beside it', (endpoint: string) => `kubeconfig ${file('two-contexts')}\nendpoint ${endpoint}\ntls ${file('client.pem')} ${file('client.key')} ${file('ca.pem')}`,
      () => /Corefile-\d+:6: plugin "kubernetes": option "tls" cannot go with kubeconfig/],
  ])('refuses %s, naming the line', async (_what, options, message) => {
    const { path } = await corefileWith(options('https://127.0.0.1:1'));
    const result = await runCli(['-conf', path]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message());
  });
});
