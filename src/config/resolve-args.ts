/**
 * The flags of `clusterdns resolve NAME`, validated whole into one frozen value, like serve's. Reads the
 * environment only for what glibc itself reads (RES_OPTIONS, LOCALDOMAIN) when the file is used as is.
 */
import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import { NameError, nameToKey, RRType } from '../wire/index.js';
import { flagsHelp, parseFlags, type FlagSpec } from './flags.js';
import { isNamespaceName, parseListen, parseZone } from './index.js';
import type { Nameserver } from './resolv-conf.js';

export interface ResolveConfig {
  readonly name: string;
  /** Resolve as a ClusterFirst pod in this namespace would; absent: the resolv.conf as it is. */
  readonly namespace: string | undefined;
  readonly zone: string;
  readonly resolvConf: string;
  /** Ask only this server; absent: the resolv.conf's nameservers, in glibc's order. */
  readonly server: Nameserver | undefined;
  /** One record type (res_search); absent: A and AAAA as getaddrinfo asks. */
  readonly type: number | undefined;
  readonly json: boolean;
}

// The types a lookup asks for: not OPT (a pseudo-record), nor HINFO (only ever the any plugin's answer to ANY).
const TYPES = Object.keys(RRType).filter((type) => type !== 'OPT' && type !== 'HINFO');

export const RESOLVE_FLAGS: Readonly<Record<string, FlagSpec>> = {
  namespace: {
    type: 'string',
    value: 'NS',
    help: 'resolve as a pod in NS with dnsPolicy ClusterFirst: search NS.svc.ZONE svc.ZONE ZONE, then the search line of --resolv-conf; ndots 5',
  },
  zone: { type: 'string', value: 'NAME', default: 'cluster.local', help: 'the cluster domain, for --namespace' },
  'resolv-conf': { type: 'string', value: 'PATH', default: '/etc/resolv.conf', help: 'the resolver configuration (with --namespace: the node\'s, whose search line pods inherit)' },
  server: { type: 'string', value: 'HOST[:PORT]', help: 'ask this server (port 53 unless given; IPv6 as [::1]:5353) instead of the nameservers of --resolv-conf' },
  type: { type: 'string', value: 'TYPE', help: `look up one type as res_search does (${TYPES.join(', ')}); default: A and AAAA as getaddrinfo does` },
  json: { type: 'boolean', help: 'print the report as JSON' },
  help: { type: 'boolean', help: 'print this help and exit' },
};

export function resolveHelp(): string {
  return flagsHelp(
    'clusterdns resolve NAME [flags]',
    'Shows every name a glibc program tries for NAME, in order (search list and ndots applied), what each\n'
      + 'returned, and which one answered. Exit status 0 when NAME resolved, 1 when it did not.',
    RESOLVE_FLAGS,
  );
}

/** Parses `resolve`'s arguments. Returns undefined when `--help` was asked for. */
export function parseResolveArgs(args: readonly string[]): ResolveConfig | undefined {
  const { values, positionals } = parseFlags('resolve', RESOLVE_FLAGS, args, true);
  if (values.help === true) return undefined;
  if (positionals.length !== 1) {
    throw new ConfigError(`${positionals.length === 0 ? 'give the name to resolve' : `one name at a time, not ${positionals.length}`}; see 'clusterdns resolve --help'`);
  }
  const name = positionals[0]!;
  try {
    nameToKey(name);
  } catch (error) {
    if (error instanceof NameError) throw new ConfigError(`${name}: ${error.message}`);
    throw error;
  }
  const text = (flag: string): string | undefined => values[flag] as string | undefined;
  const namespace = text('namespace');
  if (namespace !== undefined && !isNamespaceName(namespace)) throw new ConfigError(`--namespace ${namespace}: not a namespace name`);
  const type = text('type')?.toUpperCase();
  if (type !== undefined && !TYPES.includes(type)) throw new ConfigError(`--type ${text('type')}: expected one of ${TYPES.join(', ')}`);
  const server = text('server');
  return Object.freeze({
    name,
    namespace,
    zone: parseZone(text('zone') ?? RESOLVE_FLAGS.zone!.default!),
    resolvConf: text('resolv-conf') ?? RESOLVE_FLAGS['resolv-conf']!.default!,
    server: server === undefined ? undefined : parseServer(server),
    type: type === undefined ? undefined : RRType[type as keyof typeof RRType],
    json: values.json === true,
  });
}

/** `--server HOST[:PORT]`, as dig and resolv.conf take a server: a bare address means port 53. */
export function parseServer(value: string): Nameserver {
  return isIP(value) !== 0 ? Object.freeze({ host: value, port: 53 }) : parseListen(value, 'server');
}
