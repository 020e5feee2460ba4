/**
 * The flags of `clusterdns doctor [SERVICE[.NAMESPACE]]`, validated whole into one frozen value, like resolve's.
 * Every mistake here is a usage error (exit 2) naming the flag; nothing is read or asked yet.
 */
import { ConfigError } from '../errors.js';
import type { HostPort } from '../ip.js';
import { flagsHelp, parseFlags, type FlagSpec } from './flags.js';
import { isNamespaceName, parseZone } from './index.js';
import { parseServer } from './resolve-args.js';

export interface DoctorConfig {
  /** The Service to check; absent with `all`. */
  readonly service: string | undefined;
  /**
   * The Service's namespace (or, with `all`, the one to check). Absent: for a Service, the kubeconfig context's
   * namespace or `default`, as kubectl takes it; with `all`, every namespace.
   */
  readonly namespace: string | undefined;
  readonly all: boolean;
  /** Where the objects come from: one of these, or neither (the kubeconfig found as kubectl finds it). */
  readonly kubeconfig: string | undefined;
  readonly manifests: string | undefined;
  /** The DNS server to ask; absent: the cluster DNS when running in a pod, else DNS is not asked. */
  readonly server: HostPort | undefined;
  readonly zone: string;
  readonly json: boolean;
}

export const DOCTOR_FLAGS: Readonly<Record<string, FlagSpec>> = {
  namespace: { type: 'string', value: 'NS', help: 'the Service\'s namespace (default: the kubeconfig context\'s, else default); with --all, check only this namespace' },
  all: { type: 'boolean', help: 'check every Service of --namespace (or of the cluster) and print only those with problems' },
  kubeconfig: { type: 'string', value: 'PATH', help: 'read the objects from the API of this kubeconfig\'s current context (default: $KUBECONFIG, ~/.kube/config, or in-cluster)' },
  manifests: { type: 'string', value: 'PATH', help: 'read the objects from this YAML/JSON file or directory instead of an API' },
  server: { type: 'string', value: 'HOST[:PORT]', help: 'ask this DNS server (port 53 unless given; IPv6 as [::1]:5353) what it answers for the Service' },
  zone: { type: 'string', value: 'NAME', default: 'cluster.local', help: 'the cluster domain' },
  json: { type: 'boolean', help: 'print the report as JSON' },
  help: { type: 'boolean', help: 'print this help and exit' },
};

export function doctorHelp(): string {
  return flagsHelp(
    'clusterdns doctor [SERVICE[.NAMESPACE]] [flags]',
    'Checks a Service as the troubleshooting guides do: it exists in its namespace, its selector matches pods,\n'
      + 'the pods are ready, each port reaches a container, the EndpointSlices agree, and what DNS answers.\n'
      + 'One line per check (✔ ✘ ⚠), the evidence under it, and a fix for each problem. Exit status 0 when\n'
      + 'every check passed, 1 when one found a problem (✘ or ⚠), 2 for usage.',
    DOCTOR_FLAGS,
  );
}

/** Parses `doctor`'s arguments. Returns undefined when `--help` was asked for. */
export function parseDoctorArgs(args: readonly string[]): DoctorConfig | undefined {
  const { values, positionals } = parseFlags('doctor', DOCTOR_FLAGS, args, true);
  if (values.help === true) return undefined;
  const text = (flag: string): string | undefined => values[flag] as string | undefined;
  const all = values.all === true;
  if (positionals.length > 1) throw new ConfigError(`one Service at a time, not ${positionals.length}; see 'clusterdns doctor --help'`);
  const target = positionals[0];
  if (target === undefined && !all) throw new ConfigError("give the Service to check (SERVICE or SERVICE.NAMESPACE), or --all; see 'clusterdns doctor --help'");
  if (target !== undefined && all) throw new ConfigError(`--all checks every Service: give it or ${target}, not both`);

  const flagNamespace = text('namespace');
  if (flagNamespace !== undefined && !isNamespaceName(flagNamespace)) throw new ConfigError(`--namespace ${flagNamespace}: not a namespace name`);
  let service: string | undefined;
  let namespace = flagNamespace;
  if (target !== undefined) {
    const [name, inName, ...rest] = target.split('.');
    if (rest.length > 0 || !isNamespaceName(name!) || (inName !== undefined && !isNamespaceName(inName))) {
      throw new ConfigError(`${target}: expected SERVICE or SERVICE.NAMESPACE (DNS labels: lower-case letters, digits, '-')`);
    }
    if (inName !== undefined && flagNamespace !== undefined && inName !== flagNamespace) {
      throw new ConfigError(`${target} names namespace ${inName}, --namespace says ${flagNamespace}: give one`);
    }
    service = name;
    namespace = inName ?? flagNamespace;
  }
  const kubeconfig = text('kubeconfig');
  const manifests = text('manifests');
  if (kubeconfig !== undefined && manifests !== undefined) throw new ConfigError('--kubeconfig and --manifests: give one source of objects, not both');
  const server = text('server');
  return Object.freeze({
    service,
    namespace,
    all,
    kubeconfig,
    manifests,
    server: server === undefined ? undefined : parseServer(server),
    zone: parseZone(text('zone') ?? DOCTOR_FLAGS.zone!.default!),
    json: values.json === true,
  });
}
