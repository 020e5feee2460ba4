/**
 * Kubernetes objects (as JSON: from a manifest file or from the API) → slim store records. Every field is
 * checked here, at the boundary, so the store and plugins can trust what they hold; a bad object throws an
 * ObjectError naming the object and the field. Unknown kinds return undefined (ignored by the caller).
 */
import { canonicalIp, ipFamily } from '../ip.js';
import {
  READY,
  SERVING,
  TERMINATING,
  sizedColumn,
  type EndpointSliceRecord,
  type NamespaceRecord,
  type PodRecord,
  type Protocol,
  type RecordsByKind,
  type ResourceKind,
  type ServiceKind,
  type ServicePort,
  type ServiceRecord,
  type SlicePort,
} from '../store/index.js';
import { ClusterDnsError } from '../errors.js';

export class ObjectError extends ClusterDnsError {
  constructor(message: string) {
    super('E_OBJECT', message);
    this.name = 'ObjectError';
  }
}

export type SlimRecord = { [K in ResourceKind]: { kind: K; record: RecordsByKind[K] } }[ResourceKind];

type Json = Record<string, unknown>;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DEFAULT_AFFINITY_SECONDS = 10800;

/**
 * The slim record for a supported object, or undefined for kinds clusterdns does not use. Endpoints keep their
 * pod names (for `endpoint_pod_names`): manifest files, this function's users, are small.
 */
export function toRecord(object: unknown): SlimRecord | undefined {
  if (!isObject(object)) throw new ObjectError('expected a Kubernetes object (a mapping with apiVersion and kind)');
  const kind = object.kind;
  const apiVersion = object.apiVersion;
  if (kind === 'Namespace' && apiVersion === 'v1') return { kind: 'namespace', record: toNamespace(object) };
  if (kind === 'Service' && apiVersion === 'v1') return { kind: 'service', record: toService(object) };
  if (kind === 'EndpointSlice' && apiVersion === 'discovery.k8s.io/v1') {
    const record = toEndpointSlice(object, true);
    return record === undefined ? undefined : { kind: 'endpointslice', record };
  }
  if (kind === 'Pod' && apiVersion === 'v1') {
    const record = toPod(object);
    return record === undefined ? undefined : { kind: 'pod', record };
  }
  if (typeof kind !== 'string' || typeof apiVersion !== 'string') throw new ObjectError('object has no apiVersion or kind');
  return undefined;
}

export function toNamespace(object: Json): NamespaceRecord {
  return { name: metadataName(object, 'Namespace') };
}

export function toService(object: Json): ServiceRecord {
  const name = metadataName(object, 'Service');
  const namespace = metadataNamespace(object);
  const where = `Service ${namespace}/${name}`;
  const spec = optionalObject(object.spec, `${where}: spec`) ?? {};
  const type = optionalString(spec.type, `${where}: spec.type`) ?? 'ClusterIP';
  const ports = (optionalArray(spec.ports, `${where}: spec.ports`) ?? []).map((port, i) => servicePort(port, `${where}: spec.ports[${i}]`));
  const publishNotReadyAddresses = optionalBoolean(spec.publishNotReadyAddresses, `${where}: spec.publishNotReadyAddresses`) ?? false;
  const selector = optionalObject(spec.selector, `${where}: spec.selector`);
  const hasSelector = selector !== undefined && Object.keys(selector).length > 0;
  // One literal with every field, never `{ ...base, ... }`: objects cloned by spread at this call site each got
  // a map (hidden class) of their own, 2.9 MB of maps and descriptor arrays for 10k services.
  const externalIPs = externalAddresses(spec, optionalObject(object.status, `${where}: status`), where);
  const record = (kind: ServiceKind, clusterIPs: string[], externalName?: string, affinityTimeoutSeconds?: number): ServiceRecord =>
    ({ namespace, name, kind, clusterIPs, externalName, ports, publishNotReadyAddresses, hasSelector, affinityTimeoutSeconds, externalIPs });

  if (type === 'ExternalName') {
    const externalName = optionalString(spec.externalName, `${where}: spec.externalName`);
    if (externalName === undefined || !isDnsName(externalName)) {
      throw new ObjectError(`${where}: type ExternalName needs spec.externalName, a DNS name (got ${JSON.stringify(spec.externalName)})`);
    }
    return record('ExternalName', [], externalName.replace(/\.$/, '').toLowerCase());
  }
  if (!['ClusterIP', 'NodePort', 'LoadBalancer'].includes(type)) throw new ObjectError(`${where}: unknown spec.type "${type}"`);

  const listed = optionalArray(spec.clusterIPs, `${where}: spec.clusterIPs`) ?? [];
  const single = optionalString(spec.clusterIP, `${where}: spec.clusterIP`);
  const clusterIPs = listed.length > 0 ? listed : single === undefined ? [] : [single];
  if (clusterIPs.length === 0) {
    throw new ObjectError(`${where}: no spec.clusterIP; give the service's virtual IP, or "None" for a headless service`);
  }
  if (clusterIPs[0] === 'None') return record('Headless', []);
  const ips = clusterIPs.map((ip, i) => {
    const canonical = typeof ip === 'string' ? canonicalIp(ip) : undefined;
    if (canonical === undefined) throw new ObjectError(`${where}: spec.clusterIPs[${i}] ${JSON.stringify(ip)} is not an IP address`);
    return canonical;
  });
  const affinity = spec.sessionAffinity === 'ClientIP'
    ? (numberAt(spec, ['sessionAffinityConfig', 'clientIP', 'timeoutSeconds']) ?? DEFAULT_AFFINITY_SECONDS)
    : undefined;
  return record('ClusterIP', ips, undefined, affinity);
}

