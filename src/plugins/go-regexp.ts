/**
 * Go regular expressions (RE2 syntax, what CoreDNS's template `match` and rewrite `regex` take) as JavaScript
 * RegExps. Most of RE2 means the same in both; the parts that differ are translated (`(?P<name>`, a leading
 * `(?i)`/`(?s)`/`(?m)`, `\A`, `\z`), and the parts either side would read differently or Go refuses
 * (lookaround, backreferences, `\Q…\E`, `\p{…}`, POSIX classes, `(?U)`) are errors, so a Corefile that
 * CoreDNS would reject or read otherwise fails to load here too.
 */
import { pluginError } from '../corefile/errors.js';
import type { ValueAt } from './setup-values.js';

export interface GoRegexp {
  readonly regexp: RegExp;
  /** How many capture groups it has (Go's NumSubexp). */
  readonly groups: number;
  /** The names of its named groups. */
  readonly names: readonly string[];
  /** As written in the Corefile. */
  readonly source: string;
}

const UNSUPPORTED: ReadonlyArray<[RegExp, string]> = [
  [/\(\?<?[=!]/, 'lookaround assertions'],
  [/\\[1-9]|\\k</, 'backreferences'],
  [/\\Q/, '\\Q...\\E quoting'],
  [/\\[pP]/, 'Unicode classes (\\p)'],
  [/\[\[:/, 'POSIX classes ([[:alpha:]])'],
  [/\\[CZ]/, '\\C and \\Z'],
];

export function goRegexp(at: ValueAt, source: string): GoRegexp {
  const fail: (message: string) => never = (message) => {
    const where = at.line === undefined || at.line === at.plugin ? '' : `option "${at.line.name}": `;
    throw pluginError(at.plugin, `${where}regular expression "${source}": ${message}`, at.line ?? at.plugin);
  };
  // Escaped backslashes first, so `\\1` (a backslash then 1) is not read as a backreference.
  const plain = source.replace(/\\\\/g, '');
  for (const [pattern, what] of UNSUPPORTED) if (pattern.test(plain)) fail(`${what} are not supported (Go's regexp has none, or reads them otherwise)`);
  let body = source;
  let flags = '';
  const leading = /^\(\?([a-zA-Z]+)\)/.exec(body);
  if (leading !== null) {
    for (const flag of leading[1]!) if (!'ism'.includes(flag)) fail(`flag ${flag} is not supported (supported: i, s, m)`);
    flags = leading[1]!;
    body = body.slice(leading[0].length);
  }
  if (/\(\?[a-zA-Z]+\)/.test(body)) fail('flags are supported at the start only, e.g. (?i)^web\\.');
  body = body.replace(/\(\?P</g, '(?<').replace(/(?<!\\)((?:\\\\)*)\\A/g, '$1(?<![\\s\\S])').replace(/(?<!\\)((?:\\\\)*)\\z/g, '$1(?![\\s\\S])');
  let regexp: RegExp;
  try {
    regexp = new RegExp(body, flags);
  } catch (error) {
    return fail((error as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /, ''));
  }
  const groups = new RegExp(`${body}|`, flags).exec('')!.length - 1;
  const names = [...body.matchAll(/\(\?<([A-Za-z_][A-Za-z0-9_]*)>/g)].map((match) => match[1]!);
  return { regexp, groups, names, source };
}
