/**
 * The errors plugin: each error a query is answered with is logged as CoreDNS logs it
 * (`2 example.org. A: read udp ...: i/o timeout`), or counted by the first `consolidate` pattern that matches it
 * and summed up once its DURATION has passed. The upstream is a UDP socket of the test's own on loopback that
 * never answers; queries are real `dig`. The consolidating server runs in this process (serve()) with a stepped
 * clock for its timers, so DURATION passes without sleeping.
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { planFromCorefile, serve, type PluginClock, type RunningServer } from '../src/main.js';
import { goDuration } from '../src/plugins/errors/index.js';
import { dig } from './support/dig.js';
import { freePort, startServer, type ServerProcess } from './support/server-process.js';

/** Timers that fire only when the test steps time. */
class SteppedClock implements PluginClock {
  ms = 1_000_000;
  private timers: Array<{ at: number; callback: () => void }> = [];
  readonly now = (): number => this.ms;
  readonly after = (ms: number, callback: () => void): (() => void) => {
    const timer = { at: this.ms + ms, callback };
    this.timers.push(timer);
    return () => (this.timers = this.timers.filter((t) => t !== timer));
  };

  step(ms: number): void {
    this.ms += ms;
    for (let due = this.next(); due !== undefined; due = this.next()) due.callback();
  }

  private next(): { at: number; callback: () => void } | undefined {
    const due = this.timers.filter((timer) => timer.at <= this.ms).sort((a, b) => a.at - b.at)[0];
    if (due !== undefined) this.timers = this.timers.filter((timer) => timer !== due);
    return due;
  }
}

let dir: string;
let silent: Socket;
let silentPort: number;
const cleanups: Array<() => Promise<void>> = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clusterdns-errors-'));
  // An upstream that takes every query and answers none: each try ends in a timeout.
  silent = createSocket('udp4');
  silent.bind(0, '127.0.0.1');
  await once(silent, 'listening');
  silentPort = silent.address().port;
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  silent.close();
  await rm(dir, { recursive: true, force: true });
});

async function corefile(text: string): Promise<string> {
  const path = join(dir, 'Corefile');
  await writeFile(path, text);
  return path;
}

/** A block forwarding to the silent upstream (a 100 ms try), with this errors stanza. */
const block = (port: number, errors: string, upstream: number): string => `.:${port} {
    bind 127.0.0.1
${errors}
    forward . 127.0.0.1:${upstream} {
        timeout 100ms
    }
}
`;

const TIMEOUT_LINE = (name: string, type: string, upstream: number): RegExp =>
  new RegExp(`^2 ${name.replace(/\./g, '\\.')} ${type}: read udp 127\\.0\\.0\\.1:\\d+->127\\.0\\.0\\.1:${upstream}: i/o timeout$`);

describe('errors: syntax', () => {
  const cases: ReadonlyArray<[string, string, string]> = [
    ['a DURATION that is none', 'consolidate 5x ".*"', '3: plugin "errors": option "consolidate": "5x" is not a duration (e.g. 30s, 1m, 500ms)'],
    ['a REGEXP that does not compile', 'consolidate 5m "(unclosed"', '3: plugin "errors": option "consolidate": regular expression "(unclosed": Unterminated group'],
    ['a REGEXP Go reads otherwise', 'consolidate 5m "(?=x)"', '3: plugin "errors": option "consolidate": regular expression "(?=x)": lookaround assertions are not supported (Go\'s regexp has none, or reads them otherwise)'],
    ['a LEVEL CoreDNS does not know', 'consolidate 5m ".*" loud', '3: plugin "errors": option "consolidate": "loud" is not one of warning, error, info, debug'],
    ['a fourth word that is not show_first', 'consolidate 5m ".*" info always', '3: plugin "errors": option "consolidate": "always" is not show_first (usage: consolidate DURATION REGEXP [LEVEL] [show_first])'],
    ['no REGEXP', 'consolidate 5m', '3: plugin "errors": option "consolidate" wants 2 to 4 arguments, got 1 (usage: consolidate DURATION REGEXP [LEVEL] [show_first])'],
    ['an unknown option', 'flush', '3: plugin "errors": unknown option "flush" (supported: stacktrace, consolidate)'],
    ['an argument to stacktrace', 'stacktrace all', '3: plugin "errors": option "stacktrace" wants 0 arguments, got 1 (usage: stacktrace)'],
  ];
  for (const [what, option, message] of cases) {
    it(`names file and line: ${what}`, async () => {
      const path = await corefile(`.:53 {\n    errors {\n        ${option}\n    }\n}\n`);
      expect(() => planFromCorefile(path, 'info')).toThrow(`${path}:${message}`);
    });
  }

  it('CoreDNS\'s stdout argument cannot be honoured (logs go to stderr), and errors is once per block', async () => {
    const stdout = await corefile('.:53 {\n    errors stdout\n}\n');
    expect(() => planFromCorefile(stdout, 'info')).toThrow(`${stdout}:2: plugin "errors": takes no arguments, got 1 (usage: errors { ... }; clusterdns logs to stderr, so CoreDNS's "stdout" cannot be honoured)`);
    const twice = await corefile('.:53 {\n    errors\n    errors\n}\n');
    expect(() => planFromCorefile(twice, 'info')).toThrow(`${twice}:3: plugin "errors": appears again in this server block (first at line 2); it may appear once`);
  });

  it('takes every documented form', async () => {
    const path = await corefile(`.:53 {
    errors {
        stacktrace
        consolidate 5m ".* i/o timeout$" warning
        consolidate 30s "^Failed to .+"
        consolidate 1h30m "^no healthy" info show_first
        consolidate 500ms "x" show_first
    }
}
`);
    const config = planFromCorefile(path, 'info').blocks[0]!.plugins.find(({ setup }) => setup.name === 'errors')!.config;
    expect(config).toMatchObject({
      stacktrace: true,
      consolidate: [
        { periodMs: 300_000, level: 'warning', showFirst: false, regexp: { source: '.* i/o timeout$' } },
        { periodMs: 30_000, level: 'error', showFirst: false },
        { periodMs: 5_400_000, level: 'info', showFirst: true },
        { periodMs: 500, level: 'error', showFirst: true },
      ],
    });
  });

  it('names the period as Go\'s time.Duration prints it', () => {
    expect([300_000, 30_000, 5_400_000, 500, 1500, 3_600_000].map(goDuration)).toEqual(['5m0s', '30s', '1h30m0s', '500ms', '1.5s', '1h0m0s']);
  });
});

