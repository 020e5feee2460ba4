/**
 * What the cluster zone says about its answers in Extended DNS Errors (RFC 8914, INFO-CODE 0 "Other": no code of
 * its own fits "the name you asked for is not there, but this is"): for an NXDOMAIN, which label failed and what
 * exists instead; for a Service address that will not connect, why. Owns the texts, the did-you-mean search and
 * the service-name index behind "found in". Texts are built when an answer is prepared (once per name per store
 * change), never per query. Reads the store and the zone's service entries; answers nothing itself.
 */
import { undashIp } from '../../ip.js';
import { READY, type EndpointSet } from '../../store/index.js';

/**
 * `all`: every text; `local`: none that names another namespace (no "found in", no did-you-mean), for clusters
 * whose tenants must not learn each other's namespaces; `off`: no texts about the zone's contents.
 */
export type EdeHints = 'all' | 'local' | 'off';
export const EDE_HINTS: readonly EdeHints[] = ['all', 'local', 'off'];

/** A did-you-mean is offered within this many edits (insertions, deletions, substitutions, swaps). */
const SUGGEST_DISTANCE = 2;
/** "found in" lists at most this many namespaces, then how many more. */
const FOUND_IN_LISTED = 3;

/** The facts a text is built from: the store's, and the zone's own view of each service. */
export interface ZoneFacts {
  readonly hints: EdeHints;
  namespaceExists(namespace: string): boolean;
  namespaces(): Iterable<string>;
  /** The service's kind when it exists, whether or not it owns names. */
  serviceKind(namespace: string, name: string): 'ClusterIP' | 'Headless' | 'ExternalName' | undefined;
  /** Whether the service owns its names (a headless one without ready endpoints, for one, does not). */
  ownsNames(namespace: string, name: string): boolean;
  /** The namespaces holding a service of this name. */
  namespacesWith(name: string): readonly string[];
  endpointsOf(namespace: string, name: string): EndpointSet;
  /** The first label of the name of `endpoints`' row `row`, as the zone names it. */
  endpointLabel(endpoints: EndpointSet, row: number): string;
  /** False with `noendpoints`: no name answers from endpoints. */
  readonly endpointsServed: boolean;
  readonly pods: 'insecure' | 'verified' | 'disabled';
}

/**
 * Why `labels` (the name's labels left of the cluster domain, leftmost first) is NXDOMAIN, or undefined when
 * there is nothing useful to say (a name outside `svc` and `pod`, as search-path walks make).
 */
export function whyMissing(labels: readonly string[], facts: ZoneFacts): string | undefined {
  if (facts.hints === 'off' || labels.length < 2) return undefined;
  const kind = labels[labels.length - 1];
  const namespace = labels[labels.length - 2]!;
  if (kind === 'pod') return labels.length === 3 ? whyNoPod(labels[0]!, namespace, facts) : undefined;
  if (kind !== 'svc') return undefined;
  if (!facts.namespaceExists(namespace)) return namespaceMissing(namespace, facts);
  if (labels.length < 3) return undefined;
  const service = labels[labels.length - 3]!;
  const serviceKind = facts.serviceKind(namespace, service);
  if (serviceKind === undefined) return serviceMissing(service, namespace, facts);
  if (!facts.endpointsServed && (serviceKind === 'Headless' || labels.length === 4)) {
    return `${serviceKind === 'Headless' ? 'headless ' : ''}service ${quote(service)}: endpoint records are not served (noendpoints)`;
  }
  const endpoints = facts.endpointsOf(namespace, service);
  const ready = endpoints.conditions.filter((bits) => (bits & READY) !== 0).length;
  if (serviceKind === 'Headless' && ready === 0) {
    return endpoints.ips.length === 0
      ? `headless service ${quote(service)} has no endpoints`
      : `headless service ${quote(service)}: 0 of ${endpoints.ips.length} endpoints ready`;
  }
  if (serviceKind === 'ClusterIP' && !facts.ownsNames(namespace, service)) {
    return `service ${quote(service)} has no ready endpoints (ignore empty_service)`;
  }
  if (labels.length === 5 && labels[0]!.startsWith('_') && labels[1]!.startsWith('_')) {
    return `service ${quote(service)} has no port ${quote(`${labels[0]}.${labels[1]}`)}`;
  }
  if (labels.length !== 4) return undefined;
  const endpoint = labels[0]!;
  const named = endpoints.ips.findIndex((_ip, row) => facts.endpointLabel(endpoints, row) === endpoint);
  if (named >= 0) return `endpoint ${quote(endpoint)} of service ${quote(service)} is not ready`;
  return `service ${quote(service)} has no endpoint named ${quote(endpoint)}`;
}

