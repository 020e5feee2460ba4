// Extended DNS Errors (RFC 8914) on the whole process: `clusterdns -conf Corefile` (dist/cli.js, a real child
// process) serving test/fixtures/ede-cluster.yaml, asked by real `dig` (which sends EDNS by default and prints an
// EDE as `; EDE: 0 (Other): (text)`). Each row is what a person debugging a Service sees; a client without OPT
// (`dig +noedns`) gets the same answer and no EDE.
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { encodeEde } from '../src/wire/index.js';
import { dig, type DigResult } from './support/dig.js';
import { get, metrics, select } from './support/http.js';
import { FakeKubeApiServer } from './support/k8s-api-server.js';
import { freePort, runCli, startServer, type ServerProcess } from './support/server-process.js';
import { TestUpstream } from './support/upstream.js';

const CLUSTER = new URL('./fixtures/ede-cluster.yaml', import.meta.url).pathname;

/** The EDE lines dig printed, without the `; EDE: ` in front. */
function ede(result: DigResult): string[] {
  return [...result.raw.matchAll(/^; EDE: (.*)$/gm)].map((match) => match[1]!);
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clusterdns-ede-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A Corefile serving the fixture cluster on a free loopback port, with `options` inside the kubernetes block. */
async function corefile(dir: string, options = '', extra = ''): Promise<string> {
  const file = join(dir, 'Corefile');
  await writeFile(file, `.:${await freePort()} {
    bind 127.0.0.1
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        manifests ${CLUSTER}
        pods verified
        ${options}
    }
    ${extra}
}
`);
  return file;
}

async function serve(options = '', extra = ''): Promise<ServerProcess> {
  const server = await startServer([], '127.0.0.1', { corefile: await corefile(await tempDir(), options, extra) });
  cleanups.push(() => server.stop());
  return server;
}

const SVC = 'svc.cluster.local.';

/** name, type → status and the EDE dig shows. */
const CLUSTER_ZONE: ReadonlyArray<readonly [string, string, string, string | undefined]> = [
  // The wrong namespace: where the service does live.
  [`cart.default.${SVC}`, 'A', 'NXDOMAIN', '0 (Other): (no service "cart" in namespace "default"; found in "shop", "staging")'],
  // A name nowhere at all.
  [`nothing.default.${SVC}`, 'A', 'NXDOMAIN', '0 (Other): (no service "nothing" in namespace "default")'],
  // A misspelt namespace, one swap from an existing one; and one far from every namespace.
  [`cart.defualt.${SVC}`, 'A', 'NXDOMAIN', '0 (Other): (namespace "defualt" does not exist (did you mean "default"?))'],
  [`defualt.${SVC}`, 'AAAA', 'NXDOMAIN', '0 (Other): (namespace "defualt" does not exist (did you mean "default"?))'],
  [`cart.production.${SVC}`, 'A', 'NXDOMAIN', '0 (Other): (namespace "production" does not exist)'],
  // A headless service whose pods are all failing readiness (spec §2.4.1: NXDOMAIN).
  [`db.default.${SVC}`, 'A', 'NXDOMAIN', '0 (Other): (headless service "db": 0 of 3 endpoints ready)'],
  [`db-0.db.default.${SVC}`, 'A', 'NXDOMAIN', '0 (Other): (headless service "db": 0 of 3 endpoints ready)'],
  // Endpoint names: unknown, and known but not ready; an unknown port.
  [`web-7.web.default.${SVC}`, 'A', 'NXDOMAIN', '0 (Other): (service "web" has no endpoint named "web-7")'],
  [`web-1.web.default.${SVC}`, 'A', 'NXDOMAIN', '0 (Other): (endpoint "web-1" of service "web" is not ready)'],
  [`_grpc._tcp.web.default.${SVC}`, 'SRV', 'NXDOMAIN', '0 (Other): (service "web" has no port "_grpc._tcp")'],
  // pods verified: an address no pod of the namespace has.
  ['10-244-9-8.default.pod.cluster.local.', 'A', 'NXDOMAIN', '0 (Other): (no pod with IP 10.244.9.8 in namespace "default" (pods verified))'],
  ['10-244-9-9.default.pod.cluster.local.', 'A', 'NOERROR', undefined],
  ['client.default.pod.cluster.local.', 'A', 'NXDOMAIN', '0 (Other): ("client" is not a dashed IP address)'],
  // The VIP exists whether or not pods do (spec), but a connection to it will fail.
  [`orders.default.${SVC}`, 'A', 'NOERROR', '0 (Other): (service "orders" has no ready endpoints: connections to 10.96.200.20 will fail)'],
  [`_http._tcp.orders.default.${SVC}`, 'SRV', 'NOERROR', '0 (Other): (service "orders" has no ready endpoints: connections to 10.96.200.20 will fail)'],
  // Healthy names, NODATA and names outside svc/pod say nothing.
  [`cart.shop.${SVC}`, 'A', 'NOERROR', undefined],
  [`web-0.web.default.${SVC}`, 'A', 'NOERROR', undefined],
  [`orders.default.${SVC}`, 'TXT', 'NOERROR', undefined],
  ['example.org.cluster.local.', 'A', 'NXDOMAIN', undefined],
  ['20.200.96.10.in-addr.arpa.', 'PTR', 'NOERROR', undefined],
];

describe('the cluster zone explains its answers', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer([], '127.0.0.1', { corefile: await corefile(await mkdtemp(join(tmpdir(), 'clusterdns-ede-'))) });
  });
  afterAll(async () => {
    await server.stop();
  });

  it.each(CLUSTER_ZONE)('%s %s: %s with EDE %s', async (name, type, status, text) => {
    const result = await dig(server.port, [name, type]);
    expect(result.status).toBe(status);
    expect(ede(result)).toEqual(text === undefined ? [] : [text]);
    if (status === 'NOERROR' && type !== 'TXT') expect(result.answer.length).toBeGreaterThan(0);
  });

  it('gives a client without OPT (dig +noedns) the same answers and no EDE', async () => {
    for (const [name, type, status] of CLUSTER_ZONE) {
      const result = await dig(server.port, [name, type, '+noedns']);
      expect(result.status).toBe(status);
      expect(result.raw).not.toContain('OPT PSEUDOSECTION');
      expect(ede(result)).toEqual([]);
    }
  });

  it('leaves the EDE out, never a record, when a UDP reply has no room for it: no TC', async () => {
    // +ignore: dig shows the UDP reply itself, not a TCP retry of it.
    const tight = await dig(server.port, [`wide.default.${SVC}`, 'SRV', '+bufsize=512', '+ignore']);
    expect(tight.flags).not.toContain('tc');
    expect(tight.answer).toHaveLength(8);
    expect(tight.additional).toHaveLength(1);
    expect(ede(tight)).toEqual([]);
    const roomy = await dig(server.port, [`wide.default.${SVC}`, 'SRV']);
    expect(roomy.answer).toHaveLength(8);
    expect(ede(roomy)).toEqual(['0 (Other): (service "wide" has no ready endpoints: connections to 10.96.200.30 will fail)']);
  });

  it('says the same over TCP', async () => {
    expect(ede(await dig(server.port, [`cart.default.${SVC}`, 'A', '+tcp']))).toEqual([
      '0 (Other): (no service "cart" in namespace "default"; found in "shop", "staging")',
    ]);
  });
});

