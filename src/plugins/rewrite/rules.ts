/**
 * The rewrite plugin's rules, parsed from a rule's words as CoreDNS's rewrite takes them:
 *
 *   [continue|stop] name [exact|prefix|suffix|substring|regex] FROM TO [answer auto | answer name FROM TO | answer value FROM TO]...
 *   [continue|stop] type FROM TO
 *   [continue|stop] class FROM TO
 *   [continue|stop] ttl [exact|prefix|suffix|substring|regex] NAME SECONDS|MIN-MAX
 *
 * A name rule rewrites the question name (text: lower case, trailing dot, `\.` inside a label) and says how the
 * names of the answer are mapped back: `answer auto` reverses the rule (an exact rule always does), `answer name`
 * rewrites owner names and `answer value` the names records point at (CNAME, DNAME, NS, PTR, MX, SRV, NAPTR, the
 * SOA's primary server), both by Go regex. Type and class rules change the question's type or class; a ttl rule
 * leaves the question alone and sets (or clamps) the TTL of every record of the answer to a name it matches.
 * The other fields (edns0, cname, rcode) are errors.
 */
import { pluginError } from '../../corefile/errors.js';
import type { Directive } from '../../corefile/types.js';
import { CLASS_CODES, NameError, presentationToKey, TYPE_CODES } from '../../wire/index.js';
import { goRegexp, type GoRegexp } from '../go-regexp.js';

export type Mode = 'stop' | 'continue';
export type MatchType = 'exact' | 'prefix' | 'suffix' | 'substring' | 'regex';

/** Rewrites one name (as text); returns it unchanged when it does not apply. */
export type StringRewriter = (name: string) => string;

/**
 * How an answer is changed on its way back: owner names (`name`) or the names in the record data (`value`)
 * rewritten, or every record's TTL (`ttl`) kept between min and max.
 */
export type ResponseRule =
  | { readonly part: 'name' | 'value'; readonly rewrite: StringRewriter }
  | { readonly part: 'ttl'; readonly min: number; readonly max: number };

/** The parts of a question rules change: the name as text, the type, the class. */
export interface Asked {
  readonly name: string;
  readonly qtype: number;
  readonly qclass: number;
}

export interface Rule {
  readonly mode: Mode;
  /** The question after this rule, or undefined when the rule does not match it. */
  apply(asked: Asked): Asked | undefined;
  /** The response rules for a question this rule turned from `before` into `after`. */
  responseRules(before: Asked, after: Asked): readonly ResponseRule[];
}

interface NameRule {
  readonly apply: (name: string) => string | undefined;
  readonly responseRules: (original: string, rewritten: string) => readonly ResponseRule[];
}

/** One word of a rule, with the line it was written on (a block spreads a rule over several). */
export interface Word {
  readonly text: string;
  readonly at: Directive;
}

export const USAGE = 'rewrite [continue|stop] name [exact|prefix|suffix|substring|regex] FROM TO [answer auto|answer name FROM TO|answer value FROM TO]';
const TTL_USAGE = 'rewrite [continue|stop] ttl [exact|prefix|suffix|substring|regex] NAME SECONDS|MIN-MAX';
const MATCH_TYPES: readonly MatchType[] = ['exact', 'prefix', 'suffix', 'substring', 'regex'];
const FIELDS = ['name', 'type', 'class', 'ttl'];
const OTHER_FIELDS = ['edns0', 'cname', 'rcode'];
/** Go's int32 bound, which CoreDNS's TTL parser keeps to. */
const MAX_TTL = 2147483647;

/** The rule one `rewrite` line (or its block) writes. */
export function parseRule(plugin: Directive, words: readonly Word[]): Rule {
  const fail = (message: string, at: Directive = words[0]?.at ?? plugin): never => {
    throw pluginError(plugin, message, at);
  };
  let rest = words;
  let mode: Mode = 'stop';
  const first = rest[0]?.text.toLowerCase();
  if (first === 'stop' || first === 'continue') {
    mode = first;
    rest = rest.slice(1);
  }
  const field = rest[0];
  if (field === undefined) return fail(`no rule after "${words.map((word) => word.text).join(' ')}" (usage: ${USAGE})`);
  const fieldName = field.text.toLowerCase();
  if (fieldName === 'answer') fail('response rewrites must begin with a name rule', field.at);
  if (OTHER_FIELDS.includes(fieldName)) fail(`field "${fieldName}" is not supported by clusterdns (supported: ${FIELDS.join(', ')})`, field.at);
  const args = rest.slice(1);
  switch (fieldName) {
    case 'name': {
      const rule = parseNameRule(plugin, args, field.at, fail);
      return {
        mode,
        apply: (asked) => {
          const name = rule.apply(asked.name);
          return name === undefined ? undefined : { ...asked, name };
        },
        responseRules: (before, after) => rule.responseRules(before.name, after.name),
      };
    }
    case 'type':
    case 'class': {
      const codes = fieldName === 'type' ? TYPE_CODES : CLASS_CODES;
      if (args.length !== 2) fail(`${fieldName} rules must have exactly two arguments (rewrite [continue|stop] ${fieldName} FROM TO)`, field.at);
      const [from, to] = args.map((word) => codes[word.text.toUpperCase()] ?? fail(`invalid ${fieldName} "${word.text}"`, word.at)) as [number, number];
      const part = fieldName === 'type' ? 'qtype' : 'qclass';
      return { mode, apply: (asked) => (asked[part] === from ? { ...asked, [part]: to } : undefined), responseRules: () => [] };
    }
    case 'ttl':
      return parseTtlRule(plugin, mode, args, field.at, fail);
    default:
      return fail(`invalid rule type "${field.text}" (supported: ${FIELDS.join(', ')}; usage: ${USAGE})`, field.at);
  }
}

