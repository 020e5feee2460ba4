/**
 * Server-side search-path completion (--autopath), through the real process and dig. The client sends from a
 * pod's address: the fixture's pods have loopback addresses (127.0.0.11 in default, 127.0.0.12 in other), so
 * `dig -b` makes a query come from a pod without network namespaces (glibc.test.ts does it with real ones).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig, type DigResult } from './support/dig.js';
import { metrics, select, value } from './support/http.js';
import { startServer, type ServerProcess } from './support/server-process.js';
import { TestUpstream } from './support/upstream.js';

const CLUSTER = new URL('./fixtures/forward-cluster.yaml', import.meta.url).pathname;
const POD_IN_DEFAULT = '127.0.0.11';
const POD_IN_OTHER = '127.0.0.12';

let dir: string;
let upstream: TestUpstream;
let server: ServerProcess;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clusterdns-autopath-'));
  // The node's resolv.conf: its search line is what the kubelet appends to every pod's search path.
  const resolvConf = join(dir, 'resolv.conf');
  await writeFile(resolvConf, 'nameserver 127.0.0.1\nsearch corp.test\n');
  upstream = await TestUpstream.start({
    records: {
      'www.example.test': { A: ['192.0.2.10'], ttl: 300 },
      'wiki.corp.test': { A: ['198.51.100.7'], ttl: 300 },
    },
  });
  server = await startServer(['--manifests', CLUSTER, '--autopath', '--resolv-conf', resolvConf, '--upstream', upstream.address]);
});

afterAll(async () => {
  await server?.stop();
  await upstream?.stop();
  await rm(dir, { recursive: true, force: true });
});

const from = (client: string, name: string, type = 'A'): Promise<DigResult> => dig(server.port, ['-b', client, name, type]);

describe('--autopath', () => {
  it('completes a short name of another namespace (`api.other` from default) in one round trip', async () => {
    const result = await from(POD_IN_DEFAULT, 'api.other.default.svc.cluster.local.');
    expect(result.status).toBe('NOERROR');
    expect(result.answer).toEqual([
      'api.other.default.svc.cluster.local. 5 IN CNAME api.other.svc.cluster.local.',
      'api.other.svc.cluster.local. 5 IN A 10.96.0.30',
    ]);
    // The answer says which search-path name it is (the asked one was the first; this, the second).
    expect(result.raw).toMatch(/^; EDE: 0 \(Other\): \(autopath: "api\.other\.svc\.cluster\.local\." answered \(search path entry 2\)\)$/m);
  });

  it('a completed answer keeps what the found answer says of itself, before which search-path name it was', async () => {
    const result = await from(POD_IN_DEFAULT, 'cart.other.default.svc.cluster.local.');
    expect(result.answer).toEqual([
      'cart.other.default.svc.cluster.local. 5 IN CNAME cart.other.svc.cluster.local.',
      'cart.other.svc.cluster.local. 5 IN A 10.96.0.40',
    ]);
    expect(result.raw.match(/^; EDE: .*$/gm)).toEqual([
      '; EDE: 0 (Other): (service "cart" has no ready endpoints: connections to 10.96.0.40 will fail)',
      '; EDE: 0 (Other): (autopath: "cart.other.svc.cluster.local." answered (search path entry 2))',
    ]);
  });

  it('completes an external name through the host search domain and then the name as it is', async () => {
    const before = upstream.names().length;
    const viaHostDomain = await from(POD_IN_DEFAULT, 'wiki.default.svc.cluster.local.');
    expect(viaHostDomain.answer).toEqual([
      'wiki.default.svc.cluster.local. 5 IN CNAME wiki.corp.test.',
      'wiki.corp.test. 300 IN A 198.51.100.7',
    ]);
    const external = await from(POD_IN_DEFAULT, 'www.example.test.default.svc.cluster.local.');
    expect(external.answer).toEqual([
      'www.example.test.default.svc.cluster.local. 5 IN CNAME www.example.test.',
      'www.example.test. 300 IN A 192.0.2.10',
    ]);
    // The walk asked the upstream for the host-domain candidate, then the name itself; cluster names never.
    expect(upstream.names().slice(before)).toEqual(['wiki.corp.test', 'www.example.test.corp.test', 'www.example.test']);
  });

  it('answers a name that exists as it is, with no CNAME', async () => {
    expect((await from(POD_IN_DEFAULT, 'web.default.svc.cluster.local.')).answer).toEqual(['web.default.svc.cluster.local. 5 IN A 10.96.0.20']);
  });

  it('answers NXDOMAIN for the asked name when no candidate exists', async () => {
    const result = await from(POD_IN_DEFAULT, 'nosuch.default.svc.cluster.local.');
    expect(result.status).toBe('NXDOMAIN');
    expect(result.answer).toEqual([]);
    expect(result.authority[0]).toMatch(/^cluster\.local\. 5 IN SOA /);
  });

  it('gives plain answers to a client that is not a pod, and to a pod asking under another namespace', async () => {
    expect((await from('127.0.0.1', 'api.other.default.svc.cluster.local.')).status).toBe('NXDOMAIN');
    // 127.0.0.12 is a pod of `other`: `default` is not its first search domain.
    expect((await from(POD_IN_OTHER, 'api.other.default.svc.cluster.local.')).status).toBe('NXDOMAIN');
    expect((await from(POD_IN_OTHER, 'web.other.svc.cluster.local.')).status).toBe('NXDOMAIN');
  });

  it('falls back to the plain answer when a candidate fails upstream', async () => {
    upstream.behaviour = 'servfail';
    const before = upstream.names().length;
    try {
      expect((await from(POD_IN_DEFAULT, 'down.example.test.default.svc.cluster.local.')).status).toBe('NXDOMAIN');
      // The walk reached the upstream's first candidate, which failed, and stopped there.
      expect(upstream.names().slice(before)).toEqual(['down.example.test.corp.test']);
    } finally {
      upstream.behaviour = 'answer';
    }
  });

  it('counts completions in coredns_autopath_success_count_total, and labels only completed answers autopath', async () => {
    const responses = async (plugin: string): Promise<number> =>
      select(await metrics(server), 'coredns_dns_responses_total', { rcode: 'NOERROR', plugin }).reduce((sum, sample) => sum + sample.value, 0);
    const before = value(await metrics(server), 'coredns_autopath_success_count_total') ?? 0;
    const [completedBefore, clusterBefore] = [await responses('autopath'), await responses('kubernetes')];
    await from(POD_IN_DEFAULT, 'api.other.default.svc.cluster.local.');
    await from(POD_IN_DEFAULT, 'web.default.svc.cluster.local.');
    expect(value(await metrics(server), 'coredns_autopath_success_count_total')).toBe(before + 1);
    expect(await responses('autopath')).toBe(completedBefore + 1);
    expect(await responses('kubernetes')).toBe(clusterBefore + 1);
  });
});
