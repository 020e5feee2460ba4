/**
 * The heap flags a server runs with (src/runtime/heap.ts), as the real process has them. Started as the npm bin
 * and `npm start` start it (`node dist/cli.js serve`, no node flags), the very process that was spawned (its PID:
 * node re-executes itself in place) runs node with both flags, and V8 reports the limit they give; a user's own
 * flag wins, on node's command line or in NODE_OPTIONS, each flag on its own. Reads /proc (Linux, as CI).
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { HEAP_FLAGS, missingHeapFlags } from '../src/runtime/heap.js';
import { dig } from './support/dig.js';
import { CLI, startServer, type ServerProcess, type StartOptions } from './support/server-process.js';

const DEMO = new URL('../examples/demo-cluster.yaml', import.meta.url).pathname;

const servers: ServerProcess[] = [];
afterEach(async () => {
  while (servers.length > 0) await servers.pop()!.stop();
});

async function serve(options: StartOptions = {}): Promise<ServerProcess> {
  const server = await startServer(['--manifests', DEMO], '127.0.0.1', options);
  servers.push(server);
  return server;
}

/** node's own flags of a running process: its command line up to the script. */
function nodeFlagsOf(pid: number): string[] {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  return argv.slice(1, argv.indexOf(CLI));
}

/** V8's heap_size_limit, from the server's start-up debug line: the old space plus three semi-spaces. */
async function heapLimitMiB(server: ServerProcess): Promise<unknown> {
  return (await server.waitForLog((line) => line.msg === 'node heap')).heapSizeLimitMiB;
}

describe('a server started without node flags', () => {
  it('runs node with the heap flags in the process that was started, which is the one answering', async () => {
    const server = await serve();
    expect(nodeFlagsOf(server.child.pid!)).toEqual(['--max-semi-space-size=2', '--max-old-space-size=256']);
    expect(await heapLimitMiB(server)).toBe(256 + 3 * 2);
    expect((await dig(server.port, ['+noall', '+answer', 'web.default.svc.cluster.local'])).raw).toContain('10.96.100.10');
  });
});

describe("the user's own heap flags win", () => {
  it('an old space on node\'s command line is kept, and the semi-spaces are still added', async () => {
    const server = await serve({ nodeArgs: ['--max-old-space-size=300'] });
    expect(nodeFlagsOf(server.child.pid!)).toEqual(['--max-semi-space-size=2', '--max-old-space-size=300']);
    expect(await heapLimitMiB(server)).toBe(300 + 3 * 2);
  });

  it('an old space in NODE_OPTIONS (as a container env sets it) is kept: no old-space flag is added', async () => {
    const server = await serve({ env: { NODE_OPTIONS: '--max-old-space-size=320' } });
    expect(nodeFlagsOf(server.child.pid!)).toEqual(['--max-semi-space-size=2']);
    expect(await heapLimitMiB(server)).toBe(320 + 3 * 2);
  });

  it('with both sizes given, node is not executed again', async () => {
    const server = await serve({ nodeArgs: ['--max_semi_space_size=16', '--max-old-space-size=512'] });
    expect(nodeFlagsOf(server.child.pid!)).toEqual(['--max_semi_space_size=16', '--max-old-space-size=512']);
    expect(await heapLimitMiB(server)).toBe(512 + 3 * 16);
  });
});

describe('missingHeapFlags', () => {
  it.each([
    { execArgv: [], nodeOptions: undefined, missing: HEAP_FLAGS },
    { execArgv: ['--max-old-space-size=300'], nodeOptions: undefined, missing: ['--max-semi-space-size=2'] },
    { execArgv: ['--max_old_space_size=300'], nodeOptions: '', missing: ['--max-semi-space-size=2'] },
    { execArgv: ['--inspect'], nodeOptions: '--max-old-space-size-percentage=50', missing: ['--max-semi-space-size=2'] },
    { execArgv: [], nodeOptions: ' --enable-source-maps  --max-semi-space-size=16 ', missing: ['--max-old-space-size=256'] },
    { execArgv: ['--max-semi-space-size=8'], nodeOptions: '--max-old-space-size=512', missing: [] },
    // A look-alike is not the flag.
    { execArgv: ['--max-old-space'], nodeOptions: '--max-semi-space-size-x=1', missing: HEAP_FLAGS },
  ])('execArgv $execArgv, NODE_OPTIONS $nodeOptions: adds $missing', ({ execArgv, nodeOptions, missing }) => {
    expect(missingHeapFlags(execArgv, nodeOptions)).toEqual(missing);
  });
});
