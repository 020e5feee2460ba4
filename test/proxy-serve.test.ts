/**
 * `clusterdns serve --proxy` as a developer runs it: with --proxy-vip loopback every ClusterIP service gets an
 * address from the loopback range, DNS answers that address instead of the cluster IP, and connecting to what `dig`
 * says reaches a backend (here a server in this test process on 127.0.0.1). Only loopback traffic. Also what
 * cluster-ip mode does with a VIP that is on no local interface: it says so once, counts it, and keeps retrying.
 */
import { once } from 'node:events';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { dig } from './support/dig.js';
import { metrics, value } from './support/http.js';
import { freePort, startServer, type ServerProcess } from './support/server-process.js';

let dir: string;
let backend: Server;
let backendPort: number;
/** The services' port: free on every address, so no other process's wildcard listener is in the way. */
let servicePort: number;
const running: ServerProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clusterdns-loopback-'));
  backend = createServer((socket) => socket.end('hello from the backend\n'));
  backend.listen(0, '127.0.0.1');
  await once(backend, 'listening');
  backendPort = (backend.address() as AddressInfo).port;
  servicePort = await freePort();
});

afterAll(async () => {
  for (const server of running) await server.stop();
  backend?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** A ClusterIP service (dual-stack) with port `servicePort` → the backend's port, named `http`, on 127.0.0.1. */
function service(name: string, clusterIPs: string[]): string {
  return [
    JSON.stringify({
      apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' },
      spec: { clusterIP: clusterIPs[0], clusterIPs, ports: [{ name: 'http', port: servicePort, targetPort: 'http' }] },
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

function fetchLine(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk) => (text += chunk)).once('end', () => resolve(text)).once('error', reject);
  });
}

describe('serve --proxy --proxy-vip loopback', () => {
  it('dig answers the service loopback address, and connecting to that answer reaches a backend', async () => {
    const { server, file } = await serve(['--proxy-vip', 'loopback', '--proxy-range', '127.77.0.0/16'], service('web', ['10.96.0.10', 'fd00:10:96::10']));
    await server.waitForLog((line) => line.msg === 'proxying');
    const answer = await dig(server.port, ['web.default.svc.cluster.local', 'A']);
    expect(answer.answer).toHaveLength(1);
    const vip = answer.answer[0]!.split(' ').pop()!;
    expect(vip).toMatch(/^127\.77\.\d+\.\d+$/);
    expect(await fetchLine(vip, servicePort)).toBe('hello from the backend\n');

    // The loopback address stands in for the cluster IPs everywhere: no AAAA (the range is IPv4), a PTR back.
    const aaaa = await dig(server.port, ['web.default.svc.cluster.local', 'AAAA']);
    expect([aaaa.status, aaaa.answer]).toEqual(['NOERROR', []]);
    expect((await dig(server.port, ['-x', vip])).answer).toEqual([`${vip.split('.').reverse().join('.')}.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local.`]);

    // A service added while running gets its own address, answered and reachable.
    await writeFile(`${file}.tmp`, `${service('web', ['10.96.0.10', 'fd00:10:96::10'])}\n---\n${service('api', ['10.96.0.11'])}`);
    await rename(`${file}.tmp`, file);
    await vi.waitFor(() => expect(server.logs.filter((line) => line.msg === 'proxying')).toHaveLength(2), { timeout: 10_000, interval: 20 });
    const api = (await dig(server.port, ['+short', 'api.default.svc.cluster.local', 'A'])).raw.trim();
    expect(api).toMatch(/^127\.77\.\d+\.\d+$/);
    expect(api).not.toBe(vip);
    expect(await fetchLine(api, servicePort)).toBe('hello from the backend\n');
  });
});

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
