/**
 * errors — CoreDNS logs the errors plugins return; here every part logs its own errors once, at the edge
 * (a failing plugin, a lost upstream), whether or not `errors` is given, so the plugin only has to be accepted.
 * Syntax: `errors`; the `consolidate` and `stacktrace` options are not supported (an error, not ignored).
 */
import { pluginError } from '../../corefile/errors.js';
import type { PluginSetup } from '../plugin.js';
import { optionLines, single } from '../setup-values.js';

export const errors: PluginSetup<null> = {
  name: 'errors',
  parse(directives) {
    const plugin = single(directives);
    if (plugin.args.length > 0) throw pluginError(plugin, `takes no arguments, got ${plugin.args.length} (usage: errors)`);
    optionLines(plugin, []);
    return null;
  },
  create: () => ({}),
};
