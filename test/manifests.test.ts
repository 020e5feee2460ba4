/**
 * manifests/ (a kustomize base and its overlays, rendered by the real `kubectl kustomize`) and the Dockerfile
 * against the code they deploy: a change on one side without the other fails here. The Deployment runs
 * `-conf /etc/coredns/Corefile` as kubeadm's CoreDNS does; its ports and probes are checked against the Corefile it
 * mounts, planned by the real planner (src/main.ts). kubeadm's own CoreDNS objects (a fixture) are checked the same
 * way: running clusterdns there takes a new image and nothing else. The ClusterRoles are compared with what
 * src/source/kube.ts watches. Docker is not run: the Dockerfile is read as instructions.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { addressesOf, planFromCorefile, type PlanAddresses } from '../src/main.js';
import { WATCHED_RESOURCES } from '../src/source/kube.js';

// Only the fields read here; everything comes from YAML, so each is checked before it is trusted.
interface Meta { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
interface Obj { apiVersion: string; kind: string; metadata: Meta; file: string }
interface LabelSelector { matchLabels?: Record<string, string>; matchExpressions?: unknown[] }
interface ContainerPort { name?: string; containerPort: number; protocol?: string }
interface Probe { httpGet?: { path: string; port: number | string; scheme?: string }; initialDelaySeconds?: number; timeoutSeconds?: number; failureThreshold?: number }
interface SecurityContext {
  runAsNonRoot?: boolean; runAsUser?: number; runAsGroup?: number; readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean;
  capabilities?: { add?: string[]; drop?: string[] }; seccompProfile?: { type: string };
}
interface Container {
  name: string; image: string; imagePullPolicy?: string; args?: string[]; command?: string[]; ports?: ContainerPort[];
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  livenessProbe?: Probe; readinessProbe?: Probe; securityContext?: SecurityContext;
}
interface PodSpec {
  serviceAccountName?: string; automountServiceAccountToken?: boolean; priorityClassName?: string; dnsPolicy?: string;
  nodeSelector?: Record<string, string>; tolerations?: Array<{ key?: string; operator?: string; effect?: string }>;
  affinity?: { podAntiAffinity?: { preferredDuringSchedulingIgnoredDuringExecution?: Array<{ weight: number; podAffinityTerm: { topologyKey: string; labelSelector: LabelSelector } }> } };
  securityContext?: SecurityContext; containers: Container[];
  volumes?: Array<{ name: string; configMap?: { name: string; items?: Array<{ key: string; path: string }> } }>;
}
interface Deployment extends Obj {
  spec: { replicas: number; strategy?: { type?: string; rollingUpdate?: { maxUnavailable?: number | string } }; selector: LabelSelector; template: { metadata: Meta; spec: PodSpec } };
}
interface Service extends Obj {
  spec: { clusterIP?: string; selector: Record<string, string>; ports: Array<{ name?: string; port: number; protocol?: string; targetPort?: number | string }> };
}
interface ClusterRole extends Obj { rules: Array<{ apiGroups?: string[]; resources?: string[]; verbs: string[]; resourceNames?: string[]; nonResourceURLs?: string[] }> }
interface ClusterRoleBinding extends Obj { roleRef: { apiGroup: string; kind: string; name: string }; subjects: Array<{ kind: string; name: string; namespace?: string }> }
interface PodDisruptionBudget extends Obj { spec: { selector: LabelSelector; maxUnavailable?: number | string; minAvailable?: number | string } }

interface ConfigMap extends Obj { data: Record<string, string> }

/** An overlay as `kubectl apply -k` would send it. */
function render(overlay: string): Obj[] {
  const text = execFileSync('kubectl', ['kustomize', `manifests/overlays/${overlay}`], { encoding: 'utf8', timeout: 30_000 });
  return yaml.loadAll(text).filter((doc) => doc != null).map((doc) => ({ ...(doc as Obj), file: overlay }));
}

