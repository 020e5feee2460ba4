// The hosts plugin: broken stanzas stop start-up naming file and line; and the whole process (`clusterdns -conf`,
// dist/cli.js) answering from a real hosts file and inline entries beside the kubernetes plugin (a manifests
// source), falling through to a loopback upstream the test starts, re-reading the file when it changes, and
// asked by real `dig`.
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { planServers } from '../src/config/plan.js';
import { parseCorefile } from '../src/corefile/index.js';
import { parseHostsLine } from '../src/plugins/hosts/table.js';
import { PLUGINS } from '../src/plugins/order.js';
import { dig, lines } from './support/dig.js';
import { metrics, select, value } from './support/http.js';
import { FakeKubeApiServer } from './support/k8s-api-server.js';
import { freePort, runCli, startServer, type ServerProcess } from './support/server-process.js';
import { TestUpstream } from './support/upstream.js';

const DEMO = new URL('../examples/demo-cluster.yaml', import.meta.url).pathname;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clusterdns-hosts-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const HOSTS_FILE = `# The company's hosts, as /etc/hosts writes them
127.0.0.1       localhost
10.1.0.1        db.corp.example    db-primary.corp.example   # two names, one address
fd00:1::1       db.corp.example
::ffff:10.1.0.2 legacy.corp.example
10.1.0.3        Mixed.Corp.Example
10.1.0.9        *.apps.corp.example
10.1.0.4        shadowed.corp.example
`;

describe('hosts: a hosts(5) line', () => {
  const rows: Array<[string, ReturnType<typeof parseHostsLine>]> = [
    ['10.0.0.1 web.example.org', { address: '10.0.0.1', names: ['web.example.org.'] }],
    ['10.0.0.1\tWeb.Example.org.  web   # the last is an alias', { address: '10.0.0.1', names: ['web.example.org.', 'web.'] }],
    ['fd00:0:0::0001 v6.example.org\r', { address: 'fd00::1', names: ['v6.example.org.'] }],
    ['fe80::1%eth0 link.example.org', { address: 'fe80::1', names: ['link.example.org.'] }],
    ['::ffff:10.0.0.2 mapped.example.org', { address: '10.0.0.2', names: ['mapped.example.org.'] }],
    ['   # only a comment', undefined],
    ['', undefined],
    ['10.0.0.1', 'address 10.0.0.1 has no name (an entry is ADDRESS NAME [ALIASES...])'],
    ['10.0.0.1#web.example.org', 'address 10.0.0.1 has no name (an entry is ADDRESS NAME [ALIASES...])'],
    ['web.example.org 10.0.0.1', '"web.example.org" is not an IP address (an entry is ADDRESS NAME [ALIASES...])'],
    ['010.0.0.1 octal.example.org', '"010.0.0.1" is not an IP address (an entry is ADDRESS NAME [ALIASES...])'],
    [`10.0.0.1 ${'a'.repeat(64)}.example.org`, `"${'a'.repeat(64)}.example.org" is not a host name: label "${'a'.repeat(64)}" is longer than 63 bytes`],
    ['10.0.0.1 bad..example.org', '"bad..example.org" is not a host name: empty label in name "bad..example.org."'],
  ];
  it.each(rows)('%j', (text, expected) => {
    expect(parseHostsLine(text)).toEqual(expected);
  });
});

