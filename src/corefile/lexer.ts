/**
 * Caddyfile tokens, grouped into the lines they stand on. A line is what the grammar is made of: a server block's
 * keys, a directive with its arguments, a `}`. The rules are Caddy v1's (what CoreDNS reads):
 *  - tokens are separated by white space; `#` outside quotes starts a comment, even in the middle of a word;
 *  - a token that starts with `"` runs to the next unescaped `"`, across newlines; inside it only `\"` is an
 *    escape (any other backslash is kept with the character after it, so regexes read as written; `\\"` is
 *    two backslashes and the end of the token); a quoted token is never a brace;
 *  - `{$NAME}` and `{%NAME%}` anywhere in a token become the variable's value, or nothing when it is unset.
 *    A value is not expanded again, and cannot split a token or make a brace.
 * A quoted token's newlines do not end its line: what follows the closing quote belongs to the same line.
 */
import { corefileError } from './errors.js';

export interface Token {
  readonly text: string;
  /** Set only for an unquoted `{` or `}`: the tokens that shape blocks. */
  readonly brace: '{' | '}' | undefined;
  readonly file: string;
  /** The line the token starts on. */
  readonly line: number;
}

export type Line = readonly Token[];

export type Env = Readonly<Record<string, string | undefined>>;

const ENV_REFERENCE = /\{\$([^}]+)\}|\{%([^}]+?)%\}/g;

export function substituteEnv(text: string, env: Env): string {
  return text.replace(ENV_REFERENCE, (_match, unix: string | undefined, windows: string | undefined) => env[unix ?? windows ?? ''] ?? '');
}

export function lex(text: string, file: string, env: Env): Line[] {
  const lines: Token[][] = [];
  let current: Token[] = [];
  const endLine = (): void => {
    if (current.length > 0) lines.push(current);
    current = [];
  };
  const push = (raw: string, quoted: boolean, line: number): void => {
    const brace = !quoted && (raw === '{' || raw === '}') ? raw : undefined;
    current.push({ text: substituteEnv(raw, env), brace, file, line });
  };

  let line = 1;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; // a byte-order mark from an editor is not a token
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '\n') {
      line++;
      i++;
      endLine();
    } else if (/\s/.test(ch)) {
      i++;
    } else if (ch === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (ch === '"') {
      const startLine = line;
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) throw corefileError({ file, line: startLine }, 'unterminated quoted string');
        const c = text[i]!;
        if (c === '\\' && i + 1 < text.length) {
          // A backslash takes the next character with it: `\"` is a quote, `\\` and `\.` stay as written.
          const next = text[i + 1]!;
          if (next === '\n') line++;
          value += next === '"' ? '"' : c + next;
          i += 2;
        } else if (c === '"') {
          i++;
          break;
        } else {
          if (c === '\n') line++;
          value += c;
          i++;
        }
      }
      push(value, true, startLine);
    } else {
      const start = i;
      while (i < text.length && !/\s/.test(text[i]!) && text[i] !== '#') i++;
      push(text.slice(start, i), false, line);
    }
  }
  endLine();
  return lines;
}