const OVERLAYS = ['replace-coredns', 'new-cluster', 'standalone'] as const;
/** .ci/run installs kubectl; a machine without it skips the overlay tests (and says so) rather than failing to load. */
const HAS_KUBECTL = spawnSync('kubectl', ['version', '--client'], { timeout: 30_000 }).status === 0;
const rendered = Object.fromEntries(OVERLAYS.map((overlay) => [overlay, HAS_KUBECTL ? render(overlay) : []])) as Record<(typeof OVERLAYS)[number], Obj[]>;
const KUBEADM: Obj[] = yaml.loadAll(readFileSync('test/fixtures/kubeadm-coredns.yaml', 'utf8')).map((doc) => ({ ...(doc as Obj), file: 'kubeadm' }));
const KUBEADM_COREFILE = readFileSync('test/fixtures/corefiles/kubeadm-cache-disable.Corefile', 'utf8');

/** The one object of a kind. */
function only<T extends Obj>(objects: Obj[], kind: string): T {
  const found = objects.filter((object) => object.kind === kind);
  expect(found.map((object) => `${object.file}: ${object.metadata.name}`), `exactly one ${kind}`).toHaveLength(1);
  return found[0] as T;
}

/** A selector of matchLabels only (what these manifests use) matches `labels`. */
function selects(selector: LabelSelector | Record<string, string>, labels: Record<string, string>): boolean {
  const matchLabels = 'matchLabels' in selector || 'matchExpressions' in selector ? (selector as LabelSelector).matchLabels ?? {} : selector as Record<string, string>;
  expect((selector as LabelSelector).matchExpressions, 'selectors here use matchLabels only').toBeUndefined();
  return Object.keys(matchLabels).length > 0 && Object.entries(matchLabels).every(([key, value]) => labels[key] === value);
}

/** CoreDNS's pods, which the kube-dns Service selects too and which nothing of ours may count as its own. */
const COREDNS_POD_LABELS = { 'k8s-app': 'kube-dns' };

/** The container port a probe or Service names, by number or by name. */
function containerPort(container: Container, port: number | string | undefined, protocol = 'TCP'): number | undefined {
  const found = (container.ports ?? []).filter((entry) => (typeof port === 'number' ? entry.containerPort === port : entry.name === port) && (entry.protocol ?? 'TCP') === protocol);
  return found.length === 1 ? found[0]!.containerPort : undefined;
}

/**
 * What the container runs: CoreDNS's command line `-conf PATH`, PATH inside a ConfigMap volume; the Corefile is
 * that ConfigMap's key, planned with the real planner (a Corefile the planner refuses fails here, naming the line).
 */
function runs(deployment: Deployment, corefileOf: (configMap: string, key: string) => string): { addresses: PlanAddresses; configMap: string } {
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0]!;
  expect(container.command, 'the image ENTRYPOINT runs the binary').toBeUndefined();
  const [flag, path, ...rest] = container.args ?? [];
  expect([flag, rest], "CoreDNS's command line: -conf PATH and nothing else").toEqual(['-conf', []]);
  const mount = (container.volumeMounts ?? []).find((entry) => path!.startsWith(`${entry.mountPath}/`));
  expect(mount, `a volume mounted where ${path} is`).toBeDefined();
  const volume = pod.volumes?.find((entry) => entry.name === mount!.name)?.configMap;
  expect(volume, `${mount!.name} is a ConfigMap volume`).toBeDefined();
  const item = volume!.items?.find((entry) => posix.join(mount!.mountPath, entry.path) === path);
  expect(item, `${path} is a key of ConfigMap ${volume!.name}`).toBeDefined();
  const plan = planFromCorefile(path!, 'info', corefileOf(volume!.name, item!.key));
  return { addresses: addressesOf(plan), configMap: volume!.name };
}

