/**
 * manifests/ and the Dockerfile against the code they deploy: a change on one side without the other fails here.
 * Ports and probes come from the Deployment's args run through the real flag parser (so from SERVE_FLAGS'
 * defaults when args set nothing); the ClusterRole is compared with what src/source/kube.ts watches. Docker is not
 * run: the Dockerfile is read as instructions.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { parseServeArgs, type ServeConfig } from '../src/config/index.js';
import { WATCHED_RESOURCES } from '../src/source/kube.js';

const DIR = 'manifests';

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
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  livenessProbe?: Probe; readinessProbe?: Probe; securityContext?: SecurityContext;
}
interface PodSpec {
  serviceAccountName?: string; automountServiceAccountToken?: boolean; priorityClassName?: string; dnsPolicy?: string;
  nodeSelector?: Record<string, string>; tolerations?: Array<{ key?: string; operator?: string; effect?: string }>;
  affinity?: { podAntiAffinity?: { preferredDuringSchedulingIgnoredDuringExecution?: Array<{ weight: number; podAffinityTerm: { topologyKey: string; labelSelector: LabelSelector } }> } };
  securityContext?: SecurityContext; containers: Container[];
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

const files = readdirSync(DIR).filter((file) => /\.ya?ml$/.test(file)).sort();
const objects: Obj[] = files.flatMap((file) =>
  yaml.loadAll(readFileSync(join(DIR, file), 'utf8')).filter((doc) => doc != null).map((doc) => ({ ...(doc as Obj), file })));

/** The one object of a kind; the files hold exactly one of each. */
function only<T extends Obj>(kind: string): T {
  const found = objects.filter((object) => object.kind === kind);
  expect(found.map((object) => object.file), `exactly one ${kind} in ${DIR}/`).toHaveLength(1);
  return found[0] as T;
}

/** A selector of matchLabels only (what these manifests use) matches `labels`. */
function selects(selector: LabelSelector | Record<string, string>, labels: Record<string, string>): boolean {
  const matchLabels = 'matchLabels' in selector || 'matchExpressions' in selector ? (selector as LabelSelector).matchLabels ?? {} : selector as Record<string, string>;
  expect((selector as LabelSelector).matchExpressions, 'selectors here use matchLabels only').toBeUndefined();
  return Object.keys(matchLabels).length > 0 && Object.entries(matchLabels).every(([key, value]) => labels[key] === value);
}

const deployment = only<Deployment>('Deployment');
const pod = deployment.spec.template.spec;
const podLabels = deployment.spec.template.metadata.labels ?? {};
const container = pod.containers[0]!;
const ports = container.ports ?? [];
/** CoreDNS's pods, which the kube-dns Service selects too and which nothing of ours may count as its own. */
const COREDNS_POD_LABELS = { 'k8s-app': 'kube-dns' };

/** The container port a probe or Service names, by number or by name. */
function containerPort(port: number | string | undefined, protocol = 'TCP'): number | undefined {
  const found = ports.filter((entry) => (typeof port === 'number' ? entry.containerPort === port : entry.name === port) && (entry.protocol ?? 'TCP') === protocol);
  return found.length === 1 ? found[0]!.containerPort : undefined;
}

function serveConfig(): ServeConfig {
  const args = container.args ?? [];
  expect(args[0], 'the container runs `clusterdns serve`').toBe('serve');
  const config = parseServeArgs(args.slice(1));
  if (config === undefined) throw new Error('the Deployment asks serve for --help');
  return config;
}

