/**
 * Manifests change while clusterdns runs: the new answer appears without a restart, and no query sent in
 * between fails or gets NXDOMAIN. Queries go through dns2's UDP client (a second client besides dig).
 */
import { copyFile, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dns2 from 'dns2';
import { afterEach, describe, expect, it } from 'vitest';
import { dig } from './support/dig.js';
import { startServer, type ServerProcess } from './support/server-process.js';

const NAME = 'web.default.svc.cluster.local';
let server: ServerProcess | undefined;

afterEach(async () => {
  await server?.stop();
  server = undefined;
});

/** Queries NAME back to back until `done()` holds (or 8 s pass), returning every outcome in order. */
async function queryUntil(port: number, done: (answers: string[]) => boolean): Promise<string[]> {
  const resolve = dns2.UDPClient({ dns: '127.0.0.1', port, timeout: 1000 });
  const outcomes: string[] = [];
  const deadline = Date.now() + 8000;
  while (!done(outcomes) && Date.now() < deadline) {
    try {
      const reply = await resolve(NAME, 'A');
      const rcode = reply.header.rcode;
      outcomes.push(rcode === 0 ? reply.answers.map((answer) => (answer as { address?: string }).address).join(',') : `rcode ${rcode}`);
    } catch (error) {
      outcomes.push(`error ${(error as Error).message}`);
    }
  }
  return outcomes;
}

describe('manifest reload', () => {
  it('a file replaced by rename (as editors save) and one rewritten in place: new answers, no failed query', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clusterdns-reload-'));
    const file = join(dir, 'cluster.yaml');
    await copyFile('examples/demo-cluster.yaml', file);
    server = await startServer(['--manifests', file]);
    const original = await readFile(file, 'utf8');

    const watcher = queryUntil(server.port, (answers) => answers.filter((a) => a === '10.96.100.77').length >= 20);
    await new Promise((r) => setTimeout(r, 200));
    await writeFile(`${file}.tmp`, original.replaceAll('10.96.100.10', '10.96.100.99'));
    await rename(`${file}.tmp`, file);
    await server.waitForLog((line) => line.msg === 'reloaded manifests');
    await new Promise((r) => setTimeout(r, 200));
    await writeFile(file, original.replaceAll('10.96.100.10', '10.96.100.77'));
    const outcomes = await watcher;

    expect(outcomes.filter((o) => !['10.96.100.10', '10.96.100.99', '10.96.100.77'].includes(o))).toEqual([]);
    // Each answer took over from the one before, in order, with no going back.
    const distinct = outcomes.filter((o, i) => i === 0 || o !== outcomes[i - 1]);
    expect(distinct).toEqual(['10.96.100.10', '10.96.100.99', '10.96.100.77']);
  });

  it('an endpoint name and its PTR answered NXDOMAIN resolve once a reload adds the endpoint', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clusterdns-reload-neg-'));
    const file = join(dir, 'cluster.yaml');
    await copyFile('examples/demo-cluster.yaml', file);
    server = await startServer(['--manifests', file]);
    for (let i = 0; i < 2; i++) {
      expect((await dig(server.port, ['db-2.db.default.svc.cluster.local', 'A'])).status).toBe('NXDOMAIN');
      expect((await dig(server.port, ['-x', '10.244.3.22'])).status).toBe('NXDOMAIN');
    }
    const original = await readFile(file, 'utf8');
    const added = original.replace(
      '    hostname: db-1\n    conditions: {ready: true}\n',
      '    hostname: db-1\n    conditions: {ready: true}\n  - addresses: [10.244.3.22]\n    hostname: db-2\n',
    );
    expect(added).not.toBe(original);
    await writeFile(file, added);
    await server.waitForLog((line) => line.msg === 'reloaded manifests');
    expect((await dig(server.port, ['db-2.db.default.svc.cluster.local', 'A'])).answer).toEqual(['db-2.db.default.svc.cluster.local. 5 IN A 10.244.3.22']);
    expect((await dig(server.port, ['-x', '10.244.3.22'])).answer).toEqual(['22.3.244.10.in-addr.arpa. 5 IN PTR db-2.db.default.svc.cluster.local.']);
  });

  it('a directory source: a new file adds a service, a removed file takes it away', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clusterdns-reload-dir-'));
    await copyFile('examples/demo-cluster.yaml', join(dir, 'demo.yaml'));
    server = await startServer(['--manifests', dir]);
    // Counted from the first load, so the demo cluster can grow without this test knowing its size.
    const services = (await server.waitForLog((line) => line.msg === 'loaded manifests')).services as number;
    expect((await dig(server.port, ['extra.default.svc.cluster.local', 'A'])).status).toBe('NXDOMAIN');

    await writeFile(join(dir, 'extra.json'), JSON.stringify({
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'extra', namespace: 'default' }, spec: { clusterIP: '10.96.50.50' },
    }));
    await server.waitForLog((line) => line.msg === 'reloaded manifests' && line.services === services + 1);
    expect((await dig(server.port, ['extra.default.svc.cluster.local', 'A'])).answer).toEqual(['extra.default.svc.cluster.local. 5 IN A 10.96.50.50']);

    await rm(join(dir, 'extra.json'));
    await server.waitForLog((line) => line.msg === 'reloaded manifests' && line.services === services);
    expect((await dig(server.port, ['extra.default.svc.cluster.local', 'A'])).status).toBe('NXDOMAIN');
    expect((await dig(server.port, [NAME, 'A'])).answer).toEqual([`${NAME}. 5 IN A 10.96.100.10`]);
  });
});
