/**
 * The forward plugin's setup. Syntax (CoreDNS's, with the options clusterdns honours):
 *
 *   forward FROM TO... {
 *     except IGNORED_NAMES...     max_fails INTEGER        health_check DURATION
 *     policy random|round_robin|sequential                max_concurrent MAX
 *     expire DURATION             prefer_udp               force_tcp
 *     timeout DURATION            (clusterdns: wait this long for one upstream; all tries end within twice it)
 *   }
 *
 * TO is `IP`, `IP:PORT`, `[IPv6]:PORT`, `dns://` before any of them, or a resolv.conf file whose nameservers are
 * used (and followed when they change). Connections are not pooled, so `expire` has nothing to expire and is
 * accepted; UDP is tried first (TCP when the answer is truncated), so `prefer_udp` is too, and `force_tcp` sends
 * everything over TCP. `tls`, `tls_servername`, `next` and `failfast_all_unhealthy_upstreams` are not supported
 * (an error naming them).
 */
import { unwatchFile, watchFile } from 'node:fs';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { readResolvConf } from '../../config/resolv-conf.js';
import { formatHostPort } from '../../ip.js';
import { pluginError } from '../../corefile/errors.js';
import type { Directive } from '../../corefile/types.js';
import { nameToKey } from '../../wire/index.js';
import type { PluginSetup } from '../plugin.js';
import { choice, durationMs, integer, optionLines, single, zoneName } from '../setup-values.js';
import { FORWARD_POLICIES, Forwarder, type ForwardPolicy, type UpstreamAddress } from './index.js';
import type { Transport } from './exchange.js';
import { registerForwardMetrics } from './metrics.js';

export interface ForwardConfig {
  /** The zone forwarded (FROM), absolute. */
  readonly from: string;
  /** The upstreams, or the resolv.conf file that names them. */
  readonly to: readonly UpstreamAddress[] | { readonly resolvConf: string };
  readonly except: readonly string[];
  readonly policy: ForwardPolicy;
  readonly maxFails: number;
  readonly maxConcurrent: number;
  readonly tryTimeoutMs: number;
  readonly probeIntervalMs: number;
  readonly transport: Transport;
}

const NOT_HONOURED = ['tls', 'tls_servername', 'next', 'failfast_all_unhealthy_upstreams', 'max_idle_conns'];