describe('errors: a real server (clusterdns -conf)', () => {
  let server: ServerProcess | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it('logs each error as CoreDNS does: rcode, name, type and the Go text of the upstream\'s timeout', async () => {
    const port = await freePort();
    server = await startServer([], '127.0.0.1', { corefile: await corefile(block(port, '    errors', silentPort)) });
    expect((await dig(port, ['example.org', 'A'])).status).toBe('SERVFAIL');
    expect((await dig(port, ['Other.Example.org', 'TXT', '+tcp'])).status).toBe('SERVFAIL');
    const first = await server.waitForLog((line) => line.plugin === 'errors' && line.type === 'A');
    const second = await server.waitForLog((line) => line.plugin === 'errors' && line.type === 'TXT');
    expect(first).toMatchObject({ level: 50, rcode: 2, name: 'example.org.' });
    expect(first.msg).toMatch(TIMEOUT_LINE('example.org.', 'A', silentPort));
    expect(second.msg).toMatch(TIMEOUT_LINE('other.example.org.', 'TXT', silentPort));
    // Without stacktrace, no stack.
    expect(first.stack).toBeUndefined();
  });

  it('a query refused past max_concurrent is logged with CoreDNS\'s text and rcode 5', async () => {
    const port = await freePort();
    const text = block(port, '    errors', silentPort).replace('timeout 100ms', 'timeout 500ms\n        max_concurrent 1');
    server = await startServer([], '127.0.0.1', { corefile: await corefile(text) });
    const [waiting, refused] = await Promise.all([dig(port, ['a.example.org', 'A']), new Promise((resolve) => setTimeout(resolve, 100)).then(() => dig(port, ['b.example.org', 'A']))]);
    expect([waiting.status, refused.status]).toEqual(['SERVFAIL', 'REFUSED']);
    const line = await server.waitForLog((logged) => logged.plugin === 'errors' && logged.rcode === 5);
    expect(line.msg).toBe('5 b.example.org. A: concurrent queries exceeded maximum 1');
  });

  it('stacktrace: the error\'s stack goes with its line', async () => {
    const port = await freePort();
    server = await startServer([], '127.0.0.1', { corefile: await corefile(block(port, '    errors {\n        stacktrace\n    }', silentPort)) });
    await dig(port, ['example.org', 'A']);
    const line = await server.waitForLog((logged) => logged.plugin === 'errors');
    expect(line.stack).toMatch(/^Error: read udp .*: i\/o timeout\n {4}at .*exchange\.js/);
  });

  it('without errors, a query\'s error is not logged (as in CoreDNS); the upstream marked down still is', async () => {
    const port = await freePort();
    server = await startServer([], '127.0.0.1', { corefile: await corefile(block(port, '', silentPort)) });
    await dig(port, ['example.org', 'A']);
    await dig(port, ['example.org', 'AAAA']);
    const down = await server.waitForLog((line) => line.msg === 'upstream marked down; probing it until it answers');
    expect(down.err).toMatch(/^read udp 127\.0\.0\.1:\d+->127\.0\.0\.1:\d+: i\/o timeout$/);
    expect(server.logs.filter((line) => /^2 example\.org\./.test(String(line.msg)))).toEqual([]);
  });
});

