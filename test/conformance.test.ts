/**
 * The cluster-zone rules (shared/k8s-dns-rules.md; Kubernetes DNS spec 1.1.0 sections named per row) as one
 * table of cases in zone-file text, run against the whole server process over UDP and TCP with dig, and over
 * UDP with Node's own resolver (c-ares). Sections are compared order-free; SOA serials are masked.
 */
import { Resolver } from 'node:dns/promises';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig, lines } from './support/dig.js';
import { startServer, type ServerProcess } from './support/server-process.js';

const FIXTURE = 'test/fixtures/conformance-cluster.yaml';
const SOA = 'cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. SERIAL 7200 1800 86400 5';
const REVERSE_SOA = 'in-addr.arpa. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. SERIAL 7200 1800 86400 5';
const NXDOMAIN = { rcode: 'NXDOMAIN', authority: [SOA] } as const;
const NODATA = { rcode: 'NOERROR', answer: [], authority: [SOA] } as const;

interface Case {
  /** `name TYPE`, as typed to dig. */
  readonly q: string;
  readonly rcode: string;
  readonly answer?: readonly string[];
  readonly authority?: readonly string[];
  readonly additional?: readonly string[];
  /** Authoritative answer flag; true unless said otherwise. */
  readonly aa?: boolean;
}

const W = 'web.default.svc.cluster.local.';
const DB = 'db.default.svc.cluster.local.';

