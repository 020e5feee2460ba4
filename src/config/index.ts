/**
 * config/ — turns the command line into one validated, frozen Config. Every flag is declared and documented
 * here (the `--help` text is generated from the same table), unknown flags and bad values fail with a message
 * that names the flag, and nothing else in clusterdns reads argv or the environment for settings.
 */
import { isIP, isIPv4 } from 'node:net';
import { availableParallelism } from 'node:os';
import { ConfigError } from '../errors.js';
import { ipv4ToNumber, type HostPort } from '../ip.js';
import type { PodMode } from '../plugins/kubernetes/index.js';
import { FORWARD_POLICIES, type ForwardPolicy, type UpstreamAddress } from '../plugins/forward/index.js';
import { isInZone, NameError, nameToKey } from '../wire/index.js';
import { flagsHelp, parseFlags, type FlagSpec, type FlagValues } from './flags.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type ListenAddress = HostPort;

export interface ServeConfig {
  /** `--conf PATH`: a Corefile says everything else (only --log-level may go with it). */
  readonly corefile: string | undefined;
  readonly listen: readonly ListenAddress[];
  readonly zone: string;
  readonly manifests: string | undefined;
  /** Set (possibly to undefined: find one) when the Kubernetes API is the source. */
  readonly kubeconfig: string | undefined;
  /** Watch only these namespaces; empty means all. */
  readonly namespaces: readonly string[];
  readonly health: ListenAddress;
  readonly ready: ListenAddress;
  readonly metrics: ListenAddress;
  readonly lameduckMs: number;
  readonly logQueries: boolean;
  readonly ttl: number;
  readonly pods: PodMode;
  readonly logLevel: LogLevel;
  readonly tcpIdleTimeoutMs: number;
  readonly maxTcpConnections: number;
  /** Threads answering on the same addresses (one socket each, SO_REUSEPORT); 1 is this thread alone. */
  readonly workers: number;
  /** Where the default upstreams and the host search domains come from. */
  readonly resolvConf: string;
  /** The upstreams: undefined means resolv.conf's nameservers; empty means no forwarding (`--upstream none`). */
  readonly upstreams: readonly UpstreamAddress[] | undefined;
  readonly stubDomains: readonly { readonly zone: string; readonly upstreams: readonly UpstreamAddress[] }[];
  readonly forwardPolicy: ForwardPolicy;
  readonly maxFails: number;
  readonly maxConcurrent: number;
  readonly upstreamTimeoutMs: number;
  /** Cache entries at most; 0 turns the cache off. */
  readonly cacheSize: number;
  readonly cacheMaxTtl: number;
  readonly cacheMaxNegativeTtl: number;
  /** Seconds an expired answer may still be served when every upstream fails; 0 is off. */
  readonly serveStale: number;
  readonly autopath: boolean;
  /** Set with --proxy, and by `clusterdns proxy`. */
  readonly proxy: ProxyConfig | undefined;
}

export interface ProxyConfig {
  readonly vip: 'cluster-ip' | 'loopback';
  /** How endpoints are reached: TCP to their addresses, or through the API server's pod port-forward (dev). */
  readonly via: 'direct' | 'port-forward';
  /** The loopback range of `vip: loopback`. */
  readonly range: { readonly network: string; readonly prefix: number };
  readonly drainMs: number;
  readonly idleTimeoutMs: number;
  readonly maxConnections: number;
}

/** The userspace proxy's flags (`serve --proxy`, and `clusterdns proxy`). */
const PROXY_FLAGS: Readonly<Record<string, FlagSpec>> = {
  proxy: { type: 'boolean', help: 'also proxy TCP connections to every ClusterIP service port on to a ready endpoint' },
  'proxy-vip': { type: 'string', value: 'MODE', default: 'cluster-ip', help: "where to listen: cluster-ip (the service's real cluster IPs, which must be on a local interface) or loopback (one address per service from --proxy-range, which DNS then answers)" },
  'proxy-range': { type: 'string', value: 'CIDR', default: '127.32.0.0/16', help: 'the loopback range of --proxy-vip loopback, inside 127.0.0.0/8' },
  'proxy-drain': { type: 'string', value: 'SECONDS', default: '30', help: 'connections to an endpoint that is no longer ready may go on this long, then they are closed' },
  'proxy-idle-timeout': { type: 'string', value: 'SECONDS', default: '86400', help: 'close a proxied connection with no traffic either way for this long' },
  'proxy-max-connections': { type: 'string', value: 'N', default: '10000', help: 'open proxied connections at most; more are reset at once' },
};

