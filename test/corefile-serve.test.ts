// The whole process as a kubeadm cluster runs CoreDNS: `clusterdns -conf Corefile` (dist/cli.js, a real child
// process) with the Corefiles clusters ship, watching the test API server over real list and watch, forwarding to a
// loopback upstream named by a resolv.conf of the test's own, asked by real `dig`. Each Corefile is used as written
// but for its addresses: ports become free loopback ones and /etc/resolv.conf a file naming the test's upstream.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dig, lines } from './support/dig.js';
import { get, metrics, select, value } from './support/http.js';
import { FakeKubeApiServer, type KubeObject } from './support/k8s-api-server.js';
import { freePort, runCli, startServer, type ServerProcess } from './support/server-process.js';
import { TestUpstream } from './support/upstream.js';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/corefiles/${name}`, import.meta.url), 'utf8');
/** kubeadm's Corefile (v1.28 on; kind renders the same), as the `coredns` ConfigMap of kube-system holds it. */
const KUBEADM = fixture('kubeadm-cache-disable.Corefile');
/** The older kubeadm Corefile: `cache 30` caches the cluster zone too (clusterdns never does: it is live). */
const KUBEADM_OLD = fixture('kubeadm.Corefile');

/** A customised one: a stub domain for the company's own DNS, in a block of its own. */
const STUB = `${KUBEADM}
corp.example:53 {
    errors
    cache 30
    forward . CORP_UPSTREAM
}
`;

/** Corefiles clusters ship: each must serve the cluster zone and forward the rest as written. */
const SHIPPED = ['kubeadm.Corefile', 'kubeadm-cache-disable.Corefile', 'coredns-deployment.Corefile', 'helm-default.Corefile', 'talos.Corefile', 'rke2.Corefile', 'openshift.Corefile'];

const ns = (name: string): KubeObject => ({ metadata: { name } });
const svc = (name: string, clusterIP: string): KubeObject => ({
  metadata: { name, namespace: 'default' },
  spec: { clusterIP, selector: { app: name }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
});
const slice = (name: string, service: string, ips: string[]): KubeObject => ({
  metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': service } },
  addressType: 'IPv4',
  endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true } })),
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
});

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Running {
  readonly server: ServerProcess;
  readonly upstream: TestUpstream;
  readonly corp: TestUpstream;
}

/**
 * The API server with `web` (ClusterIP) and `db` (headless, three pods), an upstream on port 53 of a loopback
 * address of its own (resolv.conf names no port; a random one, so runs side by side do not collide), and the
 * Corefile.
 */
async function start(corefile: string): Promise<Running> {
  const api = new FakeKubeApiServer();
  await api.start();
  cleanups.push(() => api.stop());
  api.create('namespaces', ns('default'));
  api.create('services', svc('web', '10.96.0.10'));
  api.create('endpointslices', slice('web-1', 'web', ['10.244.0.10']));
  api.create('services', { metadata: { name: 'db', namespace: 'default' }, spec: { clusterIP: 'None', selector: { app: 'db' } } });
  api.create('endpointslices', slice('db-1', 'db', ['10.244.1.1', '10.244.1.2', '10.244.1.3']));
  const nameserver = `127.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}.${2 + Math.floor(Math.random() * 250)}`;
  const upstream = await TestUpstream.start({ host: nameserver, port: 53, records: { 'www.example.test': { A: ['192.0.2.10'], ttl: 300 } } });
  cleanups.push(() => upstream.stop());
  const corp = await TestUpstream.start({ records: { 'intranet.corp.example': { A: ['198.51.100.7'], ttl: 300 } } });
  cleanups.push(() => corp.stop());

  const dir = await mkdtemp(join(tmpdir(), 'clusterdns-corefile-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'kubeconfig'), api.kubeconfigYaml());
  await writeFile(join(dir, 'resolv.conf'), `nameserver ${nameserver}\n`);
  const port = await freePort();
  const text = corefile
    // kubeadm's blocks are on :53, OpenShift's on :5353.
    .replaceAll(/:(53|5353) \{/g, `:${port} {`)
    // Spacing as each distribution writes it (RKE2's chart leaves runs of spaces and trailing ones).
    .replace(/health\s+\{/, 'health 127.0.0.1:0 {')
    .replace(/^(\s*)ready\s*$/m, '$1ready 127.0.0.1:0')
    .replace(/prometheus\s+\S+/, 'prometheus 127.0.0.1:0')
    .replace('1.2.3.4', corp.address)
    .replaceAll(/forward\s+\.\s+\/etc\/resolv\.conf/g, `forward . ${join(dir, 'resolv.conf')}`)
    .replace('CORP_UPSTREAM', corp.address)
    // The Corefile binds every address as kubeadm's does; the test's blocks listen on loopback only.
    .replaceAll(/^(\S.*\{)\s*$/gm, '$1\n    bind 127.0.0.1');
  await writeFile(join(dir, 'Corefile'), text);
  const server = await startServer([], '127.0.0.1', { corefile: join(dir, 'Corefile'), env: { KUBECONFIG: join(dir, 'kubeconfig') } });
  cleanups.push(() => server.stop());
  await vi.waitFor(async () => expect((await get(server, '/ready')).status).toBe(200), { timeout: 10_000, interval: 50 });
  return { server, upstream, corp };
}

describe('clusterdns -conf: the Corefiles clusters ship, as written', () => {
  it.each(SHIPPED)('%s: the cluster zone, and other names through resolv.conf\'s nameserver', async (name) => {
    const { server, upstream } = await start(fixture(name));
    // The kubernetes stanza's ttl, CoreDNS's 5 when it gives none.
    const ttl = /^\s*ttl (\d+)$/m.exec(fixture(name))?.[1] ?? '5';
    expect((await dig(server.port, ['web.default.svc.cluster.local', 'A'])).answer).toEqual(lines(`web.default.svc.cluster.local. ${ttl} IN A 10.96.0.10`));
    expect((await dig(server.port, ['www.example.test', 'A'])).answer.at(-1)).toMatch(/IN A 192\.0\.2\.10$/);
    expect(upstream.queriesFor('www.example.test')).toHaveLength(1);
  });

  it('openshift.Corefile: its hostname.bind block answers CH TXT with the host name; other CH names go upstream', async () => {
    const { server, upstream } = await start(fixture('openshift.Corefile'));
    const id = await dig(server.port, ['-c', 'CH', '-t', 'TXT', 'hostname.bind']);
    expect(id.answer).toEqual([`hostname.bind. 0 CH TXT "${hostname()}"`]);
    // version.bind is not one of the block's zones: the . block forwards it, as CoreDNS's would.
    await dig(server.port, ['-c', 'CH', '-t', 'TXT', 'version.bind']);
    expect(upstream.queriesFor('version.bind')).toHaveLength(1);
  });
});

describe('clusterdns -conf: the kubeadm Corefile', () => {
  it('answers the cluster zone with its ttl, authoritatively, and spreads a headless service over its pods', async () => {
    const { server } = await start(KUBEADM);
    const web = await dig(server.port, ['web.default.svc.cluster.local', 'A']);
    expect(web.status).toBe('NOERROR');
    expect(web.flags).toContain('aa');
    expect(web.answer).toEqual(lines('web.default.svc.cluster.local. 30 IN A 10.96.0.10'));
    // loadbalance: the three addresses, each first in turn.
    const firsts = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const db = await dig(server.port, ['db.default.svc.cluster.local', 'A']);
      expect(db.answer.map((line) => line.split(' ').at(-1)).sort()).toEqual(['10.244.1.1', '10.244.1.2', '10.244.1.3']);
      firsts.add(db.answer[0]!);
    }
    expect(firsts.size).toBe(3);
    expect((await dig(server.port, ['nope.default.svc.cluster.local', 'A'])).status).toBe('NXDOMAIN');
  });

  it('forwards other names to resolv.conf\'s nameserver and answers a repeat from the cache; the cluster zone never from it', async () => {
    const { server, upstream } = await start(KUBEADM);
    for (let i = 0; i < 2; i++) expect((await dig(server.port, ['www.example.test', 'A'])).answer.at(-1)).toMatch(/IN A 192\.0\.2\.10$/);
    expect(upstream.queriesFor('www.example.test')).toHaveLength(1);
    // A reverse name of an address that is not a cluster IP falls through to the upstream; a cluster IP's does not.
    expect((await dig(server.port, ['-x', '10.96.0.10'])).answer).toEqual(lines('10.0.96.10.in-addr.arpa. 30 IN PTR web.default.svc.cluster.local.'));
    await dig(server.port, ['-x', '192.0.2.99']);
    expect(upstream.queriesFor('99.2.0.192.in-addr.arpa')).toHaveLength(1);
    await dig(server.port, ['web.default.svc.cluster.local', 'A']);
    const samples = await metrics(server);
    const responses = (plugin: string): number => select(samples, 'coredns_dns_responses_total', { rcode: 'NOERROR', plugin }).reduce((sum, s) => sum + s.value, 0);
    expect(responses('kubernetes')).toBe(2);
    expect(responses('cache')).toBe(1);
    expect(responses('forward')).toBe(1);
    expect(value(samples, 'coredns_cache_hits_total', { type: 'success' })).toBe(1);
    expect((await get(server, '/health')).status).toBe(200);
  });

  it('the older kubeadm Corefile (cache 30 over everything) still answers endpoint changes at once', async () => {
    const { server } = await start(KUBEADM_OLD);
    expect((await dig(server.port, ['web.default.svc.cluster.local', 'A'])).answer).toEqual(lines('web.default.svc.cluster.local. 30 IN A 10.96.0.10'));
    const samples = await metrics(server);
    expect(value(samples, 'coredns_cache_requests_total')).toBe(0);
  });

  it('sends names under a stub-domain block to its own server only', async () => {
    const { server, upstream, corp } = await start(STUB);
    expect((await dig(server.port, ['intranet.corp.example', 'A'])).answer).toEqual(lines('intranet.corp.example. 30 IN A 198.51.100.7'));
    expect(corp.queriesFor('intranet.corp.example')).toHaveLength(1);
    expect(upstream.queriesFor('intranet.corp.example')).toHaveLength(0);
    expect((await dig(server.port, ['web.default.svc.cluster.local', 'A'])).status).toBe('NOERROR');
    // Each block's queries are counted under its own zone, as CoreDNS labels them.
    const requests = select(await metrics(server), 'coredns_dns_requests_total');
    const byZone = (zone: string): number => requests.filter((s) => s.labels.zone === zone).reduce((sum, s) => sum + s.value, 0);
    expect(byZone('corp.example.')).toBe(1);
    expect(byZone('.')).toBeGreaterThanOrEqual(1);
  });
});

describe('clusterdns -conf: a Corefile that cannot be served stops start-up naming file and line', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['an unknown plugin', '.:1053 {\n    whoareyou\n}\n', /Corefile:2: unknown plugin "whoareyou" \(supported: .*kubernetes.*\)/],
    ['an unknown option', '.:1053 {\n    cache 30 {\n        sucess 100\n    }\n}\n', /Corefile:3: plugin "cache": unknown option "sucess" \(supported: success, denial/],
    ['an option clusterdns cannot honour', '.:1053 {\n    kubernetes cluster.local {\n        multicluster clusterset.local\n    }\n}\n', /Corefile:3: plugin "kubernetes": option "multicluster" is not supported by clusterdns/],
    ['a bad value', '.:1053 {\n    forward . 10.0.0.1 {\n        policy fastest\n    }\n}\n', /Corefile:3: plugin "forward": option "policy": "fastest" is not one of random, round_robin, sequential/],
    ['autopath without kubernetes', '.:1053 {\n    autopath @kubernetes\n}\n', /Corefile:2: plugin "autopath": needs the kubernetes plugin in the same server block/],
    ['a plugin twice', '.:1053 {\n    cache\n    cache 10\n}\n', /Corefile:3: plugin "cache": appears again in this server block \(first at line 2\)/],
    ['a zone served twice', '.:1053 {\n    errors\n}\n.:1053 {\n    errors\n}\n', /Corefile:4: zone \. on port 1053 is already served by the block at .*Corefile:1$/m],
  ];
  it.each(cases)('%s', async (_what, text, message) => {
    const dir = await mkdtemp(join(tmpdir(), 'clusterdns-corefile-bad-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'Corefile'), text);
    const { code, stderr } = await runCli(['-conf', join(dir, 'Corefile')]);
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(message);
  });

  it('refuses flags beside a Corefile, and CoreDNS flags other than -conf', async () => {
    const flags = await runCli(['serve', '--conf', '/nonexistent/Corefile', '--ttl', '30']);
    expect(flags.code).toBe(2);
    expect(flags.stderr).toMatch(/--ttl cannot go with --conf \/nonexistent\/Corefile/);
    const other = await runCli(['-dns.port', '1053']);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/only -conf COREFILE is taken/);
  });
});