/** clusterdns_dns_extended_errors_total for one INFO-CODE, summed over listeners. */
async function edeCount(server: ServerProcess, code: string): Promise<number> {
  return select(await metrics(server), 'clusterdns_dns_extended_errors_total', { code }).reduce((sum, sample) => sum + sample.value, 0);
}

describe('clusterdns_dns_extended_errors_total', () => {
  it('counts the EDE options sent, by INFO-CODE; none for clients without OPT', async () => {
    const server = await serve('', 'prometheus 127.0.0.1:0');
    await dig(server.port, [`cart.default.${SVC}`]);
    await dig(server.port, [`db.default.${SVC}`, 'A', '+tcp']);
    await dig(server.port, [`cart.default.${SVC}`, 'A', '+noedns']);
    await dig(server.port, [`cart.shop.${SVC}`]);
    await dig(server.port, ['www.example.test.']);
    expect(await edeCount(server, '0')).toBe(2);
    expect(await edeCount(server, '20')).toBe(1);
    expect(select(await metrics(server), 'clusterdns_dns_extended_errors_total').map((sample) => sample.labels.code).sort()).toEqual(['0', '20']);
  });
});

describe('while the API server is unreachable', () => {
  /** Per thread, the responses it sent, from /metrics. */
  async function perThread(server: ServerProcess): Promise<Record<string, number>> {
    return Object.fromEntries(select(await metrics(server), 'clusterdns_thread_responses_total').map((s) => [s.labels.thread, s.value]));
  }
  const AGE = /^0 \(Other\): \(state from the Kubernetes API as of (\d+) s ago\)$/;
  const age = (result: DigResult): number | undefined => {
    const seconds = AGE.exec(ede(result).at(-1) ?? '')?.[1];
    return seconds === undefined ? undefined : Number(seconds);
  };

  it.each([
    ['one thread', []],
    ['--workers 2', ['--workers', '2']],
  ] as const)('%s: every answer keeps its records and says how old they are, the age growing, until the API is back', async (_, args) => {
    const api = new FakeKubeApiServer();
    await api.start();
    cleanups.push(() => api.stop());
    api.create('namespaces', { metadata: { name: 'default' } });
    const service = (name: string, clusterIP: string) => ({
      metadata: { name, namespace: 'default' },
      spec: { clusterIP, selector: { app: name }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
    });
    api.create('services', service('web', '10.96.0.10'));
    api.create('services', service('orders', '10.96.0.20'));
    api.create('endpointslices', {
      metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4', endpoints: [{ addresses: ['10.244.0.10'], conditions: { ready: true } }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    });
    const dir = await tempDir();
    await writeFile(join(dir, 'kubeconfig'), api.kubeconfigYaml());
    const server = await startServer(['--kubeconfig', join(dir, 'kubeconfig'), ...args]);
    cleanups.push(() => server.stop());
    await vi.waitFor(async () => expect((await get(server, '/ready')).status).toBe(200), { timeout: 10_000, interval: 50 });
    const WEB = `web.default.${SVC}`;
    const ORDERS = `orders.default.${SVC}`;
    const NO_ENDPOINTS = '0 (Other): (service "orders" has no ready endpoints: connections to 10.96.0.20 will fail)';
    const before = await dig(server.port, [WEB]);
    expect(before.answer).toEqual([`${WEB} 5 IN A 10.96.0.10`]);
    expect(ede(before)).toEqual([]);

    await api.stop();
    const down = await vi.waitFor(async () => {
      const result = await dig(server.port, [WEB]);
      expect(age(result)).toBeDefined();
      return result;
    }, { timeout: 10_000, interval: 100 });
    expect(down.status).toBe('NOERROR');
    expect(down.answer).toEqual(before.answer);
    expect(ede(down)).toEqual([expect.stringMatching(AGE)]);
    const first = age(down)!;
    expect(first).toBeLessThanOrEqual(2);
    // The age counts up from when the API server was lost.
    await vi.waitFor(async () => expect(age(await dig(server.port, [WEB]))).toBeGreaterThan(first), { timeout: 5_000, interval: 250 });

    // Every thread says the same (dig's source ports spread the queries over them).
    const spread = await perThread(server);
    for (let i = 0; i < 16; i++) {
      const result = await dig(server.port, [WEB]);
      expect(result.answer).toEqual(before.answer);
      expect(ede(result)).toEqual([expect.stringMatching(AGE)]);
    }
    const after = await perThread(server);
    for (const thread of Object.keys(after)) expect(after[thread]! - (spread[thread] ?? 0), `thread ${thread} answered some`).toBeGreaterThan(0);
    expect(Object.keys(after)).toHaveLength(args.length === 0 ? 1 : 2);

    // A more specific text stays, first; NXDOMAIN says it too; over TCP too.
    expect(ede(await dig(server.port, [ORDERS]))).toEqual([NO_ENDPOINTS, expect.stringMatching(AGE)]);
    const missing = await dig(server.port, [`cart.default.${SVC}`, 'A', '+tcp']);
    expect(missing.status).toBe('NXDOMAIN');
    expect(ede(missing)).toEqual(['0 (Other): (no service "cart" in namespace "default")', expect.stringMatching(AGE)]);
    // A client without OPT: the same answer, no OPT record at all.
    const plain = await dig(server.port, [WEB, 'A', '+noedns']);
    expect(plain.answer).toEqual(before.answer);
    expect(plain.raw).not.toMatch(/OPT PSEUDOSECTION/);
    // Counted by INFO-CODE, every option sent: 1 + 2, none for the client without OPT.
    const counted = await edeCount(server, '0');
    await dig(server.port, [WEB]);
    await dig(server.port, [WEB, 'A', '+noedns']);
    await dig(server.port, [ORDERS]);
    expect(await edeCount(server, '0')).toBe(counted + 3);

    await api.start();
    await vi.waitFor(async () => expect(ede(await dig(server.port, [WEB]))).toEqual([]), { timeout: 5_000, interval: 50 });
    for (let i = 0; i < 16; i++) expect(ede(await dig(server.port, [WEB]))).toEqual([]);
    expect(ede(await dig(server.port, [ORDERS]))).toEqual([NO_ENDPOINTS]);
  }, 40_000);
});

describe('pods disabled', () => {
  it('says pod records are off', async () => {
    const server = await startServer(['--manifests', CLUSTER, '--pods', 'disabled']);
    cleanups.push(() => server.stop());
    const result = await dig(server.port, ['10-244-9-9.default.pod.cluster.local.']);
    expect(result.status).toBe('NXDOMAIN');
    expect(ede(result)).toEqual(['0 (Other): (pod records are disabled (pods disabled))']);
  });
});

describe('ede_hints', () => {
  it('local: no other namespace is named, the rest is still said', async () => {
    const server = await serve('ede_hints local');
    expect(ede(await dig(server.port, [`cart.default.${SVC}`]))).toEqual(['0 (Other): (no service "cart" in namespace "default")']);
    expect(ede(await dig(server.port, [`cart.defualt.${SVC}`]))).toEqual(['0 (Other): (namespace "defualt" does not exist)']);
    expect(ede(await dig(server.port, [`db.default.${SVC}`]))).toEqual(['0 (Other): (headless service "db": 0 of 3 endpoints ready)']);
  });

  it('off: no texts at all', async () => {
    const server = await serve('ede_hints off');
    for (const name of [`cart.default.${SVC}`, `db.default.${SVC}`, `orders.default.${SVC}`]) {
      const result = await dig(server.port, [name]);
      expect(result.status).toBe(name.startsWith('orders') ? 'NOERROR' : 'NXDOMAIN');
      expect(ede(result)).toEqual([]);
    }
  });

  it('anything else stops start-up with an error naming the file and line', async () => {
    const dir = await tempDir();
    const file = await corefile(dir, 'ede_hints none');
    const { code, stderr } = await runCli(['-conf', file]);
    expect(code).not.toBe(0);
    expect(stderr).toContain(`${file}:6`);
    expect(stderr).toMatch(/"none" is not one of all, local, off/);
  });
});

describe('before the first sync', () => {
  it('SERVFAIL says Not Ready (14) and how long it has waited', async () => {
    const api = new FakeKubeApiServer();
    await api.start();
    cleanups.push(() => api.stop());
    api.create('namespaces', { metadata: { name: 'default' } });
    api.failAll(503, { resource: 'endpointslices', verb: 'list' });
    const dir = await tempDir();
    await writeFile(join(dir, 'kubeconfig'), api.kubeconfigYaml());
    const server = await startServer(['--kubeconfig', join(dir, 'kubeconfig')]);
    cleanups.push(() => server.stop());
    await api.waitForRequests((r) => r.resource === 'endpointslices' && r.verb === 'list', { count: 1 });

    const first = await dig(server.port, [`web.default.${SVC}`]);
    expect(first.status).toBe('SERVFAIL');
    expect(ede(first)).toEqual([expect.stringMatching(/^14 \(Not Ready\): \(not yet synced with the Kubernetes API; waiting for \d+ s\)$/)]);
    // The count goes up with the wait.
    const seconds = Number(/waiting for (\d+) s/.exec(ede(first)[0]!)![1]);
    await vi.waitFor(async () => {
      const later = ede(await dig(server.port, [`web.default.${SVC}`]))[0] ?? '';
      expect(Number(/waiting for (\d+) s/.exec(later)?.[1])).toBeGreaterThan(seconds);
    }, { timeout: 5_000, interval: 250 });
    expect(ede(await dig(server.port, [`web.default.${SVC}`, '+noedns']))).toEqual([]);

    api.clearFaults();
    await vi.waitFor(async () => expect((await get(server, '/ready')).status).toBe(200), { timeout: 10_000, interval: 50 });
    const after = await dig(server.port, [`web.default.${SVC}`]);
    expect(after.status).toBe('NXDOMAIN');
    expect(ede(after)).toEqual(['0 (Other): (no service "web" in namespace "default")']);
  });
});

/**
 * An upstream that answers every query with `rcode` and an OPT record holding `options` (EDE and a cookie), the
 * way a validating resolver explains its SERVFAIL.
 */
async function explainingUpstream(rcode: number, options: Buffer): Promise<string> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  cleanups.push(() => new Promise<void>((done) => socket.close(() => done())));
  socket.on('message', (query, peer) => {
    let end = 12;
    while (query[end] !== 0) end += query[end]! + 1;
    end += 5;
    const reply = Buffer.from(query.subarray(0, end));
    reply.writeUInt16BE(0x8180 | rcode, 2);
    reply.writeUInt16BE(0, 6);
    reply.writeUInt16BE(0, 8);
    reply.writeUInt16BE(1, 10);
    const opt = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, options.length >> 8, options.length & 0xff]);
    socket.send(Buffer.concat([reply, opt, options]), peer.port, peer.address);
  });
  return `127.0.0.1:${socket.address().port}`;
}

