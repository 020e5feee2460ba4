/**
 * glibc end to end: `getent ahosts` in a pod's network namespace (pod IP 10.244.1.5, a pod-style resolv.conf
 * bind-mounted over /etc/resolv.conf) asks clusterdns at kube-dns's cluster IP in another namespace, across a veth
 * pair (test/support/netns.ts). Each case checks what getent printed and exactly which queries clusterdns
 * received, and that `clusterdns resolve`, run in the same pod with the same resolv.conf, sends the same sequence.
 * Failure replies (SERVFAIL, REFUSED, a dropped AAAA, NODATA, a lone CNAME) come from a scripted server, since
 * clusterdns gives none of them on purpose. External names go through an upstream in the node namespace, with
 * and without search-path completion (--autopath). Needs root, iproute2, util-linux and libc-bin (.ci/run installs them).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Report } from '../src/resolve/index.js';
import { availableOrCiFails } from './support/ci.js';
import { canCreateNetns, clusterdnsArgv, createPodNetwork, parseAhosts, startDnsTestServer, type DnsTestServer, type LoggedQuery, type PodNetwork } from './support/netns.js';
import { startServer, type ServerProcess } from './support/server-process.js';

const FIXTURE = 'test/fixtures/glibc-cluster.yaml';
const DNS_IP = '10.96.0.10';
const SCRIPTED_IP = '10.96.0.11';
const POD_IP = '10.244.1.5';
const SEARCH = 'search default.svc.cluster.local svc.cluster.local cluster.local';
const POD_RESOLV = `${SEARCH}\nnameserver ${DNS_IP}\noptions ndots:5\n`;

const canRun = availableOrCiFails(await canCreateNetns(), 'root with ip, unshare and getent');

/** The names in the order they were first asked: A and AAAA of one name go out together, in either order. */
function names(queries: readonly LoggedQuery[]): string[] {
  return queries.map((q) => q.name).filter((name, i, all) => i === 0 || all[i - 1] !== name);
}

/** Each query as `name TYPE RCODE`, sorted: the same multiset means the same queries, retries included. */
function multiset(queries: readonly LoggedQuery[]): string[] {
  return queries.map((q) => `${q.name} ${q.type} ${q.rcode}`).sort();
}

/** Waits until `count()` has not grown for 50 ms (log lines trail the replies by less), at most 3 s. */
async function settled(count: () => number): Promise<void> {
  let last = -1;
  for (let waited = 0; waited < 3000 && count() !== last; waited += 50) {
    last = count();
    await sleep(50);
  }
}

