/**
 * A small network of Linux network namespaces for whole-process proxy tests (needs root and `ip`):
 *
 *   client ns (10.1.0.2, 10.1.0.3) --veth-- proxy ns (10.1.0.1 | 10.2.0.1) --veth-- backend ns (10.2.0.11...)
 *                                            lo: the service VIPs, as /32s
 *                                            10.3.0.0/24 via 10.2.0.254, a neighbour that never answers ARP,
 *                                            so a SYN there vanishes (connect timeouts)
 *
 * The VIPs sit on the proxy namespace's loopback interface, which works like kube-proxy's IPVS dummy interface
 * (a local address that is not announced); this kernel has no dummy interface driver.
 * The client routes everything through the proxy namespace, so connecting to a VIP reaches the proxy the way a
 * pod reaches kube-proxy's VIPs. Names carry this process's PID, so parallel runs cannot collide. destroy()
 * stops the processes started here (by PID) and deletes the namespaces; an exit hook does the same if a run dies
 * first, and namespaces left by runs whose process is gone are deleted on the next create().
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const AGENT = fileURLToPath(new URL('./netns-agent.mjs', import.meta.url));
const PREFIX = 'cdnsproxy';

export const CLIENT_IPS = ['10.1.0.2', '10.1.0.3'] as const;
export const PROXY_CLIENT_SIDE = '10.1.0.1';
/** Where SYNs are dropped without an answer: a connect there times out. */
export const BLACKHOLE_IP = '10.3.0.9';

export type Role = 'proxy' | 'client' | 'backend';

/** A helper process inside one namespace, driven by JSON requests (see netns-agent.mjs for the ops). */
export class Agent {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  /** Resolves when the agent has said it is ready (its first line). */
  readonly ready: Promise<void>;

  constructor(readonly child: ChildProcess) {
    let markReady: () => void;
    this.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      child.once('exit', (code, signal) => reject(new Error(`agent exited before it was ready (${code ?? signal})`)));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const message = JSON.parse(line) as { id?: number; result?: unknown; error?: string };
      if (message.id === undefined) return markReady();
      const waiter = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.error !== undefined) waiter?.reject(new Error(message.error));
      else waiter?.resolve(message.result);
    });
    child.once('exit', (code, signal) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`agent exited (${code ?? signal})`));
      this.pending.clear();
    });
  }

  call<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.stdin!.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
  }

  /** SIGKILL; resolves once the process is gone (on a busy machine that is not at once). */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }
}

export class NetLab {
  private readonly children = new Set<ChildProcess>();
  private readonly exitHook = (): void => this.deleteNamespacesSync();

  private constructor(readonly names: Readonly<Record<Role, string>>) {}

  static async create(): Promise<NetLab> {
    await deleteStaleNamespaces();
    const names = { proxy: `${PREFIX}-${process.pid}-p`, client: `${PREFIX}-${process.pid}-c`, backend: `${PREFIX}-${process.pid}-b` };
    const lab = new NetLab(names);
    process.once('exit', lab.exitHook);
    try {
      for (const name of Object.values(names)) await ip('netns', 'add', name);
      const { proxy: p, client: c, backend: b } = names;
      const script: string[][] = [
        ['-n', p, 'link', 'set', 'lo', 'up'],
        ['-n', c, 'link', 'set', 'lo', 'up'],
        ['-n', b, 'link', 'set', 'lo', 'up'],
        ['-n', p, 'link', 'add', 'toclient', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c],
        ['-n', p, 'link', 'add', 'tobackend', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', b],
        ['-n', p, 'addr', 'add', `${PROXY_CLIENT_SIDE}/24`, 'dev', 'toclient'],
        ['-n', p, 'addr', 'add', '10.2.0.1/24', 'dev', 'tobackend'],
        ['-n', p, 'link', 'set', 'toclient', 'up'],
        ['-n', p, 'link', 'set', 'tobackend', 'up'],
        ['-n', p, 'route', 'add', '10.3.0.0/24', 'via', '10.2.0.254', 'dev', 'tobackend'],
        ...CLIENT_IPS.map((address) => ['-n', c, 'addr', 'add', `${address}/24`, 'dev', 'eth0']),
        ['-n', c, 'link', 'set', 'eth0', 'up'],
        ['-n', c, 'route', 'add', 'default', 'via', PROXY_CLIENT_SIDE],
        // The backends need no route: the proxy reaches them from 10.2.0.1, on their own subnet.
        ['-n', b, 'link', 'set', 'eth0', 'up'],
      ];
      for (const args of script) await ip(...args);
    } catch (error) {
      lab.deleteNamespacesSync();
      throw error;
    }
    return lab;
  }

  /** Makes `address` (`10.96.0.10`) local to the proxy namespace, as kube-proxy's IPVS mode does with its dummy interface. */
  addVip(address: string): Promise<void> {
    return ip('-n', this.names.proxy, 'addr', 'add', `${address}/32`, 'dev', 'lo');
  }

  addBackendAddress(address: string): Promise<void> {
    return ip('-n', this.names.backend, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
  }

  /** Runs `command args` inside a namespace; the caller owns the child but destroy() kills it if still running. */
  spawn(role: Role, command: string, args: readonly string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.names[role], command, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.track(child);
    return child;
  }

  /** Registers a process started elsewhere (e.g. by startServer) to be killed by destroy(). */
  track(child: ChildProcess): void {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
  }

  async agent(role: Role): Promise<Agent> {
    const agent = new Agent(this.spawn(role, process.execPath, [AGENT]));
    await agent.ready;
    return agent;
  }

  async destroy(): Promise<void> {
    const exits = [...this.children].map((child) => {
      child.kill('SIGKILL');
      return once(child, 'exit');
    });
    await Promise.all(exits);
    this.deleteNamespacesSync();
    process.off('exit', this.exitHook);
  }

  private deleteNamespacesSync(): void {
    for (const child of this.children) child.kill('SIGKILL');
    for (const name of Object.values(this.names)) {
      try {
        execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
      } catch {
        // Not created, or already deleted.
      }
    }
  }
}

async function ip(...args: string[]): Promise<void> {
  await run('ip', args, { timeout: 10_000 });
}

/** Namespaces of this helper whose creating process no longer exists (a run that was killed). */
async function deleteStaleNamespaces(): Promise<void> {
  const { stdout } = await run('ip', ['netns', 'list'], { timeout: 10_000 });
  for (const line of stdout.split('\n')) {
    const match = new RegExp(`^(${PREFIX}-(\\d+)-[pcb])\\b`).exec(line);
    if (match === null || isAlive(Number(match[2]))) continue;
    await ip('netns', 'del', match[1]!);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