describe('manifests/', () => {
  it('every file parses, and kustomization.yaml lists every other file and nothing else', () => {
    for (const object of objects) {
      expect(object.apiVersion, object.file).toEqual(expect.any(String));
      expect(object.kind, object.file).toEqual(expect.any(String));
      if (object.kind !== 'Kustomization') expect(object.metadata?.name, object.file).toEqual(expect.any(String));
    }
    const kustomization = only<Obj & { resources: string[] }>('Kustomization');
    expect(kustomization.file).toBe('kustomization.yaml');
    expect([...kustomization.resources].sort()).toEqual(files.filter((file) => file !== kustomization.file));
    expect(new Set(kustomization.resources).size).toBe(kustomization.resources.length);
  });

  it('the Deployment runs `serve` with flags the parser knows, watching the cluster it runs in', () => {
    const config = serveConfig();
    expect(config.manifests, 'no --manifests: the source is the Kubernetes API').toBeUndefined();
    expect(config.kubeconfig, 'no --kubeconfig: in-cluster config from the service account').toBeUndefined();
    expect(container.command, 'the image ENTRYPOINT runs clusterdns').toBeUndefined();
    expect(container.image).toBe('clusterdns:0.1.0');
    expect(container.imagePullPolicy).toBe('IfNotPresent');
  });

  it('container ports are where serve listens, on every address so the Service and the kubelet reach them', () => {
    const config = serveConfig();
    const dnsPorts = new Set(config.listen.map((address) => address.port));
    for (const address of [...config.listen, config.health, config.ready, config.metrics]) expect(['0.0.0.0', '::']).toContain(address.host);
    expect(dnsPorts.size, 'one DNS port, the one the Service targets').toBe(1);
    const [dnsPort] = dnsPorts;
    const byName = Object.fromEntries(ports.map((entry) => [entry.name, `${entry.containerPort}/${entry.protocol ?? 'TCP'}`]));
    expect(byName).toEqual({
      dns: `${dnsPort}/UDP`,
      'dns-tcp': `${dnsPort}/TCP`,
      metrics: `${config.metrics.port}/TCP`,
      health: `${config.health.port}/TCP`,
      ready: `${config.ready.port}/TCP`,
    });
  });

  it('liveness probes /health on the health port and readiness /ready on the ready port', () => {
    const config = serveConfig();
    const liveness = container.livenessProbe?.httpGet;
    const readiness = container.readinessProbe?.httpGet;
    expect(liveness?.path).toBe('/health');
    expect(containerPort(liveness?.port)).toBe(config.health.port);
    expect(readiness?.path).toBe('/ready');
    expect(containerPort(readiness?.port)).toBe(config.ready.port);
    for (const probe of [liveness, readiness]) expect(probe?.scheme ?? 'HTTP').toBe('HTTP');
    expect(container.livenessProbe).toMatchObject({ initialDelaySeconds: 60, timeoutSeconds: 5, failureThreshold: 5 });
  });

  it('the Deployment is shaped like the cluster DNS: two spread, critical replicas that resolve through the node', () => {
    expect(deployment.metadata).toMatchObject({ name: 'clusterdns', namespace: 'kube-system' });
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

  it('the kube-dns Service selects the pods and forwards dns, dns-tcp and metrics to their container ports', () => {
    const service = only<Service>('Service');
    expect(service.metadata).toMatchObject({ name: 'kube-dns', namespace: 'kube-system' });
    const config = serveConfig();
    // Prometheus scrapes the endpoints' addresses on this port: the pods' metrics port, not the Service's.
    expect(service.metadata.annotations).toEqual({ 'prometheus.io/port': String(config.metrics.port), 'prometheus.io/scrape': 'true' });
    expect(service.spec.clusterIP).toBe('10.96.0.10');
    expect(service.spec.selector).toEqual({ 'k8s-app': 'kube-dns' });
    expect(selects(service.spec.selector, podLabels)).toBe(true);
    const forwarded = service.spec.ports.map((port) => ({
      name: port.name,
      port: `${port.port}/${port.protocol ?? 'TCP'}`,
      target: containerPort(port.targetPort ?? port.port, port.protocol ?? 'TCP'),
    }));
    expect(forwarded).toEqual([
      { name: 'dns', port: '53/UDP', target: config.listen[0]!.port },
      { name: 'dns-tcp', port: '53/TCP', target: config.listen[0]!.port },
      { name: 'metrics', port: '9153/TCP', target: config.metrics.port },
    ]);
  });

  it('the ClusterRole grants list and watch on exactly what the source watches', () => {
    const role = only<ClusterRole>('ClusterRole');
    const granted: string[] = [];
    for (const rule of role.rules) {
      expect(rule.resourceNames, 'whole collections, no resourceNames').toBeUndefined();
      expect(rule.nonResourceURLs).toBeUndefined();
      expect([...rule.verbs].sort(), `verbs of ${JSON.stringify(rule)}`).toEqual(['list', 'watch']);
      for (const group of rule.apiGroups ?? []) for (const resource of rule.resources ?? []) granted.push(`${group}/${resource}`);
    }
    const watched = WATCHED_RESOURCES.map(({ group, resource }) => `${group}/${resource}`);
    expect(granted.sort()).toEqual([...watched].sort());
    expect(watched).toEqual(expect.arrayContaining(['/namespaces', '/services', 'discovery.k8s.io/endpointslices', '/pods']));
  });

  it("the ClusterRoleBinding gives that ClusterRole to the Deployment's ServiceAccount", () => {
    const account = only<Obj>('ServiceAccount');
    const role = only<ClusterRole>('ClusterRole');
    const binding = only<ClusterRoleBinding>('ClusterRoleBinding');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: account.metadata.name, namespace: account.metadata.namespace }]);
    expect(pod.serviceAccountName).toBe(account.metadata.name);
    expect(account.metadata.namespace).toBe(deployment.metadata.namespace);
    expect(pod.automountServiceAccountToken, 'in-cluster config reads the mounted token').not.toBe(false);
  });

  it("the PodDisruptionBudget covers clusterdns's pods, one at a time, and not CoreDNS's", () => {
    const budget = only<PodDisruptionBudget>('PodDisruptionBudget');
    expect(budget.apiVersion).toBe('policy/v1');
    expect(budget.metadata.namespace).toBe(deployment.metadata.namespace);
    expect(selects(budget.spec.selector, podLabels)).toBe(true);
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
