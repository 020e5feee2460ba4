/**
 * The checks of `clusterdns doctor` that read only objects, in the order the troubleshooting guides take them:
 * the Service exists here, its selector matches pods, the pods are ready, each port reaches a container, the
 * EndpointSlices agree. Pure functions of the views in objects.ts: each returns one Check with its evidence and a
 * fix for each problem found. What DNS answers is dns.ts's; the order and the report are index.ts's.
 */
import type { ServicePort } from '../store/index.js';
import type { ContainerView, NamespaceObjects, PodView, ServiceView, SliceView } from './objects.js';

/** pass ✔, warn ⚠ (likely a problem, not certain), fail ✘, skip (nothing to check, said why). */
export type Mark = 'pass' | 'warn' | 'fail' | 'skip';

export interface Check {
  readonly check: 'service' | 'selector' | 'pods' | 'ports' | 'endpoints' | 'dns' | 'externalname';
  readonly mark: Mark;
  readonly summary: string;
  readonly evidence: readonly string[];
  /** One per problem found. */
  readonly fixes: readonly string[];
}

/** Evidence lists stop here, saying how many more there were. */
const MAX_EVIDENCE = 8;
/** How many of the closest pods a selector that matches nothing shows. */
const CLOSEST_PODS = 3;

/** Where a Service of that name was found instead, for one that is not in the namespace asked. */
export interface Elsewhere {
  /** Namespaces that have a Service of exactly this name. */
  readonly namespaces: readonly string[];
  /** Services of this namespace whose names are within edit distance 2. */
  readonly nearNames: readonly string[];
  /** Why the other namespaces could not be looked at, if they could not (a namespaced Role). */
  readonly unreadable?: string;
}

export function serviceMissing(name: string, namespace: string, elsewhere: Elsewhere, zone: string): Check {
  const evidence: string[] = [];
  const fixes: string[] = [];
  if (elsewhere.namespaces.length > 0) {
    evidence.push(`found in namespace${elsewhere.namespaces.length === 1 ? '' : 's'} ${elsewhere.namespaces.join(', ')}`);
    const other = elsewhere.namespaces[0]!;
    fixes.push(`from namespace ${namespace}, use ${name}.${other} (or ${name}.${other}.svc.${zone}): a short name only finds Services of the caller's own namespace; or create the Service in ${namespace}`);
  }
  if (elsewhere.nearNames.length > 0) {
    evidence.push(`similar names in ${namespace}: ${elsewhere.nearNames.join(', ')}`);
    fixes.push(`check the spelling: did you mean ${elsewhere.nearNames.map((near) => `${near}.${namespace}`).join(' or ')}?`);
  }
  if (elsewhere.unreadable !== undefined) evidence.push(`other namespaces not looked at: ${elsewhere.unreadable}`);
  if (fixes.length === 0) fixes.push(`create the Service ${namespace}/${name}, or check the name (kubectl get services -A)`);
  return { check: 'service', mark: 'fail', summary: `no Service "${name}" in namespace "${namespace}"`, evidence, fixes };
}

/** Every object check of one Service that exists, ExternalName or not. */
export function checkService(service: ServiceView, objects: NamespaceObjects): Check[] {
  const { record } = service;
  const checks: Check[] = [serviceExists(service)];
  if (record.kind === 'ExternalName') return checks;
  const slices = objects.slices.get(record.name) ?? [];
  const hasSelector = Object.keys(service.selector).length > 0;
  // Finished pods (a Job's, an evicted one) match but are never endpoints: they are not what the Service selects.
  const live = objects.pods.filter((pod) => pod.phase !== 'Succeeded' && pod.phase !== 'Failed');
  const selected = hasSelector ? live.filter((pod) => selects(service.selector, pod.labels)) : [];
  if (hasSelector) {
    checks.push(selectorCheck(service, objects.pods, selected));
    checks.push(selected.length > 0 ? podsCheck(selected) : skip('pods', 'no pod selected, none to check'));
    checks.push(selected.length > 0 ? portsCheck(service, selected) : skip('ports', 'no pod selected, no container port to check against'));
  } else {
    checks.push({ check: 'selector', mark: 'pass', summary: 'no selector: its EndpointSlices are written by hand or by another controller, not from pods', evidence: [], fixes: [] });
  }
  checks.push(endpointsCheck(service, slices, hasSelector ? selected : undefined));
  return checks;
}