/**
 * `spec.externalIPs` and then each `status.loadBalancer.ingress[]` entry's `ip`, or its `hostname` when it has no
 * IP (a cloud load balancer known by name), in that order as CoreDNS keeps them; undefined when there are none.
 */
function externalAddresses(spec: Json, status: Json | undefined, where: string): string[] | undefined {
  const listed = optionalArray(spec.externalIPs, `${where}: spec.externalIPs`) ?? [];
  const loadBalancer = optionalObject(status?.loadBalancer, `${where}: status.loadBalancer`);
  const ingress = optionalArray(loadBalancer?.ingress, `${where}: status.loadBalancer.ingress`) ?? [];
  if (listed.length === 0 && ingress.length === 0) return undefined;
  const addresses = listed.map((ip, i) => {
    const canonical = typeof ip === 'string' ? canonicalIp(ip) : undefined;
    if (canonical === undefined) throw new ObjectError(`${where}: spec.externalIPs[${i}] ${JSON.stringify(ip)} is not an IP address`);
    return canonical;
  });
  ingress.forEach((entry, i) => {
    const at = `${where}: status.loadBalancer.ingress[${i}]`;
    if (!isObject(entry)) throw new ObjectError(`${at}: expected a mapping`);
    const ip = optionalString(entry.ip, `${at}.ip`);
    const hostname = optionalString(entry.hostname, `${at}.hostname`);
    if (ip !== undefined && ip !== '') {
      const canonical = canonicalIp(ip);
      if (canonical === undefined) throw new ObjectError(`${at}.ip ${JSON.stringify(ip)} is not an IP address`);
      addresses.push(canonical);
    } else if (hostname !== undefined && hostname !== '') {
      if (!isDnsName(hostname)) throw new ObjectError(`${at}.hostname ${JSON.stringify(hostname)} is not a DNS name`);
      addresses.push(hostname.replace(/\.$/, '').toLowerCase());
    }
  });
  return addresses.length === 0 ? undefined : addresses;
}

/**
 * A slice not labelled with its service belongs to no service DNS can name: undefined. `keepPodNames` keeps the
 * `podNames` column, which only `endpoint_pod_names` reads.
 */
