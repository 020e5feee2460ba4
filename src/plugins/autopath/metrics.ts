/** The autopath plugin's metric, with CoreDNS's name, read from its counter at scrape time. */
import { addSource, countedElsewhere, perRegistry, type Registry } from '../../telemetry/index.js';

export function registerAutopathMetrics(registry: Registry, completions: () => number): () => void {
  return addSource(perRegistry(registry, 'autopath', () => {
    const sources: Array<() => number> = [];
    countedElsewhere(registry, 'coredns_autopath_success_count_total', 'Counter of requests that did autopath.', () => sources.reduce((sum, source) => sum + source(), 0));
    return sources;
  }), completions);
}
