/**
 * Lines → server blocks. A block is its keys, then `{`, its directives and `}`; a directive is a name and its
 * arguments, with a `{ }` block of option lines (each a directive, which may nest again). `{` ends the line it
 * opens on (`{ }` on one line is an empty block) and `}` stands alone on its line. A block written without
 * braces takes everything after its keys. Snippets `(name) { ... }` are defined at the top level.
 */
import { readFileSync } from 'node:fs';
import { normalize } from 'node:path';
import { ConfigError } from '../errors.js';
import { corefileError, type CorefilePlace } from './errors.js';
import { defaultFileAccess, LineReader } from './imports.js';
import { parseServerKey } from './keys.js';
import { lex, type Env, type Line, type Token } from './lexer.js';
import type { Directive, ParseOptions, ServerBlock, ServerKey } from './types.js';

export function parseCorefile(text: string, options: ParseOptions = {}): ServerBlock[] {
  const file = normalize(options.file ?? 'Corefile');
  const env = options.env ?? process.env;
  const reader = new LineReader(lex(text, file, env), file, {
    readFile: options.readFile ?? defaultFileAccess.readFile,
    listDir: options.listDir ?? defaultFileAccess.listDir,
    lex: (imported, path) => lex(imported, path, env),
  });
  const blocks: ServerBlock[] = [];
  for (let line = reader.next(); line !== undefined; line = reader.next()) {
    const head = line[0]!;
    const snippet = head.brace === undefined ? /^\((.*)\)$/.exec(head.text) : null;
    if (snippet) defineSnippet(snippet[1]!, line, reader);
    else blocks.push(serverBlock(line, reader));
  }
  checkDuplicates(blocks);
  return deepFreeze(blocks);
}

/** Reads and parses a Corefile; its imports are relative to its directory. */
export function loadCorefile(path: string, env?: Env): ServerBlock[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read the Corefile: ${(error as Error).message}`);
  }
  return parseCorefile(text, { file: path, env });
}

interface Braces {
  /** The tokens before any brace. */
  readonly tokens: Line;
  /** The `{` that ends the line, if one does. */
  readonly open: Token | undefined;
  /** `{ }` on the one line: a block with nothing in it. */
  readonly empty: boolean;
  /** The line is a lone `}`. */
  readonly close: boolean;
}

function braces(line: Line): Braces {
  if (line[0]!.brace === '}') {
    if (line.length > 1) throw corefileError(line[1]!, '"}" must be alone on its line');
    return { tokens: [], open: undefined, empty: false, close: true };
  }
  for (let i = 0; i < line.length; i++) {
    const token = line[i]!;
    if (token.brace === '}') throw corefileError(token, '"}" must be alone on its line');
    if (token.brace !== '{') continue;
    const after = line[i + 1];
    const empty = after?.brace === '}' && i + 2 === line.length;
    if (after !== undefined && !empty) throw corefileError(token, `"{" must end its line (found "${after.text}" after it)`);
    return { tokens: line.slice(0, i), open: token, empty, close: false };
  }
  return { tokens: line, open: undefined, empty: false, close: false };
}

function serverBlock(first: Line, reader: LineReader): ServerBlock {
  const keyTokens: Token[] = [];
  let line = first;
  for (;;) {
    const parts = braces(line);
    if (parts.close) throw corefileError(line[0]!, '"}" closes nothing: no block is open');
    keyTokens.push(...parts.tokens);
    const last = parts.tokens.at(-1);
    // Caddy lets a trailing comma carry the keys on to the next line.
    if (parts.open === undefined && last?.text.endsWith(',')) {
      const next = reader.next();
      if (next === undefined) throw corefileError(last, 'a key must follow the trailing ","');
      line = next;
      continue;
    }
    const at: CorefilePlace = keyTokens[0] ?? parts.open!;
    const keys: ServerKey[] = keyTokens.flatMap((token) =>
      token.text.split(',').filter((part) => part !== '').flatMap((part) => parseServerKey(part, token)),
    );
    if (keys.length === 0) throw corefileError(at, 'a server block must start with the zones it serves (e.g. ".:53 {")');
    const directives = parts.empty ? [] : block(reader, parts.open);
    return { keys, directives, file: at.file, line: at.line };
  }
}

/** The directives up to the `}` that closes `open`, or to the end of the Corefile for a block without braces. */
function block(reader: LineReader, open: Token | undefined): Directive[] {
  const directives: Directive[] = [];
  for (;;) {
    const line = reader.next();
    if (line === undefined) {
      if (open !== undefined) throw corefileError(open, '"{" is never closed');
      return directives;
    }
    const parts = braces(line);
    if (parts.close) {
      if (open === undefined) throw corefileError(line[0]!, '"}" closes nothing: no block is open');
      return directives;
    }
    const [name, ...args] = parts.tokens;
    if (name === undefined) throw corefileError(parts.open!, '"{" must follow a directive on the same line');
    const inner = parts.open === undefined ? undefined : parts.empty ? [] : block(reader, parts.open);
    directives.push({ name: name.text, args: args.map((arg) => arg.text), block: inner, file: name.file, line: name.line });
  }
}

function defineSnippet(name: string, head: Line, reader: LineReader): void {
  const parts = braces(head);
  const at = head[0]!;
  if (parts.tokens.length !== 1 || parts.open === undefined) {
    throw corefileError(at, `a snippet is written "${at.text} {", its lines, then "}"`);
  }
  if (name === '') throw corefileError(at, 'a snippet needs a name: "(name) {"');
  const body: Line[] = [];
  // The body is kept as written (imports in it are expanded where the snippet is imported); only its braces
  // are counted here, to find the "}" that ends it.
  for (let depth = parts.empty ? 0 : 1; depth > 0; ) {
    const line = reader.nextRaw();
    if (line === undefined) throw corefileError(parts.open, '"{" is never closed');
    const inner = braces(line);
    if (inner.close) depth--;
    else if (inner.open !== undefined && !inner.empty) depth++;
    if (depth > 0) body.push(line);
  }
  reader.defineSnippet(name, body, at);
}

/** CoreDNS refuses to start when two blocks serve the same zone on the same port. */
function checkDuplicates(blocks: readonly ServerBlock[]): void {
  const seen = new Map<string, ServerBlock>();
  for (const server of blocks) {
    for (const key of server.keys) {
      const port = key.port ?? 53;
      const id = `${key.zone} ${port}`;
      const earlier = seen.get(id);
      if (earlier === server) throw corefileError(server, `zone ${key.zone} on port ${port} is listed twice in this block`);
      if (earlier) {
        throw corefileError(server, `zone ${key.zone} on port ${port} is already served by the block at ${earlier.file}:${earlier.line}`);
      }
      seen.set(id, server);
    }
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
