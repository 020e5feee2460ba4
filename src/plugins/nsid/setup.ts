/**
 * nsid — says which server answered (RFC 5001), as CoreDNS's `nsid`: a client that puts an empty NSID option in
 * its query gets the server's identifier back in the reply's OPT record (`dig +nsid`), which tells the replicas
 * behind one Service address apart. Syntax: `nsid [DATA]`, DATA the identifier (its words joined by spaces),
 * default the host's name (a pod's name, in a cluster). The option is encoded once here; the server adds it to
 * the replies of its block's clients that ask.
 */
import { hostname } from 'node:os';
import { pluginError } from '../../corefile/errors.js';
import type { PluginSetup } from '../plugin.js';
import { optionLines, single } from '../setup-values.js';
import { NSID_OPTION } from '../../wire/index.js';

export interface NsidConfig {
  readonly id: string;
  /** The option as it goes on the wire: code 3, length, the identifier's bytes. */
  readonly option: Buffer;
}

/** Room left for the rest of a reply: an identifier this long is already more than anyone reads. */
const MAX_ID_BYTES = 255;

export const nsid: PluginSetup<NsidConfig> = {
  name: 'nsid',
  parse(directives) {
    const plugin = single(directives);
    optionLines(plugin, []);
    const id = plugin.args.length > 0 ? plugin.args.join(' ') : hostname();
    const bytes = Buffer.from(id, 'utf8');
    if (bytes.length > MAX_ID_BYTES) throw pluginError(plugin, `the identifier is ${bytes.length} bytes; at most ${MAX_ID_BYTES}`);
    const option = Buffer.alloc(4 + bytes.length);
    option.writeUInt16BE(NSID_OPTION, 0);
    option.writeUInt16BE(bytes.length, 2);
    bytes.copy(option, 4);
    return Object.freeze({ id, option });
  },
  create: () => ({}),
};
