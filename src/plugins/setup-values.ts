/**
 * The argument shapes plugin setups share (durations, counts, addresses, zones), each checked once here so every
 * plugin words a bad value the same way: `file:line: plugin "cache": option "success": ...`.
 */
import { isIP } from 'node:net';
import { pluginError } from '../corefile/errors.js';
import type { Directive } from '../corefile/types.js';
import type { HostPort } from '../ip.js';
import type { PluginSetup } from './plugin.js';
import { NameError, nameToKey } from '../wire/index.js';

/** Where a value was written: the plugin's own line, or one of its option lines. */
export interface ValueAt {
  readonly plugin: Directive;
  readonly line?: Directive;
}

function fail(at: ValueAt, message: string): never {
  const where = at.line === undefined || at.line === at.plugin ? '' : `option "${at.line.name}": `;
  throw pluginError(at.plugin, `${where}${message}`, at.line ?? at.plugin);
}

/** Go's durations as CoreDNS takes them (`30s`, `1m30s`, `500ms`, `1h`), or a bare number of seconds. In ms. */
export function durationMs(at: ValueAt, text: string, min = 0, max = 7 * 86_400_000): number {
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else {
    const parts = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$/.exec(text);
    if (parts === null || text === '') fail(at, `"${text}" is not a duration (e.g. 30s, 1m, 500ms)`);
    const [, h = '0', m = '0', s = '0', milli = '0'] = parts;
    ms = Math.round(Number(h) * 3_600_000 + Number(m) * 60_000 + Number(s) * 1000 + Number(milli));
  }
  if (ms < min || ms > max) fail(at, `duration ${text} is not from ${min / 1000}s to ${max / 1000}s`);
  return ms;
}

export function integer(at: ValueAt, text: string, min: number, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) fail(at, `"${text}" is not a whole number from ${min} to ${max}`);
  return Number(text);
}

export function choice<T extends string>(at: ValueAt, text: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(text)) fail(at, `"${text}" is not one of ${choices.join(', ')}`);
  return text as T;
}

/** A zone as a Corefile writes it (`example.org`, `example.org.`, `.`), lower-case and absolute: `example.org.`. */
export function zoneName(at: ValueAt, text: string): string {
  const zone = text === '.' ? '.' : `${text.replace(/\.$/, '').toLowerCase()}.`;
  try {
    nameToKey(zone);
  } catch (error) {
    if (error instanceof NameError) fail(at, `"${text}" is not a zone: ${error.message}`);
    throw error;
  }
  return zone;
}

/** `zone` is `inside` or below it (both absolute, lower-case). */
export function zoneCovers(inside: string, zone: string): boolean {
  return inside === '.' || zone === inside || zone.endsWith(`.${inside}`);
}

/** An HTTP listen address as CoreDNS's health, ready and prometheus take it: `:8080`, `HOST:PORT`, `[::1]:PORT`. */
export function listenAddress(at: ValueAt, text: string): HostPort {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(text);
  const host = match?.[1] ?? match?.[2];
  if (match === null || host === undefined) fail(at, `"${text}" is not an address (HOST:PORT or :PORT)`);
  const resolved = host === '' ? '0.0.0.0' : host === 'localhost' ? '127.0.0.1' : host;
  if (isIP(resolved) === 0) fail(at, `"${host}" in "${text}" is not an IP address`);
  const port = Number(match[3]);
  if (port > 65535) fail(at, `port ${port} in "${text}" is above 65535`);
  return Object.freeze({ host: resolved, port });
}

/** The option lines of a plugin's block, each checked against `supported` by name. */
export function optionLines(plugin: Directive, supported: readonly string[]): readonly Directive[] {
  const lines = plugin.block ?? [];
  for (const line of lines) {
    if (!supported.includes(line.name)) throw pluginError(plugin, `unknown option "${line.name}" (supported: ${supported.join(', ') || 'none'})`, line);
    if (line.block !== undefined) throw pluginError(plugin, `option "${line.name}" takes no block`, line);
  }
  return lines;
}

/** The one line of a plugin that may appear once per server block. */
export function single(directives: readonly Directive[]): Directive {
  const [first, second] = directives;
  if (second !== undefined) throw pluginError(second, `appears again in this server block (first at line ${first!.line}); it may appear once`);
  return first!;
}

/** A plugin that takes no arguments and no block (`loop`, `errors`, `whoami`), once per server block. */
export function bare(directives: readonly Directive[]): void {
  const plugin = single(directives);
  if (plugin.args.length > 0) throw pluginError(plugin, `takes no arguments, got ${plugin.args.length} (usage: ${plugin.name})`);
  optionLines(plugin, []);
}

/** A plugin that takes no arguments and no options, and whose presence is all it says (loop, debug). */
export function bareSetup(name: string): PluginSetup<null> {
  return {
    name,
    parse(directives) {
      bare(directives);
      return null;
    },
    create: () => ({}),
  };
}
