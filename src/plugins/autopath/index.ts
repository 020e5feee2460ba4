/**
 * plugins/autopath — server-side search-path completion (CoreDNS's `autopath @kubernetes`). A pod in
 * namespace NS with the kubelet's resolv.conf (`search NS.svc.<zone> svc.<zone> <zone> <host domains...>`,
 * `ndots:5`) asks first for `NAME.NS.svc.<zone>`. When that name does not exist and the client's address is a
 * pod of NS, autopath walks the rest of the pod's search path itself — `NAME.svc.<zone>`, `NAME.<zone>`,
 * `NAME.<host domain>`..., then `NAME` — and answers with a CNAME from the asked name to the first candidate
 * that is not NXDOMAIN, followed by that candidate's records: one round trip instead of up to eight.
 *
 * Owns only the walk. It asks `next` first and looks only at an NXDOMAIN (so names that exist cost it one
 * compare); it reads the store's pod index (IP → namespace/name) and asks `next` for each candidate. When the
 * walk finds nothing, or a candidate fails (SERVFAIL), the client gets the plain answer for the name it asked,
 * and its own resolver goes on as it would have anyway. A completion of a forwarded candidate carries the
 * composite message, so the cache in front keeps it as CoreDNS's cache keeps autopath's answers.
 */
import { canonicalIp } from '../../ip.js';
import type { StoreView } from '../../store/index.js';
import { EdeCode, encodeEde, firstLabel, isInZone, joinEde, keyToName, nameToKey, parentKey, prepareAnswer, preparedRecords, Rcode, RRClass, RRType, type Message } from '../../wire/index.js';
import type { Client, Handler, Next, Question, Reply, Result } from '../plugin.js';

export interface AutopathOptions {
  /** The cluster domain, e.g. `cluster.local`. */
  readonly zone: string;
  /** The node's search domains (from --resolv-conf), which the kubelet appends to every pod's search path. */
  readonly hostSearch: readonly string[];
  /** TTL of the CNAME it makes: the cluster zone's, since the answer depends on the pod's namespace. */
  readonly ttl: number;
}

export class Autopath implements Handler {
  readonly name = 'autopath';
  /** Queries answered from a candidate further down the search path. */
  completions = 0;
  private readonly svcKey: string;
  private readonly suffixes: readonly string[];
  private readonly ttl: number;

  constructor(private readonly store: StoreView, options: AutopathOptions) {
    this.ttl = options.ttl;
    const zoneKey = nameToKey(options.zone);
    this.svcKey = nameToKey(`svc.${options.zone}`);
    // Host domains inside the cluster zone are walked already (or are other namespaces' ones, never a pod's).
    const hostKeys = options.hostSearch.map((domain) => nameToKey(domain)).filter((key) => !isInZone(key, zoneKey));
    this.suffixes = [this.svcKey, zoneKey, ...hostKeys, '\0'];
  }

  resolve(q: Question, client: Client, next: Next): Result {
    const plain = next(q, client);
    if (plain instanceof Promise) return plain.then((reply) => this.completeIfNxdomain(q, client, next, reply));
    return this.completeIfNxdomain(q, client, next, plain);
  }

  /**
   * A completed answer when `plain` is an NXDOMAIN for `NAME.<ns>.svc.<zone>` asked by a pod of `<ns>` and a later
   * candidate exists, else `plain`.
   */
  private completeIfNxdomain(q: Question, client: Client, next: Next, plain: Reply): Result {
    if (plain.answer.rcode !== Rcode.NXDOMAIN || !isInZone(q.key, this.svcKey)) return plain;
    const namespaceKey = this.namespaceKeyOf(q.key);
    if (namespaceKey === undefined || namespaceKey === q.key) return plain;
    const namespace = firstLabel(namespaceKey);
    const ip = canonicalIp(client.address);
    if (ip === undefined || this.store.podAt(ip, namespace) === undefined) return plain;
    return this.walk(q, client, next, q.key.slice(0, q.key.length - namespaceKey.length)).then((completed) => completed ?? plain);
  }

  /** `<ns>.svc.<zone>` of a name below it, or undefined when the name is not below a namespace. */
  private namespaceKeyOf(key: string): string | undefined {
    for (let k: string | undefined = key; k !== undefined; k = parentKey(k)) {
      if (parentKey(k) === this.svcKey) return k;
    }
    return undefined;
  }

  /** The completed answer, or undefined when no candidate exists or one fails. */
  private async walk(q: Question, client: Client, next: Next, stem: string): Promise<Reply | undefined> {
    for (const [index, suffix] of this.suffixes.entries()) {
      const key = stem + suffix;
      if (key.length > 255) continue;
      const found = await next({ ...q, key }, client);
      if (found.answer.rcode === Rcode.NXDOMAIN) continue;
      if (found.answer.rcode !== Rcode.NOERROR) return undefined;
      this.completions++;
      const records = preparedRecords(key, q.qtype, found.answer);
      // Which name of the pod's search path answered: what `dig` of the long name otherwise leaves a person to guess.
      const which = encodeEde(EdeCode.OTHER, `autopath: "${keyToName(key)}" answered (search path entry ${index + 2})`);
      // What the found answer says of itself (no ready endpoints, state as of N s ago) comes first: it is about
      // the records the client gets; which entry answered is context.
      const ede = joinEde(found.answer.ede, which)!;
      const answer = prepareAnswer(q.key, {
        rcode: Rcode.NOERROR,
        authoritative: false,
        recursionAvailable: found.answer.recursionAvailable === true,
        ede,
        answer: [{ owner: q.key, ttl: this.ttl, data: { type: RRType.CNAME, target: key } }, ...records.answer],
        authority: records.answer.length === 0 ? records.authority : [],
      });
      return { answer, plugin: this.name, ...(found.message !== undefined && { message: { ...this.behindCname(q, key, found.message), ede } }) };
    }
    return undefined;
  }

  /** The candidate's upstream message with the CNAME in front, asked as `q`: what the cache keeps. */
  private behindCname(q: Question, target: string, message: Message): Message {
    const cname = { owner: q.key, type: RRType.CNAME, class: RRClass.IN, ttl: this.ttl, rdata: Buffer.from(target, 'latin1') };
    return { ...message, question: { key: q.key, qtype: q.qtype, qclass: q.qclass }, answer: [cname, ...message.answer] };
  }
}