/** `clusterdns dev`'s own flag. */
const DEV_FLAGS: Readonly<Record<string, FlagSpec>> = {
  direct: { type: 'boolean', help: "connect to pod IPs directly instead of through the API server's pod port-forward (when this machine routes to the pod network)" },
};

export type Command = 'serve' | 'proxy' | 'dev';

interface CommandSpec {
  /** What `--help` says the command does. */
  readonly summary: string;
  /** Its flags, listed in SERVE_FLAGS order (dev's own before `help`). */
  readonly flags: ReadonlySet<string> | 'all';
  /** Defaults in place of SERVE_FLAGS's, also for settings the command has no flag for. */
  readonly defaults: Readonly<Record<string, string>>;
}

const COMMANDS: Readonly<Record<Command, CommandSpec>> = {
  serve: { summary: 'Answers the Kubernetes cluster zone over UDP and TCP.', flags: 'all', defaults: {} },
  proxy: {
    summary: "Proxies TCP connections to ClusterIP services on to their ready endpoints, without answering DNS (as 'serve --proxy' does with it).",
    flags: new Set([
      'manifests', 'kubeconfig', 'namespaces', 'health', 'ready', 'metrics', 'lameduck', 'log-level',
      ...Object.keys(PROXY_FLAGS).filter((name) => name !== 'proxy'), 'help',
    ]),
    defaults: { workers: '1' },
  },
  // A laptop next to a cluster: loopback only, free ports for the HTTP endpoints, Ctrl-C stops at once.
  dev: {
    summary: "Watches a cluster and answers its names on this machine with loopback addresses that reach the services' ready pods, through the API server's pod port-forward (or straight to pod IPs with --direct); other names are forwarded upstream.",
    flags: new Set([
      'listen', 'kubeconfig', 'namespaces', 'metrics', 'log-level', 'resolv-conf', 'upstream', 'stub-domain', 'upstream-timeout',
      'cache-size', 'proxy-range', 'proxy-drain', 'proxy-idle-timeout', 'proxy-max-connections', 'direct', 'help',
    ]),
    defaults: { listen: '127.0.0.1:5353', health: '127.0.0.1:0', ready: '127.0.0.1:0', metrics: '127.0.0.1:0', lameduck: '0', 'proxy-vip': 'loopback', workers: '1' },
  },
};

