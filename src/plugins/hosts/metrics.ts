/**
 * The hosts plugin's metrics, with CoreDNS's names and labels, read from each running plugin at scrape time:
 * coredns_hosts_entries{hostsfile} and coredns_hosts_reload_timestamp_seconds. Registered once per registry;
 * a plugin adds its source when created and takes it out when closed, so a reloaded Corefile is not counted twice.
 */
import { Gauge } from 'prom-client';
import { addSource, perRegistry, type Registry } from '../../telemetry/index.js';
import type { HostsStats } from './index.js';

export function registerHostsMetrics(registry: Registry, stats: () => HostsStats): () => void {
  return addSource(perRegistry(registry, 'hosts', () => {
    const sources: Array<() => HostsStats> = [];
    const all = (): HostsStats[] => sources.map((source) => source());
    new Gauge({
      name: 'coredns_hosts_entries',
      // Every worker thread holds the same state: summed over them it would count it once per thread.
      aggregator: 'max',
      help: 'The combined number of entries in hosts and Corefile.',
      labelNames: ['hostsfile'],
      registers: [registry],
      collect() {
        this.reset();
        // One series per file: two plugins reading one file (two server blocks, or a chain being replaced) set it
        // to the same count rather than adding up.
        for (const { path, entries } of all()) this.set({ hostsfile: path }, entries);
      },
    });
    new Gauge({
      name: 'coredns_hosts_reload_timestamp_seconds',
      // Every worker thread holds the same state: summed over them it would count it once per thread.
      aggregator: 'max',
      help: 'The timestamp of the last reload of hosts file.',
      registers: [registry],
      collect() {
        this.set(Math.max(0, ...all().map((stats) => stats.reloadTimestampSeconds)));
      },
    });
    return sources;
  }), stats);
}