/** The text on a ClusterIP Service's answers while no endpoint behind it is ready: the address resolves, but connects nowhere. */
export function noReadyEndpoints(service: string, clusterIPs: readonly string[]): string {
  return `service ${quote(service)} has no ready endpoints: connections to ${clusterIPs.join(' and ')} will fail`;
}

/** The text of a SERVFAIL before the first full sync. */
export function notSynced(seconds: number): string {
  return `not yet synced with the Kubernetes API; waiting for ${seconds} s`;
}

/** The text beside every answer while the API server is unreachable and the store holds what it last said. */
export function outOfTouch(seconds: number): string {
  return `state from the Kubernetes API as of ${seconds} s ago`;
}

function namespaceMissing(namespace: string, facts: ZoneFacts): string {
  const text = `namespace ${quote(namespace)} does not exist`;
  if (facts.hints !== 'all') return text;
  const suggestion = closest(namespace, facts.namespaces(), SUGGEST_DISTANCE);
  return suggestion === undefined ? text : `${text} (did you mean ${quote(suggestion)}?)`;
}

function serviceMissing(service: string, namespace: string, facts: ZoneFacts): string {
  const text = `no service ${quote(service)} in namespace ${quote(namespace)}`;
  if (facts.hints !== 'all') return text;
  const elsewhere = facts.namespacesWith(service).filter((other) => other !== namespace).sort();
  if (elsewhere.length === 0) return text;
  const listed = elsewhere.slice(0, FOUND_IN_LISTED).map(quote).join(', ');
  const more = elsewhere.length > FOUND_IN_LISTED ? ` and ${elsewhere.length - FOUND_IN_LISTED} more` : '';
  return `${text}; found in ${listed}${more}`;
}

function whyNoPod(dashed: string, namespace: string, facts: ZoneFacts): string | undefined {
  if (facts.pods === 'disabled') return 'pod records are disabled (pods disabled)';
  if (!facts.namespaceExists(namespace)) return namespaceMissing(namespace, facts);
  const ip = undashIp(dashed);
  if (ip === undefined) return `${quote(dashed)} is not a dashed IP address`;
  return facts.pods === 'verified' ? `no pod with IP ${ip} in namespace ${quote(namespace)} (pods verified)` : undefined;
}

/** The candidate nearest to `name` within `max` edits (ties: the first in sort order), never `name` itself. */
export function closest(name: string, candidates: Iterable<string>, max: number): string | undefined {
  let best: string | undefined;
  let bestDistance = max + 1;
  for (const candidate of candidates) {
    if (candidate === name || Math.abs(candidate.length - name.length) > max) continue;
    const distance = editDistance(name, candidate, max);
    if (distance < bestDistance || (distance === bestDistance && best !== undefined && candidate < best)) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= max ? best : undefined;
}

/** DNS labels are at most 63 bytes: three rows of 64 cells hold every distance computed here, reused. */
const ROWS = [new Int32Array(64), new Int32Array(64), new Int32Array(64)] as const;

/**
 * Edits between `a` and `b`, a swap of neighbours counting one ("defualt" is one from "default"): optimal string
 * alignment distance, or max + 1 when it is more than `max`. Only the diagonal band of width 2·max + 1 is computed
 * (a cell further out costs more than max), with no allocation: a did-you-mean over a thousand namespaces must not
 * stall the query that asked for it.
 */
export function editDistance(a: string, b: string, max: number): number {
  const far = max + 1;
  if (Math.abs(a.length - b.length) > max) return far;
  if (a.length >= ROWS[0].length || b.length >= ROWS[0].length) return far;
  let before = ROWS[0];
  let previous = ROWS[1];
  let current = ROWS[2];
  for (let j = 0; j <= b.length; j++) previous[j] = Math.min(j, far);
  for (let i = 1; i <= a.length; i++) {
    const low = Math.max(1, i - max);
    const high = Math.min(b.length, i + max);
    // Cells left and right of the band read as "too far"; column 0 is i deletions.
    current[low - 1] = low === 1 ? Math.min(i, far) : far;
    if (high < b.length) current[high + 1] = far;
    let rowMin = current[low - 1]!;
    for (let j = low; j <= high; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      let value = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a.charCodeAt(i - 1) === b.charCodeAt(j - 2) && a.charCodeAt(i - 2) === b.charCodeAt(j - 1)) {
        value = Math.min(value, before[j - 2]! + 1);
      }
      current[j] = Math.min(value, far);
      if (value < rowMin) rowMin = value;
    }
    if (rowMin > max) return far;
    const spare = before;
    before = previous;
    previous = current;
    current = spare;
  }
  return Math.min(previous[b.length]!, far);
}

/** A label as the text shows it: quoted, with anything but printable ASCII as `?` (labels are bytes, the text UTF-8). */
function quote(label: string): string {
  return `"${label.replace(/[^\x20-\x7e]|"/g, '?')}"`;
}
