/**
 * Flag tables and their parsing, shared by every command: node:util's parseArgs in strict mode, its errors cut
 * to one line that points at the command's --help, and the --help text generated from the same table.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../errors.js';

export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  readonly value?: string;
  readonly default?: string;
  readonly help: string;
}

export type FlagValues = Record<string, string | boolean | Array<string | boolean> | undefined>;

/** Parses `args` against `flags`; unknown flags and missing values fail naming the flag and `clusterdns <command> --help`. */
export function parseFlags(command: string, flags: Readonly<Record<string, FlagSpec>>, args: readonly string[], allowPositionals = false): { values: FlagValues; positionals: string[] } {
  try {
    const options = Object.fromEntries(
      Object.entries(flags).map(([name, spec]) => [name, { type: spec.type, ...(spec.multiple && { multiple: true }) }]),
    );
    return parseArgs({ args: [...args], options, strict: true, allowPositionals });
  } catch (error) {
    // parseArgs explains itself over several lines and suggests '--' for positionals, which we never take.
    const reason = (error as Error).message.replace(/\s*To specify a positional argument.*$/s, '').split('\n').join(' ');
    throw new ConfigError(`${reason.replace(/\.?\s*$/, '')}; see 'clusterdns ${command} --help'`);
  }
}

/**
 * The --help text: usage, what the command does, then one line per flag with its default. The help column starts
 * two spaces past the longest flag of the command, so no flag runs into its text however long it grows.
 */
export function flagsHelp(usage: string, description: string, flags: Readonly<Record<string, FlagSpec>>): string {
  const lefts = Object.entries(flags).map(([name, spec]) => `  --${name}${spec.value ? ` ${spec.value}` : ''}`);
  const column = Math.max(...lefts.map((left) => left.length)) + 2;
  const rows = Object.values(flags).map((spec, index) => {
    const def = spec.default !== undefined ? ` (default ${spec.default})` : '';
    return `${lefts[index]!.padEnd(column)}${spec.help}${def}`;
  });
  return [`Usage: ${usage}`, '', description, '', 'Flags:', ...rows].join('\n');
}