const CASES: Record<string, Case> = {
  // §2.3.1 ClusterIP A/AAAA, dual-stack
  'ClusterIP A': { q: 'web.default.svc.cluster.local A', rcode: 'NOERROR', answer: [`${W} 5 IN A 10.96.0.20`] },
  'ClusterIP AAAA (dual-stack)': { q: 'web.default.svc.cluster.local AAAA', rcode: 'NOERROR', answer: [`${W} 5 IN AAAA fd00::20`] },
  'service name, no TXT: NODATA': { q: 'web.default.svc.cluster.local TXT', ...NODATA },
  'IPv4-only service, AAAA: NODATA': { q: 'lonely.default.svc.cluster.local AAAA', ...NODATA },
  'no endpoints still has its VIP': { q: 'lonely.default.svc.cluster.local A', rcode: 'NOERROR', answer: ['lonely.default.svc.cluster.local. 5 IN A 10.96.0.30'] },
  // §2.3.2 SRV for named ports; targets' addresses in additional
  'ClusterIP named TCP port SRV': {
    q: '_http._tcp.web.default.svc.cluster.local SRV',
    rcode: 'NOERROR',
    answer: [`_http._tcp.${W} 5 IN SRV 0 100 80 ${W}`],
    additional: [`${W} 5 IN A 10.96.0.20`, `${W} 5 IN AAAA fd00::20`],
  },
  'ClusterIP named UDP port SRV': {
    q: '_dns._udp.web.default.svc.cluster.local SRV',
    rcode: 'NOERROR',
    answer: [`_dns._udp.${W} 5 IN SRV 0 100 53 ${W}`],
    additional: [`${W} 5 IN A 10.96.0.20`, `${W} 5 IN AAAA fd00::20`],
  },
  'unknown port name: NXDOMAIN': { q: '_https._tcp.web.default.svc.cluster.local SRV', ...NXDOMAIN },
  'port name with the wrong protocol: NXDOMAIN': { q: '_http._udp.web.default.svc.cluster.local SRV', ...NXDOMAIN },
  'protocol label alone is an empty non-terminal: NODATA': { q: '_tcp.web.default.svc.cluster.local SRV', ...NODATA },
  'SRV on the service name lists every port, named or not (CoreDNS)': {
    q: 'web.default.svc.cluster.local SRV',
    rcode: 'NOERROR',
    answer: [`${W} 5 IN SRV 0 33 80 ${W}`, `${W} 5 IN SRV 0 33 53 ${W}`, `${W} 5 IN SRV 0 33 8443 ${W}`],
    additional: [`${W} 5 IN A 10.96.0.20`, `${W} 5 IN AAAA fd00::20`],
  },
  // §2.3.3 PTR
  'PTR of an IPv4 cluster IP': { q: '20.0.96.10.in-addr.arpa PTR', rcode: 'NOERROR', answer: [`20.0.96.10.in-addr.arpa. 5 IN PTR ${W}`] },
  'PTR of an IPv6 cluster IP': {
    q: '0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa PTR',
    rcode: 'NOERROR',
    answer: [`0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 5 IN PTR ${W}`],
  },
  'PTR of a ready endpoint of a ClusterIP service (CoreDNS)': {
    q: '5.1.244.10.in-addr.arpa PTR',
    rcode: 'NOERROR',
    answer: [`5.1.244.10.in-addr.arpa. 5 IN PTR 10-244-1-5.${W}`],
  },
  'PTR of an address that is no cluster address: NXDOMAIN': { q: '1.1.168.192.in-addr.arpa PTR', rcode: 'NXDOMAIN', authority: [REVERSE_SOA] },
  'reverse empty non-terminal: NODATA': { q: '0.96.10.in-addr.arpa PTR', rcode: 'NOERROR', answer: [], authority: [REVERSE_SOA] },
  'IPv6 reverse empty non-terminal: NODATA': { q: 'd.f.ip6.arpa PTR', rcode: 'NOERROR', answer: [], authority: [REVERSE_SOA.replace('in-addr.arpa.', 'ip6.arpa.')] },
  'IPv6 reverse prefix with no address below: NXDOMAIN': { q: 'e.f.ip6.arpa PTR', rcode: 'NXDOMAIN', authority: [REVERSE_SOA.replace('in-addr.arpa.', 'ip6.arpa.')] },
  'reverse label with a leading zero is no address: NXDOMAIN': { q: '020.0.96.10.in-addr.arpa PTR', rcode: 'NXDOMAIN', authority: [REVERSE_SOA] },
  'PTR name, A query: NODATA': { q: '20.0.96.10.in-addr.arpa A', rcode: 'NOERROR', answer: [], authority: [REVERSE_SOA] },
  'endpoint name of a ClusterIP service (CoreDNS)': { q: '10-244-1-5.web.default.svc.cluster.local A', rcode: 'NOERROR', answer: [`10-244-1-5.${W} 5 IN A 10.244.1.5`] },
  'not-ready endpoint has no name': { q: '10-244-1-6.web.default.svc.cluster.local A', ...NXDOMAIN },
  'a name below an endpoint name: NXDOMAIN': { q: 'x.10-244-1-5.web.default.svc.cluster.local A', ...NXDOMAIN },
  // §2.4.1 headless: ready endpoints, merged across slices, each address once, dual-stack
  'headless A: ready endpoints of all slices, once each': {
    q: 'db.default.svc.cluster.local A',
    rcode: 'NOERROR',
    answer: [`${DB} 5 IN A 10.244.2.10`, `${DB} 5 IN A 10.244.2.11`, `${DB} 5 IN A 10.244.2.12`],
  },
  'headless AAAA from the IPv6 slice': { q: 'db.default.svc.cluster.local AAAA', rcode: 'NOERROR', answer: [`${DB} 5 IN AAAA fd00::2:a`] },
  'endpoint hostname': { q: 'db-0.db.default.svc.cluster.local A', rcode: 'NOERROR', answer: [`db-0.${DB} 5 IN A 10.244.2.10`] },
  'endpoint hostname, AAAA: NODATA': { q: 'db-0.db.default.svc.cluster.local AAAA', ...NODATA },
  'endpoint without hostname: dashed IPv4': { q: '10-244-2-12.db.default.svc.cluster.local A', rcode: 'NOERROR', answer: [`10-244-2-12.${DB} 5 IN A 10.244.2.12`] },
  'endpoint without hostname: dashed IPv6': { q: 'fd00--2-a.db.default.svc.cluster.local AAAA', rcode: 'NOERROR', answer: [`fd00--2-a.${DB} 5 IN AAAA fd00::2:a`] },
  'terminating endpoint is not answered': { q: '10-244-2-13.db.default.svc.cluster.local A', ...NXDOMAIN },
  'headless with no ready endpoints: NXDOMAIN (§2.4.1)': { q: 'notready.default.svc.cluster.local A', ...NXDOMAIN },
  'publishNotReadyAddresses answers not-ready endpoints': {
    q: 'publish.default.svc.cluster.local A',
    rcode: 'NOERROR',
    answer: ['publish.default.svc.cluster.local. 5 IN A 10.244.3.1'],
  },
  // §2.4.2 headless SRV: one per named port × ready endpoint
  'headless named port SRV': {
    q: '_postgres._tcp.db.default.svc.cluster.local SRV',
    rcode: 'NOERROR',
    answer: [
      `_postgres._tcp.${DB} 5 IN SRV 0 25 5432 db-0.${DB}`,
      `_postgres._tcp.${DB} 5 IN SRV 0 25 5432 db-1.${DB}`,
      `_postgres._tcp.${DB} 5 IN SRV 0 25 5432 10-244-2-12.${DB}`,
      `_postgres._tcp.${DB} 5 IN SRV 0 25 5432 fd00--2-a.${DB}`,
    ],
    additional: [
      `db-0.${DB} 5 IN A 10.244.2.10`,
      `db-1.${DB} 5 IN A 10.244.2.11`,
      `10-244-2-12.${DB} 5 IN A 10.244.2.12`,
      `fd00--2-a.${DB} 5 IN AAAA fd00::2:a`,
    ],
  },
  // §2.4.3 headless PTR
  'PTR of a headless endpoint with hostname': { q: '10.2.244.10.in-addr.arpa PTR', rcode: 'NOERROR', answer: [`10.2.244.10.in-addr.arpa. 5 IN PTR db-0.${DB}`] },
  // §2.5 ExternalName
  'ExternalName: CNAME for A': { q: 'ext.default.svc.cluster.local A', rcode: 'NOERROR', answer: ['ext.default.svc.cluster.local. 5 IN CNAME example.com.'] },
  'ExternalName: CNAME for TXT': { q: 'ext.default.svc.cluster.local TXT', rcode: 'NOERROR', answer: ['ext.default.svc.cluster.local. 5 IN CNAME example.com.'] },
  'ExternalName: CNAME query': { q: 'ext.default.svc.cluster.local CNAME', rcode: 'NOERROR', answer: ['ext.default.svc.cluster.local. 5 IN CNAME example.com.'] },
  'ExternalName to an in-zone name is followed': {
    q: 'alias.default.svc.cluster.local A',
    rcode: 'NOERROR',
    answer: [`alias.default.svc.cluster.local. 5 IN CNAME ${W}`, `${W} 5 IN A 10.96.0.20`],
  },
  // Namespaces and empty non-terminals
  'same name in another namespace': { q: 'web.other.svc.cluster.local A', rcode: 'NOERROR', answer: ['web.other.svc.cluster.local. 5 IN A 10.96.0.40'] },
  'wrong namespace: NXDOMAIN': { q: 'db.other.svc.cluster.local A', ...NXDOMAIN },
  'unknown service: NXDOMAIN': { q: 'nosuch.default.svc.cluster.local A', ...NXDOMAIN },
  'unknown namespace: NXDOMAIN': { q: 'nons.svc.cluster.local A', ...NXDOMAIN },
  'namespace name: NODATA': { q: 'default.svc.cluster.local A', ...NODATA },
  'namespace without services: NODATA': { q: 'empty-ns.svc.cluster.local A', ...NODATA },
  'svc.<zone>: NODATA': { q: 'svc.cluster.local A', ...NODATA },
  'a name below a name that does not exist: NXDOMAIN': { q: 'a.nosuch.default.svc.cluster.local A', ...NXDOMAIN },
  'an escaped dot is part of a label, not a separator': { q: 'web\\.default.svc.cluster.local A', ...NXDOMAIN },
  // Zone apex, schema version
  'SOA at the apex': { q: 'cluster.local SOA', rcode: 'NOERROR', answer: [SOA] },
  'NS at the apex, glue in additional': {
    q: 'cluster.local NS',
    rcode: 'NOERROR',
    answer: ['cluster.local. 5 IN NS ns.dns.cluster.local.'],
    additional: ['ns.dns.cluster.local. 5 IN A 127.0.0.1'],
  },
  'the name server name resolves': { q: 'ns.dns.cluster.local A', rcode: 'NOERROR', answer: ['ns.dns.cluster.local. 5 IN A 127.0.0.1'] },
  'dns-version TXT (§2.2)': { q: 'dns-version.cluster.local TXT', rcode: 'NOERROR', answer: ['dns-version.cluster.local. 28800 IN TXT "1.1.0"'] },
  // Pod records, pods insecure (the default)
  'pod record of a known pod': { q: '10-244-1-5.default.pod.cluster.local A', rcode: 'NOERROR', answer: ['10-244-1-5.default.pod.cluster.local. 5 IN A 10.244.1.5'] },
  'pods insecure: any address in an existing namespace': { q: '1-2-3-4.default.pod.cluster.local A', rcode: 'NOERROR', answer: ['1-2-3-4.default.pod.cluster.local. 5 IN A 1.2.3.4'] },
  'pods insecure: IPv6 pod name': { q: 'fd00--9.default.pod.cluster.local AAAA', rcode: 'NOERROR', answer: ['fd00--9.default.pod.cluster.local. 5 IN AAAA fd00::9'] },
  'pod name in an unknown namespace: NXDOMAIN': { q: '1-2-3-4.nons.pod.cluster.local A', ...NXDOMAIN },
  'pod name that is not an address: NXDOMAIN': { q: 'abc.default.pod.cluster.local A', ...NXDOMAIN },
  'pod name, AAAA for an IPv4 pod: NODATA': { q: '1-2-3-4.default.pod.cluster.local AAAA', ...NODATA },
  'pod namespace name: NODATA': { q: 'default.pod.cluster.local A', ...NODATA },
  // Outside every zone (forwarding comes later)
  'a name outside the zones: REFUSED': { q: 'example.org A', rcode: 'REFUSED', answer: [], aa: false },
};

