/**
 * log — one line per query (client, protocol, name, type, rcode, size, duration) as JSON through the logger.
 * Syntax: `log`, optionally `{ class all|denial|error|success }`; names and formats are not supported.
 * Per query it costs throughput, so it is off unless given (as in CoreDNS). It logs the queries of its own server
 * block only; the server writes the lines (it knows the reply size and the time taken), filtered by queryLogFilter.
 */
import { pluginError } from '../../corefile/errors.js';
import type { PluginSetup } from '../plugin.js';
import { choice, optionLines, single } from '../setup-values.js';

export type LogClass = 'all' | 'denial' | 'error' | 'success';

export interface LogConfig {
  readonly classes: ReadonlySet<LogClass>;
}

export const log: PluginSetup<LogConfig> = {
  name: 'log',
  parse(directives) {
    const plugin = single(directives);
    if (plugin.args.length > 0) throw pluginError(plugin, 'names and formats are not supported (usage: log { class CLASS... })');
    const classes = new Set<LogClass>();
    for (const line of optionLines(plugin, ['class'])) {
      if (line.args.length === 0) throw pluginError(plugin, 'option "class" wants at least 1 argument (usage: class all|denial|error|success...)', line);
      for (const arg of line.args) classes.add(choice({ plugin, line }, arg, ['all', 'denial', 'error', 'success'] as const));
    }
    return Object.freeze({ classes: classes.size === 0 ? new Set<LogClass>(['all']) : classes });
  },
  create: () => ({}),
};

/**
 * The queries a block's log keeps, by CoreDNS's classes of a response: success (NOERROR with answers), denial
 * (NXDOMAIN, or NOERROR without answers: NODATA), error (every other rcode).
 */
export function queryLogFilter(config: LogConfig): (rcode: number, answers: number) => boolean {
  if (config.classes.has('all')) return () => true;
  return (rcode, answers) => {
    const kind: LogClass = rcode === 3 || (rcode === 0 && answers === 0) ? 'denial' : rcode === 0 ? 'success' : 'error';
    return config.classes.has(kind);
  };
}