describe('hosts: a stanza that cannot be served stops start-up naming file and line', () => {
  const stanza = (body: string): string => `.:1053 {\n    hosts /etc/hosts {\n${body}\n    }\n}\n`;
  const cases: Array<[string, string, string]> = [
    ['an entry that is not an address', stanza('        10.0.0.300 web.example.org'), 'Corefile:3: plugin "hosts": unknown option "10.0.0.300" and not an entry: "10.0.0.300" is not an IP address'],
    ['an address without a name', stanza('        10.0.0.1'), 'Corefile:3: plugin "hosts": unknown option "10.0.0.1" and not an entry: address 10.0.0.1 has no name'],
    ['a misspelt option', stanza('        no-reverse'), 'Corefile:3: plugin "hosts": unknown option "no-reverse" and not an entry: "no-reverse" is not an IP address'],
    ['a name outside the zones', '.:1053 {\n    hosts /etc/hosts example.org {\n        10.0.0.1 web.example.com\n    }\n}\n', 'Corefile:3: plugin "hosts": name web.example.com. is outside the plugin\'s zones (example.org.), so it would never be answered'],
    ['an entry after fallthrough', stanza('        fallthrough\n        10.0.0.1 late.example.org'), 'Corefile:4: plugin "hosts": entry "10.0.0.1 late.example.org" comes after fallthrough: entries go before it'],
    ['a ttl of 0', stanza('        ttl 0'), 'Corefile:3: plugin "hosts": option "ttl": "0" is not a whole number from 1 to 65535'],
    ['a ttl that is not a number', stanza('        ttl 1h'), 'Corefile:3: plugin "hosts": option "ttl": "1h" is not a whole number from 1 to 65535'],
    ['ttl without a value', stanza('        ttl'), 'Corefile:3: plugin "hosts": option "ttl" wants 1 argument, got 0 (usage: ttl SECONDS)'],
    ['a reload that is not a duration', stanza('        reload soon'), 'Corefile:3: plugin "hosts": option "reload": "soon" is not a duration (e.g. 30s, 1m, 500ms)'],
    ['no_reverse with a value', stanza('        no_reverse yes'), 'Corefile:3: plugin "hosts": option "no_reverse" wants 0 arguments, got 1 (usage: no_reverse)'],
    ['an option twice', stanza('        ttl 60\n        ttl 30'), 'Corefile:4: plugin "hosts": option "ttl" appears again (first at line 3)'],
    ['fallthrough_unsupported alone', stanza('        fallthrough_unsupported'), 'Corefile:3: plugin "hosts": option "fallthrough_unsupported" needs fallthrough, whose zones it uses'],
    ['a bad fallthrough zone', stanza('        fallthrough exa..mple'), 'Corefile:3: plugin "hosts": option "fallthrough": "exa..mple" is not a zone: empty label in name "exa..mple."'],
    ['an option with a block', stanza('        ttl 60 {\n        }'), 'Corefile:3: plugin "hosts": option "ttl" takes no block'],
    ['hosts twice in a block', '.:1053 {\n    hosts\n    hosts /tmp/other\n}\n', 'Corefile:3: plugin "hosts": appears again in this server block (first at line 2); it may appear once'],
  ];
  it.each(cases)('%s', (_what, text, message) => {
    expect(() => planServers(parseCorefile(text, { file: 'Corefile', env: {} }), PLUGINS)).toThrow(message);
  });

  it('the process says it in one line and exits 2', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'Corefile'), stanza('        10.0.0.1 ok.example.org\n        10.0.0.2/24 bad.example.org'));
    const { code, stderr } = await runCli(['-conf', join(dir, 'Corefile')]);
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain('Corefile:4: plugin "hosts": unknown option "10.0.0.2/24" and not an entry: "10.0.0.2/24" is not an IP address');
  });
});

interface Running {
  readonly server: ServerProcess;
  readonly upstream: TestUpstream;
  readonly hostsPath: string;
  readonly dir: string;
}