/** The flags of `clusterdns serve`, in the order `--help` lists them. */
export const SERVE_FLAGS: Readonly<Record<string, FlagSpec>> = {
  conf: {
    type: 'string',
    value: 'PATH',
    help: "serve as this Corefile says (CoreDNS's configuration; 'clusterdns -conf PATH' does the same); only --log-level may go with it",
  },
  listen: {
    type: 'string',
    multiple: true,
    value: 'HOST:PORT',
    default: '0.0.0.0:53',
    help: 'address to answer on, UDP and TCP; repeat for more; IPv6 as [::1]:5353; port 0 picks a free port',
  },
  zone: { type: 'string', value: 'NAME', default: 'cluster.local', help: 'the cluster domain; in-addr.arpa and ip6.arpa are answered for cluster addresses' },
  manifests: {
    type: 'string',
    value: 'PATH',
    help: 'serve the objects in a YAML/JSON file or a directory of them (Namespace, Service, EndpointSlice, Pod) instead of watching a cluster; edits are picked up while running',
  },
  kubeconfig: {
    type: 'string',
    value: 'PATH',
    help: 'watch the cluster of this kubeconfig; without it and without --manifests: in-cluster config when KUBERNETES_SERVICE_HOST is set, else $KUBECONFIG, else ~/.kube/config',
  },
  namespaces: { type: 'string', value: 'NS,...', help: 'watch only these namespaces (default: all)' },
  ttl: { type: 'string', value: 'SECONDS', default: '5', help: 'TTL of cluster-zone records, 0 to 3600' },
  pods: { type: 'string', value: 'MODE', default: 'insecure', help: 'pod records <a-b-c-d>.<ns>.pod.<zone>: insecure (any address), verified (existing pods only) or disabled' },
  health: { type: 'string', value: 'HOST:PORT', default: ':8080', help: 'serve GET /health (200 while the process runs)' },
  ready: { type: 'string', value: 'HOST:PORT', default: ':8181', help: 'serve GET /ready (200 once the first sync is done, 503 before it and in lame duck)' },
  metrics: { type: 'string', value: 'HOST:PORT', default: ':9153', help: 'serve GET /metrics (Prometheus, CoreDNS metric names)' },
  lameduck: { type: 'string', value: 'SECONDS', default: '5', help: 'on SIGTERM keep answering DNS this long (with /ready at 503) before closing' },
  'log-level': { type: 'string', value: 'LEVEL', default: 'info', help: `one of ${LOG_LEVELS.join(', ')}` },
  'log-queries': { type: 'boolean', help: 'log every query and its rcode (off by default: it costs throughput)' },
  'tcp-idle-timeout': { type: 'string', value: 'SECONDS', default: '10', help: 'close a TCP connection that sends nothing for this long' },
  'max-tcp-connections': { type: 'string', value: 'N', default: '1000', help: 'open TCP connections at most; more are closed at once' },
  workers: {
    type: 'string',
    value: 'N',
    default: 'auto',
    help: "threads answering DNS, each on its own sockets of the same addresses (SO_REUSEPORT), over one API watch; auto: the CPUs this process may use (its cgroup's limit); 1: one thread (the Corefile's multisocket)",
  },
  'resolv-conf': { type: 'string', value: 'PATH', default: '/etc/resolv.conf', help: 'the default upstreams (its nameservers) and the host search domains used by --autopath' },
  upstream: {
    type: 'string',
    multiple: true,
    value: 'ADDR[:PORT]',
    help: 'forward names outside the cluster zone here (repeat for more; default: the --resolv-conf nameservers); "none" answers them REFUSED',
  },
  'stub-domain': { type: 'string', multiple: true, value: 'ZONE=ADDR[:PORT],...', help: 'forward names under ZONE to these servers instead (repeatable)' },
  'forward-policy': { type: 'string', value: 'POLICY', default: 'random', help: `the order upstreams are tried in: ${FORWARD_POLICIES.join(', ')}` },
  'max-fails': { type: 'string', value: 'N', default: '2', help: 'failed tries in a row before an upstream is marked down and probed until it answers' },
  'max-concurrent': { type: 'string', value: 'N', default: '1000', help: 'upstream queries in flight at most; past it, REFUSED' },
  'upstream-timeout': { type: 'string', value: 'SECONDS', default: '2', help: 'wait this long for one upstream before trying the next (all tries end within 2x this)' },
  'cache-size': { type: 'string', value: 'N', default: '10000', help: 'forwarded answers kept at most; 0 turns the cache off (the cluster zone is never cached)' },
  'cache-max-ttl': { type: 'string', value: 'SECONDS', default: '3600', help: 'cap on how long a forwarded answer is cached' },
  'cache-max-negative-ttl': { type: 'string', value: 'SECONDS', default: '1800', help: 'cap on how long NXDOMAIN/NODATA is cached (RFC 2308)' },
  'serve-stale': { type: 'string', value: 'SECONDS', default: '0', help: 'when every upstream fails, answer from an entry expired at most this long ago (RFC 8767); 0 is off' },
  autopath: { type: 'boolean', help: 'complete a known pod\'s search path on the server: one round trip instead of up to eight' },
  ...PROXY_FLAGS,
  help: { type: 'boolean', help: 'print this help and exit' },
};

