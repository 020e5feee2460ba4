// `clusterdns doctor`, run as a user runs it (node dist/cli.js doctor ...) against each classic Service problem of
// examples/demo-cluster.yaml: read from the manifest file, and read through the test API server (the real list
// protocol, whole Pods with labels, containers, ports and statuses), which must come to the same report. DNS is
// asked of a real clusterdns serving the same cluster, with forwarding to a test upstream for ExternalName
// targets, and of a scripted server for an Extended DNS Error. Everything stays on 127.0.0.1.
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeKubeApiServer, type KubeObject, type ResourceName } from './support/k8s-api-server.js';
import { runCli, startServer, type ServerProcess } from './support/server-process.js';
import { TestUpstream } from './support/upstream.js';

const DEMO = new URL('../examples/demo-cluster.yaml', import.meta.url).pathname;
const RESOURCES: Record<string, ResourceName> = { Namespace: 'namespaces', Service: 'services', EndpointSlice: 'endpointslices', Pod: 'pods' };

let dir: string;
let api: FakeKubeApiServer;
let kubeconfig: string;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clusterdns-doctor-'));
  api = new FakeKubeApiServer();
  await api.start();
  cleanups.push(() => api.stop());
  // The demo cluster, object by object, as kubectl apply would create it.
  for (const object of yaml.loadAll(readFileSync(DEMO, 'utf8')) as KubeObject[]) api.create(RESOURCES[object.kind!]!, object);
  kubeconfig = join(dir, 'kubeconfig');
  await writeFile(kubeconfig, api.kubeconfigYaml());
});

afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function doctor(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCli(['doctor', ...args], 30_000);
}

/** The line of one check: its mark, then its summary. */
function checkLine(stdout: string, mark: '✔' | '✘' | '⚠' | '-', text: string): string | undefined {
  return stdout.split('\n').find((line) => line.startsWith(`  ${mark} `) && line.includes(text));
}

interface Seed {
  readonly problem: string;
  readonly target: readonly string[];
  readonly mark: '✘' | '⚠';
  readonly finding: string;
  readonly evidence: string;
  readonly fix: string;
}

/** One row per seed problem of the demo cluster: what doctor must find, show and advise. */
const SEEDS: readonly Seed[] = [
  {
    problem: 'selector matches no pod',
    target: ['orders.shop'],
    mark: '✘',
    finding: 'selector app=orders-v2 matches no pod in namespace shop',
    evidence: 'closest: pod orders-7f9c6b5d4-k2m4n: app=orders (the selector wants app=orders-v2)',
    fix: "fix: make the Service's selector and the pods' labels agree (kubectl -n shop get pods --show-labels)",
  },
  {
    problem: 'no endpoints (no selector, no EndpointSlice)',
    target: ['legacy-db'],
    mark: '✘',
    finding: 'no EndpointSlice for default/legacy-db: no endpoints, connections to 10.96.100.40 fail',
    evidence: '✔ no selector',
    fix: 'fix: a Service without a selector gets no EndpointSlice by itself: create one labelled kubernetes.io/service-name: legacy-db',
  },
  {
    problem: 'wrong targetPort number',
    target: ['inventory', '--namespace', 'shop'],
    mark: '⚠',
    finding: 'a targetPort is not declared by the containers it should reach',
    evidence: 'port http 80→8000/TCP: no container of pod inventory-6b8d7c9f5-t7w2k declares 8000/TCP (its ports: 8080/TCP "http")',
    fix: 'fix: if the app listens on 8080, not 8000, set targetPort: 8080 on the Service port 80',
  },
  {
    problem: 'named targetPort missing on the pod',
    target: ['search.default'],
    mark: '✘',
    finding: 'a Service port does not reach the containers',
    evidence: 'port http 80→"http-api"/TCP: pod search-7c5b8d6f4-w2x9c has no container port named "http-api" (its ports: 9200/TCP "http")',
    fix: 'fix: a targetPort name the pod does not have leaves the endpoint without that port, and connections are refused: name the container port "http-api"',
  },
  {
    problem: 'CrashLoopBackOff behind the Service',
    target: ['payments.shop'],
    mark: '✘',
    finding: '0 of 1 selected pod ready',
    evidence: 'pod payments-5d6f7c8b9-h4j6l: Running, not ready, container payments CrashLoopBackOff, payments restarted 12 times (last: Error, exit code 1)',
    fix: 'fix: container payments keeps crashing (last: Error, exit code 1): read why in kubectl -n shop logs payments-5d6f7c8b9-h4j6l -c payments --previous',
  },
  {
    problem: 'a pod not ready',
    target: ['web'],
    mark: '⚠',
    finding: '2 of 3 selected pods ready',
    evidence: 'pod web-6d4cf56db6-z9r5t: Running, not ready, containers with unready status: [web]',
    fix: 'fix: the readiness probe of web-6d4cf56db6-z9r5t fails: see why in the events of kubectl -n default describe pod web-6d4cf56db6-z9r5t',
  },
  {
    problem: 'wrong namespace',
    target: ['cart', '--namespace', 'default'],
    mark: '✘',
    finding: 'no Service "cart" in namespace "default"',
    evidence: 'found in namespace shop',
    fix: "fix: from namespace default, use cart.shop (or cart.shop.svc.cluster.local): a short name only finds Services of the caller's own namespace",
  },
  {
    problem: 'a misspelt name',
    target: ['crt.shop'],
    mark: '✘',
    finding: 'no Service "crt" in namespace "shop"',
    evidence: 'similar names in shop: cart',
    fix: 'fix: check the spelling: did you mean cart.shop?',
  },
];

