/**
 * log — one line per query of its server block, in CoreDNS's format (Common Log Format by default), through the
 * logger: the line is the JSON record's `msg`, beside the same facts as fields.
 * Syntax: `log [NAMES...] [FORMAT] { class all|denial|error|success...; minDuration DURATION }`, as often as
 * wanted: a query is logged by the first rule whose NAMES hold its name, when its class (or its slowness) fits.
 * Per query it costs throughput, so it is off unless given (as in CoreDNS). The server writes the lines (it knows
 * the reply and the time taken), asking queryLogRules which one a query gets.
 */
import { pluginError } from '../../corefile/errors.js';
import type { Directive } from '../../corefile/types.js';
import { isInZone, nameToKey } from '../../wire/index.js';
import type { LoggedQuery, PluginSetup } from '../plugin.js';
import { choice, durationMs, optionLines, zoneName } from '../setup-values.js';
import { COMMON_LOG_FORMAT, compileFormat, formatLine } from './format.js';

export type LogClass = 'all' | 'denial' | 'error' | 'success';

export interface LogRule {
  /** The name the rule covers and everything below it, as written (`.`, `example.org.`). */
  readonly zone: string;
  readonly format: string;
  readonly classes: ReadonlySet<LogClass>;
  /** Queries slower than this are logged whatever their class; undefined: none are for slowness. */
  readonly minDurationMs?: number;
}

export interface LogConfig {
  readonly rules: readonly LogRule[];
}

const CLASSES = ['all', 'denial', 'error', 'success'] as const;

function rulesOf(plugin: Directive): LogRule[] {
  const args = [...plugin.args];
  // CoreDNS's rule: a last argument with a placeholder in it is the format; the others are names.
  const format = args.length > 0 && args[args.length - 1]!.includes('{') ? args.pop()! : COMMON_LOG_FORMAT;
  const zones = args.length === 0 ? ['.'] : args.map((arg) => zoneName({ plugin }, arg));
  const classes = new Set<LogClass>();
  let minDurationMs: number | undefined;
  for (const line of optionLines(plugin, ['class', 'minDuration'])) {
    if (line.name === 'minDuration') {
      if (line.args.length !== 1) throw pluginError(plugin, 'option "minDuration" wants 1 argument (usage: minDuration DURATION)', line);
      minDurationMs = durationMs({ plugin, line }, line.args[0]!);
      continue;
    }
    if (line.args.length === 0) throw pluginError(plugin, 'option "class" wants at least 1 argument (usage: class all|denial|error|success...)', line);
    for (const arg of line.args) classes.add(choice({ plugin, line }, arg, CLASSES));
  }
  const ruleClasses = classes.size === 0 ? new Set<LogClass>(['all']) : classes;
  return zones.map((zone) => Object.freeze({ zone, format, classes: ruleClasses, ...(minDurationMs !== undefined && { minDurationMs }) }));
}

export const log: PluginSetup<LogConfig> = {
  name: 'log',
  parse: (directives) => Object.freeze({ rules: Object.freeze(directives.flatMap(rulesOf)) }),
  create: () => ({}),
};

/** CoreDNS's classes of a response: success (NOERROR with answers), denial (NXDOMAIN, or NODATA), error (the rest). */
function classOf(rcode: number, answers: number): LogClass {
  return rcode === 3 || (rcode === 0 && answers === 0) ? 'denial' : rcode === 0 ? 'success' : 'error';
}

/**
 * A block's log: the line a query gets, or undefined when it gets none. The first rule whose zone holds the name
 * decides, as in CoreDNS (a later rule for a wider zone is not asked).
 */
export function queryLogRules(config: LogConfig): (query: LoggedQuery) => string | undefined {
  const rules = config.rules.map((rule) => ({ ...rule, zoneKey: nameToKey(rule.zone), compiled: compileFormat(rule.format) }));
  return (logged) => {
    for (const rule of rules) {
      if (!isInZone(logged.query.key, rule.zoneKey)) continue;
      // ANCOUNT of the reply: a NOERROR without answers is a denial (NODATA).
      const kept = rule.classes.has('all') || rule.classes.has(classOf(logged.rcode, logged.reply.readUInt16BE(6)))
        || (rule.minDurationMs !== undefined && logged.seconds * 1000 > rule.minDurationMs);
      return kept ? formatLine(rule.compiled, logged) : undefined;
    }
    return undefined;
  };
}
