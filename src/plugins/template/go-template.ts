/**
 * The part of Go's text/template that CoreDNS template answers use, compiled once at setup into a function of the
 * query's data: text, `{{ .Field }}`, `{{ .Group.name }}`, `{{ index .Match 1 }}`, `{{ index .Group "name" }}`,
 * `{{ parseInt .Group.b 16 8 }}`, string and number literals, comments and the `{{-`/`-}}` trim markers. Anything
 * else Go's templates can do (variables, pipes, if/range/with, other functions, `.Message`, `.Question`, `.Meta`)
 * is a compile error, so a Corefile that relies on it fails to load instead of answering something else.
 *
 * Printing follows Go's fmt: strings as they are, numbers in decimal, a list as `[a b]`, a map as `map[k:v]`
 * with sorted keys, and a map entry that does not exist as `<no value>`.
 */

/** What a template sees (CoreDNS's templateData, without the parts we cannot give: Message, Question, Meta). */
export interface TemplateData {
  readonly Zone: string;
  readonly Name: string;
  readonly Regex: string;
  readonly Class: string;
  readonly Type: string;
  readonly Remote: string;
  readonly Match: readonly string[];
  readonly Group: Readonly<Record<string, string>>;
}

/** A template that does not compile; the message says where and why. */
export class TemplateSyntaxError extends Error {}

/** A template that failed while it ran (Go's Execute error): an index out of range, a parseInt of a non-number. */
export class TemplateExecError extends Error {}

export interface CompiledTemplate {
  readonly source: string;
  render(data: TemplateData): string;
}

type Value = string | bigint | readonly string[] | Readonly<Record<string, string>> | undefined;
type Expr = (data: TemplateData) => Value;

const STRING_FIELDS = new Set(['Zone', 'Name', 'Regex', 'Class', 'Type', 'Remote']);
const NOT_OURS: Readonly<Record<string, string>> = {
  Message: '.Message (the whole query) is not supported',
  Question: '.Question is not supported',
  Meta: '.Meta needs the metadata plugin, which clusterdns does not have',
};
const KEYWORDS = new Set(['if', 'else', 'end', 'range', 'with', 'define', 'template', 'block', 'break', 'continue', 'nil']);
const SUPPORTED = 'supported: .Name .Zone .Class .Type .Remote .Regex .Match .Group, index, parseInt';

export function compileTemplate(source: string): CompiledTemplate {
  const parts: Array<string | Expr> = [];
  let at = 0;
  let trimNext = false;
  while (at < source.length) {
    const open = source.indexOf('{{', at);
    let text = source.slice(at, open < 0 ? source.length : open);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (open < 0) {
      parts.push(text);
      break;
    }
    const trimBefore = /^\{\{-\s/.test(source.slice(open));
    if (trimBefore) text = text.replace(/\s+$/, '');
    parts.push(text);
    const { expr, end, trimAfter } = parseAction(source, open + (trimBefore ? 3 : 2));
    if (expr !== undefined) parts.push(expr);
    trimNext = trimAfter;
    at = end;
  }
  const fixed = parts.filter((part) => part !== '');
  return {
    source,
    render(data) {
      let out = '';
      for (const part of fixed) out += typeof part === 'string' ? part : print(part(data));
      return out;
    },
  };
}

/** One `{{ ... }}` from `start` (just inside the braces and any `-`): its expression (none for a comment). */
function parseAction(source: string, start: number): { expr: Expr | undefined; end: number; trimAfter: boolean } {
  const fail: (message: string) => never = (message) => {
    throw new TemplateSyntaxError(`template ${JSON.stringify(source)}: ${message}`);
  };
  const tokens: string[] = [];
  let i = start;
  for (;;) {
    while (i < source.length && /\s/.test(source[i]!)) i++;
    if (i >= source.length) fail('unclosed action: {{ without }}');
    const rest = source.slice(i);
    if (rest.startsWith('/*')) {
      const close = rest.indexOf('*/');
      if (close < 0) fail('unclosed comment');
      i += close + 2;
      if (tokens.length > 0) fail('a comment must be the whole action');
      const after = /^(\s+-)?}}/.exec(source.slice(i));
      if (after === null) fail('a comment must end its action: {{/* ... */}}');
      return { expr: undefined, end: i + after[0].length, trimAfter: after[1] !== undefined };
    }
    const close = /^-?}}/.exec(rest);
    if (close !== null && (close[0] === '}}' || /\s/.test(source[i - 1] ?? ''))) {
      if (tokens.length === 0) fail('empty action {{ }}');
      return { expr: parseExpr(tokens, fail), end: i + close[0].length, trimAfter: close[0] === '-}}' };
    }
    const token = /^(?:"(?:[^"\\]|\\.)*"|`[^`]*`|-?\d+|\.[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*|[A-Za-z_][A-Za-z0-9_]*|\S)/.exec(rest)![0];
    tokens.push(token);
    i += token.length;
  }
}

