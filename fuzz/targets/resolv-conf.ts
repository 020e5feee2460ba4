/**
 * Target `resolv-conf`: resolv.conf text through glibc's rules (src/config/resolv-conf.ts), and the pod
 * resolv.conf the kubelet would write from it. Invariant: it never throws; the result is within glibc's limits
 * (1 to MAXNS canonical IP nameservers, ndots 0..15, timeout ≤ 30, attempts ≤ 5, search words without blanks,
 * every ignored line a real line of the text); written back out as resolv.conf it parses to the same
 * configuration; and the pod's search list starts with the cluster's three domains within the kubelet's limits.
 */
import { isIP } from 'node:net';
import { canonicalIp } from '../../src/ip.js';
import {
  KUBELET_MAX_SEARCH_CHARS,
  KUBELET_MAX_SEARCH_DOMAINS,
  MAXNS,
  parseResolvConf,
  podResolvConf,
  RES_MAXNDOTS,
  RES_MAXRETRANS,
  RES_MAXRETRY,
  type ResolvConf,
} from '../../src/config/resolv-conf.js';
import { assert, type FuzzTarget } from '../harness.js';

const FLAGS: ReadonlyArray<readonly [keyof ResolvConf, string]> = [
  ['rotate', 'rotate'], ['noAaaa', 'no-aaaa'], ['noTldQuery', 'no-tld-query'], ['edns0', 'edns0'], ['useVc', 'use-vc'],
  ['singleRequest', 'single-request'], ['singleRequestReopen', 'single-request-reopen'], ['trustAd', 'trust-ad'],
];

/** The configuration as resolv.conf text. */
function render(conf: ResolvConf): string {
  const servers = conf.defaultNameserver ? [] : conf.nameservers.map((server) => `nameserver ${server.host}\n`);
  const search = conf.search.length === 0 ? '' : `search ${conf.search.join(' ')}\n`;
  const flags = FLAGS.filter(([field]) => conf[field] === true).map(([, token]) => ` ${token}`).join('');
  return `${servers.join('')}${search}options ndots:${conf.ndots} timeout:${conf.timeout} attempts:${conf.attempts}${flags}\n`;
}

const settings = (conf: ResolvConf): string => JSON.stringify({ ...conf, source: undefined, ignored: undefined, searchLine: undefined });

const HOST = { hostname: 'node-1.example.internal', env: {} };

export const target: FuzzTarget = {
  name: 'resolv-conf',
  check(data) {
    const text = data.toString('latin1');
    const conf = parseResolvConf(text, HOST);
    const lines = text.split('\n');
    assert(conf.nameservers.length >= 1 && conf.nameservers.length <= MAXNS, `${conf.nameservers.length} nameservers`);
    for (const { host, port } of conf.nameservers) {
      const address = host.split('%')[0]!;
      assert(isIP(address) !== 0 && canonicalIp(address) === address && port === 53, `nameserver ${host}`);
    }
    assert(Number.isInteger(conf.ndots) && conf.ndots >= 0 && conf.ndots <= RES_MAXNDOTS, `ndots ${conf.ndots}`);
    assert(Number.isInteger(conf.timeout) && conf.timeout <= RES_MAXRETRANS, `timeout ${conf.timeout}`);
    assert(Number.isInteger(conf.attempts) && conf.attempts <= RES_MAXRETRY, `attempts ${conf.attempts}`);
    for (const word of [...conf.search, ...conf.searchLine]) assert(word !== '' && !/[ \t\n]/.test(word), `search word ${JSON.stringify(word)}`);
    for (const entry of conf.ignored) assert(lines[entry.line - 1] === entry.text, `ignored line ${entry.line} is that line of the text`);
    const again = parseResolvConf(render(conf), HOST);
    assert(settings(again) === settings(conf), `written back and read again:\n${render(conf)}\n${settings(again)}\n${settings(conf)}`);

    const pod = podResolvConf(conf, { namespace: 'default', zone: 'cluster.local', nameservers: [{ host: '10.96.0.10', port: 53 }] });
    assert(pod.search.slice(0, 3).join(' ') === 'default.svc.cluster.local svc.cluster.local cluster.local', `pod search ${pod.search.join(' ')}`);
    assert(pod.search.length <= KUBELET_MAX_SEARCH_DOMAINS && pod.search.join(' ').length <= KUBELET_MAX_SEARCH_CHARS, 'within the kubelet limits');
    assert(pod.ndots === 5 && pod.nameservers.length === 1, 'ndots 5, the cluster DNS only');
  },
  dictionary: ['nameserver ', 'search ', 'domain ', 'options ', 'sortlist ', '\n', ' ', '\t', '\r', '#', ';', '%eth0', '::1', 'fe80::1', '0x7f.1',
    '010.0.0.1', '10.1', '255.255.255.255', '4294967295', 'ndots:', 'ndots:5', 'ndots:-1', 'timeout:', 'attempts:', 'rotate', 'edns0',
    'single-request', 'single-request-reopen', 'no-aaaa', 'no-tld-query', 'use-vc', 'trust-ad', 'inet6', '.', 'cluster.local'],
};
