/**
 * ready — `GET /ready` answers 200 once every plugin that reports readiness is ready (the kubernetes plugin after
 * its first sync), 503 naming the ones that are not, and 503 in lame duck (CoreDNS's ready plugin). Unlike
 * CoreDNS, a reload leaves /ready at 200 (coredns/coredns#5471). Syntax: `ready [ADDRESS]`, default `:8181`.
 */
import { pluginError } from '../../corefile/errors.js';
import type { HostPort } from '../../ip.js';
import type { PluginSetup } from '../plugin.js';
import { listenAddress, optionLines, single } from '../setup-values.js';

export interface ReadyConfig {
  readonly address: HostPort;
}

export const ready: PluginSetup<ReadyConfig> = {
  name: 'ready',
  parse(directives) {
    const plugin = single(directives);
    if (plugin.args.length > 1) throw pluginError(plugin, `wants at most 1 argument, got ${plugin.args.length} (usage: ready [ADDRESS])`);
    optionLines(plugin, []);
    return Object.freeze({ address: listenAddress({ plugin }, plugin.args[0] ?? ':8181') });
  },
  create: () => ({}),
};
