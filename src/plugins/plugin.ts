/**
 * The plugin contract, CoreDNS's in TypeScript. A plugin's handler gets the question, the client and `next`
 * (the rest of the chain, in the order plugins/order.ts declares once) and either answers or returns what `next`
 * returns, possibly changed on the way (the cache stores it, autopath completes an NXDOMAIN, kubernetes chases an
 * ExternalName's target). A handler answers synchronously when it can (cluster zone, cache hit, hosts) and with a
 * promise only when it must wait (an upstream), so the common answers never wait on a promise.
 *
 * A Reply names the plugin that wrote it: that is the `plugin` label of coredns_dns_responses_total.
 */
import type { Message, PreparedAnswer, Question } from '../wire/index.js';

export type { Question } from '../wire/index.js';

/** Who asked. */
export interface Client {
  readonly address: string;
  readonly port: number;
}

export interface Reply {
  readonly answer: PreparedAnswer;
  /** The plugin that wrote the answer, as CoreDNS names it (`kubernetes`, `cache`...); '' for the server itself. */
  readonly plugin: string;
  /** The upstream message the answer was prepared from, when it came from another server: what a cache may keep. */
  readonly message?: Message;
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