/** A command's flags in `--help` order, with the command's defaults. */
export function commandFlags(command: Command): Record<string, FlagSpec> {
  const { flags, defaults } = COMMANDS[command];
  const { help, ...rest } = SERVE_FLAGS;
  const table: Record<string, FlagSpec> = { ...rest, ...DEV_FLAGS, help: help! };
  return Object.fromEntries(
    Object.entries(table)
      .filter(([name]) => (flags === 'all' ? name in SERVE_FLAGS : flags.has(name)))
      .map(([name, spec]) => [name, defaults[name] === undefined ? spec : { ...spec, default: defaults[name] }]),
  );
}

export function serveHelp(command: Command = 'serve'): string {
  return flagsHelp(`clusterdns ${command} [flags]`, COMMANDS[command].summary, commandFlags(command));
}

/**
 * Parses the arguments of `serve`, `proxy` (no DNS listeners, the proxy on) or `dev` (a watched cluster, the proxy
 * on loopback VIPs). Undefined when `--help` was asked for.
 */
export function parseServeArgs(args: readonly string[], command: Command = 'serve'): ServeConfig | undefined {
  const { values }: { values: FlagValues } = parseFlags(command, commandFlags(command), args);
  if (values.help === true) return undefined;
  const corefile = values.conf as string | undefined;
  if (corefile !== undefined) {
    const other = Object.keys(values).find((name) => name !== 'conf' && name !== 'log-level' && values[name] !== undefined);
    if (other !== undefined) throw new ConfigError(`--${other} cannot go with --conf ${corefile}: the Corefile says how to serve (flags and a Corefile together would disagree)`);
  }
  const text = (name: string): string => (values[name] as string | undefined) ?? COMMANDS[command].defaults[name] ?? SERVE_FLAGS[name]!.default!;

  const listenValues = command === 'proxy' ? [] : (values.listen as string[] | undefined) ?? [text('listen')];
  const manifests = values.manifests as string | undefined;
  const kubeconfig = values.kubeconfig as string | undefined;
  if (manifests !== undefined && kubeconfig !== undefined) {
    throw new ConfigError('--manifests and --kubeconfig: choose one source, files or a cluster');
  }
  const namespaces = values.namespaces === undefined ? [] : parseNamespaces(values.namespaces as string);
  const zone = parseZone(text('zone'));
  if (manifests !== undefined && namespaces.length > 0) throw new ConfigError('--namespaces applies to a watched cluster, not to --manifests');
  return Object.freeze({
    corefile,
    listen: Object.freeze(listenValues.map((value) => parseListen(value))),
    zone,
    manifests,
    kubeconfig,
    namespaces: Object.freeze(namespaces),
    health: parseListen(text('health'), 'health'),
    ready: parseListen(text('ready'), 'ready'),
    metrics: parseListen(text('metrics'), 'metrics'),
    lameduckMs: parseInteger('lameduck', text('lameduck'), 0, 600) * 1000,
    logQueries: values['log-queries'] === true,
    ttl: parseInteger('ttl', text('ttl'), 0, 3600),
    pods: parseChoice('pods', text('pods'), ['insecure', 'verified', 'disabled'] as const),
    logLevel: parseChoice('log-level', text('log-level'), LOG_LEVELS),
    tcpIdleTimeoutMs: parseInteger('tcp-idle-timeout', text('tcp-idle-timeout'), 1, 3600) * 1000,
    maxTcpConnections: parseInteger('max-tcp-connections', text('max-tcp-connections'), 1, 1_000_000),
    workers: text('workers') === 'auto' ? availableParallelism() : parseInteger('workers', text('workers'), 1, 1024),
    resolvConf: text('resolv-conf'),
    // `proxy` answers no DNS, so it has nothing to forward (and no resolv.conf to read).
    upstreams: command === 'proxy' ? Object.freeze([]) : parseUpstreams(values.upstream as string[] | undefined),
    stubDomains: Object.freeze(((values['stub-domain'] as string[] | undefined) ?? []).map((value) => parseStubDomain(value, zone))),
    forwardPolicy: parseChoice('forward-policy', text('forward-policy'), FORWARD_POLICIES),
    maxFails: parseInteger('max-fails', text('max-fails'), 1, 100),
    maxConcurrent: parseInteger('max-concurrent', text('max-concurrent'), 1, 1_000_000),
    upstreamTimeoutMs: parseInteger('upstream-timeout', text('upstream-timeout'), 1, 30) * 1000,
    cacheSize: parseInteger('cache-size', text('cache-size'), 0, 10_000_000),
    cacheMaxTtl: parseInteger('cache-max-ttl', text('cache-max-ttl'), 1, 604_800),
    cacheMaxNegativeTtl: parseInteger('cache-max-negative-ttl', text('cache-max-negative-ttl'), 1, 604_800),
    serveStale: parseInteger('serve-stale', text('serve-stale'), 0, 604_800),
    autopath: values.autopath === true,
    proxy: parseProxy(values, text, command),
  });
}

