/**
 * The rewrite plugin's setup. Each `rewrite` line of a server block is one rule, applied in the order written
 * (rules.ts has the syntax). A rule may be written on its line or, CoreDNS's block form, spread over a block
 * whose lines are read as one rule: `rewrite stop { name regex FROM TO; answer name FROM TO }`.
 */
import { pluginError } from '../../corefile/errors.js';
import type { Directive } from '../../corefile/types.js';
import type { PluginSetup } from '../plugin.js';
import { RewriteHandler } from './index.js';
import { parseRule, USAGE, type Rule, type Word } from './rules.js';

export interface RewriteConfig {
  readonly rules: readonly Rule[];
}

export const rewrite: PluginSetup<RewriteConfig> = {
  name: 'rewrite',
  parse(directives) {
    return Object.freeze({ rules: Object.freeze(directives.map((directive) => parseRule(directive, wordsOf(directive)))) });
  },
  create: (config) => ({ handler: new RewriteHandler(config.rules) }),
};

/** The rule's words: its line's, then (block form) each block line's name and arguments. */
function wordsOf(plugin: Directive): Word[] {
  const words = plugin.args.map((text) => ({ text, at: plugin }));
  if (plugin.block === undefined) return words;
  // As CoreDNS: only a line that holds at most the mode may open a block.
  if (words.length >= 2) throw pluginError(plugin, `a rule on its line takes no block (usage: ${USAGE}, or rewrite [continue|stop] { name ...; answer ... })`);
  for (const line of plugin.block) {
    if (line.block !== undefined) throw pluginError(plugin, `"${line.name}" takes no block`, line);
    words.push({ text: line.name, at: line }, ...line.args.map((text) => ({ text, at: line })));
  }
  return words;
}
