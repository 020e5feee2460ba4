/**
 * Which names fail, and who asks, through the whole process: the real server (dist/cli.js) on loopback, asked by
 * real `dig` from loopback source addresses (UDP and TCP), forwarding to a loopback upstream that fails; then
 * /debug/top's JSON as Prometheus's port serves it, and `clusterdns top` run against it as a user would. The page of
 * /debug/top?html is tested in a browser by test/top-page.test.ts; the sketch itself by test/top-sketch.test.ts.
 */
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOP_FLAGS } from '../src/config/top-args.js';
import type { TopReport } from '../src/telemetry/top.js';
import { dig } from './support/dig.js';
import { freePort, runCli, startServer, type ServerProcess } from './support/server-process.js';
import { TestUpstream } from './support/upstream.js';

let server: ServerProcess;
let upstream: TestUpstream;
let topAddress: string;

/** What the test sends: each name from one source address, so many times, and the rcode it gets. */
const SENT = [
  { name: 'cart.default.svc.cluster.local', from: '127.0.0.1', times: 5, status: 'NXDOMAIN' },
  { name: 'redis.default.svc.cluster.local', from: '127.0.0.2', times: 3, status: 'NXDOMAIN' },
  { name: 'broken.example.test', from: '127.0.0.2', times: 2, status: 'SERVFAIL' },
  // Names that exist: answered NOERROR, and never counted.
  { name: 'web.default.svc.cluster.local', from: '127.0.0.1', times: 4, status: 'NOERROR' },
] as const;

beforeAll(async () => {
  upstream = await TestUpstream.start();
  upstream.behaviour = 'servfail';
  server = await startServer(['--manifests', 'test/fixtures/conformance-cluster.yaml', '--upstream', upstream.address]);
  topAddress = server.http['debug/top']!;
  for (const { name, from, times, status } of SENT) {
    for (let i = 0; i < times; i++) expect((await dig(server.port, ['-b', from, name])).status).toBe(status);
  }
});

afterAll(async () => {
  await server?.stop();
  await upstream?.stop();
});

