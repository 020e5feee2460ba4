/**
 * The kubernetes plugin's setup: its Corefile stanza (or the flags that build one) → a frozen config, and the
 * running plugin over the store. Syntax (CoreDNS's, with the options clusterdns honours):
 *
 *   kubernetes [ZONES...] {
 *     kubeconfig PATH [CONTEXT]                endpoint URL            tls CERT KEY CACERT
 *     namespaces NAMESPACE...  namespace_labels EXPRESSION             labels EXPRESSION
 *     pods disabled|insecure|verified          ttl SECONDS
 *     fallthrough [ZONES...]   startup_timeout DURATION
 *     manifests PATH           (clusterdns: serve manifest files instead of a cluster)
 *     ede_hints all|local|off  (clusterdns: which Extended DNS Error texts answers carry; explain.ts)
 *     noendpoints              ignore empty_service    endpoint_pod_names
 *   }
 *
 * ZONES default to the server block's; one of them is the cluster domain, the others may be in-addr.arpa and
 * ip6.arpa. `tls` goes with `endpoint` only (CoreDNS ignores it otherwise; here that is an error), and
 * `namespace_labels` not with `namespaces` (as CoreDNS). The one option CoreDNS has that clusterdns does not
 * honour, multicluster, stops start-up with an error naming it.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { isNamespaceName } from '../../config/index.js';
import { pluginError } from '../../corefile/errors.js';
import type { Directive } from '../../corefile/types.js';
import { nameToKey } from '../../wire/index.js';
import type { PluginSetup } from '../plugin.js';
import { choice, durationMs, integer, optionLines, single, zoneCovers, zoneName } from '../setup-values.js';
import { KubernetesHandler } from './handler.js';
import { parseLabelSelector } from '../../source/label-selector.js';
import { EDE_HINTS, type EdeHints } from './explain.js';
import { ClusterResolver, type PodMode } from './index.js';
import { registerKubernetesMetrics } from './metrics.js';

export interface KubernetesConfig {
  /** The cluster domain, without the trailing dot: `cluster.local`. */
  readonly zone: string;
  /** Every zone answered, absolute: the cluster domain and the reverse zones listed. */
  readonly zones: readonly string[];
  readonly ttl: number;
  readonly pods: PodMode;
  /** Zones whose NXDOMAIN goes on to the next plugin instead. */
  readonly fallthrough: readonly string[];
  /** Which Extended DNS Error texts the zone's answers carry (`ede_hints`, a clusterdns extension). */
  readonly hints: EdeHints;
  /** `noendpoints`: no endpoint records (endpoint names, headless services' addresses), as CoreDNS's. */
  readonly noEndpoints: boolean;
  /** `ignore empty_service`: a ClusterIP service with no ready endpoint is NXDOMAIN, as CoreDNS's. */
  readonly ignoreEmptyService: boolean;
  /** `endpoint_pod_names`: endpoints without a hostname are named by their pod, as CoreDNS's. */
  readonly endpointPodNames: boolean;
  /**
   * `labels`: only Services, EndpointSlices and Pods whose labels match; `namespaceLabels`: only those in
   * namespaces whose labels match. Both in canonical form (label-selector.ts).
   */
  readonly source:
    | { readonly kind: 'manifests'; readonly path: string; readonly labels?: string; readonly namespaceLabels?: string }
    | ClusterSource;
}

export interface ClusterSource {
  readonly kind: 'cluster';
  readonly kubeconfig: string | undefined;
  /** `kubeconfig PATH CONTEXT`: this context instead of the kubeconfig's current one. */
  readonly context?: string;
  readonly endpoint: string | undefined;
  /** `tls CERT KEY CACERT`: the files (checked at setup, read again for each connection) for `endpoint`. */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca: string };
  readonly namespaces: readonly string[];
  readonly labels?: string;
  readonly namespaceLabels?: string;
}

const REVERSE = ['in-addr.arpa.', 'ip6.arpa.'];
const OPTIONS = ['kubeconfig', 'endpoint', 'tls', 'namespaces', 'namespace_labels', 'labels', 'pods', 'ttl', 'fallthrough', 'startup_timeout', 'manifests', 'ede_hints', 'noendpoints', 'ignore', 'endpoint_pod_names'];
const NOT_HONOURED: Readonly<Record<string, string>> = {
  multicluster: 'one cluster is served',
};