function serviceExists({ record }: ServiceView): Check {
  const where = `${record.namespace}/${record.name}`;
  if (record.kind === 'ExternalName') {
    return { check: 'service', mark: 'pass', summary: `Service ${where} exists: ExternalName → ${record.externalName}`, evidence: [], fixes: [] };
  }
  const address = record.kind === 'Headless' ? 'headless' : `ClusterIP ${record.clusterIPs.join(', ')}`;
  const ports = record.ports.map(describePort);
  return { check: 'service', mark: 'pass', summary: `Service ${where} exists: ${address}${ports.length > 0 ? `, port${ports.length === 1 ? '' : 's'} ${ports.join(', ')}` : ', no ports'}`, evidence: [], fixes: [] };
}

function selectorCheck(service: ServiceView, pods: readonly PodView[], selected: readonly PodView[]): Check {
  const selector = formatLabels(service.selector);
  const namespace = service.record.namespace;
  if (selected.length > 0) {
    return { check: 'selector', mark: 'pass', summary: `selector ${selector} matches ${count(selected.length, 'pod')}`, evidence: [], fixes: [] };
  }
  const wanted = Object.entries(service.selector);
  // Closest: the pods that satisfy the most of the selector's labels, then those whose values differ least.
  const distance = (pod: PodView): number => wanted.reduce((sum, [key, value]) => {
    const have = pod.labels[key];
    return sum + (have === undefined ? value.length + key.length : editDistance(have, value, Number.MAX_SAFE_INTEGER));
  }, 0);
  const scored = pods
    .map((pod) => ({ pod, score: wanted.filter(([key, value]) => pod.labels[key] === value).length, shared: wanted.some(([key]) => key in pod.labels), distance: distance(pod) }))
    .filter((entry) => (entry.score > 0 || entry.shared) && entry.score < wanted.length)
    .sort((a, b) => b.score - a.score || a.distance - b.distance || a.pod.name.localeCompare(b.pod.name))
    .slice(0, CLOSEST_PODS);
  const evidence = scored.map(({ pod }) => {
    const differs = wanted.filter(([key, value]) => pod.labels[key] !== value)
      .map(([key, value]) => (key in pod.labels ? `${key}=${pod.labels[key]} (the selector wants ${key}=${value})` : `no label ${key} (the selector wants ${key}=${value})`));
    return `closest: pod ${pod.name}: ${differs.join(', ')}`;
  });
  const finished = pods.filter((pod) => selects(service.selector, pod.labels));
  if (finished.length > 0) evidence.unshift(`matching pods that have finished, which are never endpoints: ${finished.slice(0, CLOSEST_PODS).map((pod) => `${pod.name} (${pod.phase})`).join(', ')}`);
  if (evidence.length === 0) evidence.push(pods.length === 0 ? `namespace ${namespace} has no pods` : `no pod in ${namespace} has any of the selector's labels (${count(pods.length, 'pod')} there)`);
  return {
    check: 'selector',
    mark: 'fail',
    summary: `selector ${selector} matches no pod in namespace ${namespace}: the Service has no endpoints`,
    evidence,
    fixes: [`make the Service's selector and the pods' labels agree (kubectl -n ${namespace} get pods --show-labels): change spec.selector, or the labels of the pod template`],
  };
}

