/**
 * `clusterdns resolve` as a user runs it, against the real server on loopback (conformance fixture): the report
 * for an answered name, the wrong-namespace case, one record type, --json, no-aaaa from the file, and one-line
 * errors with exit status 2 for bad flags. test/glibc.test.ts holds its sequence of names to glibc's.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RESOLVE_FLAGS } from '../src/config/resolve-args.js';
import type { Report } from '../src/resolve/index.js';
import { runCli, startServer, type ServerProcess } from './support/server-process.js';

let server: ServerProcess;
let dir: string;
let hostConf: string;

beforeAll(async () => {
  server = await startServer(['--manifests', 'test/fixtures/conformance-cluster.yaml']);
  dir = await mkdtemp(join(tmpdir(), 'clusterdns-resolve-'));
  // A node's resolv.conf: its search line is what pods inherit after the cluster domains.
  hostConf = join(dir, 'resolv.conf');
  await writeFile(hostConf, 'search corp.example\nnameserver 192.0.2.53\noptions ndots:1\n');
});

afterAll(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const resolve = (...args: string[]): ReturnType<typeof runCli> =>
  runCli(['resolve', ...args, '--server', `127.0.0.1:${server.port}`, '--resolv-conf', hostConf], 30_000);

describe('clusterdns resolve', () => {
  it('a short service name from its own namespace: answered by the first search domain', async () => {
    const { code, stdout, stderr } = await resolve('web', '--namespace', 'default');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toBe([
      'web: looked up as getaddrinfo does (A and AAAA for each name)',
      `search  default.svc.cluster.local svc.cluster.local cluster.local corp.example   from a pod in namespace default (host search domains from ${hostConf})`,
      'ndots   "web" has 0 dots, fewer than ndots 5: the search list first, then as is',
      `server  127.0.0.1:${server.port}`,
      '',
      '  1  web.default.svc.cluster.local.  A NOERROR  AAAA NOERROR   <- answered',
      '       web.default.svc.cluster.local. 5 IN A 10.96.0.20',
      '       web.default.svc.cluster.local. 5 IN AAAA fd00::20',
      '',
      'answered by web.default.svc.cluster.local. (try 1 of 1): 10.96.0.20, fd00::20',
      '',
    ].join('\n'));
  });

  it('the wrong namespace: every search domain is NXDOMAIN, the name as is is refused, exit 1', async () => {
    const { code, stdout } = await resolve('db', '--namespace', 'other');
    expect(code).toBe(1);
    const tried = stdout.split('\n').filter((line) => /^ {2}\d /.test(line)).map((line) => line.trim().split(/\s+/).slice(1).join(' '));
    expect(tried).toEqual([
      'db.other.svc.cluster.local. A NXDOMAIN AAAA NXDOMAIN',
      'db.svc.cluster.local. A NXDOMAIN AAAA NXDOMAIN',
      'db.cluster.local. A NXDOMAIN AAAA NXDOMAIN',
      'db.corp.example. A REFUSED AAAA REFUSED (sent 2 times)',
      'db. A REFUSED AAAA REFUSED (sent 2 times)',
    ]);
    expect(stdout).toContain('not resolved: TRY_AGAIN; applications see EAI_AGAIN: Temporary failure in name resolution\n');
  });

  it('<svc>.<ns> from another namespace: the second search domain answers', async () => {
    const { code, stdout } = await resolve('web.other', '--namespace', 'default', '--json');
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as Report;
    expect(report.tries.map((t) => t.name)).toEqual(['web.other.default.svc.cluster.local.', 'web.other.svc.cluster.local.']);
    expect(report).toMatchObject({ ok: true, answeredBy: 'web.other.svc.cluster.local.', addresses: ['10.96.0.40'], type: 'A+AAAA', ndots: 5 });
  });

  it('--type asks one type, as res_search does; an answer of that type is success', async () => {
    const { code, stdout } = await resolve('_http._tcp.web', '--namespace', 'default', '--type', 'srv');
    expect(code).toBe(0);
    expect(stdout).toContain('  1  _http._tcp.web.default.svc.cluster.local.  SRV NOERROR   <- answered\n');
    expect(stdout).toContain('       _http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local.\n');
  });

  it('without --namespace the file is used as is; no-aaaa asks A only', async () => {
    const file = join(dir, 'no-aaaa.conf');
    await writeFile(file, 'search default.svc.cluster.local\noptions ndots:2 no-aaaa\n');
    const { code, stdout } = await runCli(['resolve', 'lonely', '--resolv-conf', file, '--server', `127.0.0.1:${server.port}`, '--json']);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as Report;
    expect(report).toMatchObject({ type: 'A', search: ['default.svc.cluster.local'], ndots: 2, addresses: ['10.96.0.30'] });
    expect(report.tries[0]!.results.map((r) => r.type)).toEqual(['A']);
  });

  it('a trailing dot: asked as is only; NODATA for a type the name lacks, exit 1', async () => {
    const { code, stdout } = await resolve('lonely.default.svc.cluster.local.', '--type', 'TXT');
    expect(code).toBe(1);
    expect(stdout).toContain('"lonely.default.svc.cluster.local." ends with a dot: asked as is, no search list');
    expect(stdout).toContain('not resolved: NO_DATA\n');
  });
});

describe('clusterdns resolve: usage', () => {
  it('--help documents every flag', async () => {
    const { code, stdout } = await runCli(['resolve', '--help']);
    expect(code).toBe(0);
    expect(stdout.split('\n')[0]).toBe('Usage: clusterdns resolve NAME [flags]');
    for (const [name, spec] of Object.entries(RESOLVE_FLAGS)) expect(stdout).toContain(`--${name}${spec.value ? ` ${spec.value}` : ''}`);
  });

  const bad: Array<[string[], string]> = [
    [[], "give the name to resolve; see 'clusterdns resolve --help'"],
    [['a', 'b'], "one name at a time, not 2; see 'clusterdns resolve --help'"],
    [['a..b'], 'a..b: empty label in name "a..b"'],
    [['web', '--type', 'MX'], '--type MX: expected one of A, NS, CNAME, SOA, PTR, TXT, AAAA, SRV, ANY'],
    [['web', '--server', 'dns.example'], '--server dns.example: expected HOST:PORT'],
    [['web', '--namespace', 'Bad_NS'], '--namespace Bad_NS: not a namespace name'],
    [['web', '--zone', 'a..b'], '--zone a..b: '],
    [['web', '--frob'], "Unknown option '--frob'"],
    [['web', '--resolv-conf', '/does/not/exist'], '/does/not/exist: cannot read: '],
  ];
  it.each(bad)('resolve %j: one line, exit 2', async (args, message) => {
    const { code, stdout, stderr } = await runCli(['resolve', ...args]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.startsWith(`clusterdns: ${message}`), stderr).toBe(true);
    expect(stderr.split('\n'), stderr).toHaveLength(2);
  });
});
