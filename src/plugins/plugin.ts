/**
 * The plugin contract, CoreDNS's in TypeScript. A plugin's handler gets the question, the client and `next`
 * (the rest of the chain, in the order plugins/order.ts declares once) and either answers or returns what `next`
 * returns, possibly changed on the way (the cache stores it, autopath completes an NXDOMAIN, kubernetes chases an
 * ExternalName's target). A handler answers synchronously when it can (cluster zone, cache hit, hosts) and with a
 * promise only when it must wait (an upstream), so the common answers never wait on a promise.
 *
 * A Reply names the plugin that wrote it: that is the `plugin` label of coredns_dns_responses_total.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Directive } from '../corefile/types.js';
import type { ServiceRecord, StoreView } from '../store/index.js';
import type { Message, PreparedAnswer, Query, Question } from '../wire/index.js';

export type { Question } from '../wire/index.js';

/** Who asked. */
export interface Client {
  readonly address: string;
  readonly port: number;
  /** 'tcp' for a TCP connection; absent over UDP, where the socket's own peer object is passed as is (no copy per packet). */
  readonly transport?: 'tcp';
}

/** Where the server hands a query's error: the question, the rcode it was answered with, and the error. */
export type ErrorSink = (q: Question, rcode: number, error: Error) => void;

/** What one answered query offers its block's query log (the log plugin's line is made from it). */
export interface LoggedQuery {
  /** The parsed query: its question, ID, header flags and EDNS facts. */
  readonly query: Query;
  readonly client: Client;
  /** The address the query arrived on. */
  readonly local: string;
  /** The whole query's size, OPT record included. */
  readonly requestSize: number;
  readonly rcode: number;
  /** The reply as sent: its header gives the response flags, its length the size. */
  readonly reply: Buffer;
  readonly seconds: number;
}

export interface Reply {
  readonly answer: PreparedAnswer;
  /** The plugin that wrote the answer, as CoreDNS names it (`kubernetes`, `cache`...); '' for the server itself. */
  readonly plugin: string;
  /** The upstream message the answer was prepared from, when it came from another server: what a cache may keep. */
  readonly message?: Message;
  /**
   * Why the plugin answered with a failure (CoreDNS's returned `error`), in the words CoreDNS users match with
   * `errors { consolidate }` (`read udp ...: i/o timeout`): what the block's errors plugin logs. Set only on failures,
   * so an answer costs the server one check of it.
   */
  readonly error?: Error;
}

export type Result = Reply | Promise<Reply>;

/** The rest of the chain after a plugin. */
export type Next = (q: Question, client: Client) => Result;

export interface Handler {
  /** CoreDNS's name of the plugin, and the `plugin` label of its answers. */
  readonly name: string;
  /**
   * Answer `q` or pass it on through `next`. `q` may be read after an await (every query has its own), but is
   * never changed: ask `next` about another name with `{ ...q, key }`.
   */
  resolve(q: Question, client: Client, next: Next): Result;
}

/** What a plugin's setup gets besides its own stanza: its server block, and the parts it may read or report to. */
export interface SetupContext {
  /** The zones of its server block, lower-case and absolute (`example.org.`, `.`). */
  readonly zones: readonly string[];
  /** The records watched from the cluster (or manifests), read-only. */
  readonly store: StoreView;
  /** Where its metrics go (plugins/<name>/metrics.ts registers them). */
  readonly registry: Registry;
  readonly log: Logger;
  /** Milliseconds; Date.now in production, a stepped clock in tests. */
  readonly now: () => number;
  /** Calls `callback` once, `ms` from now (an unref'd setTimeout in production, the stepped clock's in tests); returns its cancel. */
  readonly after: (ms: number, callback: () => void) => () => void;
  /** The addresses clients reach this server on (the NS glue falls back to them). */
  readonly selfAddresses: readonly string[];
  /** The node's resolv.conf: its search domains (which the kubelet appends to pods' own) and its path. */
  readonly resolvConf: { readonly path: string; readonly search: readonly string[] };
  /** The config another plugin of the same server block was given (autopath reads kubernetes'), if it has one. */
  configOf(plugin: string): unknown;
  /** Answers in place of a ClusterIP service's cluster IPs: the dev command's loopback addresses. */
  readonly virtualIPs?: (service: ServiceRecord) => readonly string[];
}

/** A plugin as it runs in one server block. */
export interface RunningPlugin {
  /** Absent for plugins that answer nothing (health, ready, prometheus, reload...). */
  readonly handler?: Handler;
  /** Why it is not ready yet (reported by name on /ready, as CoreDNS's ready plugin does), or undefined. */
  notReady?(): string | undefined;
  /** Problems that do not stop it answering (a forwarding loop), listed under /ready's 200. */
  warnings?(): readonly string[];
  /** Takes the error a query of its block was answered with (Reply.error): the errors plugin, which logs them. */
  readonly reportError?: ErrorSink;
  start?(): Promise<void>;
  close?(): void | Promise<void>;
}

/**
 * A plugin's setup, one per folder (plugins/<name>/setup.ts), in CoreDNS's shape: `parse` turns every line of the
 * plugin in one server block into one validated, frozen config (errors name file and line: corefile/errors.ts),
 * and `create` builds the running plugin over it. The command-line flags build the same directives.
 */
export interface PluginSetup<Config = unknown> {
  readonly name: string;
  /** Plugins that must be in the same server block (autopath needs kubernetes). */
  readonly requires?: readonly string[];
  parse(directives: readonly Directive[], zones: readonly string[]): Config;
  create(config: Config, context: SetupContext): RunningPlugin;
}
