/**
 * multisocket — answer on several threads, each with its own sockets of the server's addresses (SO_REUSEPORT, so
 * the kernel spreads queries over them), as CoreDNS's `multisocket` opens one socket per core. Syntax:
 * `multisocket [NUM_SOCKETS]`, default the CPUs this process may use (os.availableParallelism(), which follows
 * the cgroup's CPU limit, as GOMAXPROCS does for CoreDNS), at most 1024. Here it is process-wide (workers/):
 * every block that has it must give the same number; without it, one thread answers, as CoreDNS's one socket.
 */
import { availableParallelism } from 'node:os';
import { pluginError } from '../../corefile/errors.js';
import type { PluginSetup } from '../plugin.js';
import { integer, optionLines, single } from '../setup-values.js';

export interface MultisocketConfig {
  /** Threads (and sockets per address) in all. */
  readonly sockets: number;
}

export const MAX_SOCKETS = 1024;

export const multisocket: PluginSetup<MultisocketConfig> = {
  name: 'multisocket',
  parse(directives) {
    const plugin = single(directives);
    optionLines(plugin, []);
    if (plugin.args.length > 1) throw pluginError(plugin, `wants at most 1 argument, got ${plugin.args.length} (usage: multisocket [NUM_SOCKETS])`);
    const sockets = plugin.args[0] === undefined ? availableParallelism() : integer({ plugin }, plugin.args[0], 1, MAX_SOCKETS);
    return Object.freeze({ sockets });
  },
  create: () => ({}),
};