/** The hosts file above, an upstream on loopback, and the Corefile (with `HOSTS_FILE`, `UPSTREAM`, `PORT` filled in). */
async function start(corefile: string, hostsText = HOSTS_FILE): Promise<Running> {
  const dir = await tempDir();
  const hostsPath = join(dir, 'hosts');
  await writeFile(hostsPath, hostsText);
  const upstream = await TestUpstream.start({
    records: {
      'www.example.test': { A: ['192.0.2.10'], ttl: 300 },
      'db.corp.example': { A: ['192.0.2.99'], ttl: 300 },
      'other.corp.example': { A: ['192.0.2.20'], ttl: 300 },
    },
  });
  cleanups.push(() => upstream.stop());
  const port = await freePort();
  const path = join(dir, 'Corefile');
  await writeFile(path, corefile.replaceAll('HOSTS_FILE', hostsPath).replaceAll('UPSTREAM', upstream.address).replaceAll('PORT', String(port)));
  const server = await startServer([], '127.0.0.1', { corefile: path });
  cleanups.push(() => server.stop());
  return { server, upstream, hostsPath, dir };
}

/** kubeadm's shape with a hosts stanza before kubernetes: what a platform team adds to its coredns ConfigMap. */
const WITH_KUBERNETES = `.:PORT {
    bind 127.0.0.1
    errors
    prometheus 127.0.0.1:0
    hosts HOSTS_FILE {
        10.1.0.50  build.corp.example
        10.1.0.51  shadowed.corp.example
        fd00:1::51 shadowed.corp.example
        ttl 60
        fallthrough
    }
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        manifests ${DEMO}
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . UPSTREAM
}
`;