const readTop = async (): Promise<TopReport> => {
  const response = await fetch(`http://${topAddress}/debug/top`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('application/json');
  return (await response.json()) as TopReport;
};

describe('/debug/top on the metrics address', () => {
  it('is served where /metrics is', () => {
    expect(topAddress).toBe(server.http.metrics);
  });

  it('counts each failing name with its rcode, each client, and who asked what; names that exist are not there', async () => {
    const report = await readTop();
    expect(report.failures).toBe(10);
    expect(report.names).toEqual([
      { name: 'cart.default.svc.cluster.local.', rcode: 'NXDOMAIN', count: 5, error: 0 },
      { name: 'redis.default.svc.cluster.local.', rcode: 'NXDOMAIN', count: 3, error: 0 },
      { name: 'broken.example.test.', rcode: 'SERVFAIL', count: 2, error: 0 },
    ]);
    expect(report.clients).toEqual([{ client: '127.0.0.1', count: 5, error: 0 }, { client: '127.0.0.2', count: 5, error: 0 }]);
    expect(report.pairs).toEqual([
      { client: '127.0.0.1', name: 'cart.default.svc.cluster.local.', rcode: 'NXDOMAIN', count: 5, error: 0 },
      { client: '127.0.0.2', name: 'redis.default.svc.cluster.local.', rcode: 'NXDOMAIN', count: 3, error: 0 },
      { client: '127.0.0.2', name: 'broken.example.test.', rcode: 'SERVFAIL', count: 2, error: 0 },
    ]);
    expect(report.window).toMatchObject({ seconds: 300, intervalSeconds: 30 });
    expect(Date.now() - Date.parse(report.window.since)).toBeLessThan(300_000);
  });

  it('a name is counted as asked, in lower case', async () => {
    await dig(server.port, ['CaRt.Default.SVC.cluster.local']);
    const row = (await readTop()).names.find((entry) => entry.name === 'cart.default.svc.cluster.local.');
    expect(row?.count).toBe(6);
  });

  it('answers HEAD, refuses other methods', async () => {
    expect((await fetch(`http://${topAddress}/debug/top`, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(`http://${topAddress}/debug/top`, { method: 'POST' })).status).toBe(405);
  });

  it('without the prometheus plugin there is none (and nothing is counted)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clusterdns-top-'));
    const corefile = join(dir, 'Corefile');
    await writeFile(corefile, `.:${await freePort()} {\n    bind 127.0.0.1\n    health 127.0.0.1:0\n    kubernetes cluster.local {\n        manifests test/fixtures/conformance-cluster.yaml\n    }\n}\n`);
    const bare = await startServer([], '127.0.0.1', { corefile });
    try {
      expect(Object.keys(bare.http)).toEqual(['health']);
      expect((await dig(bare.port, ['cart.default.svc.cluster.local'])).status).toBe('NXDOMAIN');
      expect((await fetch(`http://${bare.http.health}/debug/top`)).status).toBe(404);
    } finally {
      await bare.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('clusterdns top', () => {
  it('prints the three tables from a running server', async () => {
    const before = await readTop();
    const { code, stdout, stderr } = await runCli(['top', '--server', `http://${topAddress}`]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.split('\n');
    expect(lines[0]).toBe(`${before.failures} NXDOMAIN and SERVFAIL answers in the last 300 s (since ${before.window.since}; 256 counters per table, 30 s intervals)`);
    expect(lines.slice(1)).toEqual([
      '',
      'name                              rcode     count',
      'cart.default.svc.cluster.local.   NXDOMAIN      6',
      'redis.default.svc.cluster.local.  NXDOMAIN      3',
      'broken.example.test.              SERVFAIL      2',
      '',
      'client     count',
      '127.0.0.1      6',
      '127.0.0.2      5',
      '',
      'client     name                              rcode     count',
      '127.0.0.1  cart.default.svc.cluster.local.   NXDOMAIN      6',
      '127.0.0.2  redis.default.svc.cluster.local.  NXDOMAIN      3',
      '127.0.0.2  broken.example.test.              SERVFAIL      2',
      '',
    ]);
  });

  it('--json prints the report as the server gave it; HOST:PORT works as --server', async () => {
    const { code, stdout } = await runCli(['top', '--server', topAddress, '--json']);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as TopReport;
    expect(report.names.map((row) => row.name)).toEqual(['cart.default.svc.cluster.local.', 'redis.default.svc.cluster.local.', 'broken.example.test.']);
  });

  it('a server that does not answer: one line and exit 1', async () => {
    const port = await freePort();
    const { code, stdout, stderr } = await runCli(['top', '--server', `127.0.0.1:${port}`]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toBe(`clusterdns: cannot read http://127.0.0.1:${port}/debug/top: ECONNREFUSED\n`);
  });

  it('an address that is not clusterdns\'s metrics endpoint: says so, exit 1', async () => {
    const other = createServer((_request, response) => response.writeHead(404).end());
    other.listen(0, '127.0.0.1');
    await once(other, 'listening');
    const address = `127.0.0.1:${(other.address() as AddressInfo).port}`;
    try {
      const { code, stderr } = await runCli(['top', '--server', address]);
      expect(code).toBe(1);
      expect(stderr).toBe(`clusterdns: http://${address}/debug/top: HTTP 404 (is it the metrics address of clusterdns? /debug/top is served beside /metrics)\n`);
    } finally {
      other.closeAllConnections();
      other.close();
    }
  });

  it.each([
    [['--server', 'ftp://example.org'], 'clusterdns: --server ftp://example.org: not an http:// or https:// URL'],
    [['--server', 'http://127.0.0.1:9153/?x=1'], 'clusterdns: --server http://127.0.0.1:9153/?x=1: give the endpoint without a query or fragment'],
    [['--nope'], "clusterdns: Unknown option '--nope'; see 'clusterdns top --help'"],
    [['extra'], 'clusterdns: unexpected argument "extra"; see \'clusterdns top --help\''],
  ])('bad usage %j: one line, exit 2', async (args, message) => {
    const { code, stderr } = await runCli(['top', ...args]);
    expect(stderr).toBe(`${message}\n`);
    expect(code).toBe(2);
  });

  it('--help lists every flag of the table', async () => {
    const { code, stdout } = await runCli(['top', '--help']);
    expect(code).toBe(0);
    for (const flag of Object.keys(TOP_FLAGS)) expect(stdout).toContain(`--${flag}`);
  });
});

describe('over TCP', () => {
  it('a failure asked over TCP is counted under the connection\'s address', async () => {
    expect((await dig(server.port, ['+tcp', '-b', '127.0.0.3', 'tcp-only.default.svc.cluster.local'])).status).toBe('NXDOMAIN');
    const report = await readTop();
    expect(report.pairs).toContainEqual({ client: '127.0.0.3', name: 'tcp-only.default.svc.cluster.local.', rcode: 'NXDOMAIN', count: 1, error: 0 });
  });
});
