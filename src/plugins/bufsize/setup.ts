/**
 * bufsize — the largest UDP reply a server block sends, whatever a client advertises (CoreDNS's `bufsize`, which
 * caps the requester's EDNS buffer size: DNS Flag Day 2020's 1232 by default). A reply that does not fit is
 * truncated (TC) and the client asks again over TCP. Syntax: `bufsize [SIZE]`, SIZE from 512 to 4096, default 1232.
 * Without it the limit is 1232 too (wire/constants.ts MAX_UDP_PAYLOAD): bufsize lowers it, or raises it for a
 * network known to carry larger datagrams unfragmented.
 */
import type { PluginSetup } from '../plugin.js';
import { integer, optionLines, single } from '../setup-values.js';
import { pluginError } from '../../corefile/errors.js';
import { MAX_UDP_PAYLOAD } from '../../wire/index.js';

export interface BufsizeConfig {
  /** Bytes: the largest UDP reply to an EDNS client. */
  readonly size: number;
}

export const bufsize: PluginSetup<BufsizeConfig> = {
  name: 'bufsize',
  parse(directives) {
    const plugin = single(directives);
    optionLines(plugin, []);
    if (plugin.args.length > 1) throw pluginError(plugin, `wants at most 1 argument, got ${plugin.args.length} (usage: bufsize [SIZE])`);
    return Object.freeze({ size: plugin.args[0] === undefined ? MAX_UDP_PAYLOAD : integer({ plugin }, plugin.args[0], 512, 4096) });
  },
  create: () => ({}),
};
