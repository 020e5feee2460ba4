/**
 * The hosts plugin's setup: its Corefile stanza → a frozen config, and the running plugin over it. Syntax
 * (CoreDNS's):
 *
 *   hosts [FILE [ZONES...]] {
 *     [INLINE]                  ADDRESS NAME [ALIASES...], before fallthrough
 *     ttl SECONDS               default 3600
 *     no_reverse
 *     reload DURATION           default 5s; 0 reads the file once
 *     fallthrough [ZONES...]
 *     fallthrough_unsupported
 *   }
 *
 * FILE defaults to /etc/hosts (a relative path is from the working directory: clusterdns has no `root`); ZONES to
 * the server block's. An inline line CoreDNS would skip in silence (not an address, a name outside the zones) is
 * an error here, naming its line: an entry that is quietly not served shows up days later as an outage.
 */
import { resolve } from 'node:path';
import { pluginError } from '../../corefile/errors.js';
import type { Directive } from '../../corefile/types.js';
import { isInZone, nameToKey } from '../../wire/index.js';
import type { PluginSetup } from '../plugin.js';
import { durationMs, integer, single, zoneName } from '../setup-values.js';
import { Hosts } from './index.js';
import { registerHostsMetrics } from './metrics.js';
import { parseHostsLine, type HostsLine } from './table.js';

export interface HostsConfig {
  /** The hosts file, absolute. */
  readonly path: string;
  /** The zones it answers: absolute, lower-case. */
  readonly zones: readonly string[];
  readonly inline: readonly HostsLine[];
  readonly ttl: number;
  /** Answer PTR questions for the addresses (no_reverse turns it off). */
  readonly reverse: boolean;
  /** How often the file is looked at; 0: read once. */
  readonly reloadMs: number;
  /** The zones whose unknown names go on to `next`. */
  readonly fallthrough: readonly string[];
  /** Types other than A and AAAA for a name it has go on to `next` too (in the fallthrough zones). */
  readonly fallthroughUnsupported: boolean;
}

const OPTIONS = ['ttl', 'no_reverse', 'reload', 'fallthrough', 'fallthrough_unsupported'];
const USAGE: Readonly<Record<string, string>> = {
  ttl: 'ttl SECONDS',
  no_reverse: 'no_reverse',
  reload: 'reload DURATION',
  fallthrough_unsupported: 'fallthrough_unsupported',
};

export const hosts: PluginSetup<HostsConfig> = {
  name: 'hosts',
  parse(directives, blockZones) {
    const plugin = single(directives);
    const [file = '/etc/hosts', ...zoneArgs] = plugin.args;
    const zones = zoneArgs.length > 0 ? zoneArgs.map((text) => zoneName({ plugin }, text)) : [...blockZones];
    const zoneKeys = zones.map((zone) => nameToKey(zone));
    let ttl = 3600;
    let reverse = true;
    let reloadMs = 5000;
    let fallthrough: string[] | undefined;
    let fallthroughUnsupported = false;
    const inline: HostsLine[] = [];
    const seen = new Map<string, Directive>();
    for (const line of plugin.block ?? []) {
      if (line.block !== undefined) throw pluginError(plugin, `option "${line.name}" takes no block`, line);
      if (!OPTIONS.includes(line.name)) {
        inline.push(inlineEntry(plugin, line, zones, zoneKeys, fallthrough !== undefined));
        continue;
      }
      const first = seen.get(line.name);
      if (first !== undefined) throw pluginError(plugin, `option "${line.name}" appears again (first at line ${first.line})`, line);
      seen.set(line.name, line);
      const at = { plugin, line };
      if (line.name !== 'fallthrough') {
        const wanted = line.name === 'ttl' || line.name === 'reload' ? 1 : 0;
        if (line.args.length !== wanted) throw pluginError(plugin, `option "${line.name}" wants ${wanted} argument${wanted === 1 ? '' : 's'}, got ${line.args.length} (usage: ${USAGE[line.name]})`, line);
      }
      switch (line.name) {
        case 'ttl': ttl = integer(at, line.args[0]!, 1, 65535); break;
        case 'no_reverse': reverse = false; break;
        case 'reload': reloadMs = durationMs(at, line.args[0]!); break;
        case 'fallthrough': fallthrough = line.args.length === 0 ? [...zones] : line.args.map((text) => zoneName(at, text)); break;
        case 'fallthrough_unsupported': fallthroughUnsupported = true; break;
      }
    }
    if (fallthroughUnsupported && fallthrough === undefined) {
      throw pluginError(plugin, 'option "fallthrough_unsupported" needs fallthrough, whose zones it uses', seen.get('fallthrough_unsupported'));
    }
    return Object.freeze({
      path: resolve(file),
      zones: Object.freeze(zones),
      inline: Object.freeze(inline),
      ttl,
      reverse,
      reloadMs,
      fallthrough: Object.freeze(fallthrough ?? []),
      fallthroughUnsupported,
    });
  },
  create(config, context) {
    const handler = new Hosts({
      ...config,
      zones: config.zones.map((zone) => nameToKey(zone)),
      fallthrough: config.fallthrough.map((zone) => nameToKey(zone)),
      log: context.log.child({ plugin: 'hosts' }),
    });
    const removeMetrics = registerHostsMetrics(context.registry, () => handler.stats);
    return {
      handler,
      start: () => handler.start(),
      close: () => {
        removeMetrics();
        handler.close();
      },
    };
  },
};

/** An inline line of the block: an entry of the hosts file written in the Corefile. */
function inlineEntry(plugin: Directive, line: Directive, zones: readonly string[], zoneKeys: readonly string[], afterFallthrough: boolean): HostsLine {
  const parsed = parseHostsLine([line.name, ...line.args].join(' '));
  if (typeof parsed === 'string' || parsed === undefined) {
    throw pluginError(plugin, `unknown option "${line.name}" and not an entry: ${parsed ?? 'empty'} (options: ${OPTIONS.join(', ')})`, line);
  }
  if (afterFallthrough) throw pluginError(plugin, `entry "${line.name} ${line.args.join(' ')}" comes after fallthrough: entries go before it`, line);
  for (const name of parsed.names) {
    if (!zoneKeys.some((zone) => isInZone(nameToKey(name), zone))) {
      throw pluginError(plugin, `name ${name} is outside the plugin's zones (${zones.join(' ')}), so it would never be answered`, line);
    }
  }
  return parsed;
}
