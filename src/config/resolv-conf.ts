/**
 * resolv.conf as glibc's stub resolver reads it (glibc 2.36, resolv/res_init.c), and a pod's resolv.conf as the
 * kubelet writes it for dnsPolicy ClusterFirst (pkg/kubelet/network/dns/dns.go). Pure functions from text to a
 * frozen value; one reader for the file. Used for the default upstreams, the host's search domains and
 * `clusterdns resolve`.
 *
 * glibc's rules, each checked against res_ninit() and getent on glibc 2.36 (test/resolv-conf.test.ts):
 * - A keyword counts only at the very start of a line and followed by a space or a tab; lines starting with `#`
 *   or `;` are comments, and so, in effect, is every line glibc does not know (indented ones too). There are no
 *   comments at the end of a line: `search a # b` searches `a`, `#` and `b`.
 * - `domain` and `search` replace each other: the last one wins; a `search` or `domain` with nothing after it
 *   is ignored. `domain` keeps its first word only.
 * - `nameserver` takes the first word: IPv4 as inet_aton reads it (`10.1` is 10.0.0.1, `010.0.0.1` is
 *   8.0.0.1), else IPv6 with an optional `%scope`. Anything else, a CR from a DOS line end included, drops the
 *   line. Only the first MAXNS (3) are used; with none, glibc asks 127.0.0.1:53.
 * - The search list has no length limit since glibc 2.26 (resolv_conf.c keeps every entry; the old 6 domains /
 *   256 characters only bound the legacy `_res.dnsrch` copy); getent tried all 8 of an 8-entry list here.
 *   The kubelet has its own limits (32 domains, 2048 characters), applied in podResolvConf.
 * - Without `search` or `domain`, the search list is the host name's domain (what follows its first dot).
 * - `options` lines accumulate, tokens are matched by prefix (`rotatex` is `rotate`), `ndots:` `timeout:`
 *   `attempts:` read a number as atoi does (`ndots: 5` is 5, `ndots:3x` is 3), capped at 15, 30 and 5;
 *   unknown tokens are ignored. A negative ndots wraps in glibc's 4-bit field (-1 is 15). RES_OPTIONS applies
 *   after the file, LOCALDOMAIN replaces the file's search list.
 */
import { readFile } from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import { ConfigError } from '../errors.js';
import { canonicalIp, type HostPort } from '../ip.js';

/** glibc's limits and defaults (resolv/resolv.h). */
export const MAXNS = 3;
export const RES_MAXNDOTS = 15;
export const RES_MAXRETRANS = 30;
export const RES_MAXRETRY = 5;
export const RES_TIMEOUT = 5;
export const RES_DFLRETRY = 2;
const NAMESERVER_PORT = 53;

/** `host` is canonical IP text; an IPv6 scope stays attached (`fe80::1%eth0`), as Node's sockets take it. */
export type Nameserver = HostPort;

/** A line glibc passes over or only partly uses, and why: for `clusterdns resolve` and startup warnings. */
export interface IgnoredLine {
  readonly line: number;
  readonly text: string;
  readonly reason: string;
}

export interface ResolvConf {
  /** Where it came from, for messages: a path, or a description of a composed configuration. */
  readonly source: string;
  /** The servers glibc asks, in order: the first MAXNS valid `nameserver` lines, or 127.0.0.1:53 when none. */
  readonly nameservers: readonly Nameserver[];
  /** No valid `nameserver` line: `nameservers` is glibc's local default (a DNS server must not forward to it blindly). */
  readonly defaultNameserver: boolean;
  /** The search list glibc uses, entries as written (`.` and trailing dots included). */
  readonly search: readonly string[];
  /** The domains of the last `search` line, ignoring `domain`, LOCALDOMAIN and the host name: what the kubelet copies into pods. */
  readonly searchLine: readonly string[];
  readonly ndots: number;
  /** Seconds per try, as configured (glibc waits at least 1 s even for `timeout:0`). */
  readonly timeout: number;
  /** Tries per server, as configured (with 0 or less glibc sends nothing). */
  readonly attempts: number;
  readonly rotate: boolean;
  /** `no-aaaa` (glibc 2.36): getaddrinfo asks A only. */
  readonly noAaaa: boolean;
  /** `no-tld-query`: a name without dots is never asked as is. */
  readonly noTldQuery: boolean;
  readonly edns0: boolean;
  readonly useVc: boolean;
  readonly singleRequest: boolean;
  readonly singleRequestReopen: boolean;
  readonly trustAd: boolean;
  readonly ignored: readonly IgnoredLine[];
}

export interface ResolvConfContext {
  /** Named in messages; defaults to `resolv.conf`. */
  readonly source?: string;
  /** The host name, whose domain is the search list when the file has none (glibc's default). */
  readonly hostname?: string;
  /** RES_OPTIONS and LOCALDOMAIN, as glibc reads them from the environment. */
  readonly env?: { readonly RES_OPTIONS?: string | undefined; readonly LOCALDOMAIN?: string | undefined };
}