describe.skipIf(!canRun)('glibc in a pod (root: network and mount namespaces)', () => {
  let net: PodNetwork;
  let server: ServerProcess;

  beforeAll(async () => {
    net = await createPodNetwork(DNS_IP, POD_IP);
    server = await startServer(['--manifests', FIXTURE, '--log-queries'], DNS_IP, { port: 53, netns: net.nodeNs });
  });

  afterAll(async () => {
    try {
      await server?.stop();
    } finally {
      await net?.close();
    }
  });

  /** Queries clusterdns logged from the pod since log line `from`. */
  const received = (from: number): LoggedQuery[] => receivedBy(server, from);
  const receivedBy = (from: ServerProcess, since: number): LoggedQuery[] => from.logs.slice(since)
    .filter((line) => line.part === 'query' && String(line.client).startsWith(`${POD_IP}:`))
    .map((line) => ({ name: String(line.name), type: String(line.type), rcode: String(line.rcode) }));

  async function getent(name: string, resolvConf = POD_RESOLV): Promise<{ code: number | null; addresses: string[]; queries: LoggedQuery[] }> {
    const from = server.logs.length;
    const { code, stdout } = await net.inPod(resolvConf, ['getent', 'ahosts', name]);
    await settled(() => server.logs.length);
    return { code, addresses: parseAhosts(stdout).addresses.sort(), queries: received(from) };
  }

  async function resolve(name: string, resolvConf = POD_RESOLV): Promise<{ code: number | null; report: Report; queries: LoggedQuery[] }> {
    const from = server.logs.length;
    const { code, stdout, stderr } = await net.inPod(resolvConf, clusterdnsArgv('resolve', name, '--json'));
    expect(stderr).toBe('');
    await settled(() => server.logs.length);
    return { code, report: JSON.parse(stdout) as Report, queries: received(from) };
  }

  it('a short service name from its own namespace: one A and one AAAA query, both addresses', async () => {
    const { code, addresses, queries } = await getent('web');
    expect(code).toBe(0);
    expect(addresses).toEqual(['10.96.1.10', 'fd00:10:96::1:10']);
    expect(multiset(queries)).toEqual(['web.default.svc.cluster.local. A NOERROR', 'web.default.svc.cluster.local. AAAA NOERROR']);
  });

  it('<svc>.<ns>: NXDOMAIN under the own namespace first, then svc.<zone> answers', async () => {
    const { code, addresses, queries } = await getent('web.other');
    expect(code).toBe(0);
    expect(addresses).toEqual(['10.96.2.10']);
    expect(names(queries)).toEqual(['web.other.default.svc.cluster.local.', 'web.other.svc.cluster.local.']);
    // An IPv4-only service: AAAA is NODATA, A answers.
    expect(multiset(queries).slice(-2)).toEqual(['web.other.svc.cluster.local. A NOERROR', 'web.other.svc.cluster.local. AAAA NOERROR']);
  });

  it('a full name with 4 dots is below ndots 5: three search domains (6 queries) before it is asked as is', async () => {
    const { code, addresses, queries } = await getent('web.default.svc.cluster.local');
    expect(code).toBe(0);
    expect(addresses).toEqual(['10.96.1.10', 'fd00:10:96::1:10']);
    expect(names(queries)).toEqual([
      'web.default.svc.cluster.local.default.svc.cluster.local.',
      'web.default.svc.cluster.local.svc.cluster.local.',
      'web.default.svc.cluster.local.cluster.local.',
      'web.default.svc.cluster.local.',
    ]);
    expect(queries).toHaveLength(8);
  });

  it('with a trailing dot: asked as is only, 2 queries', async () => {
    const { code, queries } = await getent('web.default.svc.cluster.local.');
    expect(code).toBe(0);
    expect(multiset(queries)).toEqual(['web.default.svc.cluster.local. A NOERROR', 'web.default.svc.cluster.local. AAAA NOERROR']);
  });

  it('a headless service: its ready pods; a StatefulSet pod by hostname', async () => {
    expect((await getent('db')).addresses).toEqual(['10.244.1.20', '10.244.1.21']);
    expect((await getent('db-0.db')).addresses).toEqual(['10.244.1.20']);
  });

  it('a service in another namespace, asked by its short name: exit 2 after the exact sequence glibc sends', async () => {
    const { code, addresses, queries } = await getent('api');
    expect(code).toBe(2);
    expect(addresses).toEqual([]);
    // NXDOMAIN goes on to the next search domain; the name as is is outside the zone, REFUSED, and glibc asks
    // again (attempts:2) because a refusal is a server failure to it.
    expect(queries.map((q) => `${q.name} ${q.rcode}`)).toEqual([
      'api.default.svc.cluster.local. NXDOMAIN', 'api.default.svc.cluster.local. NXDOMAIN',
      'api.svc.cluster.local. NXDOMAIN', 'api.svc.cluster.local. NXDOMAIN',
      'api.cluster.local. NXDOMAIN', 'api.cluster.local. NXDOMAIN',
      'api. REFUSED', 'api. REFUSED', 'api. REFUSED', 'api. REFUSED',
    ]);
  });

  it('a search list longer than the old 6-domain limit is searched to its end (glibc 2.26+)', async () => {
    const long = `${SEARCH} h1.example h2.example h3.example h4.example h5.example\nnameserver ${DNS_IP}\noptions ndots:5\n`;
    const { code, queries } = await getent('nosuch', long);
    expect(code).toBe(2);
    expect(names(queries)).toEqual([
      'nosuch.default.svc.cluster.local.', 'nosuch.svc.cluster.local.', 'nosuch.cluster.local.',
      // The first domain outside the zone is REFUSED, which ends the search list; then the name as is.
      'nosuch.h1.example.', 'nosuch.',
    ]);
    const eight = `search ${['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((label) => `${label}.svc.cluster.local`).join(' ')} svc.cluster.local\nnameserver ${DNS_IP}\noptions ndots:5\n`;
    const { code: found, addresses, queries: walked } = await getent('web.default', eight);
    expect(found).toBe(0);
    expect(addresses).toEqual(['10.96.1.10', 'fd00:10:96::1:10']);
    expect(names(walked)).toHaveLength(8);
    expect(names(walked).at(-1)).toBe('web.default.svc.cluster.local.');
  });

  describe('clusterdns resolve sends what glibc sends', () => {
    for (const name of ['web', 'web.other', 'web.default.svc.cluster.local', 'web.default.svc.cluster.local.', 'db', 'api']) {
      it(name, async () => {
        const glibc = await getent(name);
        const ours = await resolve(name);
        expect(multiset(ours.queries)).toEqual(multiset(glibc.queries));
        expect(ours.report.tries.map((t) => t.name)).toEqual(names(glibc.queries));
        expect(ours.code === 0).toBe(glibc.code === 0);
        expect([...ours.report.addresses].sort()).toEqual(glibc.addresses);
      });
    }
  });

  describe('failures, from a scripted server: glibc and clusterdns resolve agree', () => {
    let scripted: DnsTestServer;
    const resolvConf = `${SEARCH}\nnameserver ${SCRIPTED_IP}\noptions ndots:5 timeout:1 attempts:2\n`;

    beforeAll(async () => {
      await net.addNodeAddress(SCRIPTED_IP);
      scripted = await startDnsTestServer(net.nodeNs, {
        listen: `${SCRIPTED_IP}:53`,
        zone: 'cluster.local',
        records: [
          's.svc.cluster.local. 5 IN A 192.0.2.1',
          'd.svc.cluster.local. 5 IN A 192.0.2.2',
          'n.default.svc.cluster.local. 5 IN TXT nodata-for-addresses',
          'e.default.svc.cluster.local. 5 IN CNAME gone.cluster.local.',
        ],
        rcodes: {
          's.default.svc.cluster.local.': 'SERVFAIL',
          'r.default.svc.cluster.local.': 'REFUSED',
          'd.default.svc.cluster.local. AAAA': 'DROP',
        },
      });
    });

    afterAll(async () => {
      await scripted?.stop();
    });

    const cases: Array<[string, string, { code: number; tried: string[] }]> = [
      ['SERVFAIL is asked again (attempts:2), then the next domain', 's', { code: 0, tried: ['s.default.svc.cluster.local.', 's.svc.cluster.local.'] }],
      ['REFUSED ends the search list; the name as is is still asked', 'r', { code: 2, tried: ['r.default.svc.cluster.local.', 'r.'] }],
      ['a dropped AAAA: the pair again twice, one at a time, then the A reply alone decides', 'd', { code: 0, tried: ['d.default.svc.cluster.local.', 'd.svc.cluster.local.'] }],
      ['NODATA goes on through the list', 'n', { code: 2, tried: ['n.default.svc.cluster.local.', 'n.svc.cluster.local.', 'n.cluster.local.', 'n.'] }],
      ['a lone CNAME is found: the search stops there, without an address', 'e', { code: 2, tried: ['e.default.svc.cluster.local.'] }],
    ];
    for (const [title, name, want] of cases) {
      it(title, async () => {
        const from = scripted.queries.length;
        const glibc = await net.inPod(resolvConf, ['getent', 'ahosts', name]);
        await settled(() => scripted.queries.length);
        const glibcQueries = scripted.queries.slice(from);
        const middle = scripted.queries.length;
        const ours = await net.inPod(resolvConf, clusterdnsArgv('resolve', name, '--json'));
        await settled(() => scripted.queries.length);
        const ourQueries = scripted.queries.slice(middle);

        expect(glibc.code).toBe(want.code);
        expect(names(glibcQueries)).toEqual(want.tried);
        expect(multiset(ourQueries)).toEqual(multiset(glibcQueries));
        const report = JSON.parse(ours.stdout) as Report;
        expect(report.tries.map((t) => t.name)).toEqual(want.tried);
        expect(ours.code).toBe(want.code === 0 ? 0 : 1);
      });
    }
  });

  describe('names outside the cluster zone, through an upstream in the node namespace', () => {
    const FORWARDING_IP = '10.96.0.12';
    const AUTOPATH_IP = '10.96.0.13';
    let upstream: DnsTestServer;
    let forwarding: ServerProcess;
    let autopath: ServerProcess;
    let dir: string;

    beforeAll(async () => {
      await net.addNodeAddress(FORWARDING_IP);
      await net.addNodeAddress(AUTOPATH_IP);
      upstream = await startDnsTestServer(net.nodeNs, { listen: '127.0.0.1:5301', zone: 'example.test', records: ['www.example.test. 60 IN A 192.0.2.80'] });
      // The node's resolv.conf, for the host search domains: none here.
      dir = await mkdtemp(join(tmpdir(), 'clusterdns-glibc-'));
      await writeFile(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
      const common = ['--manifests', FIXTURE, '--log-queries', '--upstream', '127.0.0.1:5301', '--resolv-conf', join(dir, 'resolv.conf')];
      forwarding = await startServer(common, FORWARDING_IP, { port: 53, netns: net.nodeNs });
      autopath = await startServer([...common, '--autopath'], AUTOPATH_IP, { port: 53, netns: net.nodeNs });
    });

    afterAll(async () => {
      await autopath?.stop();
      await forwarding?.stop();
      await upstream?.stop();
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    });

    const podResolvConf = (ip: string): string => `${SEARCH}\nnameserver ${ip}\noptions ndots:5\n`;

    it('without completion, an external name costs 4 names × (A, AAAA) before its answer', async () => {
      const from = forwarding.logs.length;
      const { code, stdout } = await net.inPod(podResolvConf(FORWARDING_IP), ['getent', 'ahosts', 'www.example.test']);
      await settled(() => forwarding.logs.length);
      const queries = receivedBy(forwarding, from);
      expect(code).toBe(0);
      expect(parseAhosts(stdout).addresses).toEqual(['192.0.2.80']);
      expect(names(queries)).toEqual([
        'www.example.test.default.svc.cluster.local.',
        'www.example.test.svc.cluster.local.',
        'www.example.test.cluster.local.',
        'www.example.test.',
      ]);
      expect(queries).toHaveLength(8);
    });

    it('with --autopath, an external name costs one A and one AAAA query, and clusterdns resolve sees the same', async () => {
      const from = autopath.logs.length;
      const { code, stdout } = await net.inPod(podResolvConf(AUTOPATH_IP), ['getent', 'ahosts', 'www.example.test']);
      await settled(() => autopath.logs.length);
      const queries = receivedBy(autopath, from);
      expect(code).toBe(0);
      expect(parseAhosts(stdout).addresses).toEqual(['192.0.2.80']);
      expect(multiset(queries)).toEqual([
        'www.example.test.default.svc.cluster.local. A NOERROR',
        'www.example.test.default.svc.cluster.local. AAAA NOERROR',
      ]);

      const middle = autopath.logs.length;
      const ours = await net.inPod(podResolvConf(AUTOPATH_IP), clusterdnsArgv('resolve', 'www.example.test', '--json'));
      await settled(() => autopath.logs.length);
      expect(multiset(receivedBy(autopath, middle))).toEqual(multiset(queries));
      const report = JSON.parse(ours.stdout) as Report;
      expect(report.tries.map((t) => t.name)).toEqual(['www.example.test.default.svc.cluster.local.']);
      expect(report.addresses).toEqual(['192.0.2.80']);
    });
  });
});
