/**
 * corefile/ — owns the Caddyfile grammar CoreDNS reads (its Caddy v1 fork), and nothing after it: it turns a
 * Corefile into frozen server blocks of directives with their file and line, and knows no plugin. Plugin setups
 * read those directives; main.ts wires them. No sockets, no Kubernetes, no DNS wire format.
 *
 * The grammar (corefile(5) and import(7) of CoreDNS):
 *  - server blocks, each `KEY... {` directives `}`; keys are `[dns://]ZONE[:PORT]`, separated by spaces or
 *    commas; a zone may be a CIDR (`10.0.0.0/24` → `0.0.10.in-addr.arpa.`, split on label boundaries as CoreDNS
 *    does). Other transports (`tls://`, `grpc://`, `https://`, `quic://`) are refused. One block may go without
 *    braces: it takes everything after its keys. The same zone and port twice is an error, as in CoreDNS.
 *  - a directive is one line, name and arguments, optionally opening a `{ }` block of option lines, which nest.
 *  - `#` comments, `"quoted tokens"` (with `\"`, newlines allowed), `{$ENV}` / `{%ENV%}` (unset → empty).
 *  - snippets `(name) { ... }` at the top level; `import NAME|FILE|GLOB` wherever a directive or a block may
 *    stand; paths relative to the importing file; a glob may match nothing, a file must exist; no cycles.
 *
 * Every error is a CorefileError (a ConfigError) whose message starts `file:line: `. Plugin setups report a bad
 * stanza through the same few helpers, so every plugin's errors read alike:
 *  - `expectArgs(directive, min, max, usage, plugin?)` — the arguments, or
 *    `Corefile:9: plugin "forward": wants at least 2 arguments, got 1 (usage: forward FROM TO...)`; pass the
 *    plugin when checking one of its option lines: `plugin "cache": option "success" wants 1 to 3 arguments…`.
 *  - `unknownOption(plugin, option, supported)` —
 *    `Corefile:7: plugin "cache": unknown option "foo" (supported: success, denial, prefetch, …)`.
 *  - `unknownPlugin(directive, supported)` — `Corefile:4: unknown plugin "foo" (supported: cache, errors, …)`.
 *  - `pluginError(plugin, message, at?)` — anything else: `Corefile:8: plugin "cache": <message>`, at the
 *    plugin's line or at `at` (an option line).
 *  - `corefileError(at, message)` — the bare form, for what is no one plugin's (e.g. two blocks' plugins clash).
 */
export { parseCorefile, loadCorefile } from './parser.js';
export { CorefileError, corefileError, expectArgs, pluginError, unknownOption, unknownPlugin, type CorefilePlace } from './errors.js';
export type { Directive, ParseOptions, ServerBlock, ServerKey } from './types.js';