/** `ttl [MATCH-TYPE] NAME SECONDS|MIN-MAX`: the name as a name rule matches it, the TTLs kept in the range. */
function parseTtlRule(plugin: Directive, mode: Mode, args: readonly Word[], at: Directive, fail: (message: string, at?: Directive) => never): Rule {
  if (args.length < 2 || args.length > 3) fail(`a ttl rule wants a name and a TTL, with a match type before them (usage: ${TTL_USAGE})`, at);
  const type = args.length === 3 ? args[0]!.text.toLowerCase() : 'exact';
  if (!(MATCH_TYPES as readonly string[]).includes(type)) fail(`ttl rule supports only exact, prefix, suffix, substring, and regex name matching, received: ${args[0]!.text}`, args[0]!.at);
  const nameWord = args.at(-2)!;
  const ttlWord = args.at(-1)!;
  const range = /^(\d*)-(\d*)$/.exec(ttlWord.text);
  const [minText, maxText] = range === null ? [ttlWord.text, ttlWord.text] : [range[1]!, range[2]!];
  const bound = (text: string, otherwise: number): number => (text === '' ? otherwise : /^\d+$/.test(text) && Number(text) <= MAX_TTL ? Number(text) : fail(`invalid TTL "${ttlWord.text}" for a ttl rule (SECONDS, MIN-MAX, -MAX or MIN-, from 0 to ${MAX_TTL})`, ttlWord.at));
  const min = bound(minText, 0);
  const max = bound(maxText, MAX_TTL);
  if ((range !== null && minText === '' && maxText === '') || min > max) fail(`invalid TTL "${ttlWord.text}" for a ttl rule (SECONDS, MIN-MAX, -MAX or MIN-, from 0 to ${MAX_TTL})`, ttlWord.at);
  const matches = nameMatcher(plugin, type as MatchType, nameWord);
  const rules: readonly ResponseRule[] = [{ part: 'ttl', min, max }];
  return { mode, apply: (asked) => (matches(asked.name) ? asked : undefined), responseRules: () => rules };
}

function nameMatcher(plugin: Directive, type: MatchType, word: Word): (name: string) => boolean {
  if (type === 'regex') {
    const pattern = goRegexp({ plugin, line: word.at }, word.text);
    return (name) => pattern.regexp.test(name);
  }
  const text = normalize(word.text);
  switch (type) {
    case 'exact': return (name) => name === text;
    case 'prefix': return (name) => name.startsWith(text);
    case 'suffix': return (name) => name.endsWith(text);
    default: return (name) => name.includes(text);
  }
}

function parseNameRule(plugin: Directive, args: readonly Word[], at: Directive, fail: (message: string, at?: Directive) => never): NameRule {
  if (args.length < 2) fail(`too few arguments for a name rule (usage: ${USAGE})`, at);
  let matchType: MatchType = 'exact';
  let fromWord = args[0]!;
  let toWord = args[1]!;
  if (args.length >= 3) {
    const type = args[0]!.text.toLowerCase();
    if (!(MATCH_TYPES as readonly string[]).includes(type)) {
      fail(`name rule supports only exact, prefix, suffix, substring, and regex name matching, received: ${args[0]!.text}`, args[0]!.at);
    }
    matchType = type as MatchType;
    fromWord = args[1]!;
    toWord = args[2]!;
  }
  const answers = args.length > 3 ? parseAnswerRules(plugin, args.slice(3), fail) : { auto: false, rules: [] };
  const to = normalize(toWord.text);
  if (matchType === 'regex') {
    const pattern = goRegexp({ plugin, line: fromWord.at }, fromWord.text);
    checkGroups(pattern, toWord, fail);
    return regexRule(pattern, to, answers.auto, answers.rules);
  }
  const from = normalize(fromWord.text);
  switch (matchType) {
    case 'exact':
      try {
        presentationToKey(to);
      } catch (error) {
        if (error instanceof NameError) fail(`"${toWord.text}" is not a name: ${error.message}`, toWord.at);
        throw error;
      }
      // An exact rule always maps its answer back.
      return stringRule((name) => (name === from ? to : undefined), true, answers.rules);
    case 'prefix':
      return stringRule((name) => (name.startsWith(from) ? to + name.slice(from.length) : undefined), answers.auto, answers.rules);
    case 'substring':
      return stringRule((name) => (name.includes(from) ? name.replaceAll(from, to) : undefined), answers.auto, answers.rules);
    default: {
      // A suffix rule maps back by the reverse suffix rule, which also covers names below the question.
      const back = suffixRewriter(to, from);
      const auto: ResponseRule[] = answers.auto ? [{ part: 'name', rewrite: back }, { part: 'value', rewrite: back }] : [];
      return stringRule((name) => (name.endsWith(from) ? name.slice(0, name.length - from.length) + to : undefined), false, [...auto, ...answers.rules]);
    }
  }
}

