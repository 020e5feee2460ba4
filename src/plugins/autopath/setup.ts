/**
 * The autopath plugin's setup. Syntax: `autopath [ZONE...] @kubernetes` (CoreDNS's; a resolv.conf path in place of
 * `@kubernetes` is not supported). It completes the search path of pods the kubernetes plugin of the same server
 * block knows, with the node's search domains (its resolv.conf) after the cluster's own.
 */
import { pluginError } from '../../corefile/errors.js';
import type { PluginSetup } from '../plugin.js';
import { optionLines, single } from '../setup-values.js';
import { Autopath } from './index.js';
import { registerAutopathMetrics } from './metrics.js';

export const autopath: PluginSetup<null> = {
  name: 'autopath',
  requires: ['kubernetes'],
  parse(directives) {
    const plugin = single(directives);
    optionLines(plugin, []);
    const source = plugin.args.at(-1);
    if (source !== '@kubernetes') {
      throw pluginError(plugin, `wants @kubernetes as its last argument, got ${source ?? 'none'} (usage: autopath @kubernetes; a resolv.conf file is not supported)`);
    }
    if (plugin.args.length > 1) throw pluginError(plugin, 'zones are not supported: it completes the kubernetes plugin\'s cluster domain (usage: autopath @kubernetes)');
    return null;
  },
  create(_config, context) {
    const kube = context.configOf('kubernetes') as { readonly zone: string; readonly ttl: number };
    const handler = new Autopath(context.store, { zone: kube.zone, hostSearch: context.resolvConf.search, ttl: kube.ttl });
    return { handler, close: registerAutopathMetrics(context.registry, () => handler.completions) };
  },
};