describe('errors: consolidate, with a stepped clock', () => {
  const lines: Array<Record<string, unknown>> = [];
  let clock: SteppedClock;
  let port: number;

  beforeEach(() => {
    lines.length = 0;
    clock = new SteppedClock();
  });

  async function start(errors: string): Promise<RunningServer> {
    port = await freePort();
    const log = pino({ level: 'debug', base: { name: 'clusterdns' } }, { write: (text: string) => void lines.push(JSON.parse(text) as Record<string, unknown>) });
    const running = await serve(planFromCorefile(await corefile(block(port, errors, silentPort)), 'debug'), log, { clock });
    cleanups.push(() => running.close());
    return running;
  }

  const fromErrors = (): Array<Record<string, unknown>> => lines.filter((line) => line.plugin === 'errors');

  it('counts the matching errors and logs one line at LEVEL after DURATION, none one by one', async () => {
    await start('    errors {\n        consolidate 5m ".* i/o timeout$" warning\n    }');
    for (const name of ['a.example.org', 'b.example.org', 'c.example.org']) expect((await dig(port, [name, 'A'])).status).toBe('SERVFAIL');
    expect(fromErrors()).toEqual([]);
    clock.step(299_999);
    expect(fromErrors()).toEqual([]);
    clock.step(1);
    expect(fromErrors()).toEqual([expect.objectContaining({ level: 40, count: 3, msg: '3 errors like \'.* i/o timeout$\' occurred in last 5m0s' })]);
    // The next period starts with the next error, not before.
    clock.step(600_000);
    expect(fromErrors()).toHaveLength(1);
    await dig(port, ['d.example.org', 'A']);
    clock.step(300_000);
    expect(fromErrors().map((line) => line.msg)).toEqual([
      '3 errors like \'.* i/o timeout$\' occurred in last 5m0s',
      '1 errors like \'.* i/o timeout$\' occurred in last 5m0s',
    ]);
  });

  it('the first pattern that matches takes the error, not a later one that matches too', async () => {
    await start(`    errors {
        consolidate 10s "^concurrent queries"
        consolidate 1m "i/o timeout$" info
        consolidate 30s ".*" warning
        consolidate 30s "^nothing matches this"
    }`);
    await dig(port, ['a.example.org', 'A']);
    await dig(port, ['b.example.org', 'A']);
    clock.step(30_000);
    // ".*" matches too, but the pattern before it took both errors.
    expect(fromErrors()).toEqual([]);
    clock.step(30_000);
    expect(fromErrors()).toEqual([expect.objectContaining({ level: 30, count: 2, pattern: 'i/o timeout$', msg: '2 errors like \'i/o timeout$\' occurred in last 1m0s' })]);
  });

  it('an error no pattern matches is logged at once, as without consolidate', async () => {
    await start('    errors {\n        consolidate 1m "^no healthy proxies$"\n    }');
    await dig(port, ['a.example.org', 'A']);
    const logged = fromErrors();
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ level: 50, name: 'a.example.org.', type: 'A' });
    expect(logged[0]!.msg).toMatch(TIMEOUT_LINE('a.example.org.', 'A', silentPort));
    clock.step(60_000);
    expect(fromErrors()).toHaveLength(1);
  });

  it('show_first: the first error of a period at once at LEVEL, the summary only when more followed', async () => {
    await start('    errors {\n        consolidate 30s "i/o timeout$" warning show_first\n    }');
    await dig(port, ['a.example.org', 'A']);
    await dig(port, ['b.example.org', 'A']);
    expect(fromErrors()).toHaveLength(1);
    expect(fromErrors()[0]).toMatchObject({ level: 40, name: 'a.example.org.' });
    clock.step(30_000);
    expect(fromErrors()[1]).toMatchObject({ level: 40, msg: '2 errors like \'i/o timeout$\' occurred in last 30s' });
    await dig(port, ['c.example.org', 'A']);
    clock.step(30_000);
    // A lone error: logged as it came, no summary.
    expect(fromErrors().map((line) => line.count ?? line.name)).toEqual(['a.example.org.', 2, 'c.example.org.']);
  });

  it('what is counted when the server stops is logged then', async () => {
    const running = await start('    errors {\n        consolidate 5m "i/o timeout$"\n    }');
    await dig(port, ['a.example.org', 'A']);
    await running.close();
    expect(fromErrors()).toEqual([expect.objectContaining({ level: 50, msg: '1 errors like \'i/o timeout$\' occurred in last 5m0s' })]);
  });
});
