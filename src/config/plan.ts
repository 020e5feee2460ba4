/**
 * A parsed Corefile → the validated plan of every server block: its zones and port, and each of its plugins'
 * frozen config in chain order. Every plugin parses its own lines (plugins/<name>/setup.ts); this file only knows
 * the shape: unknown plugins and a plugin that needs another are errors naming the file and line (the parser
 * has refused a zone served twice on a port already). The setups are passed in, so config/ names no plugin.
 */
import { CorefileError } from '../corefile/errors.js';
import type { Directive, ServerBlock } from '../corefile/types.js';
import type { PluginSetup } from '../plugins/plugin.js';

export interface PlannedPlugin {
  readonly setup: PluginSetup<unknown>;
  readonly config: unknown;
}

export interface BlockPlan {
  /** Absolute, lower-case zones: `.`, `example.org.`. */
  readonly zones: readonly string[];
  readonly port: number;
  /** Its plugins in chain order, each with the config its setup parsed. */
  readonly plugins: readonly PlannedPlugin[];
  readonly file: string;
  readonly line: number;
}

export const DEFAULT_DNS_PORT = 53;

export function planServers(blocks: readonly ServerBlock[], setups: readonly PluginSetup<unknown>[], defaultPort = DEFAULT_DNS_PORT): BlockPlan[] {
  const known = new Map(setups.map((setup) => [setup.name, setup]));
  const plans: BlockPlan[] = [];
  if (blocks.length === 0) throw new CorefileError({ file: 'Corefile', line: 1 }, 'no server blocks: nothing to serve');
  for (const block of blocks) {
    const byName = new Map<string, Directive[]>();
    for (const directive of block.directives) {
      if (!known.has(directive.name)) {
        throw new CorefileError(directive, `unknown plugin "${directive.name}" (supported: ${[...known.keys()].sort().join(', ')})`);
      }
      byName.set(directive.name, [...(byName.get(directive.name) ?? []), directive]);
    }
    const ports = new Set(block.keys.map((key) => key.port ?? defaultPort));
    for (const port of ports) {
      const zones = [...new Set(block.keys.filter((key) => (key.port ?? defaultPort) === port).map((key) => key.zone))];
      const plugins = setups.flatMap((setup) => {
        const directives = byName.get(setup.name);
        return directives === undefined ? [] : [{ setup, config: setup.parse(directives, zones) }];
      });
      for (const { setup } of plugins) {
        for (const needed of setup.requires ?? []) {
          if (!byName.has(needed)) throw new CorefileError(byName.get(setup.name)![0]!, `plugin "${setup.name}": needs the ${needed} plugin in the same server block`);
        }
      }
      plans.push(Object.freeze({ zones: Object.freeze(zones), port, plugins: Object.freeze(plugins), file: block.file, line: block.line }));
    }
  }
  return plans;
}
