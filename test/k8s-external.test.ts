// The k8s_external plugin on the whole process: `clusterdns -conf Corefile` (dist/cli.js) with `kubernetes` and
// `k8s_external example.org` over test/fixtures/k8s-external.yaml, asked by real `dig`. Rows are CoreDNS's
// answers (plugin/k8s_external's tests and README): external and load-balancer IPs, NXDOMAIN for a service
// without one, SRV, the apex SOA/NS with glue, `ttl`, `apex` and `headless`.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from './support/dig.js';
import { freePort, runCli, startServer, type ServerProcess } from './support/server-process.js';

const CLUSTER = new URL('./fixtures/k8s-external.yaml', import.meta.url).pathname;
const Z = 'default.example.org.';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clusterdns-k8sext-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function corefile(name: string, externalBlock: string): Promise<string> {
  const file = join(dir, `Corefile-${name}`);
  await writeFile(file, `.:${await freePort()} {
    bind 127.0.0.1
    kubernetes cluster.local {
        manifests ${CLUSTER}
    }
    k8s_external example.org ${externalBlock}
}
`);
  return file;
}

function server(name: string, externalBlock: string): { current?: ServerProcess } {
  const holder: { current?: ServerProcess } = {};
  beforeAll(async () => {
    holder.current = await startServer([], '127.0.0.1', { corefile: await corefile(name, externalBlock) });
  });
  afterAll(async () => {
    await holder.current?.stop();
  });
  return holder;
}

interface Answer {
  readonly status: string;
  readonly answer: readonly string[];
  readonly authority?: readonly string[];
  readonly additional?: readonly string[];
}

async function ask(s: ServerProcess, name: string, type: string, sections: readonly ('authority' | 'additional')[] = []): Promise<Answer> {
  const result = await dig(s.port, [name, type]);
  expect(result.flags).toContain('aa');
  const out: Record<string, unknown> = { status: result.status, answer: [...result.answer].sort() };
  for (const section of sections) out[section] = [...result[section]].sort();
  return out as unknown as Answer;
}

/** The SOA with its serial (the manifests' load time) replaced. */
const soaLine = (line: string): string => line.replace(/ SOA (\S+) (\S+) \d+ /, ' SOA $1 $2 SERIAL ');

