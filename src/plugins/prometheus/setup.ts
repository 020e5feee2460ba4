/**
 * prometheus — `GET /metrics` in Prometheus text, with CoreDNS's metric names (each plugin registers its own).
 * Its address also serves `GET /debug/top`, the failing names' top-k (telemetry/top.ts), which only runs with it.
 * Syntax: `prometheus [ADDRESS]`, default `localhost:9153`. Several server blocks may name the same address.
 */
import { pluginError } from '../../corefile/errors.js';
import type { HostPort } from '../../ip.js';
import type { PluginSetup } from '../plugin.js';
import { listenAddress, optionLines, single } from '../setup-values.js';

export interface PrometheusConfig {
  readonly address: HostPort;
}

export const prometheus: PluginSetup<PrometheusConfig> = {
  name: 'prometheus',
  parse(directives) {
    const plugin = single(directives);
    if (plugin.args.length > 1) throw pluginError(plugin, `wants at most 1 argument, got ${plugin.args.length} (usage: prometheus [ADDRESS])`);
    optionLines(plugin, []);
    return Object.freeze({ address: listenAddress({ plugin }, plugin.args[0] ?? 'localhost:9153') });
  },
  create: () => ({}),
};
