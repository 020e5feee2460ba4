/**
 * The objects `clusterdns doctor` reads, whole, on demand: Services, Pods and EndpointSlices from the API (one
 * list per kind and namespace, through source/'s kubeconfig and list calls) or from manifest files (through
 * source/'s manifest reader), turned into the few views the checks look at: labels, container ports, statuses,
 * endpoint conditions. The server's slim store keeps none of these and must not start to; this runs only for the
 * command, and drops everything when it ends.
 */
import { resolve } from 'node:path';
import type { KubeAccess } from '../source/kube-config.js';
import { ClusterDnsError } from '../errors.js';
import { describeError, KubeApiError, listPage, type Json } from '../source/kube-api.js';
import { readManifestObjects } from '../source/manifests.js';
import { ObjectError, toService } from '../source/objects.js';
import type { ServiceRecord } from '../store/index.js';

export interface ServiceView {
  readonly record: ServiceRecord;
  /** `spec.selector`; empty for a Service without one. */
  readonly selector: Readonly<Record<string, string>>;
}

export interface ContainerPortView {
  readonly name: string | undefined;
  readonly containerPort: number;
  readonly protocol: string;
}

export interface ContainerView {
  readonly name: string;
  readonly ports: readonly ContainerPortView[];
  readonly ready: boolean;
  readonly restartCount: number;
  /** `state.waiting`: CrashLoopBackOff, ImagePullBackOff, ContainerCreating... */
  readonly waiting: { readonly reason: string; readonly message: string | undefined } | undefined;
  /** `lastState.terminated`, or `state.terminated`: why it last stopped. */
  readonly lastTermination: { readonly reason: string; readonly exitCode: number } | undefined;
}

export interface PodView {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly phase: string;
  /** The pod's Ready condition. */
  readonly ready: boolean;
  /** The Ready condition's message, when the kubelet gave one (`containers with unready status: [app]`). */
  readonly readyMessage: string | undefined;
  readonly terminating: boolean;
  readonly ips: readonly string[];
  readonly containers: readonly ContainerView[];
}

export interface SliceEndpointView {
  readonly addresses: readonly string[];
  /** `conditions.ready`, missing counting as ready (discovery.k8s.io/v1). */
  readonly ready: boolean;
  readonly terminating: boolean;
  /** `targetRef.name` of a Pod target. */
  readonly pod: string | undefined;
}

export interface SliceView {
  readonly name: string;
  readonly ports: ReadonlyArray<{ readonly name: string; readonly port: number | undefined; readonly protocol: string }>;
  readonly endpoints: readonly SliceEndpointView[];
}

/** What the checks of one namespace see. */
export interface NamespaceObjects {
  readonly services: readonly ServiceView[];
  readonly pods: readonly PodView[];
  /** By the `kubernetes.io/service-name` label. */
  readonly slices: ReadonlyMap<string, readonly SliceView[]>;
}

export type Kind = 'services' | 'pods' | 'endpointslices';

/** Lists whole objects of one kind, in one namespace or (undefined) every namespace. */
export interface ObjectReader {
  /** `--manifests PATH`, `--kubeconfig PATH`: said in messages. */
  readonly origin: string;
  list(kind: Kind, namespace: string | undefined): Promise<readonly Json[]>;
}

const API_PATHS: Record<Kind, string> = { services: '/api/v1', pods: '/api/v1', endpointslices: '/apis/discovery.k8s.io/v1' };
const PAGE_SIZE = '500';
const PAGE_TIMEOUT_MS = 30_000;

/** Reads from the API server of `access`, page by page as kubectl does. */
export function apiReader(access: KubeAccess): ObjectReader {
  return {
    origin: access.origin,
    async list(kind, namespace) {
      const path = `${API_PATHS[kind]}${namespace === undefined ? '' : `/namespaces/${namespace}`}/${kind}`;
      const items: Json[] = [];
      let token: string | undefined;
      try {
        do {
          const page = await listPage(access, path, { limit: PAGE_SIZE, continue: token }, AbortSignal.timeout(PAGE_TIMEOUT_MS));
          items.push(...(page.items as Json[]));
          token = page.continueToken;
        } while (token !== undefined);
      } catch (error) {
        // Said once, with what was asked of whom: the caller tells a refusal (a status) from a transport failure.
        const what = `cannot list ${path} from ${access.server} (${access.origin})`;
        if (error instanceof KubeApiError) throw new KubeApiError(error.status, error.reason, `${what}: ${error.message}`);
        throw new ClusterDnsError('E_KUBE_API', `${what}: ${describeError(error)}`, { cause: error });
      }
      return items;
    },
  };
}

const MANIFEST_KINDS: Record<string, Kind> = { 'v1/Service': 'services', 'v1/Pod': 'pods', 'discovery.k8s.io/v1/EndpointSlice': 'endpointslices' };

/** Reads the files once; objects without a namespace are in `default`, as `kubectl apply` puts them. */
export async function manifestReader(path: string): Promise<ObjectReader> {
  const objects = await readManifestObjects(resolve(path));
  return {
    origin: `--manifests ${path}`,
    list: async (kind, namespace) => objects.flatMap(({ object }) => {
      const json = object as Json;
      if (MANIFEST_KINDS[`${String(json.apiVersion)}/${String(json.kind)}`] !== kind) return [];
      return namespace === undefined || namespaceOf(json) === namespace ? [json] : [];
    }),
  };
}

