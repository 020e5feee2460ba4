/** The reload plugin's metrics, with CoreDNS's names: failed reloads, and which Corefile is loaded. */
import { Counter, Gauge, type Registry } from 'prom-client';

export interface ReloadMetrics {
  failed(): void;
  loaded(hash: string): void;
}

export function registerReloadMetrics(registry: Registry): ReloadMetrics {
  const failed = new Counter({ name: 'coredns_reload_failed_total', help: 'Counter of the number of failed reload attempts.', registers: [registry] });
  const version = new Gauge({
    name: 'coredns_reload_version_info',
    help: 'A metric with a constant \'1\' value labeled by hash, and value which type of hash generated.',
    labelNames: ['hash', 'value'],
    registers: [registry],
  });
  return {
    failed: () => failed.inc(),
    loaded: (hash) => {
      version.reset();
      version.set({ hash: 'sha512', value: hash }, 1);
    },
  };
}