function podsCheck(pods: readonly PodView[]): Check {
  const ready = pods.filter((pod) => pod.ready && !pod.terminating);
  const evidence: string[] = [];
  const fixes = new Set<string>();
  for (const pod of pods) {
    const crashing = pod.containers.filter((container) => container.waiting?.reason === 'CrashLoopBackOff');
    const restarted = pod.containers.filter((container) => container.restartCount > 0);
    if (pod.ready && !pod.terminating && restarted.length === 0) continue;
    const state = [pod.phase];
    if (pod.terminating) state.push('terminating');
    else state.push(pod.ready ? 'ready' : 'not ready');
    for (const container of pod.containers) {
      if (container.waiting !== undefined) state.push(`container ${container.name} ${container.waiting.reason}`);
      if (container.restartCount > 0) state.push(`${container.name} restarted ${count(container.restartCount, 'time')}${lastStop(container)}`);
    }
    if (!pod.ready && !pod.terminating && pod.readyMessage !== undefined && crashing.length === 0) state.push(pod.readyMessage);
    evidence.push(`pod ${pod.name}: ${state.join(', ')}`);
    if (pod.ready && !pod.terminating) continue;
    fixes.add(podFix(pod, crashing));
  }
  const mark = ready.length === 0 ? 'fail' : ready.length < pods.length ? 'warn' : 'pass';
  return { check: 'pods', mark, summary: `${ready.length} of ${count(pods.length, 'selected pod')} ready`, evidence: limit(evidence), fixes: [...fixes] };
}

/** What to do about one pod that is not ready, by the first cause that applies. */
function podFix(pod: PodView, crashing: readonly ContainerView[]): string {
  const where = `kubectl -n ${pod.namespace}`;
  const crash = crashing[0];
  if (crash !== undefined) {
    if (crash.lastTermination?.reason === 'OOMKilled') {
      return `container ${crash.name} is killed for memory (OOMKilled): raise resources.limits.memory or make it use less`;
    }
    return `container ${crash.name} keeps crashing${lastStop(crash)}: read why in ${where} logs ${pod.name} -c ${crash.name} --previous`;
  }
  if (pod.terminating) return 'pods being deleted leave the endpoints as they go; one stuck terminating: check its finalizers and its preStop hook';
  const waiting = pod.containers.find((container) => container.waiting !== undefined);
  if (pod.phase === 'Pending' || waiting !== undefined) {
    return `pod ${pod.name} is not running (${waiting?.waiting?.reason ?? pod.phase}): see why in the events of ${where} describe pod ${pod.name}`;
  }
  return `the readiness probe of ${pod.name} fails: see why in the events of ${where} describe pod ${pod.name}, and check the probe's path and port against what the app serves`;
}

function lastStop(container: ContainerView): string {
  const stop = container.lastTermination;
  return stop === undefined ? '' : ` (last: ${stop.reason}, exit code ${stop.exitCode})`;
}

