// A rolling update of the DNS Deployment, modelled on loopback: a Service (a small UDP forwarder here, standing for
// kube-proxy) sends each query to one of the ready endpoints; an endpoint leaves some time after its pod is deleted
// (SIGTERM), when the proxy's rules catch up with the terminating pod, and a new pod joins once its /ready answers
// 200, as the kubelet's readiness probe decides. A client sends a steady stream through the Service while the old
// pod goes through lame duck and exits and the new one syncs. Nothing may be lost: queries already sent to the old
// pod are answered during its lame duck, and the new pod takes none before its first sync.
import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { get } from './support/http.js';
import { FakeKubeApiServer } from './support/k8s-api-server.js';
import { startServer, type ServerProcess } from './support/server-process.js';
import { steadyClient } from './support/steady-client.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const DEMO = new URL('../examples/demo-cluster.yaml', import.meta.url).pathname;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Backend {
  readonly name: string;
  readonly server: ServerProcess;
  /** The pod is being deleted: the Service no longer sends it new queries. */
  terminating: boolean;
  /** The last readiness probe answered 200. */
  ready: boolean;
  readonly socket: Socket;
}

/** The Service: forwards each client query to a ready, not terminating backend, round robin, and relays the reply. */
class TestService {
  readonly socket = createSocket('udp4');
  readonly backends: Backend[] = [];
  private turn = 0;
  private readonly clients = new Map<string, { port: number; address: string }>();
  private probing: NodeJS.Timeout | undefined;
  /** Which backend answered each query, by name. */
  readonly answeredBy = new Map<string, number>();

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
    this.socket.on('message', (packet, peer) => {
      const live = this.backends.filter((backend) => backend.ready && !backend.terminating);
      if (live.length === 0) return;
      const backend = live[this.turn++ % live.length]!;
      // Keyed by query ID: each query of the test's client has its own.
      this.clients.set(`${backend.name}:${packet.readUInt16BE(0)}`, { port: peer.port, address: peer.address });
      backend.socket.send(packet, backend.server.port, '127.0.0.1');
    });
    // The kubelet's readiness probe, every 50 ms.
    this.probing = setInterval(() => {
      for (const backend of this.backends) {
        void get(backend.server, '/ready').then((response) => (backend.ready = response.status === 200), () => (backend.ready = false));
      }
    }, 50);
    return (this.socket.address()).port;
  }

  async add(name: string, server: ServerProcess): Promise<Backend> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const backend: Backend = { name, server, terminating: false, ready: false, socket };
    socket.on('message', (reply) => {
      const key = `${name}:${reply.readUInt16BE(0)}`;
      const client = this.clients.get(key);
      if (client === undefined) return;
      this.clients.delete(key);
      this.answeredBy.set(name, (this.answeredBy.get(name) ?? 0) + 1);
      this.socket.send(reply, client.port, client.address);
    });
    socket.on('error', () => undefined);
    this.backends.push(backend);
    return backend;
  }

  close(): void {
    clearInterval(this.probing);
    this.socket.close();
    for (const backend of this.backends) backend.socket.close();
  }
}


describe('a rolling update of the DNS Deployment', () => {
  it('loses no query: the old pod answers through lame duck, the new one takes queries only after its first sync', async () => {
    const service = new TestService();
    const servicePort = await service.start();
    cleanups.push(() => service.close());
    const old = await startServer(['--manifests', DEMO, '--lameduck', '2']);
    cleanups.push(() => old.stop());
    const other = await startServer(['--manifests', DEMO, '--lameduck', '2']);
    cleanups.push(() => other.stop());
    const oldPod = await service.add('old', old);
    await service.add('other', other);
    while (!service.backends.every((backend) => backend.ready)) await sleep(20);

    // The new pod's API server is slow: its first list hangs, so it is not ready for a while.
    const api = new FakeKubeApiServer();
    await api.start();
    cleanups.push(() => api.stop());
    api.create('namespaces', { metadata: { name: 'default' } });
    api.create('services', { metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.96.100.10', selector: { app: 'web' }, ports: [{ name: 'http', port: 80 }] } });
    const dir = await mkdtemp(join(tmpdir(), 'clusterdns-rolling-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'kubeconfig'), api.kubeconfigYaml());

    const client = steadyClient(servicePort, 5, 2000);
    await sleep(300);

    // maxSurge: the new pod starts first; it must not take queries before its first sync.
    api.hang();
    const fresh = await startServer(['--kubeconfig', join(dir, 'kubeconfig'), '--lameduck', '2']);
    cleanups.push(() => fresh.stop());
    await service.add('new', fresh);
    await sleep(400);
    expect((await get(fresh, '/ready')).status, 'not ready before its first sync').toBe(503);
    api.resume();
    while (!service.backends.find((backend) => backend.name === 'new')!.ready) await sleep(20);

    // The old pod is deleted: SIGTERM, and /ready turns 503 within 100 ms. The Service's rules catch up only
    // 500 ms later (kube-proxy lags the EndpointSlice: kubernetes/kubernetes#129617), and until then queries still
    // reach the old pod: lame duck keeps it answering them.
    const signalled = Date.now();
    const exited = new Promise((resolve) => old.child.once('exit', resolve));
    old.child.kill('SIGTERM');
    let notReadyAfter = Infinity;
    for (let i = 0; i < 50 && notReadyAfter === Infinity; i++) {
      const status = await get(old, '/ready').then((response) => response.status, () => 0);
      if (status === 503) notReadyAfter = Date.now() - signalled;
      else await sleep(5);
    }
    expect(notReadyAfter).toBeLessThan(100);
    await sleep(500);
    oldPod.terminating = true;
    await exited;
    await sleep(300);

    const { sent, lost, notNoerror } = await client.stop();
    expect(sent).toBeGreaterThan(300);
    expect(lost).toBe(0);
    expect(notNoerror).toBe(0);
    expect(service.answeredBy.get('new'), 'the new pod took its share once ready').toBeGreaterThan(0);
    expect(service.answeredBy.get('old')).toBeGreaterThan(0);
  }, 30_000);
});