/**
 * The objects of one namespace (or of every namespace), read with one list per kind and grouped by namespace;
 * a Service the server would refuse fails here too (ObjectError). Namespaces without a Service are left out.
 */
export async function readNamespaces(reader: ObjectReader, namespace: string | undefined): Promise<Map<string, NamespaceObjects>> {
  const [services, pods, slices] = await Promise.all((['services', 'pods', 'endpointslices'] as const).map((kind) => reader.list(kind, namespace)));
  const grouped = new Map<string, { services: ServiceView[]; pods: PodView[]; slices: Map<string, SliceView[]> }>();
  const group = (object: Json) => {
    const name = namespaceOf(object);
    let entry = grouped.get(name);
    if (entry === undefined) grouped.set(name, (entry = { services: [], pods: [], slices: new Map() }));
    return entry;
  };
  for (const service of services!) group(service).services.push(serviceView(service, reader.origin));
  for (const pod of pods!) group(pod).pods.push(podView(pod));
  for (const slice of slices!) {
    const owner = record(record(slice.metadata).labels)['kubernetes.io/service-name'];
    if (typeof owner !== 'string') continue;
    const bySlice = group(slice).slices;
    bySlice.set(owner, [...(bySlice.get(owner) ?? []), sliceView(slice)]);
  }
  for (const [name, entry] of grouped) if (entry.services.length === 0 && name !== namespace) grouped.delete(name);
  return grouped;
}

export function serviceView(object: Json, origin: string): ServiceView {
  let parsed: ServiceRecord;
  try {
    parsed = toService(object);
  } catch (error) {
    if (error instanceof ObjectError) throw new ObjectError(`${origin}: ${error.message}`);
    throw error;
  }
  return { record: parsed, selector: strings(record(object.spec).selector) };
}

export function namespaceOf(object: Json): string {
  const namespace = record(object.metadata).namespace;
  return typeof namespace === 'string' && namespace !== '' ? namespace : 'default';
}

function podView(object: Json): PodView {
  const metadata = record(object.metadata);
  const status = record(object.status);
  const conditions = list(status.conditions).map(record);
  const readyCondition = conditions.find((condition) => condition.type === 'Ready');
  const statuses = new Map(list(status.containerStatuses).map(record).map((entry) => [String(entry.name), entry]));
  const listed = list(status.podIPs).map((entry) => record(entry).ip);
  const ips = (listed.length > 0 ? listed : [status.podIP]).filter((ip): ip is string => typeof ip === 'string' && ip !== '');
  return {
    namespace: namespaceOf(object),
    name: String(metadata.name),
    labels: strings(metadata.labels),
    phase: typeof status.phase === 'string' ? status.phase : 'Unknown',
    ready: readyCondition?.status === 'True',
    readyMessage: typeof readyCondition?.message === 'string' ? readyCondition.message : undefined,
    terminating: metadata.deletionTimestamp !== undefined && metadata.deletionTimestamp !== null,
    ips,
    containers: list(record(object.spec).containers).map(record).map((container) => containerView(container, statuses.get(String(container.name)))),
  };
}

function containerView(container: Json, status: Json | undefined): ContainerView {
  const state = record(status?.state);
  const waiting = state.waiting === undefined ? undefined : record(state.waiting);
  const terminated = record(record(status?.lastState).terminated ?? state.terminated);
  return {
    name: String(container.name),
    ports: list(container.ports).map(record).map((port) => ({
      name: typeof port.name === 'string' && port.name !== '' ? port.name : undefined,
      containerPort: Number(port.containerPort),
      protocol: typeof port.protocol === 'string' ? port.protocol : 'TCP',
    })),
    ready: status?.ready === true,
    restartCount: typeof status?.restartCount === 'number' ? status.restartCount : 0,
    waiting: waiting === undefined ? undefined : { reason: String(waiting.reason ?? 'Waiting'), message: typeof waiting.message === 'string' ? waiting.message : undefined },
    lastTermination: terminated.reason === undefined && terminated.exitCode === undefined
      ? undefined
      : { reason: String(terminated.reason ?? 'Terminated'), exitCode: Number(terminated.exitCode ?? 0) },
  };
}

function sliceView(object: Json): SliceView {
  return {
    name: String(record(object.metadata).name),
    ports: list(object.ports).map(record).map((port) => ({
      name: typeof port.name === 'string' ? port.name : '',
      port: typeof port.port === 'number' ? port.port : undefined,
      protocol: typeof port.protocol === 'string' ? port.protocol : 'TCP',
    })),
    endpoints: list(object.endpoints).map(record).map((endpoint) => {
      const conditions = record(endpoint.conditions);
      const target = record(endpoint.targetRef);
      return {
        addresses: list(endpoint.addresses).map(String),
        ready: conditions.ready !== false,
        terminating: conditions.terminating === true,
        pod: target.kind === 'Pod' && typeof target.name === 'string' ? target.name : undefined,
      };
    }),
  };
}

/** Lenient on purpose: a field the checks cannot read is a field they report as missing, not a crash. */
function record(value: unknown): Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : {};
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function strings(value: unknown): Record<string, string> {
  return Object.fromEntries(Object.entries(record(value)).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
}
