/**
 * config/ — turns the command line into one validated, frozen Config. Every flag is declared and documented
 * here (the `--help` text is generated from the same table), unknown flags and bad values fail with a message
 * that names the flag, and nothing else in clusterdns reads argv or the environment for settings.
 */
import { isIP, isIPv4 } from 'node:net';
import { parseArgs } from 'node:util';
import { ConfigError } from '../errors.js';
import type { PodMode } from '../resolvers/cluster/index.js';
import { ipv4ToNumber } from '../ip.js';
import { NameError, nameToKey } from '../wire/index.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface ServeConfig {
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

interface FlagSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  readonly value?: string;
  readonly default?: string;
  readonly help: string;
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
    defaults: {},
  },
  // A laptop next to a cluster: loopback only, free ports for the HTTP endpoints, Ctrl-C stops at once.
  dev: {
    summary: "Watches a cluster and answers its names on this machine with loopback addresses that reach the services' ready pods, through the API server's pod port-forward (or straight to pod IPs with --direct).",
    flags: new Set(['listen', 'kubeconfig', 'namespaces', 'metrics', 'log-level', 'proxy-range', 'proxy-drain', 'proxy-idle-timeout', 'proxy-max-connections', 'direct', 'help']),
    defaults: { listen: '127.0.0.1:5353', health: '127.0.0.1:0', ready: '127.0.0.1:0', metrics: '127.0.0.1:0', lameduck: '0', 'proxy-vip': 'loopback' },
  },
};

/** The flags of `clusterdns serve`, in the order `--help` lists them. */
export const SERVE_FLAGS: Readonly<Record<string, FlagSpec>> = {
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
  ...PROXY_FLAGS,
  help: { type: 'boolean', help: 'print this help and exit' },
};

/** A command's flags in `--help` order, with the command's defaults. */
export function commandFlags(command: Command): Array<[string, FlagSpec]> {
  const { flags, defaults } = COMMANDS[command];
  const { help, ...rest } = SERVE_FLAGS;
  const table: Record<string, FlagSpec> = { ...rest, ...DEV_FLAGS, help: help! };
  return Object.entries(table)
    .filter(([name]) => (flags === 'all' ? name in SERVE_FLAGS : flags.has(name)))
    .map(([name, spec]) => [name, defaults[name] === undefined ? spec : { ...spec, default: defaults[name] }]);
}

export function serveHelp(command: Command = 'serve'): string {
  const rows = commandFlags(command).map(([name, spec]) => {
    const left = `  --${name}${spec.value ? ` ${spec.value}` : ''}`;
    const def = spec.default !== undefined ? ` (default ${spec.default})` : '';
    return `${left.padEnd(34)}${spec.help}${def}`;
  });
  return [`Usage: clusterdns ${command} [flags]`, '', COMMANDS[command].summary, '', 'Flags:', ...rows].join('\n');
}

/**
 * Parses the arguments of `serve`, `proxy` (no DNS listeners, the proxy on) or `dev` (a watched cluster, the proxy
 * on loopback VIPs). Undefined when `--help` was asked for.
 */
export function parseServeArgs(args: readonly string[], command: Command = 'serve'): ServeConfig | undefined {
  let values: Record<string, string | boolean | Array<string | boolean> | undefined>;
  try {
    const options = Object.fromEntries(
      commandFlags(command).map(([name, spec]) => [name, { type: spec.type, ...(spec.multiple && { multiple: true }) }]),
    );
    ({ values } = parseArgs({ args: [...args], options, strict: true, allowPositionals: false }));
  } catch (error) {
    // parseArgs explains itself over several lines and suggests '--' for positionals, which serve never takes.
    const reason = (error as Error).message.replace(/\s*To specify a positional argument.*$/s, '').split('\n').join(' ');
    throw new ConfigError(`${reason.replace(/\.?\s*$/, '')}; see 'clusterdns ${command} --help'`);
  }
  if (values.help === true) return undefined;
  const text = (name: string): string => (values[name] as string | undefined) ?? COMMANDS[command].defaults[name] ?? SERVE_FLAGS[name]!.default!;

  const listenValues = command === 'proxy' ? [] : (values.listen as string[] | undefined) ?? [text('listen')];
  const manifests = values.manifests as string | undefined;
  const kubeconfig = values.kubeconfig as string | undefined;
  if (manifests !== undefined && kubeconfig !== undefined) {
    throw new ConfigError('--manifests and --kubeconfig: choose one source, files or a cluster');
  }
  const namespaces = values.namespaces === undefined ? [] : parseNamespaces(values.namespaces as string);
  if (manifests !== undefined && namespaces.length > 0) throw new ConfigError('--namespaces applies to a watched cluster, not to --manifests');
  return Object.freeze({
    listen: Object.freeze(listenValues.map((value) => parseListen(value))),
    zone: parseZone(text('zone')),
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
    proxy: parseProxy(values, text, command),
  });
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

function parseNamespaces(value: string): string[] {
  const namespaces = value.split(',').map((namespace) => namespace.trim()).filter((namespace) => namespace !== '');
  for (const namespace of namespaces) {
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) throw new ConfigError(`--namespaces ${value}: "${namespace}" is not a namespace name`);
  }
  if (namespaces.length === 0) throw new ConfigError('--namespaces: give at least one namespace');
  return [...new Set(namespaces)];
}

function parseZone(value: string): string {
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

function parseChoice<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) throw new ConfigError(`--${flag} ${value}: expected one of ${choices.join(', ')}`);
  return value as T;
}