function parseExpr(tokens: readonly string[], fail: (message: string) => never): Expr {
  const [head, ...args] = tokens;
  if (head === 'index') {
    if (args.length < 2) fail('index wants an item and at least one key: {{ index .Match 1 }}');
    const item = term(args[0]!, fail);
    const keys = args.slice(1).map((arg) => term(arg, fail));
    return (data) => {
      let value = item(data);
      for (const key of keys) value = indexOf(value, key(data));
      return value;
    };
  }
  if (head === 'parseInt') {
    if (args.length !== 3) fail('parseInt wants a string, a base and a bit size: {{ parseInt .Group.b 16 8 }}');
    const [text, base, bits] = args.map((arg) => term(arg, fail)) as [Expr, Expr, Expr];
    return (data) => parseUint(text(data), base(data), bits(data));
  }
  if (tokens.length > 1) {
    const extra = tokens.find((token) => token === '|' || token.startsWith('$'));
    if (extra !== undefined) fail(`${extra === '|' ? 'pipes' : 'variables'} are not supported (${SUPPORTED})`);
    if (/^[A-Za-z_]/.test(head!)) return unknownFunction(head!, fail);
    // A field with arguments: the field's own refusal (.Meta) says more than "not a call".
    if (head!.startsWith('.') && head!.length > 1) term(head!, fail);
    fail(`"${tokens.join(' ')}" is not one value or a call of index or parseInt (${SUPPORTED})`);
  }
  return term(head!, fail);
}

function unknownFunction(name: string, fail: (message: string) => never): never {
  if (KEYWORDS.has(name)) fail(`{{ ${name} }} is not supported (${SUPPORTED})`);
  return fail(`function "${name}" is not supported (${SUPPORTED})`);
}

/** One argument: a field chain, a string or a whole number. */
function term(token: string, fail: (message: string) => never): Expr {
  if (token.startsWith('"')) {
    let text: string;
    try {
      text = JSON.parse(token) as string;
    } catch {
      return fail(`string ${token} has an escape Go and JSON do not share`);
    }
    return () => text;
  }
  if (token.startsWith('`')) {
    const text = token.slice(1, -1);
    return () => text;
  }
  if (/^-?\d+$/.test(token)) {
    const number = BigInt(token);
    return () => number;
  }
  if (token.startsWith('.') && token.length > 1) return field(token, fail);
  if (token.startsWith('$')) fail(`variables are not supported (${SUPPORTED})`);
  if (token === '.') fail(`{{ . }} (the whole data) is not supported (${SUPPORTED})`);
  if (/^[A-Za-z_]/.test(token)) return unknownFunction(token, fail);
  return fail(`"${token}" is not supported here (${SUPPORTED})`);
}

