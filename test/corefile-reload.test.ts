// The reload plugin on the whole process: `clusterdns -conf` with a Corefile that changes under it, while a client
// sends a steady stream of queries over real UDP. The new configuration must take effect without a lost query and
// without /ready leaving 200; a Corefile that does not load leaves the old one serving, says so once, and counts it.
// The ConfigMap case (kubelet swaps a `..data` symlink) must be picked up at once, not at the next poll.
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dig } from './support/dig.js';
import { get, metrics, value } from './support/http.js';
import { freePort, startServer, type ServerProcess } from './support/server-process.js';
import { steadyClient } from './support/steady-client.js';

const DEMO = new URL('../examples/demo-cluster.yaml', import.meta.url).pathname;

const corefile = (port: number, ttl: number, reload = 'reload 2s 100ms', extra = ''): string => `.:${port} {
    bind 127.0.0.1
    errors
    health 127.0.0.1:0
    ready 127.0.0.1:0
    prometheus 127.0.0.1:0
    ${reload}
    kubernetes cluster.local {
        manifests ${DEMO}
        ttl ${ttl}
    }
    ${extra}
}
`;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clusterdns-reload-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function start(path: string): Promise<ServerProcess> {
  const server = await startServer([], '127.0.0.1', { corefile: path });
  cleanups.push(() => server.stop());
  return server;
}

const ttlOf = async (server: ServerProcess): Promise<number> => Number((await dig(server.port, ['web.default.svc.cluster.local', 'A'])).answer[0]!.split(' ')[1]);


describe('reload: a changed Corefile, without a lost query', () => {
  it('applies each change while queries keep flowing; /ready stays 200; the loaded hash is reported', async () => {
    const dir = await tempDir();
    const path = join(dir, 'Corefile');
    const port = await freePort();
    await writeFile(path, corefile(port, 5));
    const server = await start(path);
    expect(await ttlOf(server)).toBe(5);
    const firstHash = (await metrics(server)).find((s) => s.name === 'coredns_reload_version_info')?.labels.value;
    expect(firstHash).toMatch(/^[0-9a-f]{128}$/);

    const client = steadyClient(server.port, 2, 500);
    let notReady = 0;
    for (const ttl of [30, 60, 90]) {
      await writeFile(path, corefile(port, ttl));
      await vi.waitFor(async () => {
        if ((await get(server, '/ready')).status !== 200) notReady++;
        expect(await ttlOf(server)).toBe(ttl);
      }, { timeout: 8000, interval: 100 });
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const { sent, lost, notNoerror } = await client.stop();
    expect(sent).toBeGreaterThan(200);
    expect(lost).toBe(0);
    expect(notNoerror).toBe(0);
    expect(notReady).toBe(0);
    const samples = await metrics(server);
    expect(samples.find((s) => s.name === 'coredns_reload_version_info')?.labels.value).not.toBe(firstHash);
    expect(value(samples, 'coredns_reload_failed_total')).toBe(0);
    expect(server.logs.filter((line) => line.msg === 'reloaded the Corefile: new queries use it')).toHaveLength(3);
  });

  it('keeps serving the old configuration when the new one does not load, says where once, and counts it', async () => {
    const dir = await tempDir();
    const path = join(dir, 'Corefile');
    const port = await freePort();
    await writeFile(path, corefile(port, 30));
    const server = await start(path);
    await writeFile(path, corefile(port, 30, 'reload 2s 100ms', 'cache 30 {\n        sucess 10\n    }'));
    const failure = await server.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('reload failed'), 8000);
    expect(failure.msg).toMatch(/Corefile:\d+: plugin "cache": unknown option "sucess"/);
    expect(await ttlOf(server)).toBe(30);
    expect(value(await metrics(server), 'coredns_reload_failed_total')).toBe(1);
    expect((await get(server, '/ready')).status).toBe(200);
    // A change that needs a restart is refused the same way: another source for the store.
    await writeFile(path, corefile(port, 30).replace(DEMO, `${DEMO}.elsewhere`));
    await server.waitForLog((line) => typeof line.msg === 'string' && line.msg.includes('the kubernetes source (kubeconfig, endpoint, tls, manifests, namespaces, namespace_labels or labels) changed'), 8000);
    expect(await ttlOf(server)).toBe(30);
  });

  it('binds a listen address the new Corefile adds, keeps the ones it keeps, and closes the ones it drops after the grace', async () => {
    const dir = await tempDir();
    const path = join(dir, 'Corefile');
    const [first, second] = [await freePort(), await freePort()];
    await writeFile(path, corefile(first, 30));
    const server = await start(path);
    const client = steadyClient(first, 2, 500);
    // A second block on a new port, then the first port gone: the steady client on it is answered throughout
    // the grace (by the old chains), and the new port at once.
    await writeFile(path, `${corefile(first, 30)}whoami.test:${second} {\n    bind 127.0.0.1\n    whoami\n}\n`);
    await vi.waitFor(async () => expect((await dig(second, ['whoami.test', 'A'])).additional[0]).toBe('whoami.test. 0 IN A 127.0.0.1'), { timeout: 8000, interval: 100 });
    expect((await dig(second, ['web.default.svc.cluster.local', 'A'])).status, 'the new port serves only its own block').toBe('REFUSED');
    await writeFile(path, corefile(second, 45));
    await vi.waitFor(async () => expect((await dig(second, ['web.default.svc.cluster.local', 'A'])).answer[0]).toMatch(/ 45 IN A /), { timeout: 8000, interval: 100 });
    const { lost, notNoerror } = await client.stop();
    expect(lost).toBe(0);
    expect(notNoerror).toBe(0);
    expect(server.logs.some((line) => Array.isArray(line.closing) && line.closing.includes(`127.0.0.1:${first}`))).toBe(true);
    // After the grace the dropped port is closed: dig gets no answer there (it exits with an error).
    await vi.waitFor(() => expect(dig(first, ['web.default.svc.cluster.local', 'A'])).rejects.toThrow(/Command failed/), { timeout: 20_000, interval: 500 });
    expect((await get(server, '/ready')).status).toBe(200);
  }, 40_000);

  it('picks up a ConfigMap edit (the kubelet swaps ..data) at once, long before the next poll', async () => {
    const dir = await tempDir();
    const port = await freePort();
    // The layout of a ConfigMap volume: Corefile -> ..data/Corefile, ..data -> ..<timestamp>.
    await mkdir(join(dir, '..v1'));
    await writeFile(join(dir, '..v1', 'Corefile'), corefile(port, 5, 'reload'));
    await symlink('..v1', join(dir, '..data'));
    await symlink('..data/Corefile', join(dir, 'Corefile'));
    const server = await start(join(dir, 'Corefile'));
    expect(await ttlOf(server)).toBe(5);
    await mkdir(join(dir, '..v2'));
    await writeFile(join(dir, '..v2', 'Corefile'), corefile(port, 45, 'reload'));
    await symlink('..v2', join(dir, '..data_tmp'));
    const swapped = Date.now();
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await vi.waitFor(async () => expect(await ttlOf(server)).toBe(45), { timeout: 5000, interval: 50 });
    // `reload` alone polls every 30 s ± 15 s: only the directory watch can have been this quick.
    expect(Date.now() - swapped).toBeLessThan(5000);
  });
});