/** Container ports and probes are where the Corefile listens, on every address so the Service and kubelet reach them. */
function expectPortsMatch(deployment: Deployment, addresses: PlanAddresses): void {
  const container = deployment.spec.template.spec.containers[0]!;
  const dnsPorts = new Set(addresses.dns.map((address) => address.port));
  expect(dnsPorts.size, 'one DNS port, the one the Service targets').toBe(1);
  const [dnsPort] = dnsPorts;
  for (const address of [...addresses.dns, addresses.health!, addresses.ready!, addresses.metrics!]) expect(['0.0.0.0', '::']).toContain(address.host);
  const byName = Object.fromEntries((container.ports ?? []).map((entry) => [entry.name, `${entry.containerPort}/${entry.protocol ?? 'TCP'}`]));
  expect(byName).toMatchObject({ dns: `${dnsPort}/UDP`, 'dns-tcp': `${dnsPort}/TCP`, metrics: `${addresses.metrics!.port}/TCP` });
  const liveness = container.livenessProbe?.httpGet;
  const readiness = container.readinessProbe?.httpGet;
  expect(liveness?.path).toBe('/health');
  expect(liveness?.port === addresses.health!.port || containerPort(container, liveness?.port) === addresses.health!.port, 'liveness probes the health port').toBe(true);
  expect(readiness?.path).toBe('/ready');
  expect(readiness?.port === addresses.ready!.port || containerPort(container, readiness?.port) === addresses.ready!.port, 'readiness probes the ready port').toBe(true);
  for (const probe of [liveness, readiness]) expect(probe?.scheme ?? 'HTTP').toBe('HTTP');
}

/** The ClusterRole grants list and watch on (at least, or exactly) what the source watches. */
function expectGrantsWatched(role: ClusterRole, exactly: boolean): void {
  const granted: string[] = [];
  for (const rule of role.rules) {
    expect(rule.resourceNames, 'whole collections, no resourceNames').toBeUndefined();
    expect(rule.nonResourceURLs).toBeUndefined();
    expect([...rule.verbs].sort(), `verbs of ${JSON.stringify(rule)}`).toEqual(['list', 'watch']);
    for (const group of rule.apiGroups ?? []) for (const resource of rule.resources ?? []) granted.push(`${group}/${resource}`);
  }
  const watched = WATCHED_RESOURCES.map(({ group, resource }) => `${group}/${resource}`);
  if (exactly) expect(granted.sort()).toEqual([...watched].sort());
  else expect(granted).toEqual(expect.arrayContaining(watched));
  expect(watched).toEqual(expect.arrayContaining(['/namespaces', '/services', 'discovery.k8s.io/endpointslices', '/pods']));
}

/** The Deployment's ServiceAccount in its namespace has the ClusterRole, through the one binding. */
function expectBound(objects: Obj[], deployment: Deployment): void {
  const account = only<Obj>(objects, 'ServiceAccount');
  const role = only<ClusterRole>(objects, 'ClusterRole');
  const binding = only<ClusterRoleBinding>(objects, 'ClusterRoleBinding');
  expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name });
  expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: account.metadata.name, namespace: deployment.metadata.namespace }]);
  expect(deployment.spec.template.spec.serviceAccountName).toBe(account.metadata.name);
  expect(account.metadata.namespace).toBe(deployment.metadata.namespace);
  expect(deployment.spec.template.spec.automountServiceAccountToken, 'in-cluster config reads the mounted token').not.toBe(false);
}

/** The Service sends dns, dns-tcp and metrics to the pods' ports. */
function expectServiceReaches(service: Service, deployment: Deployment, addresses: PlanAddresses): void {
  const container = deployment.spec.template.spec.containers[0]!;
  expect(selects(service.spec.selector, deployment.spec.template.metadata.labels ?? {})).toBe(true);
  // Prometheus scrapes the endpoints' addresses on this port: the pods' metrics port, not the Service's.
  expect(service.metadata.annotations).toEqual({ 'prometheus.io/port': String(addresses.metrics!.port), 'prometheus.io/scrape': 'true' });
  const forwarded = service.spec.ports.map((port) => ({
    name: port.name,
    port: `${port.port}/${port.protocol ?? 'TCP'}`,
    target: containerPort(container, port.targetPort ?? port.port, port.protocol ?? 'TCP'),
  }));
  expect(forwarded).toEqual([
    { name: 'dns', port: '53/UDP', target: addresses.dns[0]!.port },
    { name: 'dns-tcp', port: '53/TCP', target: addresses.dns[0]!.port },
    { name: 'metrics', port: '9153/TCP', target: addresses.metrics!.port },
  ]);
}

const configMapsOf = (objects: Obj[]) => (name: string, key: string): string => {
  const found = objects.filter((object): object is ConfigMap => object.kind === 'ConfigMap' && object.metadata.name === name);
  expect(found, `ConfigMap ${name} in the overlay`).toHaveLength(1);
  expect(found[0]!.metadata.namespace).toBe(only<Deployment>(objects, 'Deployment').metadata.namespace);
  return found[0]!.data[key]!;
};