describe('k8s_external example.org', () => {
  const s = server('plain', '');
  const ok = (...answer: string[]): Answer => ({ status: 'NOERROR', answer: answer.sort() });
  const none = (status: string): Answer => ({ status, answer: [] });
  const rows: ReadonlyArray<readonly [string, string, Answer]> = [
    [`web.${Z}`, 'A', ok(`web.${Z} 5 IN A 192.0.2.10`)],
    [`web.${Z}`, 'AAAA', ok(`web.${Z} 5 IN AAAA 2001:db8::10`)],
    [`lb.${Z}`, 'A', ok(`lb.${Z} 5 IN A 198.51.100.7`)],
    [`lb.${Z}`, 'AAAA', none('NOERROR')],
    [`lb.${Z}`, 'TXT', none('NOERROR')],
    [`elb.${Z}`, 'A', ok(`elb.${Z} 5 IN CNAME lb-123.elb.example.net.`)],
    [`internal.${Z}`, 'A', none('NXDOMAIN')],
    [`nosuch.${Z}`, 'A', none('NXDOMAIN')],
    ['web.nosuchns.example.org.', 'A', none('NXDOMAIN')],
    [Z, 'A', none('NOERROR')],
    // headless services answer only with the `headless` option.
    [`db.${Z}`, 'A', none('NXDOMAIN')],
    [`_http._tcp.web.${Z}`, 'SRV', ok(`_http._tcp.web.${Z} 5 IN SRV 0 100 80 web.${Z}`)],
    [`_dns._udp.web.${Z}`, 'SRV', ok(`_dns._udp.web.${Z} 5 IN SRV 0 100 53 web.${Z}`)],
    [`_nope._tcp.web.${Z}`, 'SRV', none('NXDOMAIN')],
    [`_tcp.web.${Z}`, 'SRV', none('NOERROR')],
    [`web.${Z}`, 'SRV', ok(`web.${Z} 5 IN SRV 0 50 80 web.${Z}`, `web.${Z} 5 IN SRV 0 50 53 web.${Z}`)],
    [`_https._tcp.elb.${Z}`, 'SRV', ok(`_https._tcp.elb.${Z} 5 IN SRV 0 100 443 lb-123.elb.example.net.`)],
    ['ns1.dns.example.org.', 'A', ok('ns1.dns.example.org. 5 IN A 127.0.0.1')],
    ['dns.example.org.', 'A', none('NOERROR')],
    ['ns2.dns.example.org.', 'A', none('NXDOMAIN')],
    // The cluster zone is still the kubernetes plugin's.
    ['web.default.svc.cluster.local.', 'A', ok('web.default.svc.cluster.local. 5 IN A 10.96.0.50')],
  ];
  it.each(rows)('%s %s', async (name, type, expected) => {
    expect(await ask(s.current!, name, type)).toEqual(expected);
  });

  it('SRV answers carry the target\'s addresses', async () => {
    const result = await ask(s.current!, `_http._tcp.web.${Z}`, 'SRV', ['additional']);
    expect(result.additional).toEqual([`web.${Z} 5 IN A 192.0.2.10`, `web.${Z} 5 IN AAAA 2001:db8::10`].sort());
  });

  it('the apex has SOA and NS, with glue; negative answers carry the SOA', async () => {
    const soa = await ask(s.current!, 'example.org.', 'SOA');
    expect(soa.answer.map(soaLine)).toEqual(['example.org. 5 IN SOA ns1.dns.example.org. hostmaster.dns.example.org. SERIAL 7200 1800 86400 5']);
    expect(await ask(s.current!, 'example.org.', 'NS', ['additional'])).toEqual({
      status: 'NOERROR', answer: ['example.org. 5 IN NS ns1.dns.example.org.'], additional: ['ns1.dns.example.org. 5 IN A 127.0.0.1'],
    });
    const negative = await ask(s.current!, `internal.${Z}`, 'A', ['authority']);
    expect(negative.authority!.map(soaLine)).toEqual(['example.org. 5 IN SOA ns1.dns.example.org. hostmaster.dns.example.org. SERIAL 7200 1800 86400 5']);
  });
});

describe('k8s_external options', () => {
  const s = server('options', `{
        ttl 60
        apex ns.glue
        headless
    }`);
  it('ttl sets every record\'s TTL and the SOA minimum', async () => {
    expect(await ask(s.current!, `web.${Z}`, 'A')).toEqual({ status: 'NOERROR', answer: [`web.${Z} 60 IN A 192.0.2.10`] });
    const soa = await ask(s.current!, 'example.org.', 'SOA');
    expect(soa.answer.map(soaLine)).toEqual(['example.org. 60 IN SOA ns1.ns.glue.example.org. hostmaster.ns.glue.example.org. SERIAL 7200 1800 86400 60']);
  });
  it('apex moves the name server\'s names', async () => {
    expect((await ask(s.current!, 'ns1.ns.glue.example.org.', 'A')).answer).toEqual(['ns1.ns.glue.example.org. 60 IN A 127.0.0.1']);
    expect((await ask(s.current!, 'ns1.dns.example.org.', 'A')).status).toBe('NXDOMAIN');
  });
  it('headless answers a headless service with its ready endpoints, also by endpoint name', async () => {
    expect(await ask(s.current!, `db.${Z}`, 'A')).toEqual({ status: 'NOERROR', answer: [`db.${Z} 60 IN A 10.244.2.7`] });
    expect(await ask(s.current!, `db-0.db.${Z}`, 'A')).toEqual({ status: 'NOERROR', answer: [`db-0.db.${Z} 60 IN A 10.244.2.7`] });
    expect(await ask(s.current!, `_pg._tcp.db.${Z}`, 'SRV')).toEqual({ status: 'NOERROR', answer: [`_pg._tcp.db.${Z} 60 IN SRV 0 100 5432 db-0.db.${Z}`] });
    expect((await ask(s.current!, `db-9.db.${Z}`, 'A')).status).toBe('NXDOMAIN');
  });
});

