#!/usr/bin/env node
/**
 * The `clusterdns` command: parses the command line, starts the requested command, turns errors into one clear
 * line and an exit code (2 for usage and configuration, 1 for anything else), and stops cleanly on SIGINT/SIGTERM.
 */
import { ClusterDnsError, ConfigError } from './errors.js';
import { formatHostPort } from './ip.js';
import { execWithHeapFlags, heapSettings } from './runtime/heap.js';
import type { KubernetesConfig } from './plugins/kubernetes/setup.js';

// Before the rest loads: a server command without its heap flags is executed again with them (runtime/heap.ts).
execWithHeapFlags(isCoreDnsFlag(process.argv[2]) ? 'serve' : process.argv[2]);
const { parseServeArgs, serveHelp } = await import('./config/index.js');
const { parseResolveArgs, resolveHelp } = await import('./config/resolve-args.js');
const { doctorHelp, parseDoctorArgs } = await import('./config/doctor-args.js');
const { parseTopArgs, topHelp } = await import('./config/top-args.js');
const { planFromCorefile, planFromFlags, serve, version } = await import('./main.js');
const { resolverSetupCommand } = await import('./system-resolver.js');
const { createLogger } = await import('./telemetry/index.js');

/** CoreDNS's own command line (`coredns -conf PATH`), which the kubeadm Deployment passes: `serve --conf PATH`. */
function isCoreDnsFlag(arg: string | undefined): boolean {
  return arg !== undefined && /^-[a-z]/.test(arg) && !arg.startsWith('--') && arg !== '-h';
}

const USAGE = `Usage: clusterdns <command> [flags]
       clusterdns -conf COREFILE      (as CoreDNS: the same as 'clusterdns serve --conf COREFILE')

Commands:
  serve      answer the Kubernetes cluster zone (see 'clusterdns serve --help')
  resolve    show each name a pod's resolver tries for NAME and what answered (see 'clusterdns resolve --help')
  doctor     check a Service end to end: selector, pods, ports, endpoints, DNS (see 'clusterdns doctor --help')
  top        the names a running server answers NXDOMAIN or SERVFAIL most, and who asks (see 'clusterdns top --help')
  proxy      only proxy TCP connections to ClusterIP services (see 'clusterdns proxy --help')
  dev        cluster names and services on this machine, next to a cluster such as kind (see 'clusterdns dev --help')
  version    print the version
  help       print this help`;

function fail(error: unknown): never {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`clusterdns: ${describe(error) ?? message}\n`);
  process.exit(error instanceof ConfigError ? 2 : 1);
}

/** Startup errors a user can act on, said in their terms. */
function describe(error: unknown): string | undefined {
  const errno = error as NodeJS.ErrnoException & { address?: string; port?: number };
  if (errno.syscall !== 'bind' && errno.syscall !== 'listen') return undefined;
  const where = errno.address !== undefined ? formatHostPort({ host: errno.address, port: errno.port ?? 0 }) : 'the listen address';
  if (errno.code === 'EACCES') return `cannot listen on ${where}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE; try --listen 127.0.0.1:5353)`;
  if (errno.code === 'EADDRINUSE') return `cannot listen on ${where}: the address is already in use`;
  if (errno.code === 'EADDRNOTAVAIL') return `cannot listen on ${where}: no such address on this machine`;
  return undefined;
}

async function main(argv: readonly string[]): Promise<void> {
  if (isCoreDnsFlag(argv[0])) {
    if (argv[0] !== '-conf' || argv.length !== 2) throw new ConfigError(`unknown flag ${argv[0]}: of CoreDNS's flags only -conf COREFILE is taken; see 'clusterdns help'`);
    return main(['serve', '--conf', argv[1]!]);
  }
  const [command, ...args] = argv;
  switch (command) {
    case 'serve':
    case 'proxy':
    case 'dev': {
      const config = parseServeArgs(args, command);
      if (config === undefined) {
        process.stdout.write(`${serveHelp(command)}\n`);
        return;
      }
      const plan = config.corefile !== undefined ? planFromCorefile(config.corefile, config.logLevel) : planFromFlags(config, command);
      // The plan's level: the Corefile's `debug` raises --log-level's.
      const log = createLogger(plan.logLevel);
      log.debug(heapSettings(), 'node heap');
      const running = await serve(plan, log);
      const first = running.addresses[0];
      // The hint names the cluster's own zone, and only when a block serves one (a Corefile may have none).
      const cluster = plan.blocks.flatMap((block) => block.plugins).find((planned) => planned.setup.name === 'kubernetes')?.config as KubernetesConfig | undefined;
      if (first !== undefined && cluster !== undefined) {
        log.info(`try: dig @${first.host === '0.0.0.0' ? '127.0.0.1' : first.host === '::' ? '::1' : first.host} -p ${first.port} kubernetes.default.svc.${cluster.zone}`);
      }
      if (command === 'dev' && first !== undefined) {
        const via = config.proxy?.via === 'port-forward' ? "the API server's pod port-forward" : 'pod IPs directly';
        process.stdout.write(`${config.zone} is answered on ${formatHostPort(first)}, each service on its own loopback address, reached through ${via}.\n`
          + `To send ${config.zone} (and nothing else) here, run once:\n  ${resolverSetupCommand(first, config.zone)}\n`);
      }
      // SIGTERM (the kubelet) goes through lame duck; SIGINT (Ctrl-C), or a second signal, stops at once.
      const stop = (signal: NodeJS.Signals): void => {
        log.info({ signal }, 'stopping');
        const done = signal === 'SIGTERM' ? running.shutdown() : running.close();
        void done.then(() => process.exit(0));
        process.once('SIGINT', () => void running.close().then(() => process.exit(0)));
        process.once('SIGTERM', () => void running.close().then(() => process.exit(0)));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      return;
    }
    case 'resolve': {
      const config = parseResolveArgs(args);
      if (config === undefined) {
        process.stdout.write(`${resolveHelp()}\n`);
        return;
      }
      // Loaded only for this command: it brings dns2, which serving never needs.
      const { runResolve } = await import('./resolve/command.js');
      const { output, exitCode } = await runResolve(config);
      process.stdout.write(`${output}\n`);
      process.exitCode = exitCode;
      return;
    }
    case 'doctor': {
      const config = parseDoctorArgs(args);
      if (config === undefined) {
        process.stdout.write(`${doctorHelp()}\n`);
        return;
      }
      // Loaded only for this command, as resolve is: it brings dns2 and the whole-object readers.
      const { runDoctor } = await import('./doctor/index.js');
      const { output, exitCode } = await runDoctor(config);
      process.stdout.write(`${output}\n`);
      process.exitCode = exitCode;
      return;
    }
    case 'top': {
      const config = parseTopArgs(args);
      if (config === undefined) {
        process.stdout.write(`${topHelp()}\n`);
        return;
      }
      const { runTop } = await import('./top/command.js');
      const { stdout, stderr, exitCode } = await runTop(config);
      if (stdout !== undefined) process.stdout.write(stdout);
      if (stderr !== undefined) process.stderr.write(stderr);
      process.exitCode = exitCode;
      return;
    }
    case 'version':
    case '--version':
      process.stdout.write(`${version()}\n`);
      return;
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return;
    case undefined:
      process.stderr.write(`${USAGE}\n`);
      process.exit(2);
    default:
      throw new ConfigError(`unknown command "${command}"; run 'clusterdns help'`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (!(error instanceof ClusterDnsError) && !(error as NodeJS.ErrnoException).syscall) {
    process.stderr.write(`clusterdns: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  }
  fail(error);
});