export function toEndpointSlice(object: Json, keepPodNames: boolean): EndpointSliceRecord | undefined {
  const name = metadataName(object, 'EndpointSlice');
  const namespace = metadataNamespace(object);
  const where = `EndpointSlice ${namespace}/${name}`;
  const metadata = object.metadata as Json;
  const labels = optionalObject(metadata.labels, `${where}: metadata.labels`) ?? {};
  const serviceName = labels['kubernetes.io/service-name'];
  if (typeof serviceName !== 'string' || serviceName === '') return undefined;
  const addressType = object.addressType;
  if (addressType !== 'IPv4' && addressType !== 'IPv6' && addressType !== 'FQDN') {
    throw new ObjectError(`${where}: addressType must be IPv4, IPv6 or FQDN (got ${JSON.stringify(addressType)})`);
  }
  const ports = (optionalArray(object.ports, `${where}: ports`) ?? []).flatMap((port, i) => slicePort(port, `${where}: ports[${i}]`));
  const ips: string[] = [];
  const conditions: number[] = [];
  const hostnames: Array<string | undefined> = [];
  const podNames: Array<string | undefined> = [];
  (optionalArray(object.endpoints, `${where}: endpoints`) ?? []).forEach((entry, i) => {
    const endpoint = sliceEndpoint(entry, addressType, `${where}: endpoints[${i}]`);
    for (const ip of endpoint.addresses) {
      ips.push(ip);
      conditions.push(endpoint.conditions);
      hostnames.push(endpoint.hostname);
      // A hostname wins over the pod name, so the pod name is not kept beside one.
      podNames.push(keepPodNames && endpoint.hostname === undefined ? endpoint.podName : undefined);
    }
  });
  // Copies are sized exactly; arrays grown by push() keep up to half again as many slots, for as long as they live.
  const endpoints = { ips: ips.slice(), conditions: conditions.slice(), hostnames: sizedColumn(hostnames), podNames: sizedColumn(podNames) };
  return { namespace, name, serviceName, addressType, ports, endpoints };
}

/** Finished pods (Succeeded, Failed) and pods without an address yet give no record: undefined. */
export function toPod(object: Json): PodRecord | undefined {
  const name = metadataName(object, 'Pod');
  const namespace = metadataNamespace(object);
  const where = `Pod ${namespace}/${name}`;
  const status = optionalObject(object.status, `${where}: status`) ?? {};
  if (status.phase === 'Succeeded' || status.phase === 'Failed') return undefined;
  const listed = (optionalArray(status.podIPs, `${where}: status.podIPs`) ?? []).map((entry) => (isObject(entry) ? entry.ip : entry));
  const raw = listed.length > 0 ? listed : status.podIP === undefined ? [] : [status.podIP];
  const ips = raw.map((ip, i) => {
    const canonical = typeof ip === 'string' ? canonicalIp(ip) : undefined;
    if (canonical === undefined) throw new ObjectError(`${where}: status.podIPs[${i}] ${JSON.stringify(ip)} is not an IP address`);
    return canonical;
  });
  return ips.length === 0 ? undefined : { namespace, name, ips };
}

function servicePort(port: unknown, where: string): ServicePort {
  if (!isObject(port)) throw new ObjectError(`${where}: expected a mapping`);
  const number = portNumber(port.port, `${where}.port`);
  const targetPort = port.targetPort === undefined ? number
    : typeof port.targetPort === 'string' && !/^\d+$/.test(port.targetPort) ? port.targetPort
      : portNumber(Number(port.targetPort), `${where}.targetPort`);
  return { name: portName(port.name, where), port: number, protocol: protocol(port.protocol, where), targetPort };
}

function slicePort(port: unknown, where: string): SlicePort[] {
  if (!isObject(port)) throw new ObjectError(`${where}: expected a mapping`);
  // A slice port without a number means "all ports" (a selector-less service); it names no SRV target.
  if (port.port === undefined || port.port === null) return [];
  return [{ name: portName(port.name, where), port: portNumber(port.port, `${where}.port`), protocol: protocol(port.protocol, where) }];
}

interface SliceEndpoint {
  readonly addresses: string[];
  readonly conditions: number;
  readonly hostname: string | undefined;
  /**
   * `targetRef.name` when it is a DNS label. CoreDNS takes the name whatever the kind and only drops names too
   * long for a label; a pod name may also hold dots, which would make it several labels: such endpoints keep their
   * dashed IP instead.
   */
  readonly podName: string | undefined;
}

