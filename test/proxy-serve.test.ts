/**
 * `clusterdns serve --proxy` beside DNS, in this process's own network namespace (only loopback traffic): what it
 * does with a VIP that is on no local interface: it says so once, counts it, and keeps retrying, while DNS answers.
 */
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from './support/dig.js';
import { parseMetrics, value } from './support/metrics.js';
import { startServer, type ServerProcess } from './support/server-process.js';

let dir: string;
let backend: Server;
let backendPort: number;
const running: ServerProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clusterdns-serve-proxy-'));
  backend = createServer((socket) => socket.end('hello from the backend\n'));
  backend.listen(0, '127.0.0.1');
  await once(backend, 'listening');
  backendPort = (backend.address() as AddressInfo).port;
});

afterAll(async () => {
  for (const server of running) await server.stop();
  backend?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** A ClusterIP service (dual-stack) with port 8080 → the backend's port, named `http`, on 127.0.0.1. */
function service(name: string, clusterIPs: string[]): string {
  return [
    JSON.stringify({
      apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' },
      spec: { clusterIP: clusterIPs[0], clusterIPs, ports: [{ name: 'http', port: 8080, targetPort: 'http' }] },
    }),
    JSON.stringify({
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name: `${name}-1`, namespace: 'default', labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4', ports: [{ name: 'http', port: backendPort }], endpoints: [{ addresses: ['127.0.0.1'] }],
    }),
  ].join('\n---\n');
}

async function serve(args: readonly string[], yaml: string): Promise<{ server: ServerProcess; file: string }> {
  const file = join(dir, `cluster-${running.length}.yaml`);
  await writeFile(file, yaml);
  const server = await startServer(['--manifests', file, '--proxy', ...args]);
  running.push(server);
  return { server, file };
}


async function metrics(server: ServerProcess): Promise<ReturnType<typeof parseMetrics>> {
  return parseMetrics(await (await fetch(`http://${server.http.metrics}/metrics`)).text());
}

describe('serve --proxy (cluster-ip)', () => {
  it('a VIP on no local interface: answered by DNS as usual, logged once, counted as unbound, retried', async () => {
    const { server } = await serve([], service('web', ['192.0.2.10']));
    await server.waitForLog((line) => line.msg === 'cannot listen on the service address; retrying' && line.reason === 'EADDRNOTAVAIL');
    expect((await dig(server.port, ['+short', 'web.default.svc.cluster.local', 'A'])).raw.trim()).toBe('192.0.2.10');
    expect(value(await metrics(server), 'clusterdns_proxy_listeners_unbound')).toBe(1);
    // Retried at 1 s, then 2 s: still failing, still one log line.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(server.logs.filter((line) => line.msg === 'cannot listen on the service address; retrying')).toHaveLength(1);
  });
});
