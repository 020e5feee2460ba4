/** --log-queries: one structured line per query (off by default, as it costs throughput). */
import { afterEach, describe, expect, it } from 'vitest';
import { dig } from './support/dig.js';
import { startServer, type ServerProcess } from './support/server-process.js';

let server: ServerProcess | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

describe('query logging', () => {
  it('logs client, protocol, name, type, rcode and size for each query when asked', async () => {
    server = await startServer(['--manifests', 'examples/demo-cluster.yaml', '--log-queries']);
    await dig(server.port, ['web.default.svc.cluster.local', 'A', '+notcp']);
    await dig(server.port, ['nosuch.default.svc.cluster.local', 'AAAA', '+tcp']);
    const first = await server.waitForLog((line) => line.msg === 'query' && line.type === 'A');
    const second = await server.waitForLog((line) => line.msg === 'query' && line.type === 'AAAA');
    expect(first).toMatchObject({ proto: 'udp', name: 'web.default.svc.cluster.local.', rcode: 'NOERROR', level: 30 });
    expect(first.client).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(first.size).toBeGreaterThan(12);
    expect(second).toMatchObject({ proto: 'tcp', name: 'nosuch.default.svc.cluster.local.', rcode: 'NXDOMAIN' });
    expect(server.logs.filter((line) => line.msg === 'query')).toHaveLength(2);
  });

  it('logs no query without the flag, even at debug level', async () => {
    server = await startServer(['--manifests', 'examples/demo-cluster.yaml']);
    expect((await dig(server.port, ['web.default.svc.cluster.local', 'A'])).status).toBe('NOERROR');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(server.logs.filter((line) => line.msg === 'query')).toEqual([]);
  });
});
