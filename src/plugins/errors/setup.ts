/**
 * errors — logs the error each query of its block was answered with (Reply.error: an upstream that timed out, too
 * many queries in flight), one line each in CoreDNS's words, or counted per `consolidate` pattern and summed up once
 * per period. Without it those errors are not logged (as in CoreDNS); what every part logs at its own edge (an
 * upstream marked down, a plugin that throws) is logged either way.
 * Syntax: `errors { stacktrace; consolidate DURATION REGEXP [LEVEL] [show_first] }`, once per server block.
 */
import { expectArgs, pluginError } from '../../corefile/errors.js';
import type { Directive } from '../../corefile/types.js';
import { goRegexp } from '../go-regexp.js';
import type { PluginSetup } from '../plugin.js';
import { choice, durationMs, optionLines, single } from '../setup-values.js';
import { ErrorLog, LEVELS, type Consolidation, type ErrorsConfig, type Level } from './index.js';

const USAGE = 'consolidate DURATION REGEXP [LEVEL] [show_first]';
/** CoreDNS's bound on a consolidate REGEXP. */
const MAX_REGEXP_LENGTH = 10_000;

function consolidation(plugin: Directive, line: Directive): Consolidation {
  const args = [...expectArgs(line, 2, 4, USAGE, plugin)];
  const showFirst = args.length > 2 && args[args.length - 1] === 'show_first';
  if (showFirst) args.pop();
  if (args.length > 3) throw pluginError(plugin, `option "consolidate": "${args[3]}" is not show_first (usage: ${USAGE})`, line);
  const [period, source, level = 'error'] = args as [string, string, string?];
  if (source.length > MAX_REGEXP_LENGTH) throw pluginError(plugin, `option "consolidate": the regular expression is longer than ${MAX_REGEXP_LENGTH} characters`, line);
  return Object.freeze({
    periodMs: durationMs({ plugin, line }, period, 1),
    regexp: goRegexp({ plugin, line }, source),
    level: choice({ plugin, line }, level, Object.keys(LEVELS) as Level[]),
    showFirst,
  });
}

export function parseErrors(directives: readonly Directive[]): ErrorsConfig {
  const plugin = single(directives);
  // CoreDNS's one argument, `stdout`: clusterdns logs to stderr, as every other line it writes.
  if (plugin.args.length > 0) {
    throw pluginError(plugin, `takes no arguments, got ${plugin.args.length} (usage: errors { ... }; clusterdns logs to stderr, so CoreDNS's "stdout" cannot be honoured)`);
  }
  let stacktrace = false;
  const consolidate: Consolidation[] = [];
  for (const line of optionLines(plugin, ['stacktrace', 'consolidate'])) {
    if (line.name === 'stacktrace') {
      expectArgs(line, 0, 0, 'stacktrace', plugin);
      stacktrace = true;
    } else consolidate.push(consolidation(plugin, line));
  }
  return Object.freeze({ stacktrace, consolidate: Object.freeze(consolidate) });
}

export const errors: PluginSetup<ErrorsConfig> = {
  name: 'errors',
  parse: parseErrors,
  create(config, context) {
    const log = new ErrorLog(config, context.log.child({ plugin: 'errors' }), context.after);
    return { reportError: log.report, close: () => log.close() };
  },
};
