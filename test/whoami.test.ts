// The whoami plugin through the real process and real dig: the client's own address, port and transport, over
// IPv4 and IPv6, UDP and TCP; and a whoami stanza that takes something is refused at start, naming its line.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dig } from './support/dig.js';
import { freePort, runCli, startServer, type ServerProcess } from './support/server-process.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function corefile(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clusterdns-whoami-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'Corefile'), text);
  return join(dir, 'Corefile');
}

async function start(text: string): Promise<ServerProcess> {
  const server = await startServer([], '127.0.0.1', { corefile: await corefile(text) });
  cleanups.push(() => server.stop());
  return server;
}

describe('whoami', () => {
  it('tells each client its address, port and transport, and leaves the answer section empty', async () => {
    const port = await freePort();
    const server = await start(`whoami.test:${port} {\n    bind 127.0.0.1 ::1\n    whoami\n}\n`);
    const udp = await dig(server.port, ['whoami.test', 'A']);
    expect(udp.status).toBe('NOERROR');
    expect(udp.flags).toContain('aa');
    expect(udp.answer).toEqual([]);
    expect(udp.additional[0]).toBe('whoami.test. 0 IN A 127.0.0.1');
    // dig's source port is its own: the SRV record carries whatever the server saw, one port per query.
    expect(udp.additional[1]).toMatch(/^_udp\.whoami\.test\. 0 IN SRV 0 0 \d+ \.$/);

    const tcp = await dig(server.port, ['+tcp', 'Who.WHOAMI.test', 'TXT'], '::1');
    expect(tcp.additional[0]).toBe('Who.WHOAMI.test. 0 IN AAAA ::1');
    expect(tcp.additional[1]).toMatch(/^_tcp\.Who\.WHOAMI\.test\. 0 IN SRV 0 0 \d+ \.$/);
  });

  it('answers only its own block: other zones on the port are theirs', async () => {
    const port = await freePort();
    const server = await start(`whoami.test:${port} {\n    bind 127.0.0.1\n    whoami\n}\n`);
    expect((await dig(server.port, ['other.test', 'A'])).status).toBe('REFUSED');
  });

  it.each([
    ['an argument', 'whoami please', 2, 'takes no arguments'],
    ['a block', 'whoami {\n        verbose\n    }', 3, 'unknown option "verbose"'],
  ])('refuses whoami with %s, naming the line', async (_, stanza, line, why) => {
    const path = await corefile(`.:53 {\n    ${stanza}\n}\n`);
    const run = await runCli(['-conf', path]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${path}:${line}: plugin "whoami": ${why}`);
  });
});
