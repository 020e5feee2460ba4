/**
 * Large answers (RFC 1035 §4.2.1, RFC 6891, RFC 7766): a headless service with 100 endpoints does not fit in a
 * UDP reply. Without EDNS the reply stops at 512 bytes with TC set; with EDNS at our 1232-byte cap, OPT kept;
 * over TCP the client gets every record. Proven with dig both ways, and with `clusterdns resolve`'s stub client.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Report } from '../src/resolve/index.js';
import { dig } from './support/dig.js';
import { runCli, startServer, type ServerProcess } from './support/server-process.js';

const ENDPOINTS = 100;
const addresses = Array.from({ length: ENDPOINTS }, (_, i) => `10.244.${Math.floor(i / 50)}.${(i % 50) + 1}`);

function manifest(): string {
  return [
    'apiVersion: v1\nkind: Namespace\nmetadata: {name: default}',
    'apiVersion: v1\nkind: Service\nmetadata: {name: big, namespace: default}\nspec: {clusterIP: None, ports: [{name: http, port: 80}]}',
    [
      'apiVersion: discovery.k8s.io/v1',
      'kind: EndpointSlice',
      'metadata: {name: big-1, namespace: default, labels: {kubernetes.io/service-name: big}}',
      'addressType: IPv4',
      'ports: [{name: http, port: 80, protocol: TCP}]',
      'endpoints:',
      ...addresses.map((ip) => `  - {addresses: [${ip}]}`),
    ].join('\n'),
  ].join('\n---\n');
}

const messageSize = (raw: string): number => Number(/MSG SIZE\s+rcvd: (\d+)/.exec(raw)?.[1]);

describe('answers larger than a UDP reply', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clusterdns-big-'));
    await writeFile(join(dir, 'big.yaml'), manifest());
    server = await startServer(['--manifests', join(dir, 'big.yaml')]);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('over UDP without EDNS: TC set, whole records only, at most 512 bytes', async () => {
    const result = await dig(server.port, ['big.default.svc.cluster.local', 'A', '+noedns', '+notcp', '+ignore']);
    expect(result.status).toBe('NOERROR');
    expect(result.flags).toContain('tc');
    expect(result.answer.length).toBeGreaterThan(0);
    expect(result.answer.length).toBeLessThan(ENDPOINTS);
    for (const line of result.answer) expect(line).toMatch(/^big\.default\.svc\.cluster\.local\. 5 IN A 10\.244\.\d+\.\d+$/);
    expect(messageSize(result.raw)).toBeLessThanOrEqual(512);
    expect(result.raw).not.toContain('OPT PSEUDOSECTION');
  });

  it('over UDP with EDNS 4096: TC at our 1232-byte cap, OPT record kept', async () => {
    const result = await dig(server.port, ['big.default.svc.cluster.local', 'A', '+bufsize=4096', '+notcp', '+ignore']);
    expect(result.flags).toContain('tc');
    expect(messageSize(result.raw)).toBeLessThanOrEqual(1232);
    expect(messageSize(result.raw)).toBeGreaterThan(512);
    expect(result.raw).toMatch(/EDNS: version: 0, flags:; udp: 1232/);
  });

  it('over TCP: every endpoint', async () => {
    const result = await dig(server.port, ['big.default.svc.cluster.local', 'A', '+tcp']);
    expect(result.flags).not.toContain('tc');
    expect(result.answer.map((line) => line.split(' ')[4]).sort()).toEqual([...addresses].sort());
  });

  it('dig on its own retries over TCP after TC and gets every endpoint', async () => {
    const result = await dig(server.port, ['big.default.svc.cluster.local', 'A', '+noedns']);
    expect(result.raw).toContain('Truncated, retrying in TCP mode');
    expect(result.answer).toHaveLength(ENDPOINTS);
  });

  it('SRV over UDP drops the additional section before it truncates answers', async () => {
    const udp = await dig(server.port, ['_http._tcp.big.default.svc.cluster.local', 'SRV', '+notcp', '+ignore']);
    expect(udp.flags).toContain('tc');
    expect(udp.answer.length).toBeGreaterThan(0);
    expect(udp.additional.filter((line) => !line.includes('OPT'))).toEqual([]);
    const tcp = await dig(server.port, ['_http._tcp.big.default.svc.cluster.local', 'SRV', '+tcp']);
    expect(tcp.answer).toHaveLength(ENDPOINTS);
    expect(tcp.additional).toHaveLength(ENDPOINTS);
    for (const line of tcp.answer) expect(line).toMatch(/ SRV 0 1 80 10-244-\d+-\d+\.big\.default\.svc\.cluster\.local\.$/);
  });

  it('clusterdns resolve, a stub resolver without EDNS as glibc is, retries over TCP after TC and gets every endpoint', async () => {
    const { code, stdout } = await runCli(['resolve', 'big.default.svc.cluster.local.', '--type', 'A', '--server', `127.0.0.1:${server.port}`, '--json']);
    expect(code).toBe(0);
    expect([...(JSON.parse(stdout) as Report).addresses].sort()).toEqual([...addresses].sort());
  });
});
