/**
 * --log-queries and the log plugin: one structured line per query (off by default, as it costs throughput), for
 * the queries of the server block that has `log`, of the classes it names.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dig } from './support/dig.js';
import { freePort, startServer, type ServerProcess } from './support/server-process.js';

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

  it('a Corefile\'s log logs its own block\'s queries only, of the classes it names', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clusterdns-log-'));
    const port = await freePort();
    await writeFile(join(dir, 'Corefile'), `cluster.local:${port} {
    bind 127.0.0.1
    log {
        class denial error
    }
    kubernetes {
        manifests ${new URL('../examples/demo-cluster.yaml', import.meta.url).pathname}
    }
}
whoami.test:${port} {
    bind 127.0.0.1
    whoami
}
`);
    try {
      server = await startServer([], '127.0.0.1', { corefile: join(dir, 'Corefile') });
      await dig(port, ['web.default.svc.cluster.local', 'A']); // success: not logged
      await dig(port, ['web.default.svc.cluster.local', 'TXT']); // NODATA: a denial
      await dig(port, ['nosuch.default.svc.cluster.local', 'A']); // NXDOMAIN: a denial
      await dig(port, ['me.whoami.test', 'A']); // another block, which has no log
      await server.waitForLog((line) => line.msg === 'query' && line.name === 'nosuch.default.svc.cluster.local.');
      await new Promise((resolve) => setTimeout(resolve, 200));
      const logged = server.logs.filter((line) => line.msg === 'query').map((line) => `${String(line.name)} ${String(line.type)} ${String(line.rcode)}`);
      expect(logged).toEqual(['web.default.svc.cluster.local. TXT NOERROR', 'nosuch.default.svc.cluster.local. A NXDOMAIN']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
