/**
 * The cache plugin's setup. Syntax (CoreDNS's):
 *
 *   cache [TTL] [ZONES...] {
 *     success CAPACITY [TTL] [MINTTL]     denial CAPACITY [TTL] [MINTTL]
 *     prefetch AMOUNT [DURATION] [PERCENTAGE%]
 *     serve_stale [DURATION] [verify]     servfail DURATION
 *     disable success|denial [ZONES...]   keepttl
 *   }
 *
 * TTL caps both kinds (defaults 3600 s success, 1800 s denial); MINTTL defaults to 5. The two capacities (9984 each
 * by default) share one LRU of their sum. serve_stale's `immediate` refresh mode is not supported (an expired
 * entry is served only once the upstreams fail: `verify`). prefetch counts an entry's hits over its whole life,
 * whatever DURATION says. The cluster zone is never kept: its answers carry no upstream message.
 */
import { pluginError } from '../../corefile/errors.js';
import type { Directive } from '../../corefile/types.js';
import { nameToKey } from '../../wire/index.js';
import type { PluginSetup } from '../plugin.js';
import { choice, durationMs, integer, optionLines, single, zoneName } from '../setup-values.js';
import { AnswerCache, CacheHandler, CacheScope, type CacheOptions } from './index.js';
import { registerCacheMetrics } from './metrics.js';

export interface CacheConfig {
  readonly zones: readonly string[];
  readonly options: Omit<CacheOptions, 'now'>;
  readonly disabled: { readonly success: readonly string[]; readonly denial: readonly string[] };
}

const CAPACITY = 9984;
const MAX_TTL = 604_800;

function option(plugin: Directive, line: Directive, min: number, max: number, usage: string): readonly string[] {
  if (line.args.length < min || line.args.length > max) throw pluginError(plugin, `option "${line.name}" wants ${min} to ${max} arguments, got ${line.args.length} (usage: ${usage})`, line);
  return line.args;
}

export const cache: PluginSetup<CacheConfig> = {
  name: 'cache',
  parse(directives, blockZones) {
    const plugin = single(directives);
    const [first, ...rest] = plugin.args;
    const hasTtl = first !== undefined && /^\d/.test(first);
    const ttl = hasTtl ? Math.round(durationMs({ plugin }, first, 0, MAX_TTL * 1000) / 1000) : undefined;
    const zoneArgs = hasTtl ? rest : plugin.args;
    const zones = zoneArgs.length > 0 ? zoneArgs.map((text) => zoneName({ plugin }, text)) : [...blockZones];
    let success = { capacity: CAPACITY, ttl: ttl ?? 3600, minTtl: 5 };
    let denial = { capacity: CAPACITY, ttl: ttl ?? 1800, minTtl: 5 };
    let prefetch: { amount: number; fraction: number } | undefined;
    let serveStale = 0;
    let servfailTtl = 5;
    let keepTtl = false;
    const disabled = { success: [] as string[], denial: [] as string[] };
    for (const line of optionLines(plugin, ['success', 'denial', 'prefetch', 'serve_stale', 'servfail', 'disable', 'keepttl'])) {
      const at = { plugin, line };
      switch (line.name) {
        case 'success':
        case 'denial': {
          const [capacity, kindTtl, minTtl] = option(plugin, line, 1, 3, `${line.name} CAPACITY [TTL] [MINTTL]`);
          const parsed = {
            capacity: integer(at, capacity!, 1, 10_000_000),
            ttl: kindTtl === undefined ? (line.name === 'success' ? success.ttl : denial.ttl) : Math.round(durationMs(at, kindTtl, 0, MAX_TTL * 1000) / 1000),
            minTtl: minTtl === undefined ? 5 : Math.round(durationMs(at, minTtl, 0, MAX_TTL * 1000) / 1000),
          };
          if (line.name === 'success') success = parsed;
          else denial = parsed;
          break;
        }
        case 'prefetch': {
          const [amount, ...more] = option(plugin, line, 1, 3, 'prefetch AMOUNT [DURATION] [PERCENTAGE%]');
          let percentage = 10;
          for (const arg of more) {
            if (arg.endsWith('%')) percentage = integer(at, arg.slice(0, -1), 10, 90);
            else durationMs(at, arg, 1000);
          }
          prefetch = { amount: integer(at, amount!, 1, 1_000_000), fraction: percentage / 100 };
          break;
        }
        case 'serve_stale': {
          const [duration, mode] = option(plugin, line, 0, 2, 'serve_stale [DURATION] [verify]');
          serveStale = duration === undefined ? 3600 : Math.round(durationMs(at, duration, 0, MAX_TTL * 1000) / 1000);
          if (mode !== undefined && choice(at, mode, ['verify', 'immediate'] as const) === 'immediate') {
            throw pluginError(plugin, 'serve_stale immediate is not supported: stale entries are served only when the upstreams fail (verify)', line);
          }
          break;
        }
        case 'servfail':
          servfailTtl = Math.round(durationMs(at, option(plugin, line, 1, 1, 'servfail DURATION')[0]!, 0, 300_000) / 1000);
          break;
        case 'disable': {
          const [kind, ...kindZones] = option(plugin, line, 1, Infinity, 'disable success|denial [ZONES...]');
          const which = choice(at, kind!, ['success', 'denial'] as const);
          disabled[which].push(...(kindZones.length > 0 ? kindZones.map((text) => zoneName(at, text)) : zones));
          break;
        }
        case 'keepttl':
          option(plugin, line, 0, 0, 'keepttl');
          keepTtl = true;
          break;
      }
    }
    return Object.freeze({
      zones: Object.freeze(zones),
      options: Object.freeze({
        maxEntries: success.capacity + denial.capacity,
        maxTtl: success.ttl,
        maxNegativeTtl: denial.ttl,
        minTtl: success.minTtl,
        minNegativeTtl: denial.minTtl,
        serveStale,
        ...(prefetch !== undefined && { prefetch: Object.freeze(prefetch) }),
        servfailTtl,
        keepTtl,
      }),
      disabled: Object.freeze({ success: Object.freeze(disabled.success), denial: Object.freeze(disabled.denial) }),
    });
  },
  create(config, context) {
    const answers = new AnswerCache({ ...config.options, now: context.now });
    const removeMetrics = registerCacheMetrics(context.registry, () => answers.stats());
    // The kubernetes plugin's zones are answered live: looking them up here would always miss.
    const kube = context.configOf('kubernetes') as { readonly zones: readonly string[] } | undefined;
    const keys = (zones: readonly string[]): string[] => zones.map((zone) => nameToKey(zone));
    const scope = new CacheScope(keys(config.zones), keys(kube?.zones.filter((zone) => !zone.endsWith('arpa.')) ?? []), {
      success: keys(config.disabled.success),
      denial: keys(config.disabled.denial),
    });
    return { handler: new CacheHandler(answers, scope), close: removeMetrics };
  },
};