type Flag = 'rotate' | 'noAaaa' | 'noTldQuery' | 'edns0' | 'useVc' | 'singleRequest' | 'singleRequestReopen' | 'trustAd' | 'inet6' | 'noReload';

/** glibc's option table, in its order: the first prefix that matches wins, so the longer name comes first. */
const OPTION_FLAGS: ReadonlyArray<readonly [string, Flag]> = [
  ['inet6', 'inet6'],
  ['rotate', 'rotate'],
  ['edns0', 'edns0'],
  ['single-request-reopen', 'singleRequestReopen'],
  ['single-request', 'singleRequest'],
  ['no_tld_query', 'noTldQuery'],
  ['no-tld-query', 'noTldQuery'],
  ['no-reload', 'noReload'],
  ['use-vc', 'useVc'],
  ['trust-ad', 'trustAd'],
  ['no-aaaa', 'noAaaa'],
];

interface Options {
  ndots: number;
  timeout: number;
  attempts: number;
  flags: Set<Flag>;
}

/** Parses resolv.conf text the way glibc does; never throws. */
export function parseResolvConf(text: string, context: ResolvConfContext = {}): ResolvConf {
  const ignored: IgnoredLine[] = [];
  const nameservers: Nameserver[] = [];
  let search: string[] = [];
  let searchLine: string[] = [];
  const options: Options = { ndots: 1, timeout: RES_TIMEOUT, attempts: RES_DFLRETRY, flags: new Set() };
  const localDomain = context.env?.LOCALDOMAIN;
  if (localDomain !== undefined) search = splitWords(localDomain.split('\n')[0]!);

  // glibc reads with getline: a final line without a newline still counts; an empty last piece is no line.
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((raw, index) => {
    const line = index + 1;
    const keyword = /^(domain|search|nameserver|sortlist|options)[ \t]/.exec(raw)?.[1];
    if (keyword === undefined) {
      if (!/^[#;]/.test(raw) && raw.trim() !== '') ignored.push({ line, text: raw, reason: 'not a resolv.conf keyword at the start of the line: ignored' });
      return;
    }
    const rest = raw.slice(keyword.length);
    switch (keyword) {
      case 'domain':
      case 'search': {
        const words = keyword === 'domain' ? splitWords(rest).slice(0, 1) : splitWords(rest);
        if (words.length === 0) return;
        if (keyword === 'search') searchLine = words;
        if (localDomain !== undefined) ignored.push({ line, text: raw, reason: 'LOCALDOMAIN overrides it' });
        else search = words;
        return;
      }
      case 'nameserver': {
        const word = splitWords(rest)[0] ?? '';
        const host = nameserverAddress(word);
        if (host === undefined) ignored.push({ line, text: raw, reason: `${JSON.stringify(word)} is not an IP address: ignored` });
        else if (nameservers.length >= MAXNS) ignored.push({ line, text: raw, reason: `only the first ${MAXNS} nameservers are used` });
        else nameservers.push(Object.freeze({ host, port: NAMESERVER_PORT }));
        return;
      }
      case 'options':
        for (const token of setOptions(options, rest)) ignored.push({ line, text: raw, reason: `unknown option ${JSON.stringify(token)}: ignored` });
        return;
      default:
        // sortlist orders the addresses of an answer; nothing here looks at it.
        return;
    }
  });

  if (search.length === 0 && context.hostname?.includes('.')) search = [context.hostname.slice(context.hostname.indexOf('.') + 1)];
  if (context.env?.RES_OPTIONS !== undefined) setOptions(options, context.env.RES_OPTIONS);
  const defaultNameserver = nameservers.length === 0;
  if (defaultNameserver) nameservers.push(Object.freeze({ host: '127.0.0.1', port: NAMESERVER_PORT }));

  return Object.freeze({
    source: context.source ?? 'resolv.conf',
    nameservers: Object.freeze(nameservers),
    defaultNameserver,
    search: Object.freeze(search),
    searchLine: Object.freeze(searchLine),
    ndots: options.ndots,
    timeout: options.timeout,
    attempts: options.attempts,
    rotate: options.flags.has('rotate'),
    noAaaa: options.flags.has('noAaaa'),
    noTldQuery: options.flags.has('noTldQuery'),
    edns0: options.flags.has('edns0'),
    useVc: options.flags.has('useVc'),
    singleRequest: options.flags.has('singleRequest'),
    singleRequestReopen: options.flags.has('singleRequestReopen'),
    trustAd: options.flags.has('trustAd'),
    ignored: Object.freeze(ignored.map((entry) => Object.freeze(entry))),
  });
}

/** Reads and parses a resolv.conf file. A file that cannot be read is a ConfigError naming the path. */
export async function readResolvConf(path: string, context: Omit<ResolvConfContext, 'source'> = {}): Promise<ResolvConf> {
  let text: string;
  try {
    text = await readFile(path, 'latin1');
  } catch (error) {
    throw new ConfigError(`${path}: cannot read: ${(error as Error).message}`);
  }
  return parseResolvConf(text, { ...context, source: path });
}

/** The kubelet's limits on a pod's search list (ExpandedDNSConfig, GA in Kubernetes 1.28), and a name's. */
export const KUBELET_MAX_SEARCH_DOMAINS = 32;
export const KUBELET_MAX_SEARCH_CHARS = 2048;
const MAX_DOMAIN_LENGTH = 253;

export interface PodDnsView {
  readonly namespace: string;
  /** The cluster domain, e.g. `cluster.local`. */
  readonly zone: string;
  /** The cluster DNS service's address(es): the pod's only nameservers. */
  readonly nameservers: readonly Nameserver[];
}

/**
 * The resolv.conf the kubelet writes for a pod with dnsPolicy ClusterFirst: `search <ns>.svc.<zone> svc.<zone>
 * <zone>` then the host's `search` line (trailing dots dropped, duplicates removed, then cut to the kubelet's
 * limits), `options ndots:5` and nothing else of the host's options, the cluster DNS as nameserver.
 */
export function podResolvConf(host: ResolvConf, pod: PodDnsView): ResolvConf {
  const composed = [`${pod.namespace}.svc.${pod.zone}`, `svc.${pod.zone}`, pod.zone, ...host.searchLine.map((domain) => domain.replace(/\.$/, ''))];
  let search = [...new Set(composed)].slice(0, KUBELET_MAX_SEARCH_DOMAINS).filter((domain) => domain.length <= MAX_DOMAIN_LENGTH);
  while (search.join(' ').length > KUBELET_MAX_SEARCH_CHARS) search = search.slice(0, -1);
  const parsed = parseResolvConf(`search ${search.join(' ')}\noptions ndots:5\n`, {
    source: `a pod in namespace ${pod.namespace} (host search domains from ${host.source})`,
  });
  // Given directly rather than as nameserver lines: resolv.conf cannot say a port, and a test server has one.
  return Object.freeze({ ...parsed, nameservers: Object.freeze([...pod.nameservers]), defaultNameserver: false });
}

/** Applies an `options` line's tokens; returns the tokens glibc does not know. */
function setOptions(options: Options, text: string): string[] {
  const unknown: string[] = [];
  // glibc steps through the text token by token, but reads a number with atoi from just after the colon, so
  // `ndots: 5` sets 5 and then sees "5" as a token of its own (unknown, ignored).
  for (const match of text.matchAll(/[^ \t]+/g)) {
    const token = match[0];
    const after = text.slice(match.index + token.length);
    const number = (prefix: string): number | undefined => (token.startsWith(prefix) ? atoi(token.slice(prefix.length) + after) : undefined);
    const ndots = number('ndots:');
    const timeout = number('timeout:');
    const attempts = number('attempts:');
    if (ndots !== undefined) options.ndots = ndots < 0 ? ndots & 0xf : Math.min(ndots, RES_MAXNDOTS);
    else if (timeout !== undefined) options.timeout = Math.min(timeout, RES_MAXRETRANS);
    else if (attempts !== undefined) options.attempts = Math.min(attempts, RES_MAXRETRY);
    else {
      const flag = OPTION_FLAGS.find(([name]) => token.startsWith(name))?.[1];
      if (flag === undefined) unknown.push(token);
      else options.flags.add(flag);
    }
  }
  return unknown;
}

/** C's atoi: leading white space, an optional sign, then digits; 0 when there are none. */
function atoi(text: string): number {
  const match = /^[ \t\n\v\f\r]*([+-]?\d+)/.exec(text);
  return match ? Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Number(match[1]))) : 0;
}