describe('k8s_external with reverse zones: PTR for the external IPs', () => {
  const v6 = '0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.';
  const s = server('reverse', '2.0.192.in-addr.arpa 8.b.d.0.1.0.0.2.ip6.arpa');
  it.each([
    ['10.2.0.192.in-addr.arpa.', 'PTR', { status: 'NOERROR', answer: [`10.2.0.192.in-addr.arpa. 5 IN PTR web.${Z}`] }],
    [v6, 'PTR', { status: 'NOERROR', answer: [`${v6} 5 IN PTR web.${Z}`] }],
    // The name exists: another type is NODATA, not NXDOMAIN.
    ['10.2.0.192.in-addr.arpa.', 'A', { status: 'NOERROR', answer: [] }],
    // An address under the zone that no service has, and a name that is no address.
    ['11.2.0.192.in-addr.arpa.', 'PTR', { status: 'NXDOMAIN', answer: [] }],
    ['x.10.2.0.192.in-addr.arpa.', 'PTR', { status: 'NXDOMAIN', answer: [] }],
  ] as const)('%s %s', async (name, type, expected) => {
    expect(await ask(s.current!, name, type)).toEqual(expected);
  });
  it('the reverse zone\'s apex has its SOA, and its NXDOMAIN carries it', async () => {
    expect((await ask(s.current!, '2.0.192.in-addr.arpa.', 'SOA')).answer.map(soaLine))
      .toEqual(['2.0.192.in-addr.arpa. 5 IN SOA ns1.dns.2.0.192.in-addr.arpa. hostmaster.dns.2.0.192.in-addr.arpa. SERIAL 7200 1800 86400 5']);
    const negative = await ask(s.current!, '11.2.0.192.in-addr.arpa.', 'PTR', ['authority']);
    expect(negative.authority!.map(soaLine)).toEqual(['2.0.192.in-addr.arpa. 5 IN SOA ns1.dns.2.0.192.in-addr.arpa. hostmaster.dns.2.0.192.in-addr.arpa. SERIAL 7200 1800 86400 5']);
  });
  it('the forward zone answers as before', async () => {
    expect(await ask(s.current!, `web.${Z}`, 'A')).toEqual({ status: 'NOERROR', answer: [`web.${Z} 5 IN A 192.0.2.10`] });
  });
});

describe('k8s_external setup errors name the file and line', () => {
  it.each([
    ['fallthrough', '{\n        fallthrough\n    }', /:7: plugin "k8s_external": unknown option "fallthrough" \(supported: apex, ttl, headless\)/],
    ['ttl', '{\n        ttl 9999\n    }', /:7: plugin "k8s_external": option "ttl": "9999" is not a whole number from 0 to 3600/],
  ])('%s', async (name, block, message) => {
    const result = await runCli(['-conf', await corefile(`bad-${name}`, block)]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });
  it('a reverse zone first: the first zone names the PTR targets', async () => {
    const file = join(dir, 'Corefile-reverse-first');
    await writeFile(file, `.:${await freePort()} {\n    kubernetes cluster.local\n    k8s_external 2.0.192.in-addr.arpa example.org\n}\n`);
    const result = await runCli(['-conf', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${file}:3: plugin "k8s_external": the first zone names the PTR targets, so it must be the external zone, not 2.0.192.in-addr.arpa.`);
  });
  it('without kubernetes in the block', async () => {
    const file = join(dir, 'Corefile-alone');
    await writeFile(file, `.:${await freePort()} {\n    k8s_external example.org\n}\n`);
    const result = await runCli(['-conf', file]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/k8s_external/);
    expect(result.stderr).toMatch(/kubernetes/);
  });
});
