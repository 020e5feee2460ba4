/**
 * The command-line flags as the Corefile they stand for: `serve --upstream 10.0.0.2 --autopath ...` builds the same
 * server blocks a user could write, so flags and Corefile go through one parser per plugin and one runtime.
 * `clusterdns serve --print-corefile` shows the result.
 */
import type { ServeConfig } from '../config/index.js';
import type { Directive, ServerBlock } from '../corefile/types.js';
import { formatHostPort, type HostPort } from '../ip.js';

/** Where errors in a flag-built stanza point: the flags, not a file. */
const FILE = 'the command line';

export function corefileFromFlags(config: ServeConfig): ServerBlock[] {
  let line = 0;
  const directive = (name: string, args: readonly string[] = [], block?: readonly Directive[]): Directive =>
    Object.freeze({ name, args: Object.freeze([...args]), block: block === undefined ? undefined : Object.freeze([...block]), file: FILE, line: ++line });
  const address = (hostPort: HostPort): string => formatHostPort(hostPort);
  const forwarding = config.upstreams === undefined || config.upstreams.length > 0;
  const forwardOptions = (): Directive[] => [
    directive('policy', [config.forwardPolicy]),
    directive('max_fails', [String(config.maxFails)]),
    directive('max_concurrent', [String(config.maxConcurrent)]),
    directive('timeout', [`${config.upstreamTimeoutMs}ms`]),
  ];
  const cache = (): Directive[] => (config.cacheSize === 0 ? [] : [directive('cache', [], [
    directive('success', [String(Math.max(1, Math.ceil(config.cacheSize / 2))), String(config.cacheMaxTtl), '0']),
    directive('denial', [String(Math.max(1, Math.floor(config.cacheSize / 2))), String(config.cacheMaxNegativeTtl), '0']),
    directive('prefetch', ['2', '10%']),
    ...(config.serveStale > 0 ? [directive('serve_stale', [`${config.serveStale}s`])] : []),
  ])]);

  // One block per port, bound to the hosts listened on with that port.
  const ports = new Map<number, string[]>();
  for (const listen of config.listen) ports.set(listen.port, [...(ports.get(listen.port) ?? []), listen.host]);
  const keysFor = (): Array<{ port: number | undefined; hosts: string[] }> =>
    ports.size === 0 ? [{ port: undefined, hosts: [] }] : [...ports].map(([port, hosts]) => ({ port, hosts }));

  const blocks: ServerBlock[] = [];
  for (const { port, hosts } of keysFor()) {
    const first = line + 1;
    const kubernetesOptions = [
      directive('pods', [config.pods]),
      directive('ttl', [String(config.ttl)]),
      ...(config.manifests !== undefined ? [directive('manifests', [config.manifests])] : []),
      ...(config.kubeconfig !== undefined ? [directive('kubeconfig', [config.kubeconfig])] : []),
      ...(config.namespaces.length > 0 ? [directive('namespaces', config.namespaces)] : []),
      ...(forwarding ? [directive('fallthrough', ['in-addr.arpa', 'ip6.arpa'])] : []),
    ];
    const directives = [
      ...(config.workers > 1 ? [directive('multisocket', [String(config.workers)])] : []),
      ...(hosts.length > 0 ? [directive('bind', hosts)] : []),
      directive('errors'),
      directive('health', [address(config.health)], [directive('lameduck', [`${config.lameduckMs}ms`])]),
      directive('ready', [address(config.ready)]),
      directive('prometheus', [address(config.metrics)]),
      ...(config.logQueries ? [directive('log')] : []),
      directive('kubernetes', [config.zone, 'in-addr.arpa', 'ip6.arpa'], kubernetesOptions),
      ...(config.autopath ? [directive('autopath', ['@kubernetes'])] : []),
      ...(forwarding ? [directive('forward', ['.', ...(config.upstreams?.map(address) ?? [config.resolvConf])], forwardOptions()), ...cache()] : []),
    ];
    blocks.push(Object.freeze({ keys: Object.freeze([{ zone: '.', port, text: port === undefined ? '.' : `.:${port}` }]), directives: Object.freeze(directives), file: FILE, line: first }));
    for (const stub of config.stubDomains) {
      const stubLine = line + 1;
      blocks.push(Object.freeze({
        keys: Object.freeze([{ zone: `${stub.zone}.`, port, text: `${stub.zone}${port === undefined ? '' : `:${port}`}` }]),
        directives: Object.freeze([
          ...(hosts.length > 0 ? [directive('bind', hosts)] : []),
          directive('errors'),
          directive('forward', ['.', ...stub.upstreams.map(address)], forwardOptions()),
          ...cache(),
        ]),
        file: FILE,
        line: stubLine,
      }));
    }
  }
  return blocks;
}

/** The blocks as Corefile text, for `--print-corefile`. */
export function formatCorefile(blocks: readonly ServerBlock[]): string {
  const quote = (arg: string): string => (/^[^\s"{}#]+$/.test(arg) ? arg : JSON.stringify(arg));
  const lines = (directives: readonly Directive[], indent: string): string[] => directives.flatMap((d) => {
    const head = `${indent}${[d.name, ...d.args.map(quote)].join(' ')}`;
    return d.block === undefined || d.block.length === 0 ? [head] : [`${head} {`, ...lines(d.block, `${indent}    `), `${indent}}`];
  });
  return blocks.map((block) => [`${block.keys.map((key) => key.text).join(' ')} {`, ...lines(block.directives, '    '), '}'].join('\n')).join('\n\n') + '\n';
}