describe.each([
  ['manifest files', (): string[] => ['--manifests', DEMO]],
  ['the API server', (): string[] => ['--kubeconfig', kubeconfig]],
])('doctor reading %s', (_source, from) => {
  it.each(SEEDS)('$problem: the finding, its evidence and its fix, exit 1', async (seed) => {
    const { code, stdout, stderr } = await doctor(...seed.target, ...from());
    expect(stderr).toBe('');
    expect(checkLine(stdout, seed.mark, seed.finding), stdout).toBeDefined();
    expect(stdout).toContain(seed.evidence);
    expect(stdout).toContain(seed.fix);
    expect(code).toBe(1);
  });

  it.each([['db'], ['cart.shop'], ['kube-dns.kube-system'], ['kubernetes']])('%s: every check passes, exit 0', async (target) => {
    const { code, stdout } = await doctor(target, ...from());
    expect(stdout.split('\n').filter((line) => /^ {2}[✘⚠]/.test(line)), stdout).toEqual([]);
    expect(stdout).toMatch(/\nno problem found$/m);
    expect(code).toBe(0);
  });

  it('--all: only the Services with a problem, and how many were checked', async () => {
    const { code, stdout } = await doctor('--all', ...from());
    const headers = stdout.split('\n').filter((line) => /^[a-z0-9-]+\/[a-z0-9-]+$/.test(line));
    expect(headers.sort()).toEqual(['default/legacy-db', 'default/search', 'default/web', 'shop/inventory', 'shop/orders', 'shop/payments']);
    expect(stdout.trimEnd().split('\n').at(-1)).toBe('checked 11 Services: 6 with problems');
    expect(code).toBe(1);
  });

  it('--all --namespace: that namespace only; none with a problem is exit 0', async () => {
    const { code, stdout } = await doctor('--all', '--namespace', 'kube-system', ...from());
    expect(stdout.trimEnd().split('\n').at(-1)).toBe('checked 1 Service: no problem found');
    expect(code).toBe(0);
  });
});

