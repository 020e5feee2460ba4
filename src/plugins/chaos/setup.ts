/**
 * The chaos plugin's setup. Syntax: `chaos [VERSION] [AUTHORS...]` (CoreDNS's), no block. VERSION defaults to
 * `clusterdns-<version>`, AUTHORS to package.json's author and contributors. Each is one TXT string on the wire,
 * so one longer than 255 bytes is an error here (CoreDNS cuts it short without a word).
 */
import { pluginError } from '../../corefile/errors.js';
import { authors, version } from '../../version.js';
import type { PluginSetup } from '../plugin.js';
import { optionLines, single } from '../setup-values.js';
import { Chaos } from './index.js';

export interface ChaosConfig {
  readonly version: string;
  readonly authors: readonly string[];
}

/** RFC 1035 §3.3: a character-string holds at most 255 octets. */
const MAX_TEXT_BYTES = 255;

export const chaos: PluginSetup<ChaosConfig> = {
  name: 'chaos',
  parse(directives) {
    const plugin = single(directives);
    optionLines(plugin, []);
    for (const arg of plugin.args) {
      const bytes = Buffer.byteLength(arg, 'utf8');
      if (bytes > MAX_TEXT_BYTES) throw pluginError(plugin, `"${arg.slice(0, 20)}..." is ${bytes} bytes; a TXT string holds at most ${MAX_TEXT_BYTES}`);
    }
    const [given, ...named] = plugin.args;
    return Object.freeze({ version: given ?? `clusterdns-${version()}`, authors: Object.freeze(named.length > 0 ? named : authors()) });
  },
  create: (config) => ({ handler: new Chaos(config) }),
};