function parseUpstreams(values: readonly string[] | undefined): readonly UpstreamAddress[] | undefined {
  if (values === undefined) return undefined;
  if (values.includes('none')) {
    if (values.length > 1) throw new ConfigError('--upstream none: turns forwarding off, so it cannot go with other --upstream addresses');
    return Object.freeze([]);
  }
  return Object.freeze(values.map((value) => parseUpstream(value, 'upstream')));
}

/** `ADDR`, `ADDR:PORT`, `[V6]:PORT` or a bare IPv6 address; port 53 by default. */
export function parseUpstream(value: string, flag: string): UpstreamAddress {
  if (isIP(value) !== 0) return Object.freeze({ host: value, port: 53 });
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(value);
  const host = match?.[1] ?? match?.[2];
  if (match === null || host === undefined || isIP(host) === 0) {
    throw new ConfigError(`--${flag} ${value}: expected an IP address with an optional port, e.g. 10.0.0.2, 10.0.0.2:5353 or [fd00::2]:53`);
  }
  const port = Number(match[3]);
  if (port < 1 || port > 65535) throw new ConfigError(`--${flag} ${value}: port ${port} is not from 1 to 65535`);
  return Object.freeze({ host, port });
}

function parseStubDomain(value: string, clusterZone: string): { zone: string; upstreams: readonly UpstreamAddress[] } {
  const equals = value.indexOf('=');
  if (equals <= 0 || equals === value.length - 1) throw new ConfigError(`--stub-domain ${value}: expected ZONE=ADDR[:PORT],..., e.g. corp.example=10.0.0.53`);
  const zone = value.slice(0, equals).replace(/\.$/, '').toLowerCase();
  let zoneKey: string;
  try {
    zoneKey = nameToKey(zone);
  } catch (error) {
    if (error instanceof NameError) throw new ConfigError(`--stub-domain ${value}: ${error.message}`);
    throw error;
  }
  if (zone === '' || isInZone(zoneKey, nameToKey(clusterZone))) {
    throw new ConfigError(`--stub-domain ${value}: "${zone || '.'}" is not a stub domain (the root and the cluster zone cannot be)`);
  }
  const upstreams = value.slice(equals + 1).split(',').map((address) => parseUpstream(address.trim(), 'stub-domain'));
  return Object.freeze({ zone, upstreams: Object.freeze(upstreams) });
}

function parseProxy(values: Record<string, unknown>, text: (name: string) => string, command: Command): ProxyConfig | undefined {
  if (command === 'serve' && values.proxy !== true) {
    const stray = Object.keys(PROXY_FLAGS).find((name) => values[name] !== undefined);
    if (stray !== undefined) throw new ConfigError(`--${stray} applies only with --proxy (or 'clusterdns proxy')`);
    return undefined;
  }
  const vip = parseChoice('proxy-vip', text('proxy-vip'), ['cluster-ip', 'loopback'] as const);
  if (vip !== 'loopback' && values['proxy-range'] !== undefined) throw new ConfigError('--proxy-range applies only with --proxy-vip loopback');
  return Object.freeze({
    vip,
    via: command === 'dev' && values.direct !== true ? 'port-forward' as const : 'direct' as const,
    range: parseLoopbackRange(text('proxy-range')),
    drainMs: parseInteger('proxy-drain', text('proxy-drain'), 0, 3600) * 1000,
    idleTimeoutMs: parseInteger('proxy-idle-timeout', text('proxy-idle-timeout'), 1, 7 * 86400) * 1000,
    maxConnections: parseInteger('proxy-max-connections', text('proxy-max-connections'), 1, 1_000_000),
  });
}