describe('the same report from the API as from the files', () => {
  it.each([['--all'], ['orders.shop'], ['cart']])('%s', async (target) => {
    const files = await doctor(target, '--manifests', DEMO);
    const cluster = await doctor(target, '--kubeconfig', kubeconfig);
    expect(cluster.stdout).toBe(files.stdout);
    expect(cluster.code).toBe(files.code);
  });

  it("a SERVICE without a namespace is looked for in the kubeconfig context's namespace, as kubectl does", async () => {
    const inShop = join(dir, 'shop-kubeconfig');
    await writeFile(inShop, api.kubeconfigYaml().replace('context: { cluster: fake, user: fake }', 'context: { cluster: fake, user: fake, namespace: shop }'));
    const { stdout } = await doctor('orders', '--kubeconfig', inShop);
    expect(stdout.split('\n')[0]).toBe('shop/orders');
    expect((await doctor('orders', '--kubeconfig', inShop, '--namespace', 'default')).stdout.split('\n')[0]).toBe('default/orders');
  });

  it('reads the objects with list calls only, and only the namespaces it needs', async () => {
    const before = api.requests.length;
    await doctor('payments.shop', '--kubeconfig', kubeconfig);
    const asked = api.requests.slice(before).map((request) => `${request.verb} ${request.path}`);
    expect(asked.sort()).toEqual([
      'list /api/v1/namespaces/kube-system/services',
      'list /api/v1/namespaces/shop/pods',
      'list /api/v1/namespaces/shop/services',
      'list /apis/discovery.k8s.io/v1/namespaces/shop/endpointslices',
    ]);
  });
});

