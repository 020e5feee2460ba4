/**
 * `clusterdns dev` against the test API server, as on a laptop next to kind: the pods' addresses (10.244.x.y)
 * are not routable from here, so every connection goes through the API server's pod port-forward, which the
 * test server bridges to backends in this process on 127.0.0.1. dig the service name, connect to the loopback
 * address it answers, reach a pod; a pod that dies is skipped for the next connections. Only loopback traffic.
 */
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from './support/dig.js';
import { FakeKubeApiServer, type KubeObject } from './support/k8s-api-server.js';
import { metrics, value } from './support/http.js';
import { freePort, startServer, type ServerProcess } from './support/server-process.js';
import { TestUpstream } from './support/upstream.js';

const PODS = [
  { name: 'web-a', ip: '10.244.0.1' },
  { name: 'web-b', ip: '10.244.0.2' },
];

let api: FakeKubeApiServer;
/** The service's port: free on every address, so no other process's wildcard listener is in the way. */
let servicePort: number;
let dev: ServerProcess;
let dir: string;
/** The laptop's own resolver, as far as dev knows: names outside the cluster go here. */
let upstream: TestUpstream;
const backends = new Map<string, { server: Server; port: number }>();
/** Pods whose port-forward the API server refuses (the pod died; its objects have not caught up yet). */
const dead = new Set<string>();

const pod = (name: string, ip: string): KubeObject => ({
  metadata: { name, namespace: 'default', labels: { app: 'web' } },
  spec: { nodeName: 'kind-worker' },
  status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
});

beforeAll(async () => {
  for (const { name } of PODS) {
    const server = createServer((socket) => {
      socket.on('error', () => socket.destroy());
      socket.write(`${name}\n`);
      socket.pipe(socket);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    backends.set(name, { server, port: (server.address() as AddressInfo).port });
  }
  servicePort = await freePort();
  api = new FakeKubeApiServer();
  await api.start();
  api.forwardPorts((namespace, name, port) => {
    const backend = backends.get(name);
    return namespace === 'default' && port === 8080 && backend !== undefined && !dead.has(name) ? { host: '127.0.0.1', port: backend.port } : undefined;
  });
  api.create('namespaces', { metadata: { name: 'default' } });
  api.create('services', {
    metadata: { name: 'web', namespace: 'default' },
    spec: { clusterIP: '10.96.0.10', selector: { app: 'web' }, ports: [{ name: 'http', port: servicePort, targetPort: 'http', protocol: 'TCP' }] },
  });
  api.create('endpointslices', {
    metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: PODS.map(({ name, ip }) => ({ addresses: [ip], conditions: { ready: true }, targetRef: { kind: 'Pod', name, namespace: 'default' } })),
  });
  for (const { name, ip } of PODS) api.create('pods', pod(name, ip));
  dir = await mkdtemp(join(tmpdir(), 'clusterdns-dev-'));
  const kubeconfig = join(dir, 'kubeconfig');
  await writeFile(kubeconfig, api.kubeconfigYaml());
  upstream = await TestUpstream.start({ records: { 'registry.example.test': { A: ['192.0.2.80'], ttl: 300 } } });
  dev = await startServer(['--kubeconfig', kubeconfig, '--proxy-range', '127.78.0.0/16', '--upstream', upstream.address], '127.0.0.1', { command: 'dev' });
  await dev.waitForLog((line) => line.msg === 'proxying');
});

afterAll(async () => {
  await dev?.stop();
  await api?.stop();
  await upstream?.stop();
  for (const { server } of backends.values()) server.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** Connects, reads the pod's name line, checks an echo, closes. */
function reach(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
      if (text.endsWith('\nping\n')) {
        socket.destroy();
        resolve(text.slice(0, text.indexOf('\n')));
      } else if (text.endsWith('\n') && !text.includes('ping')) {
        socket.write('ping\n');
      }
    }).once('error', reject).once('end', () => reject(new Error(`closed after ${JSON.stringify(text)}`)));
  });
}

async function vipOfWeb(): Promise<string> {
  const answer = await dig(dev.port, ['+short', 'web.default.svc.cluster.local', 'A']);
  return answer.raw.trim();
}

describe('clusterdns dev', () => {
  it('prints the one command that sends the cluster zone, and nothing else, to it', () => {
    const command = process.platform === 'darwin'
      ? `sudo sh -c 'mkdir -p /etc/resolver && printf "nameserver 127.0.0.1\\nport ${dev.port}\\n" > /etc/resolver/cluster.local'`
      : `sudo sh -c 'mkdir -p /etc/systemd/resolved.conf.d && printf "[Resolve]\\nDNS=127.0.0.1:${dev.port}\\nDomains=~cluster.local\\n" > /etc/systemd/resolved.conf.d/clusterdns.conf && systemctl restart systemd-resolved'`;
    expect(dev.stdout().split('\n')).toContain(`  ${command}`);
  });

  it('forwards names outside the cluster zone upstream, and caches them', async () => {
    for (let i = 0; i < 2; i++) {
      const answer = await dig(dev.port, ['registry.example.test', 'A']);
      expect(answer.status).toBe('NOERROR');
      expect(answer.answer).toHaveLength(1);
      expect(answer.answer[0]).toMatch(/^registry\.example\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.80$/);
    }
    expect(upstream.queries.filter((query) => query.name.toLowerCase() === 'registry.example.test')).toHaveLength(1);
  });

  it("answers the service name with a loopback address that reaches its pods through the API server's port-forward", async () => {
    const vip = await vipOfWeb();
    expect(vip).toMatch(/^127\.78\.\d+\.\d+$/);
    const reached = [await reach(vip, servicePort), await reach(vip, servicePort), await reach(vip, servicePort), await reach(vip, servicePort)];
    expect(reached.sort()).toEqual(['web-a', 'web-a', 'web-b', 'web-b']);
    const forwards = api.requests.filter((request) => request.path.endsWith('/portforward'));
    expect(forwards.map((request) => `${request.path}?ports=${request.query.ports}`).sort()).toEqual([
      ...Array<string>(2).fill('/api/v1/namespaces/default/pods/web-a/portforward?ports=8080'),
      ...Array<string>(2).fill('/api/v1/namespaces/default/pods/web-b/portforward?ports=8080'),
    ]);
  });

  it('a pod that dies behind a port-forward: the next connections all go to the other ready pod', async () => {
    const vip = await vipOfWeb();
    // Its port-forward fails while its Pod and EndpointSlice still say it is there and ready...
    dead.add('web-a');
    const reached: string[] = [];
    for (let i = 0; i < 6; i++) reached.push(await reach(vip, servicePort));
    expect(reached).toEqual(Array<string>(6).fill('web-b'));
    const samples = await metrics(dev);
    expect(value(samples, 'clusterdns_proxy_connect_failures_total', { namespace: 'default', service: 'web' })).toBeGreaterThanOrEqual(1);

    // ...and once the Pod is gone from the API, it is not even tried. Were it still tried, its penalty (1 s, then
    // 2 s) would let a probe through within the 3 s below, and that probe would reach the API server.
    const forwardsToA = (): number => api.requests.filter((request) => request.path.endsWith('/web-a/portforward')).length;
    api.delete('pods', { metadata: { name: 'web-a', namespace: 'default' } });
    await sleep(300); // the watch event on its way
    const before = forwardsToA();
    for (const stopAt = Date.now() + 3000; Date.now() < stopAt; await sleep(200)) expect(await reach(vip, servicePort)).toBe('web-b');
    expect(forwardsToA()).toBe(before);
  });
});
