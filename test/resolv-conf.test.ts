/**
 * The resolv.conf parser against glibc 2.36. Every row's expectation is what res_ninit() read from the same text
 * on Debian 12 (a throwaway C program printing _res after bind-mounting the text over /etc/resolv.conf), except
 * the search list past 6 entries, which _res cannot show: test/glibc.test.ts has getent try all of a longer one.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseResolvConf, podResolvConf, readResolvConf, type ResolvConf, type ResolvConfContext } from '../src/config/resolv-conf.js';

interface Row {
  readonly text: string;
  readonly context?: ResolvConfContext;
  readonly want: Partial<Omit<ResolvConf, 'nameservers'>> & { readonly nameservers?: readonly string[] };
}

const ns = (...hosts: string[]): readonly string[] => hosts;

const ROWS: Record<string, Row> = {
  'an empty file: glibc asks 127.0.0.1, no search list, ndots 1, timeout 5, attempts 2': {
    text: '',
    want: { nameservers: ns('127.0.0.1'), defaultNameserver: true, search: [], ndots: 1, timeout: 5, attempts: 2, rotate: false },
  },
  'a pod resolv.conf': {
    text: 'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n',
    want: { nameservers: ns('10.96.0.10'), defaultNameserver: false, search: ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'], ndots: 5 },
  },
  'nameservers: IPv4, IPv6, scoped IPv6; only the first 3 (MAXNS)': {
    text: 'nameserver 1.2.3.4\nnameserver ::1\nnameserver fe80::1%eth0\nnameserver 5.5.5.5\n',
    want: { nameservers: ns('1.2.3.4', '::1', 'fe80::1%eth0') },
  },
  'nameserver: trailing words are ignored, trailing characters are not': {
    text: 'nameserver 1.2.3.4 # the router\nnameserver 1.2.3.5foo\nnameserver\t1.2.3.6\n',
    want: { nameservers: ns('1.2.3.4', '1.2.3.6') },
  },
  'nameserver: inet_aton shorthand, octal and hex': {
    text: 'nameserver 10.1\nnameserver 010.0.0.1\nnameserver 0x7f.1\n',
    want: { nameservers: ns('10.0.0.1', '8.0.0.1', '127.0.0.1') },
  },
  'nameserver: IPv6 written long is the same server': {
    text: 'nameserver FD00:0:0:0:0:0:0:0A\n',
    want: { nameservers: ns('fd00::a') },
  },
  'DOS line ends: the CR makes every nameserver invalid, and stays on the last search domain': {
    text: 'nameserver 1.2.3.4\r\nsearch a b\r\n',
    want: { nameservers: ns('127.0.0.1'), defaultNameserver: true, search: ['a', 'b\r'] },
  },
  'comments start with # or ; in the first column; an indented line is ignored whatever it says': {
    text: '#nameserver 7.7.7.7\n;search x\n nameserver 9.9.9.9\nnameserver 8.8.8.8\n',
    want: { nameservers: ns('8.8.8.8'), search: [] },
  },
  'keywords are lower case and need a space or a tab after them': {
    text: 'SEARCH a\nsearchb\nnameserver 1.1.1.1\n',
    want: { search: [] },
  },
  'no comment at the end of a search line: # is a domain': {
    text: 'search a\tb  c # d\n',
    want: { search: ['a', 'b', 'c', '#', 'd'] },
  },
  'domain after search wins, and keeps one word': {
    text: 'search a b\ndomain c d\n',
    want: { search: ['c'], searchLine: ['a', 'b'] },
  },
  'search after domain wins': {
    text: 'domain c\nsearch a b\n',
    want: { search: ['a', 'b'], searchLine: ['a', 'b'] },
  },
  'an empty search line changes nothing': {
    text: 'search a b\nsearch \t \n',
    want: { search: ['a', 'b'] },
  },
  'the root and trailing dots stay as written': {
    text: 'search . a.\n',
    want: { search: ['.', 'a.'] },
  },
  'no search limit of 6 domains any more (glibc 2.26)': {
    text: 'search a b c d e f g h\n',
    want: { search: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'] },
  },
  "without search or domain, the host name's domain is the search list": {
    text: 'nameserver 1.1.1.1\n',
    context: { hostname: 'host1.corp.example' },
    want: { search: ['corp.example'] },
  },
  'a host name without a dot gives no search list': {
    text: '',
    context: { hostname: 'vm' },
    want: { search: [] },
  },
  'caps: ndots 15, timeout 30, attempts 5': {
    text: 'options ndots:20 timeout:99 attempts:9\n',
    want: { ndots: 15, timeout: 30, attempts: 5 },
  },
  'zero is kept: timeout:0 and attempts:0 (glibc then waits 1 s, and sends nothing)': {
    text: 'options ndots:0 timeout:0 attempts:0\n',
    want: { ndots: 0, timeout: 0, attempts: 0 },
  },
  "negative ndots wraps in glibc's 4-bit field; a negative timeout is kept": {
    text: 'options ndots:-1 timeout:-1\noptions ndots:-2\n',
    want: { ndots: 14, timeout: -1 },
  },
  'numbers read as atoi does: a space after the colon, trailing letters': {
    text: 'options ndots: 3 attempts:4x\n',
    want: { ndots: 3, attempts: 4 },
  },
  'options lines accumulate, later values win': {
    text: 'options ndots:2 ndots:4 timeout:3\noptions\tattempts:1\n',
    want: { ndots: 4, timeout: 3, attempts: 1 },
  },
  'flags match by prefix; unknown options are ignored': {
    text: 'options rotatex edns0 no-tld-query no-aaaa trust-ad use-vc single-request-reopen bogus\n',
    want: { rotate: true, edns0: true, noTldQuery: true, noAaaa: true, trustAd: true, useVc: true, singleRequestReopen: true, singleRequest: false },
  },
  'RES_OPTIONS applies after the file': {
    text: 'options ndots:3 timeout:2\n',
    context: { env: { RES_OPTIONS: 'ndots:7 attempts:3 rotate' } },
    want: { ndots: 7, timeout: 2, attempts: 3, rotate: true },
  },
  'LOCALDOMAIN replaces the search list, and the host name default': {
    text: 'search a b\n',
    context: { env: { LOCALDOMAIN: 'x  y' }, hostname: 'h.example' },
    want: { search: ['x', 'y'], searchLine: ['a', 'b'] },
  },
};

describe('parseResolvConf: glibc 2.36 rules', () => {
  for (const [title, row] of Object.entries(ROWS)) {
    it(title, () => {
      const conf = parseResolvConf(row.text, row.context);
      const { nameservers, ...rest } = row.want;
      expect(conf).toMatchObject(rest);
      if (nameservers) expect(conf.nameservers).toEqual(nameservers.map((host) => ({ host, port: 53 })));
      expect(Object.isFrozen(conf) && Object.isFrozen(conf.nameservers) && Object.isFrozen(conf.search)).toBe(true);
    });
  }

  it('says which lines it passed over, and why', () => {
    const conf = parseResolvConf('nameserver 1.2.3.4\nnameserver 1.1.1.1\nnameserver ::1\nnameserver 2.2.2.2\nnameserver bogus\n  search x\noptions ndots:2 frob\n', {
      source: '/etc/resolv.conf',
    });
    expect(conf.source).toBe('/etc/resolv.conf');
    expect(conf.ignored).toEqual([
      { line: 4, text: 'nameserver 2.2.2.2', reason: 'only the first 3 nameservers are used' },
      { line: 5, text: 'nameserver bogus', reason: '"bogus" is not an IP address: ignored' },
      { line: 6, text: '  search x', reason: 'not a resolv.conf keyword at the start of the line: ignored' },
      { line: 7, text: 'options ndots:2 frob', reason: 'unknown option "frob": ignored' },
    ]);
  });
});

describe('readResolvConf', () => {
  it('reads a file and names it as the source; an unreadable path is a ConfigError naming it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clusterdns-resolv-'));
    try {
      await writeFile(join(dir, 'resolv.conf'), 'nameserver 10.0.0.2\n');
      const conf = await readResolvConf(join(dir, 'resolv.conf'));
      expect(conf).toMatchObject({ source: join(dir, 'resolv.conf'), nameservers: [{ host: '10.0.0.2', port: 53 }] });
      await expect(readResolvConf(join(dir, 'missing'))).rejects.toMatchObject({ code: 'E_CONFIG', message: expect.stringMatching(/missing: cannot read: .*ENOENT/) });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('podResolvConf: what the kubelet writes for dnsPolicy ClusterFirst', () => {
  const pod = { namespace: 'shop', zone: 'cluster.local', nameservers: [{ host: '10.96.0.10', port: 53 }] };

  it('cluster search domains first, then the host search line without trailing dots or duplicates; ndots 5, no host options', () => {
    const host = parseResolvConf('search corp.example. cluster.local\ndomain ignored.example\nnameserver 192.168.1.1\noptions ndots:2 rotate timeout:1\n');
    const conf = podResolvConf(host, pod);
    expect(conf).toMatchObject({
      search: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'corp.example'],
      nameservers: [{ host: '10.96.0.10', port: 53 }],
      ndots: 5,
      timeout: 5,
      attempts: 2,
      rotate: false,
    });
  });

  it("cuts to the kubelet's limits: 32 domains, none over 253 characters, 2048 characters in all", () => {
    const many = Array.from({ length: 40 }, (_, i) => `d${i}.example`);
    expect(podResolvConf(parseResolvConf(`search ${many.join(' ')}\n`), pod).search).toHaveLength(32);
    const long = `${'a'.repeat(61)}.`.repeat(4) + 'example';
    expect(podResolvConf(parseResolvConf(`search ${long} ok.example\n`), pod).search).toEqual(['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'ok.example']);
    const wide = Array.from({ length: 25 }, (_, i) => `${String(i).padStart(2, '0')}${'x'.repeat(95)}.example`);
    const search = podResolvConf(parseResolvConf(`search ${wide.join(' ')}\n`), pod).search;
    expect(search.join(' ').length).toBeLessThanOrEqual(2048);
    expect(search.length).toBe(3 + 18);
  });
});