describe('pod states and ports beyond the demo cluster (through the test API server)', () => {
  let lab: FakeKubeApiServer;
  let config: string;
  const pod = (name: string, labels: Record<string, string>, status: Record<string, unknown>, extra: Record<string, unknown> = {}, ports = [{ name: 'http', containerPort: 8080, protocol: 'TCP' }]): KubeObject => ({
    metadata: { name, namespace: 'lab', labels, ...extra },
    spec: { containers: [{ name: 'app', image: 'app', ports }] },
    status,
  });
  const running = (ip: string, ready: boolean, container: Record<string, unknown> = {}): Record<string, unknown> => ({
    phase: 'Running',
    podIP: ip,
    conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
    containerStatuses: [{ name: 'app', ready, restartCount: 0, state: { running: {} }, ...container }],
  });

  beforeAll(async () => {
    lab = new FakeKubeApiServer();
    await lab.start();
    cleanups.push(() => lab.stop());
    config = join(dir, 'lab-kubeconfig');
    await writeFile(config, lab.kubeconfigYaml());
    lab.create('namespaces', { metadata: { name: 'lab' } });
    let next = 0;
    const service = (name: string, ports: unknown[]): KubeObject => ({ metadata: { name, namespace: 'lab' }, spec: { clusterIP: `10.96.9.${++next}`, selector: { app: name }, ports } });
    lab.create('services', service('oom', [{ name: 'http', port: 80, targetPort: 8080 }]));
    lab.create('pods', pod('oom-1', { app: 'oom' }, running('10.244.9.1', false, {
      restartCount: 4, state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { reason: 'OOMKilled', exitCode: 137 } },
    })));
    lab.create('services', service('pull', [{ name: 'http', port: 80, targetPort: 8080 }]));
    lab.create('pods', pod('pull-1', { app: 'pull' }, { phase: 'Pending', containerStatuses: [{ name: 'app', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff' } } }] }));
    lab.create('services', service('rollout', [{ name: 'http', port: 80, targetPort: 'http' }]));
    lab.create('pods', pod('rollout-old', { app: 'rollout' }, running('10.244.9.3', true), { deletionTimestamp: '2026-01-01T00:00:00Z' }));
    lab.create('pods', pod('rollout-new', { app: 'rollout' }, running('10.244.9.4', true)));
    lab.create('endpointslices', {
      metadata: { name: 'rollout-1', namespace: 'lab', labels: { 'kubernetes.io/service-name': 'rollout' } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: [{ addresses: ['10.244.9.3'], conditions: { ready: false, terminating: true } }],
    });
    lab.create('services', service('batch', [{ name: 'http', port: 80, targetPort: 8080 }]));
    lab.create('pods', pod('batch-1', { app: 'batch' }, { phase: 'Failed', reason: 'Evicted' }));
    lab.create('services', service('dns', [{ name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' }]));
    lab.create('pods', pod('dns-1', { app: 'dns' }, running('10.244.9.5', true), {}, [{ name: 'dns', containerPort: 5353, protocol: 'TCP' }]));
  });

  it('OOMKilled in a crash loop: the fix is memory, not logs', async () => {
    const { stdout } = await doctor('oom.lab', '--kubeconfig', config);
    expect(stdout).toContain('pod oom-1: Running, not ready, container app CrashLoopBackOff, app restarted 4 times (last: OOMKilled, exit code 137)');
    expect(stdout).toContain('fix: container app is killed for memory (OOMKilled): raise resources.limits.memory or make it use less');
  });

  it('a pod that cannot pull its image is not running', async () => {
    const { stdout } = await doctor('pull.lab', '--kubeconfig', config);
    expect(checkLine(stdout, '✘', '0 of 1 selected pod ready')).toBeDefined();
    expect(stdout).toContain('fix: pod pull-1 is not running (ImagePullBackOff): see why in the events of kubectl -n lab describe pod pull-1');
  });

  it('a rollout: the terminating pod, and a ready pod the EndpointSlice does not list yet', async () => {
    const { code, stdout } = await doctor('rollout.lab', '--kubeconfig', config);
    expect(checkLine(stdout, '⚠', '1 of 2 selected pods ready')).toBeDefined();
    expect(stdout).toContain('pod rollout-old: Running, terminating');
    expect(stdout).toContain('pod rollout-new is ready but no ready endpoint has its address 10.244.9.4');
    expect(checkLine(stdout, '✘', '0 of 1 endpoint ready in EndpointSlice rollout-1')).toBeDefined();
    expect(code).toBe(1);
  });

  it('finished pods match the selector but are never endpoints', async () => {
    const { stdout } = await doctor('batch.lab', '--kubeconfig', config);
    expect(checkLine(stdout, '✘', 'selector app=batch matches no pod in namespace lab')).toBeDefined();
    expect(stdout).toContain('matching pods that have finished, which are never endpoints: batch-1 (Failed)');
  });

  it('protocols that disagree: a UDP Service port on a TCP container port', async () => {
    const { stdout } = await doctor('dns.lab', '--kubeconfig', config);
    expect(checkLine(stdout, '✘', 'a Service port does not reach the containers')).toBeDefined();
    expect(stdout).toContain('port dns 53→5353/UDP: pod dns-1 declares 5353 for another protocol (its ports: 5353/TCP "dns")');
    expect(stdout).toContain('fix: make the protocols agree on 5353: the Service port says UDP');
  });
});

describe('--json', () => {
  it('one object for scripts: ok, checked, the services with every check, and the notes', async () => {
    const { code, stdout } = await doctor('orders.shop', '--manifests', DEMO, '--json');
    expect(code).toBe(1);
    const report = JSON.parse(stdout) as { ok: boolean; checked: number; services: Array<{ namespace: string; service: string; ok: boolean; checks: Array<Record<string, unknown>> }>; notes: string[] };
    expect(report).toMatchObject({ ok: false, checked: 1, services: [{ namespace: 'shop', service: 'orders', ok: false }] });
    expect(report.services[0]!.checks.map((check) => [check.check, check.mark])).toEqual([
      ['service', 'pass'], ['selector', 'fail'], ['pods', 'skip'], ['ports', 'skip'], ['endpoints', 'fail'], ['dns', 'skip'],
    ]);
    expect(report.services[0]!.checks[1]).toEqual({
      check: 'selector',
      mark: 'fail',
      summary: 'selector app=orders-v2 matches no pod in namespace shop: the Service has no endpoints',
      // The closest first: the pod whose label differs least from what the selector wants.
      evidence: [
        'closest: pod orders-7f9c6b5d4-k2m4n: app=orders (the selector wants app=orders-v2)',
        'closest: pod cart-5c7b9d-q2w3e: app=cart (the selector wants app=orders-v2)',
        'closest: pod inventory-6b8d7c9f5-t7w2k: app=inventory (the selector wants app=orders-v2)',
      ],
      fixes: [expect.stringMatching(/^make the Service's selector and the pods' labels agree/)],
    });
    expect(report.notes).toEqual(['DNS was not asked: give --server HOST:PORT (the cluster DNS is 10.96.0.10:53, reachable from a pod)']);
  });

  it('--all --json lists only the Services with problems', async () => {
    const report = JSON.parse((await doctor('--all', '--manifests', DEMO, '--json')).stdout) as { ok: boolean; checked: number; services: Array<{ ok: boolean }> };
    expect(report.ok).toBe(false);
    expect(report.checked).toBe(11);
    expect(report.services).toHaveLength(6);
    expect(report.services.every((service) => !service.ok)).toBe(true);
  });
});

describe('what DNS answers (a real clusterdns serving the demo cluster)', () => {
  let server: ServerProcess;
  let upstream: TestUpstream;
  let forwarding: ServerProcess;

  beforeAll(async () => {
    server = await startServer(['--manifests', DEMO]);
    upstream = await TestUpstream.start({ records: { 'billing.example.com': { A: ['192.0.2.80'] } } });
    forwarding = await startServer(['--manifests', DEMO, '--upstream', upstream.address]);
    cleanups.push(() => server.stop(), () => forwarding.stop(), () => upstream.stop());
  });

  const at = (process: ServerProcess): string => `127.0.0.1:${process.port}`;

  it('a Service with no endpoints still has its address: DNS passes, the selector is the problem', async () => {
    const { code, stdout } = await doctor('orders.shop', '--manifests', DEMO, '--server', at(server));
    expect(checkLine(stdout, '✔', 'DNS answers orders.shop.svc.cluster.local. with 10.96.200.20')).toBeDefined();
    expect(stdout).toContain('      orders.shop.svc.cluster.local. A → NOERROR: 10.96.200.20');
    expect(stdout).toContain('      from a pod in shop, "orders" → orders.shop.svc.cluster.local. (try 1 of 1): 10.96.200.20');
    expect(stdout).not.toContain('note: DNS was not asked');
    expect(code).toBe(1);
  });

  it('the wrong namespace: the full name is NXDOMAIN, and the short name fails as it does in a pod there', async () => {
    const { stdout } = await doctor('cart', '--manifests', DEMO, '--server', at(server));
    expect(checkLine(stdout, '✘', 'DNS answers cart.default.svc.cluster.local. with NXDOMAIN')).toBeDefined();
    expect(stdout).toContain('      from a pod in default, "cart" → not resolved after 4 tries: TRY_AGAIN');
  });

  it('a headless Service answers its ready pods', async () => {
    const { code, stdout } = await doctor('db', '--kubeconfig', kubeconfig, '--server', at(server));
    expect(checkLine(stdout, '✔', 'DNS answers db.default.svc.cluster.local. with 10.244.1.20, 10.244.2.21')).toBeDefined();
    expect(code).toBe(0);
  });

  it('DNS that disagrees with the objects: the server does not know the Service', async () => {
    const extra = join(dir, 'extra.yaml');
    await writeFile(extra, `${readFileSync(DEMO, 'utf8')}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: fresh, namespace: default}\nspec: {clusterIP: 10.96.100.99}\n`);
    const { code, stdout } = await doctor('fresh', '--manifests', extra, '--server', at(server));
    expect(checkLine(stdout, '✘', 'DNS answers fresh.default.svc.cluster.local. with NXDOMAIN')).toBeDefined();
    expect(stdout).toContain('fix: the server does not know default/fresh: does it watch namespace default');
    expect(code).toBe(1);
  });

  it('ExternalName: the target resolves upstream through the server', async () => {
    const { code, stdout } = await doctor('billing', '--manifests', DEMO, '--server', at(forwarding));
    expect(checkLine(stdout, '✔', 'DNS answers billing.default.svc.cluster.local. with CNAME billing.example.com.')).toBeDefined();
    expect(checkLine(stdout, '✔', 'the target billing.example.com. resolves upstream: 192.0.2.80')).toBeDefined();
    expect(code).toBe(0);
  });

  it('ExternalName with nothing forwarding: the target does not resolve, and the fix says why', async () => {
    const { code, stdout } = await doctor('billing', '--manifests', DEMO, '--server', at(server));
    expect(checkLine(stdout, '✘', 'the target billing.example.com. does not resolve through')).toBeDefined();
    expect(stdout).toContain('fix: the server does not resolve names outside the cluster zone: give it a forwarder');
    expect(code).toBe(1);
  });

  it('ExternalName whose target does not exist upstream', async () => {
    const misspelt = join(dir, 'misspelt.yaml');
    await writeFile(misspelt, readFileSync(DEMO, 'utf8').replace('externalName: billing.example.com', 'externalName: biling.example.com'));
    const { stdout } = await doctor('billing', '--manifests', misspelt, '--server', at(forwarding));
    expect(checkLine(stdout, '✘', 'the target biling.example.com. does not resolve through')).toBeDefined();
    expect(stdout).toContain('fix: check spec.externalName: biling.example.com does not exist');
  });

  it('a server that is not there: one failed DNS check naming it', async () => {
    const closed = await closedPort();
    const { code, stdout } = await doctor('db', '--manifests', DEMO, '--server', `127.0.0.1:${closed}`);
    expect(checkLine(stdout, '✘', `the DNS server 127.0.0.1:${closed} did not answer (ECONNREFUSED)`)).toBeDefined();
    expect(code).toBe(1);
  });
});

describe('Extended DNS Errors in the answer (RFC 8914)', () => {
  it('shows the INFO-CODE, its name and the EXTRA-TEXT of the reply', async () => {
    const text = 'no service "cart" in namespace "default"; found in "shop"';
    const ede = await edeServer(text);
    cleanups.push(() => ede.stop());
    const { stdout } = await doctor('cart', '--manifests', DEMO, '--server', `127.0.0.1:${ede.port}`);
    expect(stdout).toContain('      cart.default.svc.cluster.local. A → NXDOMAIN\n        EDE 0 (Other): no service "cart" in namespace "default"; found in "shop"\n');
  });
});

describe('usage errors: one line, exit 2', () => {
  it.each([
    [[], "clusterdns: give the Service to check (SERVICE or SERVICE.NAMESPACE), or --all; see 'clusterdns doctor --help'"],
    [['web', '--all'], 'clusterdns: --all checks every Service: give it or web, not both'],
    [['web', 'db'], "clusterdns: one Service at a time, not 2; see 'clusterdns doctor --help'"],
    [['Web_1'], "clusterdns: Web_1: expected SERVICE or SERVICE.NAMESPACE (DNS labels: lower-case letters, digits, '-')"],
    [['web.default.svc'], "clusterdns: web.default.svc: expected SERVICE or SERVICE.NAMESPACE (DNS labels: lower-case letters, digits, '-')"],
    [['web.default', '--namespace', 'shop'], 'clusterdns: web.default names namespace default, --namespace says shop: give one'],
    [['web', '--namespace', 'Bad_NS'], 'clusterdns: --namespace Bad_NS: not a namespace name'],
    [['web', '--kubeconfig', 'k', '--manifests', 'm'], 'clusterdns: --kubeconfig and --manifests: give one source of objects, not both'],
    [['web', '--server', 'dns.example'], 'clusterdns: --server dns.example: expected HOST:PORT, e.g. 127.0.0.1:5353 or [::1]:5353'],
    [['web', '--bogus'], "clusterdns: Unknown option '--bogus'; see 'clusterdns doctor --help'"],
  ])('%j', async (args, message) => {
    const { code, stdout, stderr } = await doctor(...args);
    expect(stderr).toBe(`${message}\n`);
    expect(stdout).toBe('');
    expect(code).toBe(2);
  });

  it('--help prints the usage and exits 0', async () => {
    const { code, stdout } = await doctor('--help');
    expect(stdout.split('\n')[0]).toBe('Usage: clusterdns doctor [SERVICE[.NAMESPACE]] [flags]');
    expect(code).toBe(0);
  });

  it('a manifest path that does not exist: exit 1, naming it', async () => {
    const { code, stderr } = await doctor('web', '--manifests', join(dir, 'nope.yaml'));
    expect(stderr).toMatch(/^clusterdns: .*nope\.yaml: cannot read: ENOENT/);
    expect(code).toBe(1);
  });

  it('an API server that is down: exit 1, saying what could not be listed from where', async () => {
    const down = new FakeKubeApiServer();
    await down.start();
    const config = join(dir, 'down-kubeconfig');
    await writeFile(config, down.kubeconfigYaml());
    await down.stop();
    const { code, stderr } = await doctor('web', '--kubeconfig', config);
    expect(stderr).toMatch(new RegExp(`^clusterdns: cannot list /api/v1/namespaces/default/\\w+ from ${down.url.replace(/\./g, '\\.')} \\(--kubeconfig ${config}\\): .*ECONNREFUSED`));
    expect(code).toBe(1);
  });
});

/** A port nothing listens on (UDP nor TCP): bound, read, closed. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A DNS server on 127.0.0.1 (UDP and TCP, one port) that answers every query NXDOMAIN with an OPT record holding
 * one EDE option, INFO-CODE 0 and `text`, laid out by hand as RFC 8914 §2 draws it.
 */
async function edeServer(text: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const reply = (query: Buffer): Buffer => {
    let end = 12;
    while (query[end] !== 0) end += query[end]! + 1;
    end += 5;
    const extra = Buffer.from(text, 'utf8');
    const opt = Buffer.alloc(11 + 4 + 2 + extra.length);
    opt.writeUInt16BE(41, 1);
    opt.writeUInt16BE(1232, 3);
    opt.writeUInt16BE(4 + 2 + extra.length, 9);
    opt.writeUInt16BE(15, 11);
    opt.writeUInt16BE(2 + extra.length, 13);
    opt.writeUInt16BE(0, 15);
    extra.copy(opt, 17);
    const header = Buffer.from(query.subarray(0, 12));
    header.writeUInt16BE(0x8583, 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(0, 6);
    header.writeUInt16BE(0, 8);
    header.writeUInt16BE(1, 10);
    return Buffer.concat([header, query.subarray(12, end), opt]);
  };
  const tcp = createServer((socket) => {
    socket.once('data', (chunk: Buffer) => {
      const answer = reply(chunk.subarray(2, 2 + chunk.readUInt16BE(0)));
      const framed = Buffer.alloc(2);
      framed.writeUInt16BE(answer.length);
      socket.end(Buffer.concat([framed, answer]));
    });
  }).listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  const { port } = tcp.address() as AddressInfo;
  const udp = createSocket('udp4');
  udp.on('message', (message, peer) => udp.send(reply(message), peer.port, peer.address));
  udp.bind(port, '127.0.0.1');
  await once(udp, 'listening');
  return { port, stop: async () => { udp.close(); await new Promise((resolve) => tcp.close(resolve)); } };
}
