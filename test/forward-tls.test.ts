/**
 * forward's DNS over TLS (RFC 7858), `next` and `failfast_all_unhealthy_upstreams`, end to end: the real clusterdns
 * process from a Corefile, queried with dig, forwarding to test servers on loopback. The DoT server's certificate
 * is made here by the openssl CLI (a CA, and a server certificate for dns.test signed by it).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { dig } from './support/dig.js';
import { metrics, value } from './support/http.js';
import { freePort, runCli, startServer, type ServerProcess } from './support/server-process.js';
import { TestUpstream, type UpstreamOptions } from './support/upstream.js';

const run = promisify(execFile);
const CLUSTER = new URL('./fixtures/forward-cluster.yaml', import.meta.url).pathname;
const RECORDS = { 'www.example.test': { A: ['192.0.2.10'], ttl: 300 }, 'a.corp.test': { A: ['198.51.100.1'] } };

let dir: string;
let ca: string;
let cert: { cert: Buffer; key: Buffer };
let clientCa: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clusterdns-dot-'));
  const openssl = (...args: string[]): Promise<unknown> => run('openssl', args, { cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=clusterdns test CA');
  await openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=dns.test');
  await writeFile(join(dir, 'san.ext'), 'subjectAltName=DNS:dns.test\n');
  await openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext');
  // A client certificate from the same CA, for an upstream that asks for one (mutual TLS).
  await openssl('req', ...ec, '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=clusterdns');
  await openssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.pem', '-days', '2');
  ca = join(dir, 'ca.pem');
  cert = { cert: await readFile(join(dir, 'server.pem')), key: await readFile(join(dir, 'server.key')) };
  clientCa = await readFile(ca);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function upstream(options: UpstreamOptions = {}): Promise<TestUpstream> {
  const server = await TestUpstream.start({ records: RECORDS, ...options });
  cleanups.push(() => server.stop());
  return server;
}

/** clusterdns serving `stanzas` (its forward lines and anything else) in the `.` block of a Corefile of its own. */
async function serve(stanzas: string): Promise<ServerProcess & { ask: (name: string) => ReturnType<typeof dig> }> {
  const port = await freePort();
  const corefile = join(dir, `Corefile.${port}`);
  await writeFile(corefile, `.:${port} {\n    bind 127.0.0.1\n    kubernetes cluster.local {\n        manifests ${CLUSTER}\n    }\n${stanzas}\n    prometheus 127.0.0.1:0\n}\n`);
  const server = await startServer([], '127.0.0.1', { corefile });
  cleanups.push(() => server.stop());
  return Object.assign(server, { port, ask: (name: string) => dig(port, [name, 'A', '+time=5']) });
}

const tlsOf = (up: TestUpstream): string => `tls://${up.address}`;

