/**
 * Forwarding, end to end: the real clusterdns process forwards to test DNS servers on loopback (never the
 * machine's resolver) and is queried with dig. Covers failover, timeouts, a refusing upstream, TC → TCP, replies that must be
 * ignored (garbage, wrong ID, wrong question), all upstreams down, the concurrency cap, coalescing, a loop back
 * to clusterdns, stub domains, ExternalName chasing, reverse fallthrough, the cache as a client sees it and
 * serve-stale. The cache's rules with a stepped clock are in cache.test.ts.
 */
import { createSocket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dig, type DigResult } from './support/dig.js';
import { get, metrics, value } from './support/http.js';
import { freePort, runCli, startServer, type ServerProcess } from './support/server-process.js';
import { TestUpstream } from './support/upstream.js';

const CLUSTER = new URL('./fixtures/forward-cluster.yaml', import.meta.url).pathname;
const RECORDS = {
  'www.example.test': { A: ['192.0.2.10'], AAAA: ['2001:db8::10'], ttl: 300 },
  'short.example.test': { A: ['192.0.2.11'], ttl: 1 },
  'alias.example.test': { CNAME: 'www.example.test', ttl: 300 },
  'a.corp.test': { A: ['198.51.100.1'] },
};

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function upstream(records: Record<string, object> = RECORDS): Promise<TestUpstream> {
  const server = await TestUpstream.start({ records });
  cleanups.push(() => server.stop());
  return server;
}

async function serve(args: string[]): Promise<ServerProcess> {
  const server = await startServer(['--manifests', CLUSTER, ...args]);
  cleanups.push(() => server.stop());
  return server;
}

const ask = (server: ServerProcess, name: string, type = 'A', ...flags: string[]): Promise<DigResult> => dig(server.port, [name, type, ...flags]);

/** dig's "Query time": from its send to the reply, without dig's own start-up. */
const queryMs = (result: DigResult): number => Number(/;; Query time: (\d+) msec/.exec(result.raw)![1]);

/** A loopback UDP port nothing listens on: the kernel answers a datagram to it with ICMP port unreachable. */
async function closedUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

