/**
 * reload — watch the Corefile and apply a changed one without a restart. Syntax: `reload [INTERVAL] [JITTER]`,
 * defaults 30s and 15s (INTERVAL at least 2s, JITTER at most half of it), as CoreDNS takes them.
 */
import { pluginError } from '../../corefile/errors.js';
import type { PluginSetup } from '../plugin.js';
import { durationMs, optionLines, single } from '../setup-values.js';

export interface ReloadConfig {
  readonly intervalMs: number;
  readonly jitterMs: number;
}

export const reload: PluginSetup<ReloadConfig> = {
  name: 'reload',
  parse(directives) {
    const plugin = single(directives);
    if (plugin.args.length > 2) throw pluginError(plugin, `wants at most 2 arguments, got ${plugin.args.length} (usage: reload [INTERVAL] [JITTER])`);
    optionLines(plugin, []);
    const intervalMs = plugin.args[0] === undefined ? 30_000 : durationMs({ plugin }, plugin.args[0], 2000);
    const jitterMs = plugin.args[1] === undefined ? Math.min(15_000, intervalMs / 2) : durationMs({ plugin }, plugin.args[1], 0);
    if (jitterMs > intervalMs / 2) throw pluginError(plugin, `jitter ${plugin.args[1]} is more than half the interval`);
    return Object.freeze({ intervalMs, jitterMs });
  },
  create: () => ({}),
};
