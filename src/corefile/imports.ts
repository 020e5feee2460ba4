/**
 * The stream of lines the parser reads, with `import` lines replaced by what they name, as CoreDNS's `import`
 * does: a snippet defined earlier, else a file or a glob relative to the directory of the file the `import` line
 * is written in. Imported lines keep their own file and line. A glob that matches nothing imports nothing (k3s and
 * others ship `import /etc/coredns/custom/*.server` with the folder often empty); a plain path that does not
 * exist is an error; so is a cycle. Globs follow Caddy's rules: at most one `*` and one `?`, no `[...]`, matches
 * in name order, and names starting with "." skipped when the last segment starts with `*` (a ConfigMap volume's
 * `..data` entries).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import { corefileError } from './errors.js';
import type { Line, Token } from './lexer.js';

export interface FileAccess {
  readonly readFile: (path: string) => string;
  readonly listDir: (dir: string) => string[];
  /** Turns an imported file's text into lines (the lexer, with the same environment). */
  readonly lex: (text: string, file: string) => Line[];
}

export const defaultFileAccess = {
  readFile: (path: string): string => readFileSync(path, 'utf8'),
  listDir: (dir: string): string[] => {
    try {
      return readdirSync(dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw error;
    }
  },
};

interface Source {
  readonly lines: readonly Line[];
  index: number;
  /** What it was imported through, outermost first, ending with itself: files by path, snippets as `(name)`. */
  readonly chain: readonly string[];
}

export class LineReader {
  private readonly stack: Source[];
  private readonly snippets = new Map<string, { readonly lines: readonly Line[]; readonly at: Token }>();

  constructor(
    lines: readonly Line[],
    file: string,
    private readonly files: FileAccess,
  ) {
    this.stack = [{ lines, index: 0, chain: [file] }];
  }

  /** The next line, with imports expanded; undefined at the end of the whole Corefile. */
  next(): Line | undefined {
    for (;;) {
      const source = this.stack.at(-1);
      if (source === undefined) return undefined;
      const line = source.lines[source.index++];
      if (line === undefined) {
        this.stack.pop();
      } else if (line[0]!.text === 'import') {
        this.expand(line, source);
      } else {
        return line;
      }
    }
  }

  /** The next line of the source the last line came from, imports left as written: a snippet's body. */
  nextRaw(): Line | undefined {
    const source = this.stack.at(-1);
    return source === undefined ? undefined : source.lines[source.index++];
  }

  defineSnippet(name: string, lines: readonly Line[], at: Token): void {
    const earlier = this.snippets.get(name);
    if (earlier) throw corefileError(at, `snippet (${name}) is already defined at ${earlier.at.file}:${earlier.at.line}`);
    this.snippets.set(name, { lines, at });
  }

  private expand(line: Line, from: Source): void {
    const at = line[0]!;
    if (line.length !== 2) {
      throw corefileError(at, `import takes one argument (a snippet name, a file or a glob), got ${line.length - 1}`);
    }
    const target = line[1]!.text;
    const snippet = this.snippets.get(target);
    if (snippet) {
      this.push(snippet.lines, this.chain(`(${target})`, from, at));
      return;
    }
    const path = isAbsolute(target) ? normalize(target) : join(dirname(at.file), target);
    const failure = (why: string): never => {
      throw corefileError(at, `import "${target}": ${why}`);
    };
    if (!/[*?[]/.test(path)) {
      const chain = this.chain(path, from, at);
      const text = this.read(path, failure, target.includes('/') ? `no file ${path}` : `no snippet named "${target}" and no file ${path}`);
      this.push(this.files.lex(text, path), chain);
      return;
    }
    if (path.includes('[') || count(path, '*') > 1 || count(path, '?') > 1) {
      failure('a glob may have at most one "*" and one "?", and no "[...]" (as CoreDNS)');
    }
    const matches = this.glob(path, failure);
    // Pushed last first, so the first match is read first.
    for (const match of matches.reverse()) {
      const chain = this.chain(match, from, at);
      this.push(this.files.lex(this.read(match, failure, `no file ${match}`), match), chain);
    }
  }

  /** The import chain of `name` when `from` imports it; checked before the file is read. */
  private chain(name: string, from: Source, at: Token): readonly string[] {
    const chain = [...from.chain, name];
    if (from.chain.includes(name)) throw corefileError(at, `import cycle: ${chain.join(' -> ')}`);
    return chain;
  }

  private push(lines: readonly Line[], chain: readonly string[]): void {
    this.stack.push({ lines, index: 0, chain });
  }

  private read(path: string, failure: (why: string) => never, missing: string): string {
    try {
      return this.files.readFile(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') failure(missing);
      return failure(`cannot read ${path}: ${(error as Error).message}`);
    }
  }

  /** Walks the pattern one path segment at a time; once a segment has a wildcard, later ones are looked up too. */
  private glob(pattern: string, failure: (why: string) => never): string[] {
    const segments = pattern.split('/').filter((segment) => segment !== '');
    let found = [pattern.startsWith('/') ? '/' : ''];
    let listing = false;
    for (const segment of segments) {
      listing ||= /[*?]/.test(segment);
      if (!listing) {
        found = found.map((dir) => join(dir, segment));
        continue;
      }
      const matcher = segmentMatcher(segment);
      found = found.flatMap((dir) => this.list(dir === '' ? '.' : dir, failure).filter((name) => matcher.test(name)).map((name) => join(dir, name)));
    }
    if (segments.at(-1)!.startsWith('*')) found = found.filter((path) => !path.slice(path.lastIndexOf('/') + 1).startsWith('.'));
    return found;
  }

  private list(dir: string, failure: (why: string) => never): string[] {
    try {
      return [...this.files.listDir(dir)].sort();
    } catch (error) {
      return failure(`cannot list ${dir}: ${(error as Error).message}`);
    }
  }
}

function count(text: string, char: string): number {
  return text.split(char).length - 1;
}

/** Go's filepath.Match for one segment without classes: `*` any run of characters, `?` any one. */
function segmentMatcher(segment: string): RegExp {
  const source = segment.replace(/[.+^${}()|\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 's');
}
