/**
 * resolvers/autopath — server-side search-path completion (CoreDNS's `autopath @kubernetes`). A pod in
 * namespace NS with the kubelet's resolv.conf (`search NS.svc.<zone> svc.<zone> <zone> <host domains...>`,
 * `ndots:5`) asks first for `NAME.NS.svc.<zone>`. When that name does not exist and the client's address is a
 * pod of NS, this step walks the rest of the pod's search path itself — `NAME.svc.<zone>`, `NAME.<zone>`,
 * `NAME.<host domain>`..., then `NAME` — and answers with a CNAME from the asked name to the first candidate
 * that is not NXDOMAIN, followed by that candidate's records: one round trip instead of up to eight.
 *
 * Owns only the walk. It reads the store's pod index (IP → namespace) and asks the steps after it (cluster,
 * cache, forward) for each candidate. When the walk finds nothing, or a candidate fails (SERVFAIL), the client
 * gets the plain answer for the name it asked, and its own resolver goes on as it would have anyway.
 */
import { canonicalIp } from '../../ip.js';
import type { StoreView } from '../../store/index.js';
import { firstLabel, isInZone, nameToKey, parentKey, prepareAnswer, preparedRecords, Rcode, RRType, type PreparedAnswer } from '../../wire/index.js';
import type { ChainClient, ChainQuestion, ResolverChain, ResolverStep } from '../chain.js';

export interface AutopathOptions {
  /** The cluster domain, e.g. `cluster.local`. */
  readonly zone: string;
  /** The node's search domains (from --resolv-conf), which the kubelet appends to every pod's search path. */
  readonly hostSearch: readonly string[];
  /** TTL of the CNAME it makes: the cluster zone's, since the answer depends on the pod's namespace. */
  readonly ttl: number;
}

export class Autopath implements ResolverStep {
  readonly name = 'autopath';
  /** Queries answered from a candidate further down the search path. */
  completions = 0;
  private readonly svcKey: string;
  private readonly suffixes: readonly string[];
  private readonly ttl: number;

  constructor(private readonly store: StoreView, private readonly below: ResolverChain, options: AutopathOptions) {
    this.ttl = options.ttl;
    const zoneKey = nameToKey(options.zone);
    this.svcKey = nameToKey(`svc.${options.zone}`);
    // Host domains inside the cluster zone are walked already (or are other namespaces' ones, never a pod's).
    const hostKeys = options.hostSearch.map((domain) => nameToKey(domain)).filter((key) => !isInZone(key, zoneKey));
    this.suffixes = [this.svcKey, zoneKey, ...hostKeys, '\0'];
  }

  resolve(q: ChainQuestion, client: ChainClient): PreparedAnswer | Promise<PreparedAnswer | undefined> | undefined {
    // NAME.<ns>.svc.<zone>, with at least one label of NAME.
    if (!isInZone(q.key, this.svcKey)) return undefined;
    const namespaceKey = this.namespaceKeyOf(q.key);
    if (namespaceKey === undefined || namespaceKey === q.key) return undefined;
    const namespace = firstLabel(namespaceKey);
    const ip = canonicalIp(client.address);
    if (ip === undefined || !this.store.podsByIP(ip).some((pod) => pod.startsWith(`${namespace}/`))) return undefined;
    const asked = this.below.resolve(q, client);
    const question = { key: q.key, qtype: q.qtype, qclass: q.qclass, dnssecOk: q.dnssecOk, flags: q.flags };
    const stem = q.key.slice(0, q.key.length - namespaceKey.length);
    if (asked instanceof Promise) return asked.then((found) => this.walk(question, client, stem, found.answer));
    // A name that exists is the cluster step's to answer (and to be counted as its answer); asking it again
    // costs one table lookup.
    if (asked.answer.rcode !== Rcode.NXDOMAIN) return undefined;
    return this.walk(question, client, stem, asked.answer);
  }

  /** `<ns>.svc.<zone>` of a name below it, or undefined when the name is not below a namespace. */
  private namespaceKeyOf(key: string): string | undefined {
    for (let k: string | undefined = key; k !== undefined; k = parentKey(k)) {
      if (parentKey(k) === this.svcKey) return k;
    }
    return undefined;
  }

  private async walk(q: ChainQuestion, client: ChainClient, stem: string, plain: PreparedAnswer): Promise<PreparedAnswer> {
    if (plain.rcode !== Rcode.NXDOMAIN) return plain;
    for (const suffix of this.suffixes) {
      const key = stem + suffix;
      if (key.length > 255) continue;
      const found = await this.below.resolve({ ...q, key }, client);
      if (found.answer.rcode === Rcode.NXDOMAIN) continue;
      if (found.answer.rcode !== Rcode.NOERROR) return plain;
      this.completions++;
      const records = preparedRecords(key, q.qtype, found.answer);
      return prepareAnswer(q.key, {
        rcode: Rcode.NOERROR,
        authoritative: false,
        recursionAvailable: found.answer.recursionAvailable === true,
        answer: [{ owner: q.key, ttl: this.ttl, data: { type: RRType.CNAME, target: key } }, ...records.answer],
        authority: records.answer.length === 0 ? records.authority : [],
      });
    }
    return plain;
  }
}
