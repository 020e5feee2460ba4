/** The any plugin's setup. Syntax: `any`, with no arguments and no block (CoreDNS's). */
import type { PluginSetup } from '../plugin.js';
import { bare } from '../setup-values.js';
import { AnyHandler } from './index.js';

export const any: PluginSetup<null> = {
  name: 'any',
  parse(directives) {
    bare(directives);
    return null;
  },
  create: () => ({ handler: new AnyHandler() }),
};
