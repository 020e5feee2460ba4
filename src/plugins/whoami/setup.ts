/** The whoami plugin's setup. Syntax: `whoami`, with no arguments and no block (CoreDNS's). */
import type { PluginSetup } from '../plugin.js';
import { bare } from '../setup-values.js';
import { Whoami } from './index.js';

export const whoami: PluginSetup<null> = {
  name: 'whoami',
  parse(directives) {
    bare(directives);
    return null;
  },
  create: () => ({ handler: new Whoami() }),
};
