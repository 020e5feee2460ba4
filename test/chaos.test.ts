// The chaos plugin through the real process and real dig: each CH TXT name it owns, in any letter case, with the
// defaults and with a VERSION and AUTHORS given; questions it does not own (another class, another type, another
// name) go on to the next plugin; and a chaos stanza it cannot honour is refused at start, naming its line.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dig } from './support/dig.js';
import { freePort, runCli, startServer, type ServerProcess } from './support/server-process.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

async function corefile(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clusterdns-chaos-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'Corefile'), text);
  return join(dir, 'Corefile');
}

async function start(text: (port: number) => string): Promise<ServerProcess> {
  const server = await startServer([], '127.0.0.1', { corefile: await corefile(text(await freePort())) });
  cleanups.push(() => server.stop());
  return server;
}

const txt = async (server: ServerProcess, name: string, ...flags: string[]): Promise<Awaited<ReturnType<typeof dig>>> =>
  dig(server.port, [...flags, '-c', 'CH', '-t', 'TXT', name]);

describe('chaos', () => {
  it('answers version.bind, version.server, hostname.bind and id.server with TTL 0, class CH, not authoritatively', async () => {
    const server = await start((port) => `.:${port} {\n    bind 127.0.0.1\n    chaos\n}\n`);
    const version = await txt(server, 'version.bind');
    expect(version.status).toBe('NOERROR');
    expect(version.flags).not.toContain('aa');
    expect(version.answer).toEqual([`version.bind. 0 CH TXT "clusterdns-${packageJson.version}"`]);
    expect((await txt(server, 'version.server')).answer).toEqual([`version.server. 0 CH TXT "clusterdns-${packageJson.version}"`]);
    expect((await txt(server, 'hostname.bind', '+tcp')).answer).toEqual([`hostname.bind. 0 CH TXT "${hostname()}"`]);
    expect((await txt(server, 'id.server')).answer).toEqual([`id.server. 0 CH TXT "${hostname()}"`]);
    // Names compare without regard to case; the answer keeps the question's spelling.
    expect((await txt(server, 'VERSION.Bind')).answer).toEqual([`VERSION.Bind. 0 CH TXT "clusterdns-${packageJson.version}"`]);
  });

  it('takes VERSION and AUTHORS from its arguments, one TXT record per author', async () => {
    const server = await start((port) => `.:${port} {\n    bind 127.0.0.1\n    chaos CoreDNS-001 "Ada Lovelace" grace@example.org\n}\n`);
    expect((await txt(server, 'version.bind')).answer).toEqual(['version.bind. 0 CH TXT "CoreDNS-001"']);
    expect([...(await txt(server, 'authors.bind')).answer].sort()).toEqual([
      'authors.bind. 0 CH TXT "Ada Lovelace"',
      'authors.bind. 0 CH TXT "grace@example.org"',
    ]);
  });

  it('passes on what it does not own: an IN question for its names, another CH type, another CH name', async () => {
    // whoami after chaos answers whatever reaches it, so a question chaos passed on is visible as whoami's answer.
    const server = await start((port) => `.:${port} {\n    bind 127.0.0.1\n    chaos\n    whoami\n}\n`);
    for (const args of [['-t', 'TXT', 'version.bind'], ['-c', 'CH', '-t', 'A', 'version.bind'], ['-c', 'CH', '-t', 'TXT', 'version.example']]) {
      const reply = await dig(server.port, args);
      expect(reply.status, args.join(' ')).toBe('NOERROR');
      expect(reply.answer, args.join(' ')).toEqual([]);
      expect(reply.additional[0], args.join(' ')).toMatch(/ IN A 127\.0\.0\.1$/);
    }
    // Without a plugin after it, a name chaos passes on is nobody's.
    const alone = await start((port) => `.:${port} {\n    bind 127.0.0.1\n    chaos\n}\n`);
    expect((await dig(alone.port, ['version.bind', 'A'])).status).toBe('REFUSED');
  });

  it('serves OpenShift\'s shape: a hostname.bind block of its own beside the . block on the same port', async () => {
    const server = await start((port) => `.:${port} {\n    bind 127.0.0.1\n    whoami\n}\nhostname.bind:${port} {\n    bind 127.0.0.1\n    chaos\n}\n`);
    expect((await txt(server, 'hostname.bind')).answer).toEqual([`hostname.bind. 0 CH TXT "${hostname()}"`]);
    // version.bind is not the chaos block's zone: the . block has it, and chaos is not there.
    expect((await txt(server, 'version.bind')).answer).toEqual([]);
  });

  it.each([
    ['an option', 'chaos {\n        verbose\n    }', 3, 'unknown option "verbose"'],
    ['a string longer than a TXT string holds', `chaos ${'v'.repeat(256)}`, 2, 'is 256 bytes; a TXT string holds at most 255'],
  ])('refuses chaos with %s, naming the line', async (_, stanza, line, why) => {
    const path = await corefile(`.:53 {\n    ${stanza}\n}\n`);
    const run = await runCli(['-conf', path]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${path}:${line}: plugin "chaos": `);
    expect(run.stderr).toContain(why);
  });
});
