/**
 * The forward plugin's setup. Syntax (CoreDNS's, with the options clusterdns honours):
 *
 *   forward FROM TO... {
 *     except IGNORED_NAMES...     max_fails INTEGER        health_check DURATION
 *     policy random|round_robin|sequential                max_concurrent MAX
 *     expire DURATION             max_idle_conns INTEGER   prefer_udp     force_tcp
 *     tls [CERT KEY] [CA]         tls_servername NAME
 *     next RCODE...               failfast_all_unhealthy_upstreams
 *     timeout DURATION            (clusterdns: wait this long for one upstream; all tries end within twice it)
 *   }
 *
 * TO is `IP`, `IP:PORT`, `[IPv6]:PORT`, `dns://` before any of them, `tls://` before any of them (DNS over TLS,
 * port 853 by default, `tls://IP%NAME` for an SNI name of its own), or a resolv.conf file whose nameservers are
 * used (and followed when they change). Plain UDP and TCP connections are not pooled (a fresh socket per question,
 * for a random source port), so `expire` and `max_idle_conns` concern the tls:// upstreams only, which keep one
 * shared connection each (so any `max_idle_conns` holds). UDP is tried first (TCP when the answer is truncated),
 * so `prefer_udp` changes nothing, and `force_tcp` sends everything over TCP.
 *
 * *forward* may appear more than once in a server block, as in CoreDNS: the stanzas are asked in the order they are
 * written, a name outside one's FROM (or under its `except`) going on to the next, and `next RCODE...` passes an
 * upstream answer with one of those rcodes on to the next stanza. Like CoreDNS, `next` does nothing on the last
 * stanza (whatever follows is not a forward); clusterdns says so in a warning at start.
 */
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { readResolvConf } from '../../config/resolv-conf.js';
import { formatHostPort } from '../../ip.js';
import { pluginError } from '../../corefile/errors.js';
import type { Directive } from '../../corefile/types.js';
import { nameToKey, Rcode } from '../../wire/index.js';
import type { Handler, Next, PluginSetup, RunningPlugin, SetupContext } from '../plugin.js';
import { chainOf } from '../chain.js';
import { choice, durationMs, integer, optionLines, zoneName } from '../setup-values.js';
import { FORWARD_POLICIES, Forwarder, type ForwardPolicy, type UpstreamAddress } from './index.js';
import type { Transport } from './exchange.js';
import { registerForwardMetrics } from './metrics.js';
import { DEFAULT_EXPIRE_MS, type TlsClientConfig } from './tls.js';

/** One `forward` line of a server block and its options. */
export interface ForwardStanza {
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
  readonly tls: TlsClientConfig;
  readonly expireMs: number;
  /** Rcodes of upstream answers passed on to the next stanza (`next`). */
  readonly nextRcodes: readonly number[];
  readonly failfast: boolean;
  /** Where `next` was written, for the warning when no stanza follows. */
  readonly nextLine?: number;
}

/** The stanzas of one server block, in the order written. */
export type ForwardConfig = readonly ForwardStanza[];

const OPTIONS = [
  'except', 'policy', 'max_fails', 'max_concurrent', 'health_check', 'expire', 'max_idle_conns', 'prefer_udp', 'force_tcp',
  'timeout', 'tls', 'tls_servername', 'next', 'failfast_all_unhealthy_upstreams',
];

/** The rcode names `next` takes, as CoreDNS (miekg/dns) spells them. */
const RCODES: ReadonlyMap<string, number> = new Map([...Object.entries(Rcode), ['NOTIMPL', Rcode.NOTIMP]]);

/**
 * `IP`, `IP:PORT`, `[IPv6]:PORT` or a bare IPv6 address, with an optional `dns://`; port 53 by default. With `tls://`
 * (port 853 by default), an upstream reached by DNS over TLS, optionally `tls://IP%NAME[:PORT]` with its own SNI name.
 */
