/**
 * A pod's network for whole-process tests with real glibc clients (root only): two network namespaces joined by a
 * veth pair, the "node" side holding the cluster DNS address (kube-dns's cluster IP, where clusterdns or a scripted
 * server listens on port 53) and the "pod" side holding a pod IP. Programs run in the pod's namespace inside a
 * private mount namespace with a pod-style resolv.conf, and test copies of nsswitch.conf (`hosts: files dns`) and
 * /etc/hosts (localhost only), bind-mounted over /etc so the host's files never take part.
 *
 * Names carry the test process's PID; everything is removed by name or PID in close(), which is safe to call
 * after a failed setup. Nothing here touches the host's own network namespace beyond creating and deleting the
 * veth pair, which the namespaces take with them.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { CLI } from './server-process.js';

const run = promisify(execFile);
const TEST_SERVER = fileURLToPath(new URL('./dns-test-server.mjs', import.meta.url));

/** Root, and the tools this needs: `ip` (iproute2), `unshare` (util-linux) and `getent` (libc-bin). */
export async function canCreateNetns(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  try {
    await Promise.all([run('ip', ['-V']), run('unshare', ['--version']), run('getent', ['--version'])]);
    return true;
  } catch {
    return false;
  }
}

export interface ProgramResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface PodNetwork {
  /** The network namespace of the node side (cluster DNS) and of the pod. */
  readonly nodeNs: string;
  readonly podNs: string;
  readonly podIp: string;
  /** Runs `argv` in the pod with `resolvConf` as its /etc/resolv.conf. */
  inPod(resolvConf: string, argv: readonly string[], timeoutMs?: number): Promise<ProgramResult>;
  /** Adds another address on the node side, reachable from the pod (for a second server). */
  addNodeAddress(ip: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Creates the two namespaces: the node side with `nodeIp`, the pod with `podIp` plus a link-local IPv6 address,
 * as a pod on an IPv4 cluster has, so that glibc (AI_ADDRCONFIG) asks AAAA as it does in such a pod.
 */
export async function createPodNetwork(nodeIp: string, podIp: string): Promise<PodNetwork> {
  const id = `${process.pid}`;
  const nodeNs = `cdns-${id}-node`;
  const podNs = `cdns-${id}-pod`;
  // Interface names are at most 15 bytes.
  const nodeIf = `cdn${id}n`;
  const podIf = `cdn${id}p`;
  const dir = await mkdtemp(join(tmpdir(), 'clusterdns-netns-'));
  const created: string[] = [];
  const close = async (): Promise<void> => {
    // Deleting a namespace deletes the veth end in it, and with it the pair.
    for (const ns of created.splice(0)) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const ns of [nodeNs, podNs]) {
      await run('ip', ['netns', 'add', ns]);
      created.push(ns);
    }
    await run('ip', ['link', 'add', nodeIf, 'type', 'veth', 'peer', 'name', podIf]);
    await run('ip', ['link', 'set', nodeIf, 'netns', nodeNs]);
    await run('ip', ['link', 'set', podIf, 'netns', podNs]);
    const inNs = (ns: string, ...args: string[]): Promise<unknown> => run('ip', ['-n', ns, ...args]);
    await inNs(nodeNs, 'addr', 'add', `${nodeIp}/32`, 'dev', nodeIf);
    await inNs(podNs, 'addr', 'add', `${podIp}/32`, 'dev', podIf);
    await inNs(podNs, 'addr', 'add', 'fe80::5/64', 'dev', podIf, 'nodad');
    for (const [ns, dev] of [[nodeNs, nodeIf], [podNs, podIf]] as const) {
      await inNs(ns, 'link', 'set', 'lo', 'up');
      await inNs(ns, 'link', 'set', dev, 'up');
    }
    await inNs(nodeNs, 'route', 'add', `${podIp}/32`, 'dev', nodeIf);
    await inNs(podNs, 'route', 'add', `${nodeIp}/32`, 'dev', podIf);
    await writeFile(join(dir, 'nsswitch.conf'), 'hosts: files dns\n');
    await writeFile(join(dir, 'hosts'), '127.0.0.1 localhost\n::1 localhost\n');
  } catch (error) {
    await close();
    throw error;
  }

  let files = 0;
  return {
    nodeNs,
    podNs,
    podIp,
    async inPod(resolvConf, argv, timeoutMs = 30_000) {
      const resolvPath = join(dir, `resolv-${files++}.conf`);
      await writeFile(resolvPath, resolvConf);
      // The mounts live and die with this one process's private mount namespace.
      const script = 'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/nsswitch.conf && mount --bind "$3" /etc/hosts && shift 3 && exec "$@"';
      return runProgram('ip', [
        'netns', 'exec', podNs, 'unshare', '--mount', '--propagation', 'private',
        'sh', '-c', script, 'sh', resolvPath, join(dir, 'nsswitch.conf'), join(dir, 'hosts'), ...argv,
      ], timeoutMs);
    },
    async addNodeAddress(ip) {
      await run('ip', ['-n', nodeNs, 'addr', 'add', `${ip}/32`, 'dev', nodeIf]);
      await run('ip', ['-n', podNs, 'route', 'add', `${ip}/32`, 'dev', podIf]);
    },
    close,
  };
}

/** `clusterdns` itself, run in the pod (for `clusterdns resolve` as the pod sees it). */
export function clusterdnsArgv(...args: string[]): string[] {
  return [process.execPath, CLI, ...args];
}

/** Runs a program to completion; killed (by its PID) if it outlives `timeoutMs`. */
function runProgram(command: string, args: readonly string[], timeoutMs: number): Promise<ProgramResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** What `getent ahosts` printed: the addresses (first column, once each) and the canonical name if given. */
export function parseAhosts(stdout: string): { addresses: string[]; canonicalName: string | undefined } {
  const rows = stdout.split('\n').map((line) => line.trim().split(/\s+/)).filter((fields) => fields[0] !== '');
  // Each address comes once per socket type (STREAM, DGRAM, RAW); the canonical name follows the first.
  return { addresses: [...new Set(rows.map((fields) => fields[0]!))], canonicalName: rows.find((fields) => fields.length >= 3)?.[2] };
}

export interface LoggedQuery {
  readonly name: string;
  readonly type: string;
  readonly rcode: string;
}

export interface DnsTestServer {
  /** Every query so far, in arrival order. */
  readonly queries: LoggedQuery[];
  stop(): Promise<void>;
}

/**
 * Starts test/support/dns-test-server.mjs in `netns`: a scripted server for failure cases, or a loopback
 * upstream (e.g. `{ listen: '127.0.0.1:5301', zone: 'example.test', records: [...] }` in the node namespace).
 */
export async function startDnsTestServer(netns: string, config: object): Promise<DnsTestServer> {
  const child: ChildProcess = spawn('ip', ['netns', 'exec', netns, process.execPath, TEST_SERVER, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const queries: LoggedQuery[] = [];
  let stderr = '';
  let buffered = '';
  let onListening: () => void = () => undefined;
  const listening = new Promise<void>((resolve) => (onListening = resolve));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const event = JSON.parse(line) as { event: string } & LoggedQuery;
      if (event.event === 'listening') onListening();
      else queries.push({ name: event.name, type: event.type, rcode: event.rcode });
    }
  });
  const exited = once(child, 'exit');
  await Promise.race([listening, exited.then(([code]) => { throw new Error(`dns-test-server exited with ${code}: ${stderr}`); })]);
  return {
    queries,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}
