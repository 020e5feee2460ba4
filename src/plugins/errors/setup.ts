/**
 * errors — CoreDNS logs the errors plugins return; here every part logs its own errors once, at the edge
 * (a failing plugin, a lost upstream), whether or not `errors` is given, so the plugin only has to be accepted.
 * Syntax: `errors`; the `consolidate` and `stacktrace` options are not supported (an error, not ignored).
 */
import type { PluginSetup } from '../plugin.js';
import { bare } from '../setup-values.js';

export const errors: PluginSetup<null> = {
  name: 'errors',
  parse(directives) {
    bare(directives);
    return null;
  },
  create: () => ({}),
};
