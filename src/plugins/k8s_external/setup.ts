/**
 * The k8s_external plugin's setup. Syntax (CoreDNS's, every option its README documents):
 *
 *   k8s_external [ZONE...] {
 *     apex APEX     ttl TTL     headless
 *   }
 *
 * ZONES default to the server block's. It reads the store the kubernetes plugin of the same server block fills.
 * A reverse zone among them answers PTR for the external IPs under it, naming services under the first zone,
 * which must therefore be the external zone (CoreDNS takes the first zone whatever it is).
 */
import { expectArgs, pluginError } from '../../corefile/errors.js';
import type { KubernetesConfig } from '../kubernetes/setup.js';
import type { PluginSetup } from '../plugin.js';
import { integer, optionLines, single, zoneCovers, zoneName } from '../setup-values.js';
import { ExternalZone } from './index.js';

export interface K8sExternalConfig {
  readonly zones: readonly string[];
  readonly apex: string;
  readonly ttl: number;
  readonly headless: boolean;
}

export const k8sExternal: PluginSetup<K8sExternalConfig> = {
  name: 'k8s_external',
  requires: ['kubernetes'],
  parse(directives, blockZones) {
    const plugin = single(directives);
    const zones = plugin.args.length > 0 ? plugin.args.map((text) => zoneName({ plugin }, text)) : [...blockZones];
    for (const zone of zones) {
      if (zone === 'arpa.' || zone === '.') throw pluginError(plugin, `zone ${zone} would hold every name; name the external zone (usage: k8s_external ZONE...)`);
    }
    const reverse = (zone: string): boolean => zoneCovers('in-addr.arpa.', zone) || zoneCovers('ip6.arpa.', zone);
    if (reverse(zones[0]!)) {
      throw pluginError(plugin, `the first zone names the PTR targets, so it must be the external zone, not ${zones[0]} (usage: k8s_external ZONE [REVERSE-ZONE...])`);
    }
    let apex = 'dns';
    let ttl = 5;
    let headless = false;
    for (const line of optionLines(plugin, ['apex', 'ttl', 'headless'])) {
      const at = { plugin, line };
      switch (line.name) {
        // Kept relative (`dns`): it names labels under each zone.
        case 'apex': apex = zoneName(at, expectArgs(line, 1, 1, 'apex APEX', plugin)[0]!).replace(/\.$/, ''); break;
        case 'ttl': ttl = integer(at, expectArgs(line, 1, 1, 'ttl TTL', plugin)[0]!, 0, 3600); break;
        case 'headless': expectArgs(line, 0, 0, 'headless', plugin); headless = true; break;
      }
    }
    return Object.freeze({ zones: Object.freeze(zones), apex, ttl, headless });
  },
  create(config, context) {
    const kube = context.configOf('kubernetes') as KubernetesConfig | undefined;
    const handler = new ExternalZone(context.store, {
      zones: config.zones,
      apex: config.apex,
      ttl: config.ttl,
      headless: config.headless,
      endpointPodNames: kube?.endpointPodNames === true,
      selfAddresses: context.selfAddresses,
    });
    return { handler, close: () => handler.close() };
  },
};
