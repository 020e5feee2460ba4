// The debug plugin through the real process: with `debug` in the Corefile the plugins' debug lines are logged
// (the hosts file read, the node heap at start), without it they are not; a reload that adds it says it waits for
// a restart; and `debug` with an argument is refused at start, naming its line.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dig } from './support/dig.js';
import { freePort, runCli, startServer, type ServerProcess } from './support/server-process.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const DEBUG = 20;

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clusterdns-debug-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'hosts'), '192.0.2.1 printer.test\n');
  return dir;
}

const corefile = (dir: string, port: number, extra: string): string =>
  `.:${port} {\n    bind 127.0.0.1\n    ${extra}\n    hosts ${join(dir, 'hosts')}\n}\n`;

async function start(path: string): Promise<ServerProcess> {
  const server = await startServer([], '127.0.0.1', { corefile: path });
  cleanups.push(() => server.stop());
  return server;
}

describe('debug', () => {
  it('logs the debug lines with debug in the Corefile, and not without', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'with'), corefile(dir, await freePort(), 'debug'));
    await writeFile(join(dir, 'without'), corefile(dir, await freePort(), 'errors'));
    const withDebug = await start(join(dir, 'with'));
    const without = await start(join(dir, 'without'));
    for (const server of [withDebug, without]) expect((await dig(server.port, ['printer.test', 'A'])).answer).toEqual(['printer.test. 3600 IN A 192.0.2.1']);
    const debugLines = (server: ServerProcess): unknown[] => server.logs.filter((line) => line.level === DEBUG).map((line) => line.msg);
    expect(debugLines(withDebug)).toEqual(expect.arrayContaining(['node heap', 'hosts file read']));
    expect(debugLines(without)).toEqual([]);
  });

  it('a reload that adds debug keeps serving and says the level changes at the next restart', async () => {
    const dir = await tempDir();
    const path = join(dir, 'Corefile');
    const port = await freePort();
    await writeFile(path, corefile(dir, port, 'reload 2s 100ms'));
    const server = await start(path);
    await writeFile(path, corefile(dir, port, 'reload 2s 100ms\n    debug'));
    await vi.waitFor(() => expect(server.logs.map((line) => line.msg)).toContain('the debug plugin was added or removed: the log level changes when clusterdns restarts'), { timeout: 10_000, interval: 100 });
    expect(server.logs.filter((line) => line.level === DEBUG)).toEqual([]);
    expect((await dig(server.port, ['printer.test', 'A'])).status).toBe('NOERROR');
  });

  it('refuses debug with an argument, naming the line', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'Corefile'), '.:53 {\n    debug verbose\n}\n');
    const run = await runCli(['-conf', join(dir, 'Corefile')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${join(dir, 'Corefile')}:2: plugin "debug": takes no arguments, got 1 (usage: debug)`);
  });
});
