/**
 * resolvers/autopath — server-side search-path completion (CoreDNS's `autopath @kubernetes`). A pod in
 * namespace NS with the kubelet's resolv.conf (`search NS.svc.<zone> svc.<zone> <zone> <host domains...>`,
 * `ndots:5`) asks first for `NAME.NS.svc.<zone>`. When that name does not exist and the client's address is a
 * pod of NS, autopath walks the rest of the pod's search path itself — `NAME.svc.<zone>`, `NAME.<zone>`,
 * `NAME.<host domain>`..., then `NAME` — and answers with a CNAME from the asked name to the first candidate
 * that is not NXDOMAIN, followed by that candidate's records: one round trip instead of up to eight.
 *
 * Owns only the walk. The chain offers it each NXDOMAIN (so names that exist cost it nothing); it reads the
 * store's pod index (IP → namespace/name) and asks the plain chain (cluster, cache, forward) for each candidate.
 * When the walk finds nothing, or a candidate fails (SERVFAIL), the client gets the plain answer for the name it
 * asked, and its own resolver goes on as it would have anyway.
 */
import { canonicalIp } from '../../ip.js';
import type { StoreView } from '../../store/index.js';
import { firstLabel, isInZone, nameToKey, parentKey, prepareAnswer, preparedRecords, Rcode, RRType, type PreparedAnswer } from '../../wire/index.js';
import { copyQuestion, type ChainClient, type ChainQuestion, type Completion, type ResolverChain } from '../chain.js';

export interface AutopathOptions {
  /** The cluster domain, e.g. `cluster.local`. */
  readonly zone: string;
  /** The node's search domains (from --resolv-conf), which the kubelet appends to every pod's search path. */
  readonly hostSearch: readonly string[];
  /** TTL of the CNAME it makes: the cluster zone's, since the answer depends on the pod's namespace. */
  readonly ttl: number;
}

export class Autopath implements Completion {
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

  /**
   * Offered every NXDOMAIN the chain gives: a completed answer when the name is `NAME.<ns>.svc.<zone>` asked by
   * a pod of `<ns>` and a later candidate exists, else undefined (the plain NXDOMAIN stands). Names that exist
   * never get here, so the common query costs autopath nothing.
   */
  complete(q: ChainQuestion, client: ChainClient): Promise<PreparedAnswer | undefined> | undefined {
    if (!isInZone(q.key, this.svcKey)) return undefined;
    const namespaceKey = this.namespaceKeyOf(q.key);
    if (namespaceKey === undefined || namespaceKey === q.key) return undefined;
    const namespace = firstLabel(namespaceKey);
    const ip = canonicalIp(client.address);
    if (ip === undefined || this.store.podAt(ip, namespace) === undefined) return undefined;
    return this.walk(copyQuestion(q), { address: client.address }, q.key.slice(0, q.key.length - namespaceKey.length));
  }

  /** `<ns>.svc.<zone>` of a name below it, or undefined when the name is not below a namespace. */
  private namespaceKeyOf(key: string): string | undefined {
    for (let k: string | undefined = key; k !== undefined; k = parentKey(k)) {
      if (parentKey(k) === this.svcKey) return k;
    }
    return undefined;
  }

  /** The completed answer, or undefined when no candidate exists or one fails. */
  private async walk(q: ChainQuestion, client: ChainClient, stem: string): Promise<PreparedAnswer | undefined> {
    for (const suffix of this.suffixes) {
      const key = stem + suffix;
      if (key.length > 255) continue;
      const found = await this.below.resolve({ ...q, key }, client);
      if (found.answer.rcode === Rcode.NXDOMAIN) continue;
      if (found.answer.rcode !== Rcode.NOERROR) return undefined;
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
    return undefined;
  }
}
