/**
 * The loadbalance plugin's setup. Syntax: `loadbalance [round_robin]` (CoreDNS's; its `prefer` option, which
 * orders by subnet, is not supported).
 */
import { pluginError } from '../../corefile/errors.js';
import type { PluginSetup } from '../plugin.js';
import { optionLines, single } from '../setup-values.js';
import { LoadBalancer } from './index.js';

export const loadbalance: PluginSetup<null> = {
  name: 'loadbalance',
  parse(directives) {
    const plugin = single(directives);
    optionLines(plugin, []);
    if (plugin.args.length > 1 || (plugin.args[0] !== undefined && plugin.args[0] !== 'round_robin')) {
      throw pluginError(plugin, `only the round_robin policy is supported, got "${plugin.args.join(' ')}" (usage: loadbalance [round_robin])`);
    }
    return null;
  },
  create: () => ({ handler: new LoadBalancer() }),
};
