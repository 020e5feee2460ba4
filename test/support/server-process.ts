/**
 * Starts the real clusterdns process (`node dist/cli.js serve ...`, or `proxy ...`, `dev ...`) on an ephemeral
 * loopback port and reads the bound port from its "serving" log line. Forwarding is off (`--upstream none`) unless
 * the test gives upstreams of its own on loopback. Stopped by PID in `stop()`; tests never touch processes they
 * did not start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface ServerProcess {
  readonly port: number;
  readonly host: string;
  /** `health`, `ready` and `metrics` → their `host:port`. */
  readonly http: Readonly<Record<string, string>>;
  readonly child: ChildProcess;
  /** Every log line so far, parsed. */
  readonly logs: Array<Record<string, unknown>>;
  /** What it printed on stdout so far (logs go to stderr). */
  stdout(): string;
  /** Resolves with the first log line matching `test` (already seen or yet to come). */
  waitForLog(test: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Listen on this port instead of a free one (a glibc client can only ask port 53). */
  readonly port?: number;
  /** Run inside this network namespace (`ip netns exec`, which execs node: the child's PID is the server's). */
  readonly netns?: string;
  /** `proxy` runs `clusterdns proxy`, which has no DNS listener (port is then 0); `dev` has only --metrics of the HTTP flags. */
  readonly command?: 'serve' | 'proxy' | 'dev';
  /** node's own flags, before dist/cli.js. */
  readonly nodeArgs?: readonly string[];
  /** Added to the environment the server gets. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Run `clusterdns -conf PATH` (CoreDNS's command line) instead: the Corefile says every address, so nothing else
   * is added; it must itself listen on loopback only and forward to loopback upstreams only.
   */
  readonly corefile?: string;
}

export async function startServer(args: readonly string[], host = '127.0.0.1', options: StartOptions = {}): Promise<ServerProcess> {
  const command = options.command ?? 'serve';
  const listenPort = options.port ?? 0;
  const listen = command === 'proxy' ? [] : ['--listen', host.includes(':') ? `[${host}]:${listenPort}` : `${host}:${listenPort}`];
  const loopback = host.includes(':') ? '[::1]:0' : '127.0.0.1:0';
  const http = command === 'dev' ? ['--metrics', loopback] : ['--health', loopback, '--ready', loopback, '--metrics', loopback, '--lameduck', '0'];
  // Tests never forward to the machine's own resolver: without an --upstream or a --resolv-conf of the test's
  // own, none at all.
  const upstream = command === 'proxy' || args.includes('--upstream') || args.includes('--resolv-conf') ? [] : ['--upstream', 'none'];
  // One thread unless the test asks for more (workers.test.ts): each thread has its own cache and forwarder, so
  // tests that count upstream queries or cache hits would see them split over however many CPUs the machine has.
  const workers = command === 'serve' && !args.includes('--workers') ? ['--workers', '1'] : [];
  const argv = options.corefile !== undefined
    ? [...(options.nodeArgs ?? []), CLI, '-conf', options.corefile]
    : [...(options.nodeArgs ?? []), CLI, command, ...listen, ...http, '--log-level', 'debug', ...upstream, ...workers, ...args];
  const stdio: ['ignore', 'pipe', 'pipe'] = ['ignore', 'pipe', 'pipe'];
  const env = { ...process.env, ...options.env };
  const child = options.netns === undefined
    ? spawn(process.execPath, argv, { stdio, env })
    : spawn('ip', ['netns', 'exec', options.netns, process.execPath, ...argv], { stdio, env });
  const logs: Array<Record<string, unknown>> = [];
  const waiters = new Set<{ test: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }>();
  let buffered = '';
  let stderrText = '';
  let stdoutText = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdoutText += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderrText += chunk;
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const text of lines) {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        line = { msg: text };
      }
      logs.push(line);
      for (const waiter of waiters) {
        if (waiter.test(line)) {
          waiters.delete(waiter);
          waiter.resolve(line);
        }
      }
    }
  });
  const waitForLog = (test: (line: Record<string, unknown>) => boolean, timeoutMs = 10_000): Promise<Record<string, unknown>> => {
    const seen = logs.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = { test, resolve: (line: Record<string, unknown>) => { clearTimeout(timer); resolve(line); } };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`no matching log line within ${timeoutMs} ms; stderr so far:\n${stderrText}`));
      }, timeoutMs);
      waiters.add(waiter);
    });
  };
  const exited = once(child, 'exit');
  const serving = await Promise.race([
    waitForLog((line) => line.msg === 'serving'),
    exited.then(([code]) => { throw new Error(`clusterdns exited with ${code} before serving:\n${stderrText}`); }),
  ]);
  const first = (serving.listen as string[])[0];
  const port = first === undefined ? 0 : Number(first.split(':').pop());
  return {
    port,
    host,
    http: serving.http as Record<string, string>,
    child,
    logs,
    stdout: () => stdoutText,
    waitForLog,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * A TCP port that nothing on this machine listens on, on any address: a port for a loopback VIP other than
 * 127.0.0.1 must not clash with another process's wildcard listener (`:8080`), which a fixed port could.
 */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '0.0.0.0');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Runs the CLI to completion (for startup failures and --help). */
export async function runCli(args: readonly string[], timeoutMs = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // As startServer: a serve that gets going must not forward to the machine's own resolver.
  const safe = (args[0] === 'serve' || args[0] === 'dev') && !args.includes('--upstream') && !args.includes('--conf') ? [...args, '--upstream', 'none'] : args;
  const child = spawn(process.execPath, [CLI, ...safe], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}