// The base's Deployment as written (the overlays only set its namespace): what the Dockerfile's checks read too.
const deployment = yaml.load(readFileSync('manifests/base/deployment.yaml', 'utf8')) as Deployment;
const pod = deployment.spec.template.spec;
const container = pod.containers[0]!;
const ports = container.ports ?? [];

describe("kubeadm's CoreDNS Deployment, with clusterdns's image and nothing else changed", () => {
  const coredns = only<Deployment>(KUBEADM, 'Deployment');

  it('runs: its -conf, its Corefile mount, its ports and its probes are what clusterdns takes', () => {
    const { addresses, configMap } = runs(coredns, () => KUBEADM_COREFILE);
    expect(configMap).toBe('coredns');
    expectPortsMatch(coredns, addresses);
  });

  it("its RBAC grants what clusterdns watches, and its security context is one the image runs under", () => {
    expectGrantsWatched(only<ClusterRole>(KUBEADM, 'ClusterRole'), false);
    // No runAsUser: the image's USER (non-root, checked below) applies; NET_BIND_SERVICE lets it bind 53.
    const security = coredns.spec.template.spec.containers[0]!.securityContext;
    expect(security).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { add: ['NET_BIND_SERVICE'] } });
    expect(coredns.spec.template.spec.securityContext?.runAsUser).toBeUndefined();
  });
});

