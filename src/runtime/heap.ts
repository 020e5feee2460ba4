/**
 * runtime — the node process a clusterdns server runs in: the V8 heap flags every server command (serve, proxy,
 * dev) runs with, however it was started (the image's ENTRYPOINT, `npm start`, the npm bin, `node dist/cli.js`),
 * said here once. Knows nothing of DNS; cli.ts calls it before anything else is loaded.
 *
 * V8 reads heap sizes when it creates the heap, so a running process cannot set them for itself
 * (v8.setFlagsFromString leaves heap_size_limit as it was): node is executed again with the flags, in the same
 * process (process.execve: same PID, so the container's PID 1, the kubelet's signals and a supervisor's PID stay
 * right, and nothing is left running beside it). Measured on Node 24.22, time from start to "serving" with the
 * demo cluster, medians of 9-15 on this 2-core machine under others' load, against the flags on node's own command
 * line (264-292 ms): re-executed before the CLI loads anything else, +20 to +125 ms in three runs (one more bare
 * node start: `node -e 0` takes 50 ms); re-executed after the CLI's static imports are linked, +262 ms; a parent
 * that spawns the server with the flags and stays, +177 ms and 45 MB more RSS, the parent's. NODE_OPTIONS cannot
 * be set from inside either. So cli.ts loads its commands only after this has run.
 *
 * Flags of the user's own (on node's command line or in NODE_OPTIONS) win, each on its own: a container that needs
 * a larger old space sets NODE_OPTIONS=--max-old-space-size=512 and keeps the 2 MB semi-spaces.
 */
import { getHeapStatistics } from 'node:v8';

/**
 * Heap sizes for a server whose live data is small and steady (about 30 MB of live heap at 100k endpoints;
 * bench/README.md):
 * - 2 MB semi-spaces instead of V8's default (up to 16 MB on Node 20, 64 MB on Node 24: heap_size_limit counts
 *   three of them): listing 100k endpoints otherwise leaves ~50 MB more RSS on Node 20 (a 48 MB young generation
 *   kept, and old-space garbage collected later). The hot path allocates little: no measurable cost.
 * - a 256 MB old space: what node picks by itself in any container of up to 1 GiB (a quarter of the cgroup limit,
 *   at least 256 MB), made explicit so that it does not depend on cgroup detection and the benchmarks, run on a big
 *   host, measure the same. Under 256 MB V8 grows the heap by 1.3x its live data between full GCs, not up to 4x:
 *   the peak with 100k pods listed is ~140 MB instead of ~225. Raise it with the memory limit for clusters whose
 *   live data nears it (several hundred thousand endpoints and pods).
 */
export const HEAP_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--max-old-space-size=256'];

/** The commands that serve, and so get HEAP_FLAGS; the others (resolve, version, help) run and exit. */
const SERVER_COMMANDS = new Set(['serve', 'proxy', 'dev']);

/** Another spelling that sets the same size: V8 takes `_` for `-`, and a percentage for the old space. */
const flagName = (arg: string): string => {
  const name = arg.split('=')[0]!.replaceAll('_', '-');
  return name === '--max-old-space-size-percentage' ? '--max-old-space-size' : name;
};

/** The HEAP_FLAGS that neither node's command line (`execArgv`) nor NODE_OPTIONS sets, in HEAP_FLAGS order. */
export function missingHeapFlags(execArgv: readonly string[], nodeOptions = ''): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)].map(flagName));
  return HEAP_FLAGS.filter((flag) => !given.has(flagName(flag)));
}

/**
 * For a server command, replaces this process with node run with the missing heap flags and the same script and
 * arguments; returns when none is missing, or for other commands. Where process.execve does not exist (Windows) the
 * server runs with V8's defaults.
 */
export function execWithHeapFlags(command: string | undefined): void {
  if (command === undefined || !SERVER_COMMANDS.has(command) || process.execve === undefined) return;
  const missing = missingHeapFlags(process.execArgv, process.env.NODE_OPTIONS);
  if (missing.length === 0) return;
  process.execve(process.execPath, [process.execPath, ...missing, ...process.execArgv, ...process.argv.slice(1)], process.env);
}

/** What the heap was given, for the start-up debug line: node's own flags and V8's resulting limit. */
export function heapSettings(): { nodeFlags: readonly string[]; nodeOptions: string | undefined; heapSizeLimitMiB: number } {
  return { nodeFlags: process.execArgv, nodeOptions: process.env.NODE_OPTIONS, heapSizeLimitMiB: Math.round(getHeapStatistics().heap_size_limit / 2 ** 20) };
}