/** An IPv4 CIDR inside 127.0.0.0/8 with room for at least two services: every address in it is local. */
function parseLoopbackRange(value: string): { network: string; prefix: number } {
  const [address = '', prefixText = '', extra] = value.split('/');
  const prefix = Number(prefixText);
  if (extra !== undefined || !isIPv4(address) || !/^\d+$/.test(prefixText) || prefix > 32) {
    throw new ConfigError(`--proxy-range ${value}: expected an IPv4 CIDR such as 127.32.0.0/16`);
  }
  const number = ipv4ToNumber(address);
  if (number >>> 24 !== 127 || prefix < 8) throw new ConfigError(`--proxy-range ${value}: must lie inside the loopback range 127.0.0.0/8`);
  if (prefix > 30) throw new ConfigError(`--proxy-range ${value}: too small; /30 is the smallest range (two addresses)`);
  if (number % 2 ** (32 - prefix) !== 0) throw new ConfigError(`--proxy-range ${value}: ${address} is not the first address of a /${prefix}`);
  return Object.freeze({ network: address, prefix });
}

/** `HOST:PORT`, `[IPv6]:PORT`, or `:PORT` for every IPv4 address. */
export function parseListen(value: string, flag = 'listen'): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(value);
  const host = match?.[1] ?? match?.[2];
  if (!match || host === undefined) throw new ConfigError(`--${flag} ${value}: expected HOST:PORT, e.g. 127.0.0.1:5353 or [::1]:5353`);
  const resolvedHost = host === '' ? '0.0.0.0' : host;
  if (isIP(resolvedHost) === 0) throw new ConfigError(`--${flag} ${value}: "${host}" is not an IP address`);
  if (match[1] !== undefined && isIP(resolvedHost) !== 6) throw new ConfigError(`--${flag} ${value}: only IPv6 addresses go in brackets`);
  const port = Number(match[3]);
  if (port > 65535) throw new ConfigError(`--${flag} ${value}: port ${port} is above 65535`);
  return Object.freeze({ host: resolvedHost, port });
}

/** A Kubernetes namespace name: an RFC 1123 label. */
export function isNamespaceName(text: string): boolean {
  return /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(text);
}

function parseNamespaces(value: string): string[] {
  const namespaces = value.split(',').map((namespace) => namespace.trim()).filter((namespace) => namespace !== '');
  for (const namespace of namespaces) {
    if (!isNamespaceName(namespace)) throw new ConfigError(`--namespaces ${value}: "${namespace}" is not a namespace name`);
  }
  if (namespaces.length === 0) throw new ConfigError('--namespaces: give at least one namespace');
  return [...new Set(namespaces)];
}

export function parseZone(value: string): string {
  const zone = value.replace(/\.$/, '').toLowerCase();
  try {
    nameToKey(zone);
  } catch (error) {
    if (error instanceof NameError) throw new ConfigError(`--zone ${value}: ${error.message}`);
    throw error;
  }
  if (zone === '') throw new ConfigError('--zone: the root zone cannot be the cluster domain');
  return zone;
}

function parseInteger(flag: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value)) throw new ConfigError(`--${flag} ${value}: expected a whole number from ${min} to ${max}`);
  const number = Number(value);
  if (number < min || number > max) throw new ConfigError(`--${flag} ${value}: expected a whole number from ${min} to ${max}`);
  return number;
}

export function parseChoice<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) throw new ConfigError(`--${flag} ${value}: expected one of ${choices.join(', ')}`);
  return value as T;
}