function normalise(records: readonly string[]): string[] {
  return lines(...records.map((record) => record.replace(/( SOA \S+ \S+ )\d+ /, '$1SERIAL ')));
}

describe('cluster zone conformance (spec 1.1.0)', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer(['--manifests', FIXTURE]);
  });
  afterAll(async () => {
    await server?.stop();
  });

  for (const transport of ['udp', 'tcp'] as const) {
    describe(`dig over ${transport}`, () => {
      for (const [title, c] of Object.entries(CASES)) {
        it(title, async () => {
          const [name, type] = c.q.split(' ') as [string, string];
          const result = await dig(server.port, [name, type, ...(transport === 'tcp' ? ['+tcp'] : ['+notcp'])]);
          expect(result.status).toBe(c.rcode);
          expect(result.flags.includes('aa')).toBe(c.aa ?? true);
          expect(result.flags).not.toContain('tc');
          expect(normalise(result.answer)).toEqual(normalise(c.answer ?? []));
          expect(normalise(result.authority)).toEqual(normalise(c.authority ?? []));
          expect(normalise(result.additional)).toEqual(normalise(c.additional ?? []));
        });
      }
    });
  }

  describe("Node's resolver (c-ares) over udp", () => {
    const dataOf = (record: string): string => record.split(' ').slice(4).join(' ');
    for (const [title, c] of Object.entries(CASES)) {
      const [name, type] = c.q.split(' ') as [string, string];
      if (!['A', 'AAAA', 'SRV', 'PTR', 'TXT', 'CNAME'].includes(type) || name.includes('\\')) continue;
      it(title, async () => {
        const resolver = new Resolver({ timeout: 2000, tries: 1 });
        resolver.setServers([`127.0.0.1:${server.port}`]);
        const wanted = (c.answer ?? []).filter((record) => record.split(' ')[3] === type).map(dataOf);
        const call = (): Promise<unknown> => {
          switch (type) {
            case 'A': return resolver.resolve4(name);
            case 'AAAA': return resolver.resolve6(name);
            case 'SRV': return resolver.resolveSrv(name).then((srv) => srv.map((s) => `${s.priority} ${s.weight} ${s.port} ${s.name}.`));
            case 'PTR': return resolver.resolvePtr(name).then((names) => names.map((n) => `${n}.`));
            case 'TXT': return resolver.resolveTxt(name).then((texts) => texts.map((t) => `"${t.join('')}"`));
            default: return resolver.resolveCname(name).then((names) => names.map((n) => `${n}.`));
          }
        };
        if (c.rcode === 'NXDOMAIN') return expect(call()).rejects.toMatchObject({ code: 'ENOTFOUND' });
        if (c.rcode === 'REFUSED') return expect(call()).rejects.toMatchObject({ code: 'EREFUSED' });
        // c-ares returns an empty list for a CNAME with no records of the asked type behind it (ExternalName).
        if (wanted.length === 0 && (c.answer ?? []).length > 0) return expect(await call()).toEqual([]);
        if (wanted.length === 0) return expect(call()).rejects.toMatchObject({ code: 'ENODATA' });
        expect(((await call()) as string[]).slice().sort()).toEqual(wanted.sort());
      });
    }
  });

  it('echoes the question\'s own case in the question and the owner names (§2.1)', async () => {
    const result = await dig(server.port, ['WEB.Default.SVC.cluster.local', 'A']);
    expect(result.status).toBe('NOERROR');
    expect(result.answer).toEqual(['WEB.Default.SVC.cluster.local. 5 IN A 10.96.0.20']);
    expect(result.raw).toMatch(/;WEB\.Default\.SVC\.cluster\.local\.\s+IN\s+A/);
  });

  it('answers ANY with every record at the name', async () => {
    const result = await dig(server.port, ['web.default.svc.cluster.local', 'ANY', '+tcp']);
    expect(result.status).toBe('NOERROR');
    expect(normalise(result.answer)).toEqual(normalise([
      `${W} 5 IN A 10.96.0.20`,
      `${W} 5 IN AAAA fd00::20`,
      `${W} 5 IN SRV 0 33 80 ${W}`,
      `${W} 5 IN SRV 0 33 53 ${W}`,
      `${W} 5 IN SRV 0 33 8443 ${W}`,
    ]));
  });
});