function sliceEndpoint(endpoint: unknown, addressType: string, where: string): SliceEndpoint {
  if (!isObject(endpoint)) throw new ObjectError(`${where}: expected a mapping`);
  const addresses = (optionalArray(endpoint.addresses, `${where}.addresses`) ?? []).map((address, i) => {
    if (addressType === 'FQDN') return undefined;
    const canonical = typeof address === 'string' ? canonicalIp(address) : undefined;
    const family = canonical === undefined ? undefined : ipFamily(canonical);
    if (canonical === undefined || family !== (addressType === 'IPv4' ? 4 : 6)) {
      throw new ObjectError(`${where}.addresses[${i}] ${JSON.stringify(address)} is not an ${addressType} address`);
    }
    return canonical;
  }).filter((address): address is string => address !== undefined);
  const conditions = optionalObject(endpoint.conditions, `${where}.conditions`) ?? {};
  const ready = optionalBoolean(conditions.ready, `${where}.conditions.ready`) ?? true;
  const serving = optionalBoolean(conditions.serving, `${where}.conditions.serving`) ?? ready;
  const terminating = optionalBoolean(conditions.terminating, `${where}.conditions.terminating`) ?? false;
  const hostname = optionalString(endpoint.hostname, `${where}.hostname`);
  if (hostname !== undefined && !DNS_LABEL.test(hostname)) throw new ObjectError(`${where}.hostname "${hostname}" is not a DNS label`);
  const bits = (ready && !terminating ? READY : 0) | (serving ? SERVING : 0) | (terminating ? TERMINATING : 0);
  const targetRef = optionalObject(endpoint.targetRef, `${where}.targetRef`);
  const target = targetRef === undefined ? undefined : optionalString(targetRef.name, `${where}.targetRef.name`);
  const podName = target !== undefined && target.length <= 63 && DNS_LABEL.test(target) ? target : undefined;
  return { addresses, conditions: bits, hostname, podName };
}

function metadataName(object: Json, kind: string): string {
  const metadata = optionalObject(object.metadata, `${kind}: metadata`);
  const name = metadata?.name;
  if (typeof name !== 'string' || !DNS_LABEL.test(name) || name.length > 63) {
    throw new ObjectError(`${kind}: metadata.name ${JSON.stringify(name)} is not a DNS label (lower-case letters, digits, '-', at most 63)`);
  }
  return name;
}

/** Objects without a namespace land in `default`, as `kubectl apply` puts them. */
function metadataNamespace(object: Json): string {
  const namespace = (object.metadata as Json).namespace ?? 'default';
  if (typeof namespace !== 'string' || !DNS_LABEL.test(namespace) || namespace.length > 63) {
    throw new ObjectError(`metadata.namespace ${JSON.stringify(namespace)} is not a DNS label`);
  }
  return namespace;
}

function portName(name: unknown, where: string): string {
  if (name === undefined || name === null || name === '') return '';
  if (typeof name !== 'string' || !DNS_LABEL.test(name) || name.length > 15) {
    throw new ObjectError(`${where}.name ${JSON.stringify(name)} is not a port name (lower-case letters, digits, '-', at most 15)`);
  }
  return name;
}

function portNumber(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
    throw new ObjectError(`${where} ${JSON.stringify(value)} is not a port number (1-65535)`);
  }
  return value;
}

function protocol(value: unknown, where: string): Protocol {
  if (value === undefined || value === null) return 'TCP';
  if (value === 'TCP' || value === 'UDP' || value === 'SCTP') return value;
  throw new ObjectError(`${where}.protocol ${JSON.stringify(value)} is not TCP, UDP or SCTP`);
}

function isDnsName(name: string): boolean {
  const trimmed = name.replace(/\.$/, '');
  return trimmed.length > 0 && trimmed.length <= 253 && trimmed.split('.').every((label) => /^[A-Za-z0-9_]([-A-Za-z0-9_]{0,61}[A-Za-z0-9_])?$/.test(label));
}

function numberAt(object: Json, path: readonly string[]): number | undefined {
  let current: unknown = object;
  for (const key of path) current = isObject(current) ? current[key] : undefined;
  return typeof current === 'number' ? current : undefined;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalObject(value: unknown, where: string): Json | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw new ObjectError(`${where}: expected a mapping`);
  return value;
}

function optionalArray(value: unknown, where: string): unknown[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw new ObjectError(`${where}: expected a list`);
  return value;
}

function optionalString(value: unknown, where: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new ObjectError(`${where}: expected a string`);
  return value;
}

function optionalBoolean(value: unknown, where: string): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw new ObjectError(`${where}: expected true or false`);
  return value;
}
