/**
 * bind — the addresses a server block listens on (default: every address). Syntax: `bind ADDRESS...`; interface
 * names and `except` are not supported.
 */
import { isIP } from 'node:net';
import { pluginError } from '../../corefile/errors.js';
import type { PluginSetup } from '../plugin.js';
import { optionLines } from '../setup-values.js';

export interface BindConfig {
  readonly hosts: readonly string[];
}

export const bind: PluginSetup<BindConfig> = {
  name: 'bind',
  parse(directives) {
    const hosts: string[] = [];
    for (const plugin of directives) {
      optionLines(plugin, []);
      if (plugin.args.length === 0) throw pluginError(plugin, 'wants at least 1 argument (usage: bind ADDRESS...)');
      for (const host of plugin.args) {
        if (isIP(host) === 0) throw pluginError(plugin, `"${host}" is not an IP address (interface names are not supported)`);
        hosts.push(host);
      }
    }
    return Object.freeze({ hosts: Object.freeze([...new Set(hosts)]) });
  },
  create: () => ({}),
};
