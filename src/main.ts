/**
 * The composition root: config → source → store → resolvers → server. The only module that knows every part;
 * the parts know only what flows into them. Returns a handle whose close() stops everything in reverse order.
 */
import { networkInterfaces } from 'node:os';
import type { BoundAddress } from './server/index.js';
import { DnsServer, QueryAnswerer } from './server/index.js';
import type { ServeConfig } from './config/index.js';
import { ConfigError } from './errors.js';
import { ClusterResolver } from './resolvers/cluster/index.js';
import { ManifestSource } from './source/manifests.js';
import { RecordStore } from './store/index.js';
import type { Logger } from './telemetry/index.js';
import { keyToName } from './wire/index.js';

export interface RunningServer {
  readonly addresses: readonly BoundAddress[];
  close(): Promise<void>;
}

/** At most one "a resolver threw" log line per this many milliseconds: a bug must not flood the logs. */
const STEP_ERROR_LOG_INTERVAL_MS = 10_000;

export async function serve(config: ServeConfig, log: Logger): Promise<RunningServer> {
  if (config.manifests === undefined) {
    throw new ConfigError('nothing to serve: give --manifests PATH (a file or directory of Kubernetes objects)');
  }
  const store = new RecordStore();
  const source = new ManifestSource(config.manifests, store, log.child({ part: 'source' }));
  await source.start();

  const cluster = new ClusterResolver(store, {
    zone: config.zone,
    ttl: config.ttl,
    pods: config.pods,
    selfAddresses: selfAddresses(config),
  });
  let lastStepErrorLog = 0;
  const answerer = new QueryAnswerer([cluster], (error, q) => {
    const now = Date.now();
    if (now - lastStepErrorLog < STEP_ERROR_LOG_INTERVAL_MS) return;
    lastStepErrorLog = now;
    log.error({ err: error, name: keyToName(q.key), qtype: q.qtype }, 'a resolver failed; answered SERVFAIL (a bug: please report it)');
  });
  const server = new DnsServer(answerer, config, log.child({ part: 'server' }));
  let addresses: BoundAddress[];
  try {
    addresses = await server.start();
  } catch (error) {
    source.close();
    cluster.close();
    await server.close();
    throw error;
  }
  log.info({ zone: config.zone, listen: addresses.map(formatAddress), names: cluster.nameCount }, 'serving');

  return {
    addresses,
    async close() {
      await server.close();
      cluster.close();
      source.close();
    },
  };
}

export function formatAddress(address: { host: string; port: number }): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** The addresses clients reach us on: the listen addresses, or every interface address for a wildcard. */
function selfAddresses(config: ServeConfig): string[] {
  const interfaces = Object.values(networkInterfaces()).flat().filter((entry) => entry !== undefined);
  return config.listen.flatMap(({ host }) => {
    if (host === '0.0.0.0') return interfaces.filter((entry) => entry.family === 'IPv4').map((entry) => entry.address);
    if (host === '::') return interfaces.filter((entry) => entry.family === 'IPv6').map((entry) => entry.address);
    return [host];
  });
}