describe('NS glue', () => {
  it('is the cluster IP of the service whose endpoint is this server, as CoreDNS finds kube-dns', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clusterdns-glue-'));
    await writeFile(join(dir, 'dns.yaml'), [
      'apiVersion: v1\nkind: Service\nmetadata: {name: kube-dns, namespace: kube-system}\nspec: {clusterIP: 10.96.0.10, ports: [{name: dns, port: 53, protocol: UDP}]}',
      'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: kube-dns-1, namespace: kube-system, labels: {kubernetes.io/service-name: kube-dns}}\naddressType: IPv4\nendpoints: [{addresses: [127.0.0.1]}]',
    ].join('\n---\n'));
    const server = await startServer(['--manifests', join(dir, 'dns.yaml')]);
    try {
      const result = await dig(server.port, ['cluster.local', 'NS']);
      expect(result.additional).toEqual(['ns.dns.cluster.local. 5 IN A 10.96.0.10']);
    } finally {
      await server.stop();
    }
  });
});

describe('pod modes', () => {
  it('pods verified: only addresses of pods that exist in that namespace', async () => {
    const server = await startServer(['--manifests', FIXTURE, '--pods', 'verified']);
    try {
      expect((await dig(server.port, ['10-244-1-5.default.pod.cluster.local', 'A'])).answer)
        .toEqual(['10-244-1-5.default.pod.cluster.local. 5 IN A 10.244.1.5']);
      expect((await dig(server.port, ['1-2-3-4.default.pod.cluster.local', 'A'])).status).toBe('NXDOMAIN');
      expect((await dig(server.port, ['10-244-9-9.default.pod.cluster.local', 'A'])).status).toBe('NXDOMAIN');
      expect((await dig(server.port, ['10-244-9-9.other.pod.cluster.local', 'A'])).status).toBe('NOERROR');
      // A finished pod (phase Succeeded) no longer owns its address.
      expect((await dig(server.port, ['10-244-9-10.default.pod.cluster.local', 'A'])).status).toBe('NXDOMAIN');
      expect((await dig(server.port, ['empty-ns.pod.cluster.local', 'A'])).status).toBe('NXDOMAIN');
    } finally {
      await server.stop();
    }
  });

  it('pods disabled: no pod records, pod.<zone> does not exist', async () => {
    const server = await startServer(['--manifests', FIXTURE, '--pods', 'disabled']);
    try {
      expect((await dig(server.port, ['10-244-1-5.default.pod.cluster.local', 'A'])).status).toBe('NXDOMAIN');
      expect((await dig(server.port, ['pod.cluster.local', 'A'])).status).toBe('NXDOMAIN');
    } finally {
      await server.stop();
    }
  });

  it('serves another cluster domain and a longer TTL when asked', async () => {
    const server = await startServer(['--manifests', FIXTURE, '--zone', 'corp.example', '--ttl', '30']);
    try {
      expect((await dig(server.port, ['web.default.svc.corp.example', 'A'])).answer).toEqual(['web.default.svc.corp.example. 30 IN A 10.96.0.20']);
      expect((await dig(server.port, ['web.default.svc.cluster.local', 'A'])).status).toBe('REFUSED');
    } finally {
      await server.stop();
    }
  });
});