/** `IP`, `IP:PORT`, `[IPv6]:PORT` or a bare IPv6 address, with an optional `dns://`; port 53 by default. */
export function parseUpstream(text: string): UpstreamAddress | undefined {
  const value = text.replace(/^dns:\/\//, '');
  if (isIP(value) !== 0) return Object.freeze({ host: value, port: 53 });
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(value);
  const host = match?.[1] ?? match?.[2];
  if (match === null || host === undefined || isIP(host) === 0) return undefined;
  const port = Number(match[3]);
  return port >= 1 && port <= 65535 ? Object.freeze({ host, port }) : undefined;
}

function to(plugin: Directive, targets: readonly string[]): ForwardConfig['to'] {
  const files = targets.filter((target) => target.startsWith('/') || target.startsWith('.'));
  if (files.length > 0) {
    if (targets.length > 1) throw pluginError(plugin, `a resolv.conf file (${files[0]}) cannot go with other upstreams`);
    if (plugin.args[0] !== '.') throw pluginError(plugin, `a resolv.conf file (${files[0]}) is supported with FROM . only`);
    return Object.freeze({ resolvConf: files[0]! });
  }
  return Object.freeze(targets.map((target) => {
    if (/^[a-z]+:\/\//.test(target) && !target.startsWith('dns://')) throw pluginError(plugin, `upstream ${target}: only plain DNS (dns://) is supported`);
    const address = parseUpstream(target);
    if (address === undefined) throw pluginError(plugin, `upstream ${target}: expected an IP address with an optional port, e.g. 10.0.0.2, 10.0.0.2:5353 or [fd00::2]:53, or a resolv.conf file`);
    return address;
  }));
}

export const forward: PluginSetup<ForwardConfig> = {
  name: 'forward',
  parse(directives) {
    const plugin = single(directives);
    if (plugin.args.length < 2) throw pluginError(plugin, `wants at least 2 arguments, got ${plugin.args.length} (usage: forward FROM TO...)`);
    const from = zoneName({ plugin }, plugin.args[0]!);
    let except: string[] = [];
    let policy: ForwardPolicy = 'random';
    let maxFails = 2;
    let maxConcurrent = 1000;
    let tryTimeoutMs = 2000;
    let probeIntervalMs = 500;
    let transport: Transport = 'udp';
    for (const line of plugin.block ?? []) {
      if (NOT_HONOURED.includes(line.name)) throw pluginError(plugin, `option "${line.name}" is not supported by clusterdns`, line);
    }
    for (const line of optionLines(plugin, ['except', 'policy', 'max_fails', 'max_concurrent', 'health_check', 'expire', 'prefer_udp', 'force_tcp', 'timeout'])) {
      const at = { plugin, line };
      const one = (usage: string): string => {
        if (line.args.length !== 1) throw pluginError(plugin, `option "${line.name}" wants 1 argument, got ${line.args.length} (usage: ${usage})`, line);
        return line.args[0]!;
      };
      switch (line.name) {
        case 'except':
          if (line.args.length === 0) throw pluginError(plugin, 'option "except" wants at least 1 argument (usage: except IGNORED_NAMES...)', line);
          except = line.args.map((text) => zoneName(at, text));
          break;
        case 'policy': policy = choice(at, one('policy random|round_robin|sequential'), FORWARD_POLICIES); break;
        case 'max_fails': maxFails = integer(at, one('max_fails INTEGER'), 0, 100); break;
        case 'max_concurrent': maxConcurrent = integer(at, one('max_concurrent MAX'), 1, 1_000_000); break;
        case 'timeout': tryTimeoutMs = durationMs(at, one('timeout DURATION'), 100, 30_000); break;
        case 'health_check':
          if (line.args.length !== 1) throw pluginError(plugin, 'option "health_check" wants 1 argument (usage: health_check DURATION; no_rec and domain are not supported)', line);
          probeIntervalMs = durationMs(at, line.args[0]!, 100, 3_600_000);
          break;
        case 'expire': durationMs(at, one('expire DURATION')); break;
        case 'prefer_udp':
        case 'force_tcp':
          if (line.args.length > 0) throw pluginError(plugin, `option "${line.name}" takes no arguments`, line);
          if (line.name === 'force_tcp') transport = 'tcp';
          break;
      }
    }
    return Object.freeze({ from, to: to(plugin, plugin.args.slice(1)), except: Object.freeze(except), policy, maxFails, maxConcurrent, tryTimeoutMs, probeIntervalMs, transport });
  },
  create(config, context) {
    const fixed = 'resolvConf' in config.to ? [] : config.to;
    const root = config.from === '.';
    let states = (): ReturnType<Forwarder['states']> => [];
    const metrics = registerForwardMetrics(context.registry, () => states());
    const forwarder: Forwarder = new Forwarder({
      // Names outside FROM have no group, so they go on to the next plugin.
      upstreams: root ? fixed : [],
      stubDomains: root ? [] : [{ zoneKey: nameToKey(config.from), upstreams: fixed }],
      policy: config.policy,
      maxFails: config.maxFails,
      tryTimeoutMs: config.tryTimeoutMs,
      deadlineMs: 2 * config.tryTimeoutMs,
      maxConcurrent: config.maxConcurrent,
      except: config.except.map((zone) => nameToKey(zone)),
      probeIntervalMs: config.probeIntervalMs,
      transport: config.transport,
      observer: metrics.observer,
      log: context.log.child({ plugin: 'forward' }),
    });
    states = () => forwarder.states();
    let stopFollowing = (): void => {};
    return {
      handler: forwarder,
      warnings: () => forwarder.states()
        .filter((state) => state.looping)
        .map((state) => `forwarding loop: upstream ${state.to} sends queries back to this server, so it is not used`),
      async start() {
        if ('resolvConf' in config.to) {
          const path = config.to.resolvConf;
          await forwarder.setUpstreams(await nameserversOf(path, context.log));
          stopFollowing = followResolvConf(path, forwarder, context.log);
        }
        // In the background: the probes need the server answering, and must not hold up serving.
        void forwarder.detectLoops();
      },
      close() {
        stopFollowing();
        metrics.remove();
        forwarder.close();
      },
    };
  },
};

async function nameserversOf(path: string, log: Logger): Promise<readonly UpstreamAddress[]> {
  const resolvConf = await readResolvConf(path);
  if (resolvConf.defaultNameserver) log.warn({ resolvConf: path }, 'no nameserver in resolv.conf: nothing is forwarded');
  return resolvConf.defaultNameserver ? [] : resolvConf.nameservers;
}

/** How often resolv.conf is looked at for new nameservers (a stat, no read unless it changed). */
const RESOLV_CONF_POLL_MS = 2000;

/** Follows resolv.conf's nameservers: a changed set is used (and probed for loops) at once. */
function followResolvConf(path: string, forwarder: Forwarder, log: Logger): () => void {
  let current = forwarder.states().map((state) => state.to).join(' ');
  const onChange = (): void => {
    nameserversOf(path, log).then((next) => {
      const described = next.map(formatHostPort).join(' ');
      if (described === current) return;
      current = described;
      log.info({ resolvConf: path, upstreams: next.map(formatHostPort) }, 'resolv.conf changed: new upstreams');
      return forwarder.setUpstreams(next);
    }).catch((error: unknown) => log.warn({ err: error, resolvConf: path }, 'cannot read resolv.conf; keeping the upstreams'));
  };
  watchFile(path, { interval: RESOLV_CONF_POLL_MS, persistent: false }, onChange);
  return () => unwatchFile(path, onChange);
}