function portsCheck(service: ServiceView, pods: readonly PodView[]): Check {
  const evidence: string[] = [];
  const fixes: string[] = [];
  let mark: Mark = 'pass';
  const worst = (next: Mark): void => {
    if (next === 'fail' || (next === 'warn' && mark === 'pass')) mark = next;
  };
  for (const port of service.record.ports) {
    const label = `port ${describePort(port)}`;
    const declared = (pod: PodView): string => {
      const all = pod.containers.flatMap((container) => container.ports.map((p) => `${p.containerPort}/${p.protocol}${p.name !== undefined ? ` "${p.name}"` : ''}`));
      return all.length > 0 ? all.join(', ') : 'none';
    };
    if (typeof port.targetPort === 'string') {
      const name = port.targetPort;
      const lacking = pods.filter((pod) => !containerPorts(pod).some((p) => p.name === name));
      const otherProtocol = pods.flatMap((pod) => containerPorts(pod).filter((p) => p.name === name && p.protocol !== port.protocol).map((p) => ({ pod, p })));
      for (const pod of lacking) evidence.push(`${label}: pod ${pod.name} has no container port named "${name}" (its ports: ${declared(pod)})`);
      for (const { pod, p } of otherProtocol) evidence.push(`${label}: pod ${pod.name} names "${name}" for ${p.containerPort}/${p.protocol}, not ${port.protocol}`);
      if (lacking.length > 0) {
        worst('fail');
        const offered = [...new Set(lacking.flatMap((pod) => containerPorts(pod).filter((p) => p.protocol === port.protocol)
          .map((p) => (p.name !== undefined ? `${p.containerPort} or "${p.name}"` : String(p.containerPort)))))];
        const instead = offered.length > 0 ? ` (${offered.join(', ')})` : '';
        fixes.push(`a targetPort name the pod does not have leaves the endpoint without that port, and connections are refused: name the container port "${name}" in the pod template, or set the Service's targetPort to the port the app listens on${instead}`);
      }
      if (otherProtocol.length > 0) {
        worst('fail');
        fixes.push(`make the protocols agree: the Service port says ${port.protocol}, the container port "${name}" another`);
      }
      continue;
    }
    const number = port.targetPort;
    const lacking = pods.filter((pod) => !containerPorts(pod).some((p) => p.containerPort === number && p.protocol === port.protocol));
    const otherProtocol = lacking.filter((pod) => containerPorts(pod).some((p) => p.containerPort === number));
    for (const pod of otherProtocol) evidence.push(`${label}: pod ${pod.name} declares ${number} for another protocol (its ports: ${declared(pod)})`);
    if (otherProtocol.length > 0) {
      worst('fail');
      fixes.push(`make the protocols agree on ${number}: the Service port says ${port.protocol}`);
    }
    const undeclared = lacking.filter((pod) => !otherProtocol.includes(pod));
    for (const pod of undeclared) evidence.push(`${label}: no container of pod ${pod.name} declares ${number}/${port.protocol} (its ports: ${declared(pod)})`);
    if (undeclared.length > 0) {
      // Declaring a port is documentation, not a requirement: the app may listen on 8000 without saying so.
      worst('warn');
      const others = [...new Set(undeclared.flatMap((pod) => containerPorts(pod).filter((p) => p.protocol === port.protocol)).map((p) => p.containerPort))];
      fixes.push(others.length > 0
        ? `if the app listens on ${others.join(' or ')}, not ${number}, set targetPort: ${others[0]} on the Service port ${port.port} (or name the container port and use the name)`
        : `declare containerPort: ${number} in the pod template if the app listens there (then this can be checked); if it does not, fix the Service's targetPort`);
    }
  }
  const ports = service.record.ports.length;
  const summary = mark === 'pass' ? `${ports === 1 ? 'the port reaches' : `each of the ${ports} ports reaches`} a container port of every selected pod`
    : mark === 'warn' ? 'a targetPort is not declared by the containers it should reach'
      : 'a Service port does not reach the containers';
  return { check: 'ports', mark, summary, evidence: limit(evidence), fixes };
}

