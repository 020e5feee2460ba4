/**
 * The one error a Corefile produces, and the few checks every plugin setup shares, so that all of them report a
 * bad stanza the same way: `file:line: plugin "name": what is wrong`.
 */
import { ConfigError } from '../errors.js';
import type { Directive } from './types.js';

/** Where in which file: a token, a directive, a server block. */
export interface CorefilePlace {
  readonly file: string;
  readonly line: number;
}

/** A Corefile that does not parse or does not validate. The message starts with `file:line: `. */
export class CorefileError extends ConfigError {
  readonly file: string;
  readonly line: number;

  constructor(at: CorefilePlace, message: string) {
    super(`${at.file}:${at.line}: ${message}`);
    this.name = 'CorefileError';
    this.file = at.file;
    this.line = at.line;
  }
}

export function corefileError(at: CorefilePlace, message: string): CorefileError {
  return new CorefileError(at, message);
}

/** `file:line: plugin "cache": message`, at the plugin's line or at one of its option lines. */
export function pluginError(plugin: Directive, message: string, at: CorefilePlace = plugin): CorefileError {
  return new CorefileError(at, `plugin "${plugin.name}": ${message}`);
}

/** A plugin name the chain does not know, with the list of those it does. */
export function unknownPlugin(directive: Directive, supported: readonly string[]): CorefileError {
  return new CorefileError(directive, `unknown plugin "${directive.name}" (supported: ${supported.join(', ')})`);
}

/** An option line inside a plugin's block that the plugin does not know, with the list of those it does. */
export function unknownOption(plugin: Directive, option: Directive, supported: readonly string[]): CorefileError {
  return pluginError(plugin, `unknown option "${option.name}" (supported: ${supported.join(', ')})`, option);
}

/**
 * The directive's arguments, after checking there are between `min` and `max` of them (`max` may be Infinity).
 * `usage` is the syntax line from the plugin's README. Pass `plugin` when `directive` is one of its option lines.
 */
export function expectArgs(
  directive: Directive,
  min: number,
  max: number,
  usage: string,
  plugin?: Directive,
): readonly string[] {
  const count = directive.args.length;
  if (count >= min && count <= max) return directive.args;
  const wants = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
  const what = `${wants} argument${min === max && min === 1 ? '' : 's'}, got ${count} (usage: ${usage})`;
  if (plugin === undefined) throw pluginError(directive, `wants ${what}`);
  throw pluginError(plugin, `option "${directive.name}" wants ${what}`, directive);
}