function args(plugin: Directive, line: Directive, min: number, max: number, usage: string): readonly string[] {
  if (line.args.length < min || line.args.length > max) {
    throw pluginError(plugin, `option "${line.name}" wants ${min === max ? min : `${min} to ${max === Infinity ? 'any' : max}`} argument${max === 1 ? '' : 's'}, got ${line.args.length} (usage: ${usage})`, line);
  }
  return line.args;
}

/** A label selector option (`labels`, `namespace_labels`) in canonical form; its spaces split it into arguments. */
function selector(plugin: Directive, line: Directive): string {
  const expression = args(plugin, line, 1, Infinity, `${line.name} EXPRESSION`).join(' ');
  try {
    return parseLabelSelector(expression).text;
  } catch (error) {
    throw pluginError(plugin, `option "${line.name}": ${(error as Error).message}`, line);
  }
}

/**
 * `tls CERT KEY CACERT`: each file read now and the three checked to be PEM Node can use, so a missing or bad one
 * fails at start naming it; the source reads them again for each connection (certificates rotate).
 */
function tlsFiles(plugin: Directive, line: Directive): NonNullable<ClusterSource['tls']> {
  const [cert, key, ca] = args(plugin, line, 3, 3, 'tls CERT KEY CACERT') as [string, string, string];
  const read = (path: string, what: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw pluginError(plugin, `option "tls": cannot read the ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, line);
    }
  };
  const files = { cert: read(cert, 'client certificate'), key: read(key, 'client key'), ca: read(ca, 'CA certificate') };
  try {
    createSecureContext(files);
  } catch (error) {
    throw pluginError(plugin, `option "tls": ${cert} ${key} ${ca}: ${(error as Error).message}`, line);
  }
  return Object.freeze({ cert, key, ca });
}

export const kubernetes: PluginSetup<KubernetesConfig> = {
  name: 'kubernetes',
  parse(directives, blockZones) {
    const plugin = single(directives);
    // A zone written twice (RKE2's chart writes `cluster.local cluster.local ...`) is one zone, as in CoreDNS.
    const zones = [...new Set(plugin.args.length > 0 ? plugin.args.map((text) => zoneName({ plugin }, text)) : blockZones)];
    const forward = zones.filter((zone) => !REVERSE.some((reverse) => zoneCovers(reverse, zone)));
    if (forward.length !== 1 || forward[0] === '.') {
      throw pluginError(plugin, `wants exactly one cluster domain besides in-addr.arpa and ip6.arpa, got ${forward.join(' ') || 'none'}`);
    }
    for (const zone of zones) {
      if (forward.includes(zone) || REVERSE.includes(zone)) continue;
      throw pluginError(plugin, `reverse zone ${zone}: only the whole in-addr.arpa and ip6.arpa are supported`);
    }
    let ttl = 5;
    let pods: PodMode = 'disabled';
    let hints: EdeHints = 'all';
    let noEndpoints = false;
    let ignoreEmptyService = false;
    let endpointPodNames = false;
    let fallthrough: string[] = [];
    let kubeconfig: string | undefined;
    let context: string | undefined;
    let endpoint: string | undefined;
    let tls: ClusterSource['tls'];
    let tlsLine: Directive | undefined;
    let namespaceLabels: string | undefined;
    let manifests: string | undefined;
    let namespaces: string[] = [];
    let labels: string | undefined;
    for (const line of (plugin.block ?? [])) {
      if (NOT_HONOURED[line.name] !== undefined) throw pluginError(plugin, `option "${line.name}" is not supported by clusterdns (${NOT_HONOURED[line.name]})`, line);
    }
    for (const line of optionLines(plugin, OPTIONS)) {
      const at = { plugin, line };
      switch (line.name) {
        case 'ttl': ttl = integer(at, args(plugin, line, 1, 1, 'ttl SECONDS')[0]!, 0, 3600); break;
        case 'pods': pods = choice(at, args(plugin, line, 1, 1, 'pods disabled|insecure|verified')[0]!, ['disabled', 'insecure', 'verified'] as const); break;
        case 'fallthrough': fallthrough = line.args.length === 0 ? [...zones] : line.args.map((text) => zoneName(at, text)); break;
        case 'kubeconfig': [kubeconfig, context] = args(plugin, line, 1, 2, 'kubeconfig KUBECONFIG [CONTEXT]'); break;
        case 'endpoint': endpoint = args(plugin, line, 1, 1, 'endpoint URL')[0]; break;
        case 'tls': tls = tlsFiles(plugin, line); tlsLine = line; break;
        case 'manifests': manifests = args(plugin, line, 1, 1, 'manifests PATH')[0]; break;
        case 'ede_hints': hints = choice(at, args(plugin, line, 1, 1, 'ede_hints all|local|off')[0]!, EDE_HINTS); break;
        case 'noendpoints': args(plugin, line, 0, 0, 'noendpoints'); noEndpoints = true; break;
        case 'ignore': choice(at, args(plugin, line, 1, 1, 'ignore empty_service')[0]!, ['empty_service'] as const); ignoreEmptyService = true; break;
        case 'endpoint_pod_names': args(plugin, line, 0, 0, 'endpoint_pod_names'); endpointPodNames = true; break;
        case 'startup_timeout': durationMs(at, args(plugin, line, 1, 1, 'startup_timeout DURATION')[0]!); break;
        case 'labels': labels = selector(plugin, line); break;
        case 'namespace_labels': namespaceLabels = selector(plugin, line); break;
        case 'namespaces':
          namespaces = [...args(plugin, line, 1, Infinity, 'namespaces NAMESPACE...')];
          for (const namespace of namespaces) if (!isNamespaceName(namespace)) throw pluginError(plugin, `"${namespace}" is not a namespace name`, line);
          break;
      }
    }
    if (endpoint !== undefined && !/^https?:\/\/[^/]+/.test(endpoint)) throw pluginError(plugin, `endpoint "${endpoint}" is not an http(s) URL`);
    if (manifests !== undefined && (kubeconfig !== undefined || endpoint !== undefined || tls !== undefined || namespaces.length > 0)) {
      throw pluginError(plugin, 'manifests serves files: it cannot go with kubeconfig, endpoint, tls or namespaces');
    }
    // CoreDNS uses tls only to reach an `endpoint` without a kubeconfig, and silently drops it otherwise.
    if (tls !== undefined && endpoint === undefined) throw pluginError(plugin, 'option "tls" is for connecting to an endpoint URL: add endpoint, or leave tls out', tlsLine);
    if (tls !== undefined && endpoint?.startsWith('http:')) throw pluginError(plugin, `option "tls" needs an https:// endpoint, not ${endpoint}`, tlsLine);
    if (tls !== undefined && kubeconfig !== undefined) throw pluginError(plugin, 'option "tls" cannot go with kubeconfig (its user and cluster give the certificates)', tlsLine);
    if (namespaceLabels !== undefined && namespaces.length > 0) throw pluginError(plugin, 'namespaces and namespace_labels cannot both be set');
    return Object.freeze({
      zone: forward[0]!.slice(0, -1),
      zones: Object.freeze(zones),
      ttl,
      pods,
      hints,
      noEndpoints,
      ignoreEmptyService,
      endpointPodNames,
      fallthrough: Object.freeze(fallthrough),
      source: manifests !== undefined
        ? Object.freeze({ kind: 'manifests' as const, path: manifests, ...(labels !== undefined && { labels }), ...(namespaceLabels !== undefined && { namespaceLabels }) })
        : Object.freeze({
          kind: 'cluster' as const,
          kubeconfig,
          ...(context !== undefined && { context }),
          endpoint,
          ...(tls !== undefined && { tls }),
          namespaces: Object.freeze([...new Set(namespaces)]),
          ...(labels !== undefined && { labels }),
          ...(namespaceLabels !== undefined && { namespaceLabels }),
        }),
    });
  },
  create(config, context) {
    const reverseFallthrough = REVERSE.every((zone) => config.fallthrough.some((covering) => zoneCovers(covering, zone)));
    const cluster = new ClusterResolver(context.store, {
      zone: config.zone,
      ttl: config.ttl,
      pods: config.pods,
      selfAddresses: context.selfAddresses,
      reverseFallthrough,
      hints: config.hints,
      noEndpoints: config.noEndpoints,
      ignoreEmptyService: config.ignoreEmptyService,
      endpointPodNames: config.endpointPodNames,
      now: context.now,
      ...(context.virtualIPs !== undefined && { virtualIPs: context.virtualIPs }),
    });
    const removeMetrics = registerKubernetesMetrics(context.registry, context.store, () => cluster.nameCount);
    const handler = new KubernetesHandler(cluster, config.zones.map((zone) => nameToKey(zone)), config.fallthrough.map((zone) => nameToKey(zone)));
    return {
      handler,
      notReady: () => (context.store.synced ? undefined : 'kubernetes'),
      close: () => {
        removeMetrics();
        cluster.close();
      },
    };
  },
};