function stringRule(apply: (name: string) => string | undefined, auto: boolean, rules: readonly ResponseRule[]): NameRule {
  return { apply, responseRules: (original, rewritten) => responseRulesFor(auto, rules, original, rewritten) };
}

function regexRule(pattern: GoRegexp, to: string, auto: boolean, rules: readonly ResponseRule[]): NameRule {
  const rewrite = regexRewriter(pattern, to);
  return {
    apply: (name) => (pattern.regexp.test(name) ? rewrite(name) : undefined),
    responseRules: (original, rewritten) => responseRulesFor(auto, rules, original, rewritten),
  };
}

/** With auto, the rewritten name (and names below it) map back to the asked one, in owners and in values. */
function responseRulesFor(auto: boolean, rules: readonly ResponseRule[], original: string, rewritten: string): readonly ResponseRule[] {
  if (!auto) return rules;
  const back = remapRewriter(rewritten, original);
  return [{ part: 'name', rewrite: back }, { part: 'value', rewrite: back }, ...rules];
}

/** `answer auto`, `answer name FROM TO`, `answer value FROM TO`, the word `answer` optional after the first. */
function parseAnswerRules(plugin: Directive, words: readonly Word[], fail: (message: string, at?: Directive) => never): { auto: boolean; rules: ResponseRule[] } {
  if (words.length < 2) fail(`invalid answer rule "${words.map((word) => word.text).join(' ')}" (usage: ${USAGE})`, words[0]!.at);
  let auto = false;
  let names = 0;
  const rules: ResponseRule[] = [];
  for (let i = 0; i < words.length; ) {
    if (words[i]!.text.toLowerCase() === 'answer') i++;
    else if (i === 0) fail(`"${words[0]!.text}" after a name rule: only answer rules may follow (usage: ${USAGE})`, words[0]!.at);
    const kind = words[i];
    if (kind === undefined) return fail('type missing for answer rule (auto, name or value)', words[i - 1]!.at);
    i++;
    const part = kind.text.toLowerCase();
    if (part === 'auto') {
      auto = true;
      continue;
    }
    if (part !== 'name' && part !== 'value') fail(`invalid type "${kind.text}" for answer rule (auto, name or value)`, kind.at);
    const [from, to] = [words[i], words[i + 1]];
    if (from === undefined || to === undefined) return fail(`${part} answer rule: 2 arguments required (answer ${part} FROM TO)`, kind.at);
    i += 2;
    const pattern = goRegexp({ plugin, line: from.at }, from.text);
    checkGroups(pattern, to, fail);
    rules.push({ part: part as 'name' | 'value', rewrite: regexRewriter(pattern, normalize(to.text)) });
    if (part === 'name') names++;
  }
  if (auto && names > 0) fail('auto name answer rule cannot be combined with explicit name answer rules', words[0]!.at);
  return { auto, rules };
}

function checkGroups(pattern: GoRegexp, to: Word, fail: (message: string, at?: Directive) => never): void {
  const used = [...to.text.matchAll(/\{(\d+)\}/g)].map((match) => Number(match[1]));
  if (used.some((group) => group > pattern.groups)) {
    fail(`the rewrite regex pattern (${to.text}) uses more subexpressions than its corresponding matching regex pattern (${pattern.source})`, to.at);
  }
}

/** CoreDNS's plugin.Name(...).Normalize(): lower case, with a trailing dot. */
function normalize(text: string): string {
  const lower = text.toLowerCase();
  // Absolute when it ends in a dot that is not escaped (`a\.` is one label holding a dot).
  return /(?:^|[^\\])(?:\\\\)*\.$/.test(lower) ? lower : `${lower}.`;
}

/** A whole match of `pattern` becomes `to` with `{N}` replaced by group N (the whole name, not just the match). */
function regexRewriter(pattern: GoRegexp, to: string): StringRewriter {
  return (name) => {
    const match = pattern.regexp.exec(name);
    if (match === null) return name;
    let out = to;
    match.forEach((group, i) => (out = out.replaceAll(`{${i}}`, group ?? '')));
    return out;
  };
}

/** `orig` and the names below it become `replacement` and the names below that. */
function remapRewriter(orig: string, replacement: string): StringRewriter {
  return (name) => {
    if (name === orig) return replacement;
    if (name.endsWith(`.${orig}`)) return name.slice(0, name.length - orig.length) + replacement;
    return name;
  };
}

function suffixRewriter(suffix: string, replacement: string): StringRewriter {
  return (name) => (name.endsWith(suffix) ? name.slice(0, name.length - suffix.length) + replacement : name);
}