describe('hosts beside kubernetes and forward', () => {
  it('answers its names from the file and the Corefile, and passes every other name on', async () => {
    const { server, upstream, hostsPath } = await start(WITH_KUBERNETES);
    const ask = (...args: string[]) => dig(server.port, args);

    const db = await ask('db.corp.example', 'A');
    expect(db.status).toBe('NOERROR');
    expect(db.flags).toContain('aa');
    expect(db.answer).toEqual(lines('db.corp.example. 60 IN A 10.1.0.1'));
    expect((await ask('db.corp.example', 'AAAA')).answer).toEqual(lines('db.corp.example. 60 IN AAAA fd00:1::1'));
    expect((await ask('db-primary.corp.example', 'A')).answer).toEqual(lines('db-primary.corp.example. 60 IN A 10.1.0.1'));
    // Names are case-blind, and answered in the question's own case.
    expect((await ask('MIXED.corp.example', 'A')).answer).toEqual(lines('MIXED.corp.example. 60 IN A 10.1.0.3'));
    // An IPv4-mapped IPv6 address is an IPv4 address.
    expect((await ask('legacy.corp.example', 'A')).answer).toEqual(lines('legacy.corp.example. 60 IN A 10.1.0.2'));
    // The inline entries: a name of their own, and one whose file entry they replace.
    expect((await ask('build.corp.example', 'A')).answer).toEqual(lines('build.corp.example. 60 IN A 10.1.0.50'));
    expect((await ask('shadowed.corp.example', 'A')).answer).toEqual(lines('shadowed.corp.example. 60 IN A 10.1.0.51'));
    expect((await ask('shadowed.corp.example', 'AAAA')).answer).toEqual(lines('shadowed.corp.example. 60 IN AAAA fd00:1::51'));
    // A wildcard covers one label below it, not its own name nor two labels down.
    expect((await ask('ci.apps.corp.example', 'A')).answer).toEqual(lines('ci.apps.corp.example. 60 IN A 10.1.0.9'));

    // A name it has, asked for a type it has not: NODATA, authoritative, not passed on.
    const nodata = await ask('build.corp.example', 'AAAA');
    expect([nodata.status, nodata.answer, nodata.flags.includes('aa')]).toEqual(['NOERROR', [], true]);
    const mx = await ask('db.corp.example', 'MX');
    expect([mx.status, mx.answer]).toEqual(['NOERROR', []]);
    expect(upstream.queriesFor('db.corp.example')).toHaveLength(0);

    // PTR for its addresses: every name of the address, in the order written; the replaced file entry's address has none left.
    expect((await ask('-x', '10.1.0.1')).answer).toEqual(['1.0.1.10.in-addr.arpa. 60 IN PTR db.corp.example.', '1.0.1.10.in-addr.arpa. 60 IN PTR db-primary.corp.example.']);
    expect((await ask('-x', 'fd00:1::1')).answer).toEqual(lines(`1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa. 60 IN PTR db.corp.example.`));
    expect((await ask('-x', '10.1.0.50')).answer).toEqual(lines('50.0.1.10.in-addr.arpa. 60 IN PTR build.corp.example.'));
    await ask('-x', '10.1.0.4');
    expect(upstream.queriesFor('4.0.1.10.in-addr.arpa')).toHaveLength(1);

    // The cluster zone and its reverse names are the kubernetes plugin's; other names go upstream.
    expect((await ask('web.default.svc.cluster.local', 'A')).answer).toEqual(lines('web.default.svc.cluster.local. 5 IN A 10.96.100.10'));
    expect((await ask('-x', '10.96.100.10')).answer).toEqual(lines('10.100.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local.'));
    expect((await ask('www.example.test', 'A')).answer).toEqual(lines('www.example.test. 300 IN A 192.0.2.10'));
    expect((await ask('other.corp.example', 'A')).answer).toEqual(lines('other.corp.example. 300 IN A 192.0.2.20'));
    expect((await ask('x.y.apps.corp.example', 'A')).status).toBe('NXDOMAIN');
    expect(upstream.queriesFor('x.y.apps.corp.example')).toHaveLength(1);

    const samples = await metrics(server);
    // CoreDNS's count: each name's addresses plus each address's names, file and Corefile together.
    // File: 7 addresses by name + 1 wildcard + 6 names by address (localhost, db x2, legacy, mixed, shadowed); inline: 3 + 3 (21).
    expect(select(samples, 'coredns_hosts_entries')).toEqual([{ name: 'coredns_hosts_entries', labels: { hostsfile: hostsPath }, value: 21 }]);
    expect(value(samples, 'coredns_hosts_reload_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 600);
    const byHosts = select(samples, 'coredns_dns_responses_total', { plugin: 'hosts' }).reduce((sum, s) => sum + s.value, 0);
    expect(byHosts).toBe(14);
  });

  it('without fallthrough: SERVFAIL for a name of its zones it lacks (it has no SOA to deny it with); other zones and PTRs go on', async () => {
    const { server, upstream } = await start(`.:PORT {
    bind 127.0.0.1
    hosts HOSTS_FILE corp.example {
        no_reverse
    }
    forward . UPSTREAM
}
`);
    expect((await dig(server.port, ['db.corp.example', 'A'])).answer).toEqual(lines('db.corp.example. 3600 IN A 10.1.0.1'));
    expect((await dig(server.port, ['other.corp.example', 'A'])).status).toBe('SERVFAIL');
    expect(upstream.queriesFor('other.corp.example')).toHaveLength(0);
    // localhost is outside corp.example: left out of the table, so asked upstream like any other name.
    await dig(server.port, ['localhost', 'A']);
    expect(upstream.queriesFor('localhost')).toHaveLength(1);
    // no_reverse: its addresses have no PTR here.
    await dig(server.port, ['-x', '10.1.0.1']);
    expect(upstream.queriesFor('1.0.1.10.in-addr.arpa')).toHaveLength(1);
  });

  it('fallthrough_unsupported: a type it cannot answer for a name it has goes on too', async () => {
    const { server, upstream } = await start(`.:PORT {
    bind 127.0.0.1
    hosts HOSTS_FILE {
        fallthrough
        fallthrough_unsupported
    }
    forward . UPSTREAM
}
`);
    expect((await dig(server.port, ['db.corp.example', 'AAAA'])).answer).toEqual(lines('db.corp.example. 3600 IN AAAA fd00:1::1'));
    await dig(server.port, ['db.corp.example', 'TXT']);
    expect(upstream.queriesFor('db.corp.example')).toHaveLength(1);
  });
});

describe('hosts: the file is read again when it changes', () => {
  it('serves an edited file within the reload interval; a removed file leaves the last entries serving', async () => {
    const { server, hostsPath } = await start(`.:PORT {
    bind 127.0.0.1
    prometheus 127.0.0.1:0
    hosts HOSTS_FILE {
        reload 1s
    }
}
`, '10.2.0.1 app.example.org\n');
    const answer = async (name: string) => (await dig(server.port, [name, 'A'])).answer;
    expect(await answer('app.example.org')).toEqual(lines('app.example.org. 3600 IN A 10.2.0.1'));
    expect((await dig(server.port, ['new.example.org', 'A'])).status).toBe('SERVFAIL');
    const before = value(await metrics(server), 'coredns_hosts_entries', { hostsfile: hostsPath });

    await writeFile(hostsPath, '10.2.0.2 app.example.org\n10.2.0.3 new.example.org\n');
    await vi.waitFor(async () => expect(await answer('new.example.org')).toEqual(lines('new.example.org. 3600 IN A 10.2.0.3')), { timeout: 8000, interval: 200 });
    expect(await answer('app.example.org')).toEqual(lines('app.example.org. 3600 IN A 10.2.0.2'));
    expect(value(await metrics(server), 'coredns_hosts_entries', { hostsfile: hostsPath })).toBe(before! * 2);

    await rm(hostsPath);
    await server.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('cannot read the hosts file: keeping the entries last read'), 8000);
    expect(await answer('new.example.org')).toEqual(lines('new.example.org. 3600 IN A 10.2.0.3'));
  });

  it('a file missing at start: the inline entries serve, and the file is read once it appears', async () => {
    const { server, hostsPath } = await start(`.:PORT {
    bind 127.0.0.1
    hosts HOSTS_FILE.d/hosts {
        10.2.0.9 inline.example.org
        reload 1s
    }
}
`);
    const path = `${hostsPath}.d/hosts`;
    await server.waitForLog((line) => line.msg === 'cannot read the hosts file: serving the inline entries only until it can be read' && line.hostsfile === path);
    expect((await dig(server.port, ['inline.example.org', 'A'])).answer).toEqual(lines('inline.example.org. 3600 IN A 10.2.0.9'));
    await mkdir(`${hostsPath}.d`);
    await writeFile(path, '10.2.0.1 app.example.org\n');
    await vi.waitFor(async () => expect((await dig(server.port, ['app.example.org', 'A'])).answer).toEqual(lines('app.example.org. 3600 IN A 10.2.0.1')), { timeout: 8000, interval: 200 });
    expect((await dig(server.port, ['inline.example.org', 'A'])).answer).toEqual(lines('inline.example.org. 3600 IN A 10.2.0.9'));
  });

  it('reload 0 reads the file once, while a block beside it with reload 1s sees the change', async () => {
    const { server, hostsPath } = await start(`a.example:PORT {
    bind 127.0.0.1
    hosts HOSTS_FILE {
        reload 0
    }
}
b.example:PORT {
    bind 127.0.0.1
    hosts HOSTS_FILE {
        reload 1s
    }
}
`, '10.2.0.1 app.a.example app.b.example\n');
    const answer = async (name: string) => (await dig(server.port, [name, 'A'])).answer;
    await writeFile(hostsPath, '10.2.0.2 app.a.example app.b.example # changed\n');
    await vi.waitFor(async () => expect(await answer('app.b.example')).toEqual(lines('app.b.example. 3600 IN A 10.2.0.2')), { timeout: 8000, interval: 200 });
    // Past another interval of the other block's: still what it read at start.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(await answer('app.a.example')).toEqual(lines('app.a.example. 3600 IN A 10.2.0.1'));
  });

  it('a reloaded Corefile counts the file once', async () => {
    const corefile = (ttl: number): string => `.:PORT {
    bind 127.0.0.1
    prometheus 127.0.0.1:0
    reload 2s 100ms
    hosts HOSTS_FILE {
        ttl ${ttl}
    }
}
`;
    const { server, upstream, dir, hostsPath } = await start(corefile(60), '10.2.0.1 app.example.org\n');
    const entries = async () => select(await metrics(server), 'coredns_hosts_entries');
    expect(await entries()).toEqual([{ name: 'coredns_hosts_entries', labels: { hostsfile: hostsPath }, value: 2 }]);
    await writeFile(join(dir, 'Corefile'), corefile(90).replaceAll('HOSTS_FILE', hostsPath).replaceAll('UPSTREAM', upstream.address).replaceAll('PORT', String(server.port)));
    await vi.waitFor(async () => expect((await dig(server.port, ['app.example.org', 'A'])).answer).toEqual(lines('app.example.org. 90 IN A 10.2.0.1')), { timeout: 8000, interval: 200 });
    // The replaced chain lives on a while for queries in flight: the count is still one file's.
    expect(await entries()).toEqual([{ name: 'coredns_hosts_entries', labels: { hostsfile: hostsPath }, value: 2 }]);
  });
});

describe("hosts in k3s's Corefile, as written", () => {
  it('answers the nodes from NodeHosts, then the cluster zone, then forwards', async () => {
    const api = new FakeKubeApiServer();
    await api.start();
    cleanups.push(() => api.stop());
    api.create('namespaces', { metadata: { name: 'default' } });
    api.create('services', { metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.43.0.10', ports: [{ port: 80, protocol: 'TCP' }] } });
    const dir = await tempDir();
    // What k3s writes into the coredns ConfigMap's NodeHosts key: each node's address and name.
    await writeFile(join(dir, 'NodeHosts'), '10.0.0.11 server-0\n10.0.0.12 agent-0\n');
    await writeFile(join(dir, 'kubeconfig'), api.kubeconfigYaml());
    const upstream = await TestUpstream.start({ records: { 'www.example.test': { A: ['192.0.2.10'], ttl: 300 } } });
    cleanups.push(() => upstream.stop());
    const port = await freePort();
    const k3s = readFileSync(new URL('./fixtures/corefiles/k3s.Corefile', import.meta.url), 'utf8')
      .replace('.:53 {', `.:${port} {\n    bind 127.0.0.1`)
      .replace(/^(\s*)(health|ready)$/gm, '$1$2 127.0.0.1:0')
      .replace('prometheus :9153', 'prometheus 127.0.0.1:0')
      .replaceAll('/etc/coredns/', `${dir}/`)
      .replace('forward . /etc/resolv.conf', `forward . ${upstream.address}`);
    await writeFile(join(dir, 'Corefile'), k3s);
    const server = await startServer([], '127.0.0.1', { corefile: join(dir, 'Corefile'), env: { KUBECONFIG: join(dir, 'kubeconfig') } });
    cleanups.push(() => server.stop());
    await vi.waitFor(async () => expect((await dig(server.port, ['web.default.svc.cluster.local', 'A'])).answer).toEqual(lines('web.default.svc.cluster.local. 5 IN A 10.43.0.10')), { timeout: 10_000, interval: 100 });
    expect((await dig(server.port, ['agent-0', 'A'])).answer).toEqual(lines('agent-0. 60 IN A 10.0.0.12'));
    expect((await dig(server.port, ['-x', '10.0.0.11'])).answer).toEqual(lines('11.0.0.10.in-addr.arpa. 60 IN PTR server-0.'));
    // Through `cache 30`, which caps the upstream's 300.
    expect((await dig(server.port, ['www.example.test', 'A'])).answer).toEqual(lines('www.example.test. 30 IN A 192.0.2.10'));
    expect(upstream.queriesFor('agent-0')).toHaveLength(0);
  });
});