export function parseUpstream(text: string): UpstreamAddress | undefined {
  if (text.startsWith('tls://')) {
    const [address = '', servername] = text.slice('tls://'.length).split('%', 2);
    // `IP%NAME:PORT`: the port follows the name.
    const port = servername === undefined ? undefined : /:(\d+)$/.exec(servername)?.[1];
    const name = port === undefined ? servername : servername!.slice(0, -port.length - 1);
    if (name === '' || /[\[\]:/]/.test(name ?? '')) return undefined;
    const plain = hostPort(port === undefined ? address : `${address.includes(':') && !address.startsWith('[') ? `[${address}]` : address}:${port}`, 853);
    return plain && Object.freeze({ ...plain, tls: Object.freeze(name === undefined ? {} : { servername: name }) });
  }
  return hostPort(text.replace(/^dns:\/\//, ''), 53);
}

function hostPort(value: string, defaultPort: number): UpstreamAddress | undefined {
  if (isIP(value) !== 0) return Object.freeze({ host: value, port: defaultPort });
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(value);
  const host = match?.[1] ?? match?.[2];
  if (match === null || host === undefined || isIP(host) === 0) return undefined;
  const port = Number(match[3]);
  return port >= 1 && port <= 65535 ? Object.freeze({ host, port }) : undefined;
}

function to(plugin: Directive, targets: readonly string[]): ForwardStanza['to'] {
  const files = targets.filter((target) => target.startsWith('/') || target.startsWith('.'));
  if (files.length > 0) {
    if (targets.length > 1) throw pluginError(plugin, `a resolv.conf file (${files[0]}) cannot go with other upstreams`);
    if (plugin.args[0] !== '.') throw pluginError(plugin, `a resolv.conf file (${files[0]}) is supported with FROM . only`);
    return Object.freeze({ resolvConf: files[0]! });
  }
  return Object.freeze(targets.map((target) => {
    if (/^[a-z]+:\/\//.test(target) && !/^(dns|tls):\/\//.test(target)) throw pluginError(plugin, `upstream ${target}: only plain DNS (dns://) and DNS over TLS (tls://) are supported`);
    const address = parseUpstream(target);
    if (address === undefined) throw pluginError(plugin, `upstream ${target}: expected an IP address with an optional port, e.g. 10.0.0.2, 10.0.0.2:5353, [fd00::2]:53 or tls://1.1.1.1, or a resolv.conf file`);
    return address;
  }));
}

/** `tls [CERT KEY] [CA]`: the files read now, and checked to be PEM Node can use, so a bad one fails at start. */
function tlsFiles(plugin: Directive, line: Directive): TlsClientConfig {
  if (line.args.length > 3) throw pluginError(plugin, `option "tls" wants 0 to 3 arguments, got ${line.args.length} (usage: tls [CERT KEY] [CA])`, line);
  const read = (path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw pluginError(plugin, `option "tls": cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, line);
    }
  };
  const [first, second, third] = line.args.map(read);
  const files: TlsClientConfig = line.args.length === 1 ? { ca: first } : { cert: first, key: second, ca: third };
  try {
    createSecureContext(files);
  } catch (error) {
    throw pluginError(plugin, `option "tls": ${line.args.join(' ')}: ${(error as Error).message}`, line);
  }
  return files;
}

function parseStanza(plugin: Directive): ForwardStanza {
  if (plugin.args.length < 2) throw pluginError(plugin, `wants at least 2 arguments, got ${plugin.args.length} (usage: forward FROM TO...)`);
  const from = zoneName({ plugin }, plugin.args[0]!);
  let except: string[] = [];
  let policy: ForwardPolicy = 'random';
  let maxFails = 2;
  let maxConcurrent = 1000;
  let tryTimeoutMs = 2000;
  let probeIntervalMs = 500;
  let transport: Transport = 'udp';
  let tls: TlsClientConfig = {};
  let servername: string | undefined;
  let expireMs = DEFAULT_EXPIRE_MS;
  let nextRcodes: number[] = [];
  let nextLine: number | undefined;
  let failfast = false;
  for (const line of optionLines(plugin, OPTIONS)) {
    const at = { plugin, line };
    const one = (usage: string): string => {
      if (line.args.length !== 1) throw pluginError(plugin, `option "${line.name}" wants 1 argument, got ${line.args.length} (usage: ${usage})`, line);
      return line.args[0]!;
    };
    const none = (): void => {
      if (line.args.length > 0) throw pluginError(plugin, `option "${line.name}" takes no arguments`, line);
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
      case 'expire': expireMs = durationMs(at, one('expire DURATION'), 1, 3_600_000); break;
      // One shared connection per tls:// upstream, so at most one idle: within any limit, 0 (none) included.
      case 'max_idle_conns': integer(at, one('max_idle_conns INTEGER'), 0, 1_000_000); break;
      case 'prefer_udp': none(); break;
      case 'force_tcp': none(); transport = 'tcp'; break;
      case 'tls': tls = tlsFiles(plugin, line); break;
      case 'tls_servername': servername = one('tls_servername NAME'); break;
      case 'next':
        if (line.args.length === 0) throw pluginError(plugin, 'option "next" wants at least 1 argument (usage: next RCODE...)', line);
        nextRcodes = line.args.map((name) => {
          const code = RCODES.get(name.toUpperCase());
          if (code === undefined) throw pluginError(plugin, `option "next": "${name}" is not an rcode (e.g. NXDOMAIN, SERVFAIL, REFUSED)`, line);
          return code;
        });
        nextLine = line.line;
        break;
      case 'failfast_all_unhealthy_upstreams': none(); failfast = true; break;
    }
  }
  const upstreams = to(plugin, plugin.args.slice(1));
  if (servername !== undefined) {
    const own = Array.isArray(upstreams) ? upstreams.find((upstream) => upstream.tls?.servername !== undefined) : undefined;
    if (own !== undefined) throw pluginError(plugin, `tls_servername cannot go with an upstream naming its own (tls://${own.host}%${own.tls!.servername})`);
    tls = { ...tls, servername };
  }
  return Object.freeze({
    from, to: upstreams, except: Object.freeze(except), policy, maxFails, maxConcurrent, tryTimeoutMs, probeIntervalMs, transport,
    tls: Object.freeze(tls), expireMs, nextRcodes: Object.freeze(nextRcodes), failfast, nextLine,
  });
}

export const forward: PluginSetup<ForwardConfig> = {
  name: 'forward',
  parse(directives) {
    return Object.freeze(directives.map(parseStanza));
  },
  create(config, context) {
    const last = config.length - 1;
    const stanzas = config.map((stanza, index) => createStanza(stanza, context, index < last));
    const { nextLine } = config[last]!;
    if (nextLine !== undefined) {
      context.log.warn({ plugin: 'forward', line: nextLine }, 'next has no effect: no forward follows it in this server block (CoreDNS ignores it there too)');
    }
    // One stanza (the usual case): its forwarder is the handler itself, nothing in between.
    const handler: Handler = stanzas.length === 1 ? stanzas[0]!.handler! : stanzaChain(stanzas.map((stanza) => stanza.handler!));
    return {
      handler,
      warnings: () => stanzas.flatMap((stanza) => stanza.warnings?.() ?? []),
      async start() {
        await Promise.all(stanzas.map((stanza) => stanza.start?.()));
      },
      close() {
        for (const stanza of stanzas) stanza.close?.();
      },
    };
  },
};

/**
 * Several stanzas in one server block: each passes what it does not answer to the next, the last to the block's
 * chain. That chain is the same function for every query, so the stanzas are composed once for it (chainOf), not
 * per query.
 */
function stanzaChain(forwarders: readonly Handler[]): Handler {
  let after: Next | undefined;
  let composed: Next | undefined;
  return {
    name: 'forward',
    resolve(q, client, next) {
      if (next !== after) {
        after = next;
        composed = chainOf(forwarders, next);
      }
      return composed!(q, client);
    },
  };
}

function createStanza(config: ForwardStanza, context: SetupContext, nextIsForward: boolean): RunningPlugin {
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
    tls: config.tls,
    expireMs: config.expireMs,
    nextRcodes: nextIsForward && config.nextRcodes.length > 0 ? new Set(config.nextRcodes) : undefined,
    failfast: config.failfast,
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
}

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