describe.skipIf(!HAS_KUBECTL)('manifests/: a kustomize base and its overlays (skipped without kubectl, which renders them)', () => {
  it.each(OVERLAYS)('%s: the Deployment runs -conf over a ConfigMap Corefile, and its ports are where that Corefile listens', (overlay) => {
    const objects = rendered[overlay];
    const ours = only<Deployment>(objects, 'Deployment');
    // replace-coredns reads the cluster's own ConfigMap: kubeadm's Corefile is what it finds there.
    const corefileOf = overlay === 'replace-coredns' ? () => KUBEADM_COREFILE : configMapsOf(objects);
    const { addresses, configMap } = runs(ours, corefileOf);
    expect(configMap, "the ConfigMap kubeadm's CoreDNS reads").toBe('coredns');
    expectPortsMatch(ours, addresses);
    expect(ours.spec.template.spec.containers[0]!.image).toBe('clusterdns:0.1.0');
    expect(ours.spec.template.spec.containers[0]!.imagePullPolicy).toBe('IfNotPresent');
    expect(ours.spec.template.spec.containers[0]!.livenessProbe).toMatchObject({ initialDelaySeconds: 60, timeoutSeconds: 5, failureThreshold: 5 });
    expectGrantsWatched(only<ClusterRole>(objects, 'ClusterRole'), true);
    expectBound(objects, ours);
  });

  it('replace-coredns: in kube-system, beside CoreDNS, creating or changing none of its objects', () => {
    const objects = rendered['replace-coredns'];
    expect(new Set(objects.map((object) => object.metadata.namespace).filter(Boolean))).toEqual(new Set(['kube-system']));
    expect(objects.map((object) => object.kind).sort()).toEqual(['ClusterRole', 'ClusterRoleBinding', 'Deployment', 'PodDisruptionBudget', 'ServiceAccount']);
    const names = objects.map((object) => object.metadata.name);
    for (const theirs of ['coredns', 'system:coredns', 'kube-dns']) expect(names).not.toContain(theirs);
    // The kube-dns Service selects k8s-app: kube-dns: clusterdns's pods join CoreDNS's behind it.
    expect(only<Deployment>(objects, 'Deployment').spec.template.metadata.labels).toMatchObject(COREDNS_POD_LABELS);
  });

  it('new-cluster: kubeadm\'s ConfigMap and the kube-dns Service at 10.96.0.10, in kube-system', () => {
    const objects = rendered['new-cluster'];
    const service = only<Service>(objects, 'Service');
    expect(service.metadata).toMatchObject({ name: 'kube-dns', namespace: 'kube-system' });
    expect(service.spec.clusterIP).toBe('10.96.0.10');
    expect(service.spec.selector).toEqual(COREDNS_POD_LABELS);
    expect(only<ConfigMap>(objects, 'ConfigMap').data.Corefile?.trim()).toBe(KUBEADM_COREFILE.replace(/^#.*\n/gm, '').trim());
    const ours = only<Deployment>(objects, 'Deployment');
    expectServiceReaches(service, ours, runs(ours, configMapsOf(objects)).addresses);
  });

  it("standalone: a namespace of its own, its own Service, and cluster-wide names that never take kube-system's", () => {
    const objects = rendered.standalone;
    const ours = only<Deployment>(objects, 'Deployment');
    expect(only<Obj>(objects, 'Namespace').metadata.name).toBe('clusterdns');
    expect(ours.metadata.namespace).toBe('clusterdns');
    const service = only<Service>(objects, 'Service');
    expect(service.metadata).toMatchObject({ name: 'clusterdns', namespace: 'clusterdns' });
    expect(service.spec.clusterIP, 'an address the API server picks').toBeUndefined();
    expect(selects(service.spec.selector, COREDNS_POD_LABELS), 'never CoreDNS\'s pods').toBe(false);
    expectServiceReaches(service, ours, runs(ours, configMapsOf(objects)).addresses);
    const clusterWide = (list: Obj[]) => list.filter((object) => object.kind.startsWith('Cluster')).map((object) => object.metadata.name);
    for (const name of clusterWide(objects)) expect(clusterWide(rendered['replace-coredns'])).not.toContain(name);
  });

  it('the Deployment is shaped like the cluster DNS: two spread, critical replicas that resolve through the node', () => {
    const podLabels = deployment.spec.template.metadata.labels ?? {};
    expect(only<Deployment>(rendered['new-cluster'], 'Deployment').metadata).toMatchObject({ name: 'clusterdns', namespace: 'kube-system' });
    expect(deployment.spec.replicas).toBe(2);
    expect(deployment.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
    expect(podLabels).toMatchObject({ 'k8s-app': 'kube-dns', 'app.kubernetes.io/name': 'clusterdns' });
    expect(selects(deployment.spec.selector, podLabels), 'the Deployment selects its pods').toBe(true);
    expect(selects(deployment.spec.selector, COREDNS_POD_LABELS), "the Deployment's selector leaves CoreDNS's pods alone").toBe(false);
    const spread = pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
    expect(spread.some(({ podAffinityTerm: term }) => term.topologyKey === 'kubernetes.io/hostname' && selects(term.labelSelector, podLabels))).toBe(true);
    expect(pod.priorityClassName).toBe('system-cluster-critical');
    expect(pod.dnsPolicy).toBe('Default');
    expect(pod.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(pod.tolerations).toEqual(expect.arrayContaining([
      { key: 'CriticalAddonsOnly', operator: 'Exists' },
      { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' },
    ]));
    expect(container.resources).toEqual({ requests: { cpu: '100m', memory: '70Mi' }, limits: { memory: '170Mi' } });
  });

  it('the container runs non-root with a read-only root, no privilege escalation and only NET_BIND_SERVICE', () => {
    expect(pod.containers).toHaveLength(1);
    const effective: SecurityContext = { ...pod.securityContext, ...container.securityContext };
    expect(effective).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(effective.capabilities).toEqual({ drop: ['ALL'], add: ['NET_BIND_SERVICE'] });
  });

  it("the PodDisruptionBudget covers clusterdns's pods, one at a time, and not CoreDNS's", () => {
    const budget = only<PodDisruptionBudget>(rendered['new-cluster'], 'PodDisruptionBudget');
    expect(budget.apiVersion).toBe('policy/v1');
    expect(budget.metadata.namespace).toBe(only<Deployment>(rendered['new-cluster'], 'Deployment').metadata.namespace);
    expect(selects(budget.spec.selector, deployment.spec.template.metadata.labels ?? {})).toBe(true);
    expect(selects(budget.spec.selector, COREDNS_POD_LABELS)).toBe(false);
    const { maxUnavailable, minAvailable } = budget.spec;
    expect((maxUnavailable === 1 && minAvailable === undefined) || (minAvailable === 1 && maxUnavailable === undefined),
      `maxUnavailable ${maxUnavailable}, minAvailable ${minAvailable}`).toBe(true);
  });
});

describe('Dockerfile', () => {
  /** Instructions as [KEYWORD, rest], continuation lines joined, comments dropped. */
  const instructions = readFileSync('Dockerfile', 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [, keyword, rest] = /^(\S+)\s+(.*)$/.exec(line)!;
      return [keyword!.toUpperCase(), rest!.trim()] as const;
    });
  const stages: Array<Array<readonly [string, string]>> = [];
  for (const instruction of instructions) {
    if (instruction[0] === 'FROM') stages.push([]);
    stages.at(-1)!.push(instruction);
  }
  const [build, runtime] = stages;
  const args = (stage: Array<readonly [string, string]> | undefined, keyword: string): string[] =>
    (stage ?? []).filter(([key]) => key === keyword).map(([, rest]) => rest);

  it("has a build stage and a runtime stage, both on node:24-trixie-slim, the Node.js of package.json's engines", () => {
    expect(stages).toHaveLength(2);
    expect(args(build, 'FROM')).toEqual(['node:24-trixie-slim AS build']);
    expect(args(runtime, 'FROM')[0]).toMatch(/^node:24-trixie-slim\b/);
    const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string } };
    expect(manifest.engines.node).toBe('>=24');
    expect(args(build, 'RUN')).toContain('npm run build');
  });

  it('the runtime stage installs production dependencies only, takes dist/ from the build, and does not build', () => {
    const runs = args(runtime, 'RUN').join('\n');
    expect(runs).toMatch(/npm ci\b[^\n&]*--omit=dev/);
    expect(runs).toMatch(/npm ci\b[^\n&]*--ignore-scripts/);
    expect(runs).not.toMatch(/npm (run build|install)\b/);
    expect(args(runtime, 'COPY')).toContain('--from=build /app/dist ./dist');
    expect(args(runtime, 'WORKDIR')).toEqual(['/app']);
  });

  it('runs as the numeric non-root user the Deployment asks for, with node allowed to bind port 53', () => {
    const users = args(runtime, 'USER');
    expect(users).toHaveLength(1);
    const [, uid, gid] = /^(\d+):(\d+)$/.exec(users[0]!) ?? [];
    const effective: SecurityContext = { ...pod.securityContext, ...container.securityContext };
    expect(Number(uid)).toBeGreaterThan(0);
    expect([Number(uid), Number(gid)]).toEqual([effective.runAsUser, effective.runAsGroup]);
    // Added capabilities do not survive exec for a non-root user without this file capability.
    expect(args(runtime, 'RUN').join('\n')).toContain('setcap cap_net_bind_service=+ep /usr/local/bin/node');
  });

  it("EXPOSEs exactly the Deployment's container ports", () => {
    const exposed = args(runtime, 'EXPOSE').flatMap((rest) => rest.split(/\s+/)).map((port) => (port.includes('/') ? port : `${port}/tcp`));
    expect(exposed.sort()).toEqual(['53/udp', '53/tcp', '9153/tcp', '8080/tcp', '8181/tcp'].sort());
    expect(exposed.sort()).toEqual(ports.map((port) => `${port.containerPort}/${(port.protocol ?? 'TCP').toLowerCase()}`).sort());
  });

  it('ENTRYPOINT runs the built CLI (package.json bin) as npm start does, with no node flags of its own, and CMD is serve', () => {
    const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
    const bin = manifest.bin.clusterdns;
    expect(bin).toBe('dist/cli.js');
    // The heap flags (runtime/heap.ts) come from the CLI itself, so the image, npm start and the bin all run with
    // them (heap-flags.test.ts); a flag put here would make the image differ from the bin.
    expect(args(runtime, 'ENTRYPOINT').map((rest) => JSON.parse(rest) as unknown)).toEqual([['node', `/app/${bin}`]]);
    expect(manifest.scripts.start).toMatch(new RegExp(`^node ${bin} serve `));
    expect(args(runtime, 'CMD').map((rest) => JSON.parse(rest) as unknown)).toEqual([['serve']]);
  });

  it('.dockerignore keeps local builds, dependencies and git out of the context', () => {
    const ignored = readFileSync('.dockerignore', 'utf8').split('\n').map((line) => line.trim());
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', 'bench/out', '.git']));
  });
});