describe('forward to tls:// upstreams (DNS over TLS)', () => {
  it('answers through tls://, verifying the certificate against tls CA for tls_servername; queries and loop probe all over TLS', async () => {
    const up = await upstream({ tls: cert });
    const server = await serve(`    forward . ${tlsOf(up)} {\n        tls ${ca}\n        tls_servername dns.test\n    }`);
    const result = await server.ask('www.example.test.');
    expect(result.status).toBe('NOERROR');
    expect(result.answer).toEqual(['www.example.test. 300 IN A 192.0.2.10']);
    expect(new Set(up.queries.map((query) => query.proto))).toEqual(new Set(['tls']));
    expect(up.queries.some((query) => query.name.endsWith('.loop-probe.clusterdns'))).toBe(true);
    const samples = await metrics(server);
    expect(value(samples, 'coredns_forward_requests_total', { to: tlsOf(up) })).toBe(1);
  });

  it('keeps one TLS connection for many questions, sent together on it, and opens a new one after expire', async () => {
    const up = await upstream({ tls: cert });
    up.delayMs = 100;
    const server = await serve(`    forward . ${tlsOf(up)} {\n        tls ${ca}\n        tls_servername dns.test\n        expire 1s\n    }`);
    const names = Array.from({ length: 6 }, (_, i) => `n${i}.example.test.`);
    // Together: pipelined on the one connection.
    const together = await Promise.all(names.map((name) => server.ask(name)));
    expect(together.map((result) => result.status)).toEqual(names.map(() => 'NXDOMAIN'));
    for (const name of ['www.example.test.', 'a.corp.test.']) expect((await server.ask(name)).status).toBe('NOERROR');
    expect(up.handshakes).toBe(1);
    // Idle for expire (1s): closed by clusterdns; the next question opens a new connection.
    await vi.waitFor(() => expect(up.closedConnections).toBe(1), { timeout: 5000, interval: 50 });
    expect((await server.ask('www.example.test.')).answer).toEqual(['www.example.test. 300 IN A 192.0.2.10']);
    expect(up.handshakes).toBe(2);
  });

  it('asks again on a new connection when the upstream has closed the shared one', async () => {
    const up = await upstream({ tls: cert });
    const server = await serve(`    forward . ${tlsOf(up)} {\n        tls ${ca}\n        tls_servername dns.test\n    }`);
    expect((await server.ask('www.example.test.')).status).toBe('NOERROR');
    up.dropConnections();
    await vi.waitFor(() => expect(up.closedConnections).toBe(1), { timeout: 5000, interval: 20 });
    expect((await server.ask('a.corp.test.')).answer).toEqual(['a.corp.test. 300 IN A 198.51.100.1']);
    expect(up.handshakes).toBe(2);
  });

  it('a certificate that does not name tls_servername fails the try: SERVFAIL, an EDE naming the upstream, one log line', async () => {
    const up = await upstream({ tls: cert });
    const server = await serve(`    forward . ${tlsOf(up)} {\n        tls ${ca}\n        tls_servername wrong.test\n        max_fails 0\n    }`);
    for (const name of ['www.example.test.', 'a.corp.test.']) {
      const result = await server.ask(name);
      expect(result.status).toBe('SERVFAIL');
      expect(result.raw).toContain(`; EDE: 23 (Network Error): (upstream ${tlsOf(up)}: TLS handshake failed (ERR_TLS_CERT_ALTNAME_INVALID))`);
    }
    expect(up.queries).toEqual([]);
    const logged = await server.waitForLog((line) => line.msg === 'TLS handshake with upstream failed');
    expect(logged).toMatchObject({ upstream: tlsOf(up), code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    expect(server.logs.filter((line) => line.msg === 'TLS handshake with upstream failed')).toHaveLength(1);
  });

  it('a certificate from a CA it was not told of fails too (without tls CA, the system roots)', async () => {
    const up = await upstream({ tls: cert });
    const server = await serve(`    forward . ${tlsOf(up)} {\n        tls_servername dns.test\n    }`);
    const result = await server.ask('www.example.test.');
    expect(result.status).toBe('SERVFAIL');
    expect(result.raw).toMatch(new RegExp(`EDE: 23 \\(Network Error\\): \\(upstream ${tlsOf(up).replace(/\./g, '\\.')}: TLS handshake failed \\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\\)`));
  });
});

describe('forward to tls:// upstreams: client certificates and an SNI name per upstream', () => {
  it('tls CERT KEY CA shows the client certificate to an upstream that asks for one; without it the handshake fails', async () => {
    const up = await upstream({ tls: { ...cert, clientCa } });
    const withCert = await serve(`    forward . ${tlsOf(up)} {\n        tls ${join(dir, 'client.pem')} ${join(dir, 'client.key')} ${ca}\n        tls_servername dns.test\n    }`);
    expect((await withCert.ask('www.example.test.')).answer).toEqual(['www.example.test. 300 IN A 192.0.2.10']);
    expect(up.queriesFor('www.example.test').map((query) => query.proto)).toEqual(['tls']);
    const without = await serve(`    forward . ${tlsOf(up)} {\n        tls ${ca}\n        tls_servername dns.test\n        max_fails 0\n    }`);
    const refused = await without.ask('a.corp.test.');
    expect(refused.status).toBe('SERVFAIL');
    expect(refused.raw).toContain(`; EDE: 23 (Network Error): (upstream ${tlsOf(up)}`);
    expect(up.queriesFor('a.corp.test')).toEqual([]);
  });

  it('tls://IP%NAME:PORT verifies that upstream for NAME, without tls_servername; both at once is refused at start', async () => {
    const up = await upstream({ tls: cert });
    const named = `tls://${up.host}%dns.test:${up.port}`;
    const server = await serve(`    forward . ${named} {\n        tls ${ca}\n    }`);
    expect((await server.ask('www.example.test.')).answer).toEqual(['www.example.test. 300 IN A 192.0.2.10']);
    // Another name than the certificate's: the same upstream, refused by the check.
    const wrong = await serve(`    forward . tls://${up.host}%wrong.test:${up.port} {\n        tls ${ca}\n        max_fails 0\n    }`);
    expect((await wrong.ask('a.corp.test.')).raw).toContain('ERR_TLS_CERT_ALTNAME_INVALID');
    const corefile = join(dir, 'Corefile.both');
    await writeFile(corefile, `.:53 {\n    forward . ${named} {\n        tls ${ca}\n        tls_servername dns.test\n    }\n}\n`);
    const refused = await runCli(['-conf', corefile]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`${corefile}:2: plugin "forward": tls_servername cannot go with an upstream naming its own (tls://${up.host}%dns.test)`);
  });

  it('a tls file that cannot be read or is not PEM stops start-up, naming the file and line', async () => {
    const corefile = join(dir, 'Corefile.badtls');
    await writeFile(join(dir, 'notpem.pem'), 'not a certificate\n');
    for (const [files, why] of [[join(dir, 'missing.pem'), `cannot read ${join(dir, 'missing.pem')}: ENOENT`], [`${join(dir, 'notpem.pem')} ${join(dir, 'client.key')}`, `${join(dir, 'notpem.pem')} ${join(dir, 'client.key')}: `]] as const) {
      await writeFile(corefile, `.:53 {\n    forward . tls://127.0.0.1 {\n        tls ${files}\n    }\n}\n`);
      const run = await runCli(['-conf', corefile]);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`${corefile}:3: plugin "forward": option "tls": ${why}`);
    }
  });
});

describe('forward: next RCODE and failfast_all_unhealthy_upstreams', () => {
  it('next NXDOMAIN passes an NXDOMAIN on to the next forward stanza, and only that rcode', async () => {
    const first = await upstream({ records: { 'www.example.test': { A: ['192.0.2.1'] } } });
    const second = await upstream();
    const server = await serve(`    forward . ${first.address} {\n        next NXDOMAIN\n    }\n    forward . ${second.address}`);
    // The first has no a.corp.test: its NXDOMAIN goes on to the second, which has it.
    expect((await server.ask('a.corp.test.')).answer).toEqual(['a.corp.test. 300 IN A 198.51.100.1']);
    expect(first.queriesFor('a.corp.test')).toHaveLength(1);
    // The first's own answer is the answer; the second is not asked.
    expect((await server.ask('www.example.test.')).answer).toEqual(['www.example.test. 300 IN A 192.0.2.1']);
    expect(second.queriesFor('www.example.test')).toEqual([]);
    // SERVFAIL is not in the list: passed back as it is.
    first.behaviour = 'servfail';
    expect((await server.ask('x.corp.test.')).status).toBe('SERVFAIL');
    expect(second.queriesFor('x.corp.test')).toEqual([]);
  });

  it('stanzas in order: a name outside the first FROM goes on to the next; next on the last stanza is warned about', async () => {
    const corp = await upstream();
    const rest = await upstream({ records: { 'a.corp.test': { A: ['192.0.2.99'] } } });
    const server = await serve(`    forward corp.test ${corp.address}\n    forward . ${rest.address} {\n        next NXDOMAIN\n    }`);
    expect((await server.ask('a.corp.test.')).answer).toEqual(['a.corp.test. 300 IN A 198.51.100.1']);
    expect((await server.ask('www.example.test.')).status).toBe('NXDOMAIN');
    expect(corp.queriesFor('www.example.test')).toEqual([]);
    await server.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('next has no effect'));
  });

  it('failfast_all_unhealthy_upstreams: every upstream down, SERVFAIL at once, without asking them', async () => {
    const one = await upstream();
    const two = await upstream();
    one.behaviour = 'silent';
    two.behaviour = 'silent';
    const server = await serve(`    forward . ${one.address} ${two.address} {\n        max_fails 1\n        timeout 200ms\n        health_check 1h\n        failfast_all_unhealthy_upstreams\n    }`);
    // Both time out: both marked down (max_fails 1), and stay down (the probe waits an hour).
    expect((await server.ask('www.example.test.')).status).toBe('SERVFAIL');
    const seen = one.queries.length + two.queries.length;
    const started = Date.now();
    const result = await server.ask('a.corp.test.');
    expect(result.status).toBe('SERVFAIL');
    expect(result.raw).toContain('; EDE: 22 (No Reachable Authority): (every upstream is down (failfast_all_unhealthy_upstreams))');
    expect(Date.now() - started).toBeLessThan(150);
    expect(one.queries.length + two.queries.length).toBe(seen);
    expect(value(await metrics(server), 'coredns_forward_healthcheck_broken_total')).toBe(1);
  });
});