function endpointsCheck(service: ServiceView, slices: readonly SliceView[], selected: readonly PodView[] | undefined): Check {
  const { record } = service;
  const where = `${record.namespace}/${record.name}`;
  const vip = record.kind === 'ClusterIP' ? `connections to ${record.clusterIPs[0]} fail` : 'its DNS name has no address (NXDOMAIN)';
  if (slices.length === 0) {
    const fixes = selected === undefined
      ? [`a Service without a selector gets no EndpointSlice by itself: create one labelled kubernetes.io/service-name: ${record.name}, with the backends' addresses and ports named as the Service's, or give the Service a selector`]
      : selected.length === 0 ? ['follows from the selector above: fix it and the EndpointSlice controller writes one']
        : ['pods match but no EndpointSlice lists them: is kube-controller-manager running? (kubectl get endpointslices -A)'];
    return { check: 'endpoints', mark: 'fail', summary: `no EndpointSlice for ${where}: no endpoints, ${vip}`, evidence: [], fixes };
  }
  const endpoints = dedupe(slices.flatMap((slice) => slice.endpoints.flatMap((endpoint) => endpoint.addresses.map((address) => ({ address, endpoint })))));
  const ready = endpoints.filter(({ endpoint }) => endpoint.ready && !endpoint.terminating);
  const evidence: string[] = [];
  const fixes: string[] = [];
  let mark: Mark = 'pass';
  const names = slices.map((slice) => slice.name).join(', ');
  if (ready.length === 0) {
    mark = 'fail';
    fixes.push(selected === undefined ? 'whoever writes the EndpointSlices marks every endpoint not ready: check the backends and that controller'
      : selected.length === 0 ? 'follows from the selector above' : 'follows from the pods above: once one is ready it becomes a ready endpoint');
  }
  // Ports: kube-proxy forwards a Service port to the slice port of the same name; none there, nothing to forward to.
  const slicePorts = slices.flatMap((slice) => slice.ports);
  const portless: string[] = [];
  for (const port of record.ports) {
    const match = slicePorts.find((p) => p.name === port.name && p.protocol === port.protocol);
    if (match === undefined) {
      mark = 'fail';
      portless.push(port.name === '' ? String(port.port) : `"${port.name}"`);
      evidence.push(`no EndpointSlice port ${port.name === '' ? '(unnamed)' : `"${port.name}"`}/${port.protocol}: the Service port ${port.port} has nowhere to go (connection refused)`);
      fixes.push(selected === undefined ? `list the port in the EndpointSlice, named "${port.name}" as the Service port is` : `follows from the port check above: the controller leaves out a port it cannot find on the pod`);
    } else if (typeof port.targetPort === 'number' && match.port !== undefined && match.port !== port.targetPort && selected !== undefined) {
      if (mark === 'pass') mark = 'warn';
      evidence.push(`EndpointSlice port "${port.name}" is ${match.port}, the Service's targetPort ${port.targetPort}: the slices are stale or not the controller's`);
      fixes.push(`recreate the EndpointSlices (delete them; the controller writes them again)`);
    }
  }
  if (selected !== undefined && selected.length > 0) {
    const readyAddresses = new Set(ready.map(({ address }) => address));
    const podAddresses = new Set(selected.flatMap((pod) => pod.ips));
    const missing = selected.filter((pod) => pod.ready && !pod.terminating && !pod.ips.some((ip) => readyAddresses.has(ip)));
    const strangers = endpoints.filter(({ address }) => !podAddresses.has(address));
    for (const pod of missing) evidence.push(`pod ${pod.name} is ready but no ready endpoint has its address ${pod.ips.join(', ') || '(none yet)'}`);
    for (const { address } of strangers) evidence.push(`endpoint ${address} is the address of no selected pod`);
    if (missing.length + strangers.length > 0) {
      if (mark === 'pass') mark = 'warn';
      fixes.push('the EndpointSlices lag behind the pods (a second during a rollout); if it lasts, check kube-controller-manager');
    }
  }
  const listed = ready.slice(0, MAX_EVIDENCE).map(({ address }) => address).join(', ');
  const summary = ready.length === 0
    ? `0 of ${count(endpoints.length, 'endpoint')} ready in EndpointSlice ${names}: ${vip}`
    : portless.length > 0 ? `${ready.length} of ${count(endpoints.length, 'endpoint')} ready in EndpointSlice ${names}, but without port ${portless.join(', ')}`
      : `${ready.length} of ${count(endpoints.length, 'endpoint')} ready in EndpointSlice ${names}: ${listed}${ready.length > MAX_EVIDENCE ? ', ...' : ''}`;
  return { check: 'endpoints', mark, summary, evidence: limit(evidence), fixes };
}

export function selects(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

function containerPorts(pod: PodView): ContainerView['ports'] {
  return pod.containers.flatMap((container) => container.ports);
}

/** `http 80→8080/TCP`, `80→"web"/TCP`: the Service port, where it goes, and its protocol. */
export function describePort(port: ServicePort): string {
  const target = typeof port.targetPort === 'string' ? `"${port.targetPort}"` : String(port.targetPort);
  return `${port.name === '' ? '' : `${port.name} `}${port.port}→${target}/${port.protocol}`;
}

function formatLabels(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels).map(([key, value]) => `${key}=${value}`).join(',');
}

export function skip(check: Check['check'], why: string): Check {
  return { check, mark: 'skip', summary: why, evidence: [], fixes: [] };
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function limit(lines: string[]): string[] {
  return lines.length <= MAX_EVIDENCE ? lines : [...lines.slice(0, MAX_EVIDENCE), `... and ${lines.length - MAX_EVIDENCE} more`];
}

function dedupe<T extends { address: string }>(entries: T[]): T[] {
  const seen = new Set<string>();
  return entries.filter(({ address }) => !seen.has(address) && seen.add(address) !== undefined);
}

/** Levenshtein distance, stopping early past `max`: near-miss Service names. */
export function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    if (Math.min(...current) > max) return max + 1;
    previous = current;
  }
  return previous[b.length]!;
}
