/**
 * Target `corefile`: Corefile text through the parser (src/corefile/: lexer, imports, keys, blocks) and then
 * every plugin's setup (planServers with the chain's setups, src/config/plan.ts), as `clusterdns -conf` loads
 * it. Imports read from a small in-memory tree, never the disk. Invariant: the Corefile either loads (every
 * block has zones in canonical form, every directive a line within the file that names it) or fails with a
 * CorefileError whose message starts `file:line: ` with a line inside that file.
 */
import { planServers } from '../../src/config/plan.js';
import { CorefileError, parseCorefile } from '../../src/corefile/index.js';
import type { Directive, ServerBlock } from '../../src/corefile/index.js';
import { PLUGINS } from '../../src/plugins/order.js';
import { assert, type FuzzTarget } from '../harness.js';

/** The files an `import` may name: a snippet file, and a directory whose `*.server` files are server blocks. */
const FILES: Readonly<Record<string, string>> = {
  'snippet.conf': 'errors\ncache 30\n',
  'custom/a.server': 'example.org:53 {\n    whoami\n}\n',
  'custom/b.override': 'log\n',
};

function readFile(path: string): string {
  const text = FILES[path];
  if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: 'ENOENT' });
  return text;
}

function listDir(dir: string): string[] {
  return dir === 'custom' ? ['a.server', 'b.override'] : [];
}

const linesOf = (text: string): number => text.split('\n').length;

function checkDirectives(directives: readonly Directive[], main: number): void {
  for (const directive of directives) {
    const lines = directive.file === 'Corefile' ? main : linesOf(FILES[directive.file] ?? '');
    assert(directive.line >= 1 && directive.line <= lines, `directive ${directive.name} at ${directive.file}:${directive.line}`);
    checkDirectives(directive.block ?? [], main);
  }
}

export const target: FuzzTarget = {
  name: 'corefile',
  check(data) {
    const text = data.toString('utf8');
    const main = linesOf(text);
    let blocks: ServerBlock[];
    try {
      blocks = parseCorefile(text, { file: 'Corefile', env: { ZONE: 'cluster.local', EMPTY: '' }, readFile, listDir });
      planServers(blocks, PLUGINS);
    } catch (error) {
      assert(error instanceof CorefileError, `fails only with a CorefileError, not ${(error as Error)?.name}: ${(error as Error)?.message}`);
      const lines = error.file === 'Corefile' ? main : linesOf(FILES[error.file] ?? '');
      assert(Number.isInteger(error.line) && error.line >= 1 && error.line <= lines, `line ${error.line} of ${error.file} (${lines} lines): ${error.message}`);
      assert(error.message.startsWith(`${error.file}:${error.line}: `), `message starts with file:line: ${error.message}`);
      return;
    }
    for (const block of blocks) {
      assert(block.keys.length > 0, 'a block has keys');
      for (const key of block.keys) assert(key.zone.endsWith('.') && key.zone === key.zone.toLowerCase(), `zone ${key.zone}`);
      checkDirectives(block.directives, main);
    }
  },
  dictionary: ['{', '}', ' {\n', '\n}\n', '\n', ' ', '\t', ',', '"', '\\"', '\\', '#', '(snip)', 'import ', 'import snip', 'import snippet.conf',
    'import custom/*.server', 'import custom/*', '{$ZONE}', '{%ZONE%}', '{$EMPTY}', '{$', 'dns://', 'tls://', ':53', '.:53', ':1053', '10.0.0.0/24',
    'fd00::/120', 'in-addr.arpa', 'cluster.local', ...PLUGINS.map((setup) => setup.name), 'fallthrough', 'ttl', 'pods insecure', 'pods verified',
    'lameduck 5s', 'max_concurrent 1000', 'policy random', 'prefetch 10', 'serve_stale', 'success 9984', 'denial 9984', 'except', 'endpoint',
    'namespaces', '/etc/resolv.conf', '127.0.0.1:5353', '0', '-1', '99999999999', '5s', '1h', 'reload 2s'],
};
