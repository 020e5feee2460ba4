/**
 * loop — CoreDNS's loop detection. The forward plugin here always probes each upstream for a loop at start and
 * whenever its upstreams change (a loop is logged once, the upstream dropped, /ready warns), so `loop` is
 * accepted and changes nothing: unlike CoreDNS, a loop does not stop the process. Syntax: `loop`.
 */
import type { PluginSetup } from '../plugin.js';
import { bare } from '../setup-values.js';

export const loop: PluginSetup<null> = {
  name: 'loop',
  parse(directives) {
    bare(directives);
    return null;
  },
  create: () => ({}),
};
