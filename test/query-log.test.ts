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
    const first = await server.waitForLog((line) => line.part === 'query' && line.type === 'A');
    const second = await server.waitForLog((line) => line.part === 'query' && line.type === 'AAAA');
    expect(first).toMatchObject({ proto: 'udp', name: 'web.default.svc.cluster.local.', rcode: 'NOERROR', level: 30 });
    expect(first.client).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(first.size).toBeGreaterThan(12);
    expect(second).toMatchObject({ proto: 'tcp', name: 'nosuch.default.svc.cluster.local.', rcode: 'NXDOMAIN' });
    expect(server.logs.filter((line) => line.part === 'query')).toHaveLength(2);
    // The message is CoreDNS's Common Log Format line, as its log plugin writes it.
    expect(first.msg).toMatch(/^127\.0\.0\.1:\d+ - \d+ "A IN web\.default\.svc\.cluster\.local\. udp \d+ false \d+" NOERROR qr,aa,rd \d+ [\d.]+s$/);
    expect(second.msg).toMatch(/^127\.0\.0\.1:\d+ - \d+ "AAAA IN nosuch\.default\.svc\.cluster\.local\. tcp \d+ false 65535" NXDOMAIN qr,aa,rd \d+ [\d.]+s$/);
  });

  it('a Corefile\'s log NAMES and FORMAT: the first rule holding the name decides, in its own format', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clusterdns-log-'));
    const port = await freePort();
    await writeFile(join(dir, 'Corefile'), `.:${port} {
    bind 127.0.0.1
    log svc.cluster.local "{proto} Request: {name} {type} {>id} {rcode}"
    log . {combined} {
        class denial
    }
    kubernetes cluster.local {
        pods insecure
        manifests ${new URL('../examples/demo-cluster.yaml', import.meta.url).pathname}
    }
}
`);
    try {
      server = await startServer([], '127.0.0.1', { corefile: join(dir, 'Corefile') });
      await dig(port, ['web.default.svc.cluster.local', 'A', '+notcp']); // first rule, every class
      await dig(port, ['10-0-0-1.default.pod.cluster.local', 'A']); // second rule: success, not logged
      await dig(port, ['nosuch.default.pod.cluster.local', 'A']); // second rule: NXDOMAIN, a denial
      await server.waitForLog((line) => line.part === 'query' && line.name === 'nosuch.default.pod.cluster.local.');
      await new Promise((resolve) => setTimeout(resolve, 200));
      const lines = server.logs.filter((line) => line.part === 'query').map((line) => String(line.msg));
      expect(lines, lines.join("\n")).toHaveLength(2);
      expect(lines[0]).toMatch(/^udp Request: web\.default\.svc\.cluster\.local\. A \d+ NOERROR$/);
      expect(lines[1]).toMatch(/^127\.0\.0\.1:\d+ - \d+ "A IN nosuch\.default\.pod\.cluster\.local\. udp \d+ false \d+" NXDOMAIN qr,aa,rd \d+ [\d.]+s "0"$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('logs no query without the flag, even at debug level', async () => {
    server = await startServer(['--manifests', 'examples/demo-cluster.yaml']);
    expect((await dig(server.port, ['web.default.svc.cluster.local', 'A'])).status).toBe('NOERROR');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(server.logs.filter((line) => line.part === 'query')).toEqual([]);
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
      await server.waitForLog((line) => line.part === 'query' && line.name === 'nosuch.default.svc.cluster.local.');
      await new Promise((resolve) => setTimeout(resolve, 200));
      const logged = server.logs.filter((line) => line.part === 'query').map((line) => `${String(line.name)} ${String(line.type)} ${String(line.rcode)}`);
      expect(logged).toEqual(['web.default.svc.cluster.local. TXT NOERROR', 'nosuch.default.svc.cluster.local. A NXDOMAIN']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
