/** The autopath plugin's metric, with CoreDNS's name, read from its counter at scrape time. */
import { countedElsewhere, type Registry } from '../../telemetry/index.js';

export function registerAutopathMetrics(registry: Registry, completions: () => number): void {
  countedElsewhere(registry, 'coredns_autopath_success_count_total', 'Counter of requests that did autopath.', completions);
}