/** Words separated by spaces and tabs, as glibc splits `search` lines and LOCALDOMAIN. */
function splitWords(text: string): string[] {
  return text.split(/[ \t]+/).filter((word) => word !== '');
}

/** A `nameserver` word as glibc takes it: inet_aton's IPv4, else IPv6 with an optional scope. */
function nameserverAddress(word: string): string | undefined {
  const v4 = inetAton(word);
  if (v4 !== undefined) return v4;
  const [address = '', scope] = word.split('%', 2);
  if (!isIPv6(address)) return undefined;
  const canonical = canonicalIp(address)!;
  return scope === undefined || scope === '' ? canonical : `${canonical}%${scope}`;
}

/** inet_aton: one to four parts in decimal, octal (leading 0) or hex (0x); the last part fills the remaining bytes. */
function inetAton(text: string): string | undefined {
  const parts = text.split('.');
  if (parts.length > 4) return undefined;
  const values: number[] = [];
  for (const part of parts) {
    if (/^0x[0-9a-f]*$/i.test(part)) values.push(part.length === 2 ? 0 : parseInt(part.slice(2), 16));
    else if (/^0[0-7]*$/.test(part)) values.push(parseInt(part, 8));
    else if (/^[1-9]\d*$/.test(part)) values.push(Number(part));
    else return undefined;
  }
  const last = values.pop()!;
  if (values.some((value) => value > 255) || last >= 2 ** (8 * (4 - values.length))) return undefined;
  const bytes = [...values];
  for (let i = 3 - values.length; i >= 0; i--) bytes.push(Math.floor(last / 2 ** (8 * i)) % 256);
  return bytes.join('.');
}
