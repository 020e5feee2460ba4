/** The cache plugin's metrics, with CoreDNS's names and labels, read from the cache's counters at scrape time. */
import { Counter, Gauge, type Registry } from 'prom-client';
import { addSource, countedElsewhere, perRegistry } from '../../telemetry/index.js';
import type { CacheStats } from './index.js';

/** Registers the cache metrics once per registry; every cache's counts are summed into them. */
export function registerCacheMetrics(registry: Registry, stats: () => CacheStats): () => void {
  return addSource(perRegistry(registry, 'cache', () => {
    const sources: Array<() => CacheStats> = [];
    register(registry, () => sum(sources.map((source) => source())));
    return sources;
  }), stats);
}

function sum(all: readonly CacheStats[]): CacheStats {
  const kinds = (pick: (stats: CacheStats) => Readonly<Record<string, number>>): Record<'success' | 'denial' | 'servfail', number> => ({
    success: all.reduce((total, stats) => total + (pick(stats).success ?? 0), 0),
    denial: all.reduce((total, stats) => total + (pick(stats).denial ?? 0), 0),
    servfail: all.reduce((total, stats) => total + (pick(stats).servfail ?? 0), 0),
  });
  const total = (pick: (stats: CacheStats) => number): number => all.reduce((sum, stats) => sum + pick(stats), 0);
  return {
    entries: kinds((stats) => stats.entries),
    hits: kinds((stats) => stats.hits),
    misses: total((stats) => stats.misses),
    requests: total((stats) => stats.requests),
    prefetches: total((stats) => stats.prefetches),
    servedStale: total((stats) => stats.servedStale),
  };
}

function register(registry: Registry, cacheStats: () => CacheStats): void {
  const counter = (name: string, help: string, read: (stats: CacheStats) => number): void =>
    countedElsewhere(registry, name, help, () => read(cacheStats()));
  new Gauge({
    name: 'coredns_cache_entries',
    help: 'The number of elements in the cache.',
    labelNames: ['type'],
    registers: [registry],
    collect() {
      for (const [type, count] of Object.entries(cacheStats().entries)) this.set({ type }, count);
    },
  });
  new Counter({
    name: 'coredns_cache_hits_total',
    help: 'The count of cache hits.',
    labelNames: ['type'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [type, count] of Object.entries(cacheStats().hits)) this.inc({ type }, count);
    },
  });
  counter('coredns_cache_misses_total', 'The count of cache misses.', (stats) => stats.misses);
  counter('coredns_cache_requests_total', 'The count of cache requests.', (stats) => stats.requests);
  counter('coredns_cache_prefetch_total', 'The number of times the cache has prefetched a cached item.', (stats) => stats.prefetches);
  counter('coredns_cache_served_stale_total', 'The number of requests served from stale cache entries.', (stats) => stats.servedStale);
}
