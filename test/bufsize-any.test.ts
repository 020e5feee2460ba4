// bufsize, any and nsid through the real process and real dig: the UDP reply cap of a server block (a reply over
// it is truncated, and dig's +ignore shows the TC), ANY answered with RFC 8482's one HINFO instead of every
// record, and the server's identifier for the clients that ask (RFC 5001).
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
  const dir = await mkdtemp(join(tmpdir(), 'clusterdns-bufsize-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'Corefile'), text);
  return join(dir, 'Corefile');
}

/** 40 addresses for big.test: about 660 bytes of answer, over 512 and well under 1232. */
const BIG = Array.from({ length: 40 }, (_, i) => `        10.0.0.${i + 1} big.test`).join('\n');
const block = (port: number, extra: string): string => `.:${port} {
    bind 127.0.0.1
${extra}
    hosts {
${BIG}
    }
}
`;

async function start(text: string): Promise<ServerProcess> {
  const server = await startServer([], '127.0.0.1', { corefile: await corefile(text) });
  cleanups.push(() => server.stop());
  return server;
}

describe('bufsize', () => {
  it('caps the UDP reply of its block: over the cap the reply is truncated, under it (or over TCP) whole', async () => {
    const [small, plain] = [await freePort(), await freePort()];
    await start(`${block(small, '    bufsize 512')}${block(plain, '').replace(`.:${plain}`, `big.test:${plain}`)}`);
    const capped = await dig(small, ['+bufsize=1232', '+ignore', 'big.test', 'A']);
    expect(capped.flags).toContain('tc');
    expect(capped.answer.length).toBeLessThan(40);
    const whole = await dig(plain, ['+bufsize=1232', '+ignore', 'big.test', 'A']);
    expect(whole.flags).not.toContain('tc');
    expect(whole.answer).toHaveLength(40);
    expect((await dig(small, ['+tcp', 'big.test', 'A'])).answer).toHaveLength(40);
  });

  it.each([
    ['a size under 512', 'bufsize 100', 'plugin "bufsize": "100" is not a whole number from 512 to 4096'],
    ['two sizes', 'bufsize 512 1232', 'plugin "bufsize": wants at most 1 argument, got 2'],
    ['any with an argument', 'any all', 'plugin "any": takes no arguments, got 1'],
  ])('refuses %s, naming the line', async (_, stanza, why) => {
    const path = await corefile(`.:53 {\n    ${stanza}\n}\n`);
    const run = await runCli(['-conf', path]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${path}:2: ${why}`);
  });
});

describe('any', () => {
  it('answers ANY with one HINFO "RFC8482" (RFC 8482 §4.2), and every other type as before', async () => {
    const port = await freePort();
    await start(block(port, '    any'));
    const answer = await dig(port, ['big.test', 'ANY']);
    expect(answer.status).toBe('NOERROR');
    expect(answer.answer).toEqual(['big.test. 8482 IN HINFO "RFC8482" ""']);
    expect((await dig(port, ['big.test', 'A'])).answer).toHaveLength(40);
  });

  it('without it, ANY gets what the other plugins give', async () => {
    const port = await freePort();
    await start(block(port, ''));
    expect((await dig(port, ['big.test', 'ANY'])).answer.some((line) => line.includes('HINFO'))).toBe(false);
  });
});

describe('nsid', () => {
  it('tells a client that asks (dig +nsid) which server answered, and adds nothing for the others', async () => {
    const port = await freePort();
    await start(block(port, '    nsid clusterdns 0'));
    const asked = await dig(port, ['+nsid', 'big.test', 'A']);
    expect(asked.raw).toContain('; NSID: 63 6c 75 73 74 65 72 64 6e 73 20 30 ("clusterdns 0")');
    expect(asked.answer).toHaveLength(40);
    expect((await dig(port, ['big.test', 'A'])).raw).not.toContain('NSID');
  });

  it('never pushes a UDP reply into truncation: with no room left it is left out', async () => {
    const port = await freePort();
    // 40 A records and the OPT fill 512 bytes but for a few: the identifier does not fit there.
    await start(block(port, `    bufsize 512\n    nsid ${'x'.repeat(200)}`).replace(/^ {8}10\.0\.0\.(\d+) big\.test$/gm, (line, n: string) => (Number(n) <= 28 ? line : '')));
    const reply = await dig(port, ['+nsid', '+bufsize=512', '+ignore', 'big.test', 'A']);
    expect(reply.flags).not.toContain('tc');
    expect(reply.answer).toHaveLength(28);
    expect(reply.raw).not.toContain('NSID');
  });
});