describe('forwarding explains its failures', () => {
  async function forwarding(args: readonly string[]): Promise<ServerProcess> {
    const server = await startServer(['--manifests', CLUSTER, ...args]);
    cleanups.push(() => server.stop());
    return server;
  }

  async function upstream(): Promise<TestUpstream> {
    const up = await TestUpstream.start({ records: { 'www.example.test': { A: ['192.0.2.10'], ttl: 1 } } });
    cleanups.push(() => up.stop());
    return up;
  }

  it('SERVFAIL after a timeout: 22 (No Reachable Authority) naming the upstream', async () => {
    const silent = await upstream();
    silent.behaviour = 'silent';
    const server = await forwarding(['--upstream', silent.address, '--upstream-timeout', '1']);
    const result = await dig(server.port, ['www.example.test.', 'A', '+time=5']);
    expect(result.status).toBe('SERVFAIL');
    expect(ede(result)).toEqual([`22 (No Reachable Authority): (upstream ${silent.address}: no answer (timeout))`]);
    expect(ede(await dig(server.port, ['www.example.test.', 'A', '+time=5', '+noedns']))).toEqual([]);
    expect(await edeCount(server, '22')).toBe(1);
  });

  it('SERVFAIL after a refusal: 23 (Network Error), and how many upstreams were tried', async () => {
    const silent = await upstream();
    silent.behaviour = 'silent';
    // Nothing listens there: the kernel answers with ICMP port unreachable.
    const refusing = `127.0.0.1:${await freePort()}`;
    const server = await forwarding(['--upstream', silent.address, '--upstream', refusing, '--forward-policy', 'sequential', '--upstream-timeout', '1']);
    const result = await dig(server.port, ['www.example.test.', 'A', '+time=5']);
    expect(result.status).toBe('SERVFAIL');
    expect(ede(result)).toEqual([`23 (Network Error): (upstream ${refusing}: connection refused; 2 upstreams tried)`]);
  });

  it('passes an upstream\'s own EDE through, without its other options', async () => {
    const cookie = Buffer.from([0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
    const address = await explainingUpstream(2, Buffer.concat([cookie, encodeEde(6, 'signature of example.test. does not validate')]));
    const server = await forwarding(['--upstream', address]);
    const result = await dig(server.port, ['www.example.test.']);
    expect(result.status).toBe('SERVFAIL');
    expect(ede(result)).toEqual(['6 (DNSSEC Bogus): (signature of example.test. does not validate)']);
    expect(result.raw).not.toContain('COOKIE');
  });

  it('serve-stale: the expired answer says 3 (Stale Answer), followed by why the upstream failed', async () => {
    const up = await upstream();
    const server = await forwarding(['--upstream', up.address, '--serve-stale', '60', '--upstream-timeout', '1']);
    expect((await dig(server.port, ['www.example.test.'])).answer).toEqual(['www.example.test. 1 IN A 192.0.2.10']);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    up.behaviour = 'silent';
    const stale = await dig(server.port, ['www.example.test.', 'A', '+time=5']);
    expect(stale.status).toBe('NOERROR');
    expect(stale.answer).toEqual(['www.example.test. 30 IN A 192.0.2.10']);
    expect(ede(stale)).toEqual([
      expect.stringMatching(/^3 \(Stale Answer\): \(expired [0-9] s ago; the upstreams did not answer\)$/),
      `22 (No Reachable Authority): (upstream ${up.address}: no answer (timeout))`,
    ]);
  });

  it('REFUSED past max_concurrent says so', async () => {
    const silent = await upstream();
    silent.behaviour = 'silent';
    const server = await serve('', `forward . ${silent.address} {
        max_concurrent 1
        timeout 2s
    }`);
    const waiting = dig(server.port, ['one.example.test.', 'A', '+time=5']);
    await vi.waitFor(() => expect(silent.queriesFor('one.example.test')).toHaveLength(1), { timeout: 2_000, interval: 20 });
    const refused = await dig(server.port, ['two.example.test.']);
    expect(refused.status).toBe('REFUSED');
    expect(ede(refused)).toEqual(['0 (Other): (too many queries in flight upstream (max_concurrent 1))']);
    expect((await waiting).status).toBe('SERVFAIL');
  });

  it('REFUSED for a name no zone here holds and nothing forwards: 20 (Not Authoritative)', async () => {
    const server = await forwarding([]);
    const result = await dig(server.port, ['www.example.test.']);
    expect(result.status).toBe('REFUSED');
    expect(ede(result)).toEqual(['20 (Not Authoritative): (no zone served here holds this name, and nothing forwards it)']);
  });
});