function field(chain: string, fail: (message: string) => never): Expr {
  const [name, ...more] = chain.slice(1).split('.') as [string, ...string[]];
  const why = NOT_OURS[name];
  if (why !== undefined) fail(why);
  if (STRING_FIELDS.has(name)) {
    if (more.length > 0) fail(`${chain}: .${name} is a string and has no fields`);
    return (data) => data[name as 'Name'];
  }
  if (name === 'Match') {
    if (more.length > 0) fail(`${chain}: .Match is a list; use {{ index .Match N }}`);
    return (data) => data.Match;
  }
  if (name === 'Group') {
    if (more.length > 1) fail(`${chain}: a group is a string and has no fields`);
    const group = more[0];
    if (group === undefined) return (data) => data.Group;
    return (data) => (Object.hasOwn(data.Group, group) ? data.Group[group] : undefined);
  }
  return fail(`.${name} is not a field of the template data (${SUPPORTED})`);
}

function indexOf(item: Value, key: Value): Value {
  if (Array.isArray(item)) {
    if (typeof key !== 'bigint') throw new TemplateExecError(`error calling index: cannot index slice with type ${typeName(key)}`);
    if (key < 0n || key >= BigInt(item.length)) throw new TemplateExecError(`error calling index: index out of range: ${key}`);
    return item[Number(key)];
  }
  if (item !== undefined && typeof item === 'object') {
    if (typeof key !== 'string') throw new TemplateExecError(`error calling index: value has type ${typeName(key)}; should be string`);
    return Object.hasOwn(item, key) ? (item as Record<string, string>)[key] : '';
  }
  throw new TemplateExecError(`error calling index: can't index item of type ${typeName(item)}`);
}

/** Go's strconv.ParseUint(text, base, bits), as CoreDNS's template function parseInt. */
function parseUint(text: Value, baseValue: Value, bitsValue: Value): bigint {
  if (typeof text !== 'string' || typeof baseValue !== 'bigint' || typeof bitsValue !== 'bigint') {
    throw new TemplateExecError(`error calling parseInt: wants (string, int, int), got (${typeName(text)}, ${typeName(baseValue)}, ${typeName(bitsValue)})`);
  }
  const fail: (why: string) => never = (why) => {
    throw new TemplateExecError(`error calling parseInt: strconv.ParseUint: parsing ${JSON.stringify(text)}: ${why}`);
  };
  let base = Number(baseValue);
  const bits = bitsValue === 0n ? 64 : Number(bitsValue);
  if (base !== 0 && (base < 2 || base > 36)) fail(`invalid base ${base}`);
  if (bits < 1 || bits > 64) fail(`invalid bit size ${bitsValue}`);
  let digits = text;
  if (base === 0) {
    // Go's base 0: a 0x, 0o, 0b or bare 0 prefix picks the base, and underscores may sit between digits.
    base = 10;
    const prefixed = digits.length > 1 && digits[0] === '0';
    if (prefixed) {
      const base2 = ({ x: 16, o: 8, b: 2 } as Record<string, number>)[digits[1]!.toLowerCase()];
      base = base2 ?? 8;
      digits = digits.slice(base2 === undefined ? 1 : 2);
    }
    if (digits.includes('_')) {
      if (!/^_?[0-9a-z]+(?:_[0-9a-z]+)*$/i.test(digits) || (digits.startsWith('_') && !prefixed)) fail('invalid syntax');
      digits = digits.replace(/_/g, '');
    }
  }
  if (digits === '') fail('invalid syntax');
  let value = 0n;
  for (const c of digits.toLowerCase()) {
    const digit = c >= '0' && c <= '9' ? c.charCodeAt(0) - 48 : c >= 'a' && c <= 'z' ? c.charCodeAt(0) - 87 : 99;
    if (digit >= base) fail('invalid syntax');
    value = value * BigInt(base) + BigInt(digit);
  }
  if (value >= 1n << BigInt(bits)) fail('value out of range');
  return value;
}

function typeName(value: Value): string {
  if (typeof value === 'string') return 'string';
  if (typeof value === 'bigint') return 'int';
  if (Array.isArray(value)) return '[]string';
  return value === undefined ? '<no value>' : 'map[string]string';
}

function print(value: Value): string {
  if (value === undefined) return '<no value>';
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return `[${value.join(' ')}]`;
  const map = value as Readonly<Record<string, string>>;
  return `map[${Object.keys(map).sort().map((key) => `${key}:${map[key]}`).join(' ')}]`;
}
