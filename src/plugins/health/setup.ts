/**
 * health — `GET /health` answers 200 while the process runs, also during lame duck (CoreDNS's health plugin).
 * Syntax: `health [ADDRESS] { lameduck DURATION }`; ADDRESS defaults to `:8080`. Process-wide: the server serves it.
 */
import { pluginError } from '../../corefile/errors.js';
import type { HostPort } from '../../ip.js';
import type { PluginSetup } from '../plugin.js';
import { durationMs, listenAddress, optionLines, single } from '../setup-values.js';

export interface HealthConfig {
  readonly address: HostPort;
  /** On SIGTERM keep answering this long, /ready at 503, before closing. */
  readonly lameduckMs: number;
}

export const health: PluginSetup<HealthConfig> = {
  name: 'health',
  parse(directives) {
    const plugin = single(directives);
    if (plugin.args.length > 1) throw pluginError(plugin, `wants at most 1 argument, got ${plugin.args.length} (usage: health [ADDRESS])`);
    let lameduckMs = 0;
    for (const line of optionLines(plugin, ['lameduck'])) {
      if (line.args.length !== 1) throw pluginError(plugin, 'option "lameduck" wants 1 argument (usage: lameduck DURATION)', line);
      lameduckMs = durationMs({ plugin, line }, line.args[0]!, 0, 600_000);
    }
    return Object.freeze({ address: listenAddress({ plugin }, plugin.args[0] ?? ':8080'), lameduckMs });
  },
  create: () => ({}),
};