describe('forwarding: answers and the cache as a client sees them', () => {
  it('forwards a name outside the zone, sets RA not AA, and answers a repeat from the cache with a lower TTL', async () => {
    const up = await upstream();
    const server = await serve(['--upstream', up.address]);
    const first = await ask(server, 'WWW.example.test.');
    expect(first.status).toBe('NOERROR');
    expect(first.answer).toEqual(['WWW.example.test. 300 IN A 192.0.2.10']);
    expect(first.flags).toContain('ra');
    expect(first.flags).not.toContain('aa');
    expect(up.queriesFor('www.example.test')).toHaveLength(1);

    await new Promise((resolve) => setTimeout(resolve, 1100));
    const second = await ask(server, 'www.example.test.');
    expect(second.answer[0]).toMatch(/^www\.example\.test\. 29[89] IN A 192\.0\.2\.10$/);
    expect(up.queriesFor('www.example.test')).toHaveLength(1);

    const samples = await metrics(server);
    expect(value(samples, 'coredns_forward_requests_total', { to: up.address })).toBe(1);
    expect(value(samples, 'coredns_cache_hits_total', { type: 'success' })).toBe(1);
    expect(value(samples, 'coredns_cache_misses_total')).toBe(1);
    expect(value(samples, 'coredns_cache_entries', { type: 'success' })).toBe(1);
  });

  it('passes NXDOMAIN through with its SOA, caches it (RFC 2308), and keeps the cluster zone its own', async () => {
    const up = await upstream();
    const server = await serve(['--upstream', up.address]);
    const missing = await ask(server, 'nothing.example.test.');
    expect(missing.status).toBe('NXDOMAIN');
    expect(missing.authority[0]).toMatch(/^test\. 60 IN SOA ns\.test\. hostmaster\.test\. 1 3600 600 86400 60$/);
    await ask(server, 'nothing.example.test.');
    expect(up.queriesFor('nothing.example.test')).toHaveLength(1);

    // Cluster names never reach the upstream, even ones that do not exist.
    expect((await ask(server, 'web.default.svc.cluster.local.')).answer).toEqual(['web.default.svc.cluster.local. 5 IN A 10.96.0.20']);
    expect((await ask(server, 'nope.default.svc.cluster.local.')).status).toBe('NXDOMAIN');
    expect(up.queries.filter((query) => query.name.endsWith('cluster.local'))).toEqual([]);
  });

  it('retries a truncated UDP answer over TCP', async () => {
    const up = await upstream();
    up.behaviour = 'truncate';
    const server = await serve(['--upstream', up.address]);
    const result = await ask(server, 'www.example.test.', 'AAAA');
    expect(result.answer).toEqual(['www.example.test. 300 IN AAAA 2001:db8::10']);
    expect(up.queriesFor('www.example.test').map((query) => query.proto)).toEqual(['udp', 'tcp']);
  });

  it('force_tcp in a Corefile: questions and health probes go over TCP only', async () => {
    const up = await upstream();
    const dir = await mkdtemp(join(tmpdir(), 'clusterdns-force-tcp-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const port = await freePort();
    const corefile = join(dir, 'Corefile');
    await writeFile(corefile, `.:${port} {\n    bind 127.0.0.1\n    kubernetes cluster.local {\n        manifests ${CLUSTER}\n    }\n    forward . ${up.address} {\n        force_tcp\n        max_fails 1\n        timeout 200ms\n        health_check 100ms\n    }\n}\n`);
    const server = await startServer([], '127.0.0.1', { corefile });
    cleanups.push(() => server.stop());
    const result = await dig(port, ['www.example.test.', 'A']);
    expect(result.answer).toEqual(['www.example.test. 300 IN A 192.0.2.10']);
    expect(up.queriesFor('www.example.test').map((query) => query.proto)).toEqual(['tcp']);
    // Marked down by one silent try, the upstream is probed until it answers: the probes are TCP too.
    up.behaviour = 'silent';
    expect((await dig(port, ['slow.example.test.', 'A'])).status).toBe('SERVFAIL');
    up.behaviour = 'answer';
    // The probe is `. NS` (type 2).
    await vi.waitFor(() => expect(up.queries.filter((query) => query.type === 2).length).toBeGreaterThan(0), { timeout: 5000, interval: 50 });
    expect(new Set(up.queries.map((query) => query.proto))).toEqual(new Set(['tcp']));
  });

  it('chases an ExternalName service through the upstream: the CNAME and the target addresses in one answer', async () => {
    const up = await upstream();
    const server = await serve(['--upstream', up.address]);
    const result = await ask(server, 'ext.default.svc.cluster.local.');
    expect(result.status).toBe('NOERROR');
    expect(result.answer).toEqual([
      'ext.default.svc.cluster.local. 5 IN CNAME www.example.test.',
      'www.example.test. 300 IN A 192.0.2.10',
    ]);
  });

  it('sends reverse names of addresses that are not cluster IPs upstream, and answers cluster IPs itself', async () => {
    const up = await upstream();
    const server = await serve(['--upstream', up.address]);
    expect((await ask(server, '-x', '192.0.2.10')).status).toBe('NXDOMAIN');
    expect(up.queriesFor('10.2.0.192.in-addr.arpa')).toHaveLength(1);
    expect((await ask(server, '-x', '10.96.0.20')).answer).toEqual(['20.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local.']);
    expect(up.queriesFor('20.0.96.10.in-addr.arpa')).toHaveLength(0);
  });

  it('with --upstream none: REFUSED outside the zones, NXDOMAIN for reverse names that are not cluster IPs', async () => {
    const server = await serve(['--upstream', 'none']);
    expect((await ask(server, 'www.example.test.')).status).toBe('REFUSED');
    expect((await ask(server, '-x', '192.0.2.10')).status).toBe('NXDOMAIN');
  });

  it('sends names under a stub domain to its own servers only', async () => {
    const general = await upstream();
    const corp = await upstream();
    const server = await serve(['--upstream', general.address, '--stub-domain', `corp.test=${corp.address}`]);
    expect((await ask(server, 'a.corp.test.')).answer).toEqual(['a.corp.test. 300 IN A 198.51.100.1']);
    expect((await ask(server, 'www.example.test.')).answer).toEqual(['www.example.test. 300 IN A 192.0.2.10']);
    expect(corp.names()).toEqual(['a.corp.test']);
    expect(general.queriesFor('a.corp.test')).toEqual([]);
  });
});

describe('forwarding: failures', () => {
  it('fails over from a silent upstream, marks it down after --max-fails, and brings it back when it answers', async () => {
    const dead = await upstream();
    const live = await upstream();
    dead.behaviour = 'silent';
    const server = await serve(['--upstream', dead.address, '--upstream', live.address, '--forward-policy', 'sequential', '--upstream-timeout', '1', '--max-fails', '2']);
    for (const name of ['www.example.test.', 'alias.example.test.']) {
      const result = await ask(server, name, 'A', '+time=5');
      expect(result.answer.at(-1)).toBe('www.example.test. 300 IN A 192.0.2.10');
    }
    // Two failures in a row: down. The next name goes straight to the live upstream, without waiting a second.
    await server.waitForLog((line) => line.msg === 'upstream marked down; probing it until it answers' && line.upstream === dead.address);
    const started = Date.now();
    expect((await ask(server, 'a.corp.test.')).answer).toEqual(['a.corp.test. 300 IN A 198.51.100.1']);
    expect(Date.now() - started).toBeLessThan(900);
    expect(dead.queriesFor('a.corp.test')).toEqual([]);
    expect(value(await metrics(server), 'clusterdns_forward_upstream_up', { to: dead.address })).toBe(0);

    // The background probe (`. NS`) finds it answering again.
    dead.behaviour = 'answer';
    await server.waitForLog((line) => line.msg === 'upstream answers again' && line.upstream === dead.address, 5_000);
    expect(dead.queriesFor('').length).toBeGreaterThan(0);
    expect(value(await metrics(server), 'clusterdns_forward_upstream_up', { to: dead.address })).toBe(1);
  });

  it('fails over at once from a refusing upstream (ICMP port unreachable): no lookup waits for the timeout', async () => {
    const refusing = `127.0.0.1:${await closedUdpPort()}`;
    const live = await upstream();
    const server = await serve(['--upstream', refusing, '--upstream', live.address, '--forward-policy', 'sequential', '--upstream-timeout', '2', '--max-fails', '3']);
    for (const name of ['www.example.test.', 'alias.example.test.', 'a.corp.test.']) {
      const result = await ask(server, name, 'A', '+time=5');
      expect(result.status).toBe('NOERROR');
      // dig's own measure, from its send to the reply: without the refusal it is the 2 s timeout.
      expect(queryMs(result)).toBeLessThan(100);
      expect(live.queriesFor(name.slice(0, -1))).toHaveLength(1);
    }
    // Each refusal was a failed try: the third in a row (--max-fails 3) marks it down, and the probe sees it refuse.
    await server.waitForLog((line) => line.msg === 'upstream marked down; probing it until it answers' && line.upstream === refusing);
    let samples = await metrics(server);
    expect(value(samples, 'coredns_forward_requests_total', { to: refusing })).toBe(3);
    expect(value(samples, 'clusterdns_forward_upstream_up', { to: refusing })).toBe(0);
    for (let tries = 0; tries < 50 && !(value(samples, 'coredns_forward_healthcheck_failures_total', { to: refusing }) ?? 0); tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      samples = await metrics(server);
    }
    expect(value(samples, 'coredns_forward_healthcheck_failures_total', { to: refusing })).toBeGreaterThan(0);
  });

  it.each(['garbage', 'wrong-id', 'wrong-question'] as const)('ignores a %s reply and takes the next upstream\'s answer', async (behaviour) => {
    const bad = await upstream();
    const good = await upstream();
    bad.behaviour = behaviour;
    const server = await serve(['--upstream', bad.address, '--upstream', good.address, '--forward-policy', 'sequential', '--upstream-timeout', '1']);
    const result = await ask(server, 'www.example.test.', 'A', '+time=5');
    expect(result.answer).toEqual(['www.example.test. 300 IN A 192.0.2.10']);
    expect(bad.queriesFor('www.example.test')).toHaveLength(1);
    expect(good.queriesFor('www.example.test')).toHaveLength(1);
  });

  it('answers SERVFAIL, not silence, when every upstream fails, within the deadline', async () => {
    const one = await upstream();
    const two = await upstream();
    one.behaviour = 'silent';
    two.behaviour = 'silent';
    const server = await serve(['--upstream', one.address, '--upstream', two.address, '--upstream-timeout', '1']);
    const started = Date.now();
    const result = await ask(server, 'www.example.test.', 'A', '+time=5');
    expect(result.status).toBe('SERVFAIL');
    expect(Date.now() - started).toBeLessThan(3_000);
    // Every upstream got its try.
    expect(one.queriesFor('www.example.test')).toHaveLength(1);
    expect(two.queriesFor('www.example.test')).toHaveLength(1);
  });

  it('serves an expired answer (TTL 30) with --serve-stale when every upstream fails', async () => {
    const up = await upstream();
    const server = await serve(['--upstream', up.address, '--serve-stale', '60', '--upstream-timeout', '1']);
    expect((await ask(server, 'short.example.test.')).answer).toEqual(['short.example.test. 1 IN A 192.0.2.11']);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    up.behaviour = 'silent';
    const stale = await ask(server, 'short.example.test.', 'A', '+time=5');
    expect(stale.status).toBe('NOERROR');
    expect(stale.answer).toEqual(['short.example.test. 30 IN A 192.0.2.11']);
    expect(value(await metrics(server), 'coredns_cache_served_stale_total')).toBe(1);
  });

  it("passes an upstream's REFUSED on as it is: an answer, so no failover to the next upstream", async () => {
    const refusing = await upstream();
    const other = await upstream();
    refusing.behaviour = 'refused';
    const server = await serve(['--upstream', refusing.address, '--upstream', other.address, '--forward-policy', 'sequential']);
    expect((await ask(server, 'www.example.test.')).status).toBe('REFUSED');
    expect(refusing.queriesFor('www.example.test')).toHaveLength(1);
    expect(other.queriesFor('www.example.test')).toEqual([]);
  });

  it('caps cached TTLs at --cache-max-ttl', async () => {
    const up = await upstream();
    const server = await serve(['--upstream', up.address, '--cache-max-ttl', '60']);
    for (let i = 0; i < 2; i++) {
      const ttl = Number((await ask(server, 'www.example.test.')).answer[0]!.split(' ')[1]);
      expect(ttl).toBeGreaterThan(50);
      expect(ttl).toBeLessThanOrEqual(60);
    }
    expect(up.queriesFor('www.example.test')).toHaveLength(1);
  });

  it('passes upstream SERVFAIL on, and caches it briefly', async () => {
    const up = await upstream();
    up.behaviour = 'servfail';
    const server = await serve(['--upstream', up.address]);
    expect((await ask(server, 'www.example.test.')).status).toBe('SERVFAIL');
    expect(value(await metrics(server), 'coredns_cache_entries', { type: 'servfail' })).toBe(1);
  });
});

describe('forwarding: load', () => {
  it('coalesces identical questions in flight into one upstream query', async () => {
    const up = await upstream();
    up.delayMs = 300;
    const server = await serve(['--upstream', up.address]);
    const results = await Promise.all(Array.from({ length: 8 }, () => ask(server, 'www.example.test.')));
    for (const result of results) expect(result.answer).toEqual(['www.example.test. 300 IN A 192.0.2.10']);
    expect(up.queriesFor('www.example.test')).toHaveLength(1);
    expect(value(await metrics(server), 'clusterdns_forward_coalesced_total')).toBe(7);
  });

  it('answers REFUSED past --max-concurrent upstream queries, and counts it', async () => {
    const up = await upstream();
    up.delayMs = 500;
    const server = await serve(['--upstream', up.address, '--max-concurrent', '2']);
    const names = ['www', 'alias', 'short', 'x1', 'x2'].map((label) => `${label}.example.test.`);
    // The first two go out together; the other three arrive while they wait.
    const first = names.slice(0, 2).map((name) => ask(server, name));
    await vi.waitFor(() => expect(up.names()).toHaveLength(2));
    const rest = await Promise.all(names.slice(2).map((name) => ask(server, name)));
    expect(rest.map((result) => result.status)).toEqual(['REFUSED', 'REFUSED', 'REFUSED']);
    expect((await Promise.all(first)).map((result) => result.status)).toEqual(['NOERROR', 'NOERROR']);
    expect(value(await metrics(server), 'coredns_forward_max_concurrent_rejects_total')).toBe(3);
  });
});

describe('forwarding: upstreams from resolv.conf', () => {
  it('follows a resolv.conf whose nameservers change while running (port 53 on loopback addresses of its own)', async () => {
    const first = await TestUpstream.start({ host: '127.0.0.61', port: 53, records: { 'www.example.test': { A: ['192.0.2.61'] } } });
    cleanups.push(() => first.stop());
    const second = await TestUpstream.start({ host: '127.0.0.62', port: 53, records: { 'www.example.test': { A: ['192.0.2.62'] } } });
    cleanups.push(() => second.stop());
    const dir = await mkdtemp(join(tmpdir(), 'clusterdns-resolv-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const resolvConf = join(dir, 'resolv.conf');
    await writeFile(resolvConf, '# a node\nnameserver 127.0.0.61\noptions ndots:2\n');
    const server = await serve(['--resolv-conf', resolvConf, '--cache-size', '0']);
    expect((await ask(server, 'www.example.test.')).answer).toEqual(['www.example.test. 300 IN A 192.0.2.61']);

    await writeFile(resolvConf, 'nameserver 127.0.0.62\n');
    await server.waitForLog((line) => line.msg === 'resolv.conf changed: new upstreams', 10_000);
    expect((await ask(server, 'www.example.test.')).answer).toEqual(['www.example.test. 300 IN A 192.0.2.62']);
    expect(first.queriesFor('www.example.test')).toHaveLength(1);
  });
});

describe('forwarding: a loop back to clusterdns', () => {
  it('is found by the start-up probe, logged once, reported on /ready and in a metric; the cluster zone still answers', async () => {
    const loop = await upstream();
    // Hold the probe until we know clusterdns's port, then relay it (and everything after) back to clusterdns.
    loop.delayMs = 500;
    const server = await serve(['--upstream', loop.address]);
    loop.relayTo = { host: '127.0.0.1', port: server.port };
    const error = await server.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('forwarding loop'), 8_000);
    expect(error.msg).toContain(loop.address);
    expect(server.logs.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('forwarding loop'))).toHaveLength(1);

    const ready = await get(server, '/ready');
    expect(ready.status).toBe(200);
    expect(ready.body).toContain(`warning: forwarding loop: upstream ${loop.address}`);
    expect(value(await metrics(server), 'clusterdns_forward_loop_detected', { to: loop.address })).toBe(1);

    expect((await ask(server, 'web.default.svc.cluster.local.')).answer).toEqual(['web.default.svc.cluster.local. 5 IN A 10.96.0.20']);
    // The looping upstream is not used any more: SERVFAIL at once, and it sees nothing new.
    const seen = loop.queries.length;
    expect((await ask(server, 'www.example.test.')).status).toBe('SERVFAIL');
    expect(loop.queries.length).toBe(seen);
  });
});

describe('forwarding flags', () => {
  it.each([
    [['--upstream', '10.0.0.1:99999'], /--upstream 10\.0\.0\.1:99999: port 99999/],
    [['--upstream', 'dns.example'], /--upstream dns\.example: expected an IP address/],
    [['--upstream', 'none', '--upstream', '10.0.0.1'], /--upstream none: turns forwarding off/],
    [['--stub-domain', 'corp.test'], /--stub-domain corp\.test: expected ZONE=ADDR/],
    [['--stub-domain', 'svc.cluster.local=10.0.0.1'], /is not a stub domain/],
    [['--forward-policy', 'fastest'], /--forward-policy fastest: expected one of random, round_robin, sequential/],
    [['--cache-size', 'lots'], /--cache-size lots: expected a whole number/],
  ])('%j is refused with a message naming the flag', async (args, message) => {
    const { code, stderr } = await runCli(['serve', '--listen', '127.0.0.1:0', '--manifests', CLUSTER, ...args]);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });

  it('a --resolv-conf that cannot be read is a clear start-up error', async () => {
    const { code, stderr } = await runCli(['serve', '--listen', '127.0.0.1:0', '--manifests', CLUSTER, '--autopath', '--resolv-conf', '/nonexistent/resolv.conf']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/\/nonexistent\/resolv\.conf: cannot read/);
  });
});
