/**
 * loop — CoreDNS's loop detection. The forward plugin here always probes each upstream for a loop at start and
 * whenever its upstreams change (a loop is logged once, the upstream dropped, /ready warns), so `loop` is
 * accepted and changes nothing: unlike CoreDNS, a loop does not stop the process. Syntax: `loop`.
 */
import { pluginError } from '../../corefile/errors.js';
import type { PluginSetup } from '../plugin.js';
import { optionLines, single } from '../setup-values.js';

export const loop: PluginSetup<null> = {
  name: 'loop',
  parse(directives) {
    const plugin = single(directives);
    if (plugin.args.length > 0) throw pluginError(plugin, `takes no arguments, got ${plugin.args.length} (usage: loop)`);
    optionLines(plugin, []);
    return null;
  },
  create: () => ({}),
};
