/**
 * The hosts plugin's table: /etc/hosts lines (from the file or inline in the Corefile) → the addresses of each
 * name and the names of each address, with the answers prepared once per name and reused by every query until
 * the file changes. Knows nothing of files, timers or the chain: index.ts reads the file, setup.ts the stanza.
 */
import { isIPv4 } from 'node:net';
import { canonicalIp, ipFamily, ipv6Bytes, reverseName } from '../../ip.js';
import { isInZone, nameToKey, NameError, parentKey, prepareAnswer, Rcode, RRType, type PreparedAnswer, type ResourceRecord } from '../../wire/index.js';

/** One usable hosts line: a canonical address and the names (lower-case, absolute) it gives it. */
export interface HostsLine {
  readonly address: string;
  readonly names: readonly string[];
}

/**
 * A hosts(5) line: `ADDRESS NAME [ALIASES...]`, `#` to the end of the line is a comment. An IPv6 zone (`%eth0`) is
 * dropped and an IPv4-mapped IPv6 address counts as IPv4, as CoreDNS reads them. A string says why the line is
 * unusable; undefined means a blank or comment line.
 */
export function parseHostsLine(text: string): HostsLine | string | undefined {
  const hash = text.indexOf('#');
  const fields = (hash >= 0 ? text.slice(0, hash) : text).split(/\s+/).filter((field) => field !== '');
  if (fields.length === 0) return undefined;
  const [first, ...names] = fields as [string, ...string[]];
  const address = addressOf(first);
  if (address === undefined) return `"${first}" is not an IP address (an entry is ADDRESS NAME [ALIASES...])`;
  if (names.length === 0) return `address ${first} has no name (an entry is ADDRESS NAME [ALIASES...])`;
  const absolute: string[] = [];
  for (const name of names) {
    const lower = `${name.replace(/\.$/, '').toLowerCase()}.`;
    try {
      nameToKey(lower);
    } catch (error) {
      if (error instanceof NameError) return `"${name}" is not a host name: ${error.message}`;
      throw error;
    }
    absolute.push(lower);
  }
  return { address, names: absolute };
}

function addressOf(text: string): string | undefined {
  const zone = text.indexOf('%');
  const canonical = canonicalIp(zone >= 0 ? text.slice(0, zone) : text);
  if (canonical === undefined || isIPv4(canonical)) return canonical;
  const bytes = ipv6Bytes(canonical);
  const mapped = bytes.subarray(0, 10).every((byte) => byte === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return mapped ? [...bytes.subarray(12)].join('.') : canonical;
}

/** What a name (or a wildcard's base) has: its addresses of each family, and its answers once prepared. */
interface NameEntry {
  readonly v4: string[];
  readonly v6: string[];
  a?: PreparedAnswer;
  aaaa?: PreparedAnswer;
  nodata?: PreparedAnswer;
}

/** The entries of one source (the file, or the Corefile's inline lines), keyed by wire key. */
export class HostsEntries {
  readonly byName = new Map<string, NameEntry>();
  /** `*.example.org` entries, keyed by `example.org`'s key: they answer one label below it. */
  readonly wildcards = new Map<string, NameEntry>();
  /** Reverse name key (`1.0.0.10.in-addr.arpa.`) → the name keys of that address, in the order written. */
  readonly byAddress = new Map<string, string[]>();

  /** `zones` are wire keys: names outside them are not taken. */
  add(line: HostsLine, zones: readonly string[], reverse: boolean): void {
    const v6 = ipFamily(line.address) === 6;
    for (const name of line.names) {
      const key = nameToKey(name);
      if (!zones.some((zone) => isInZone(key, zone))) continue;
      const wildcard = key.startsWith('\x01*');
      const map = wildcard ? this.wildcards : this.byName;
      const owner = wildcard ? parentKey(key)! : key;
      let entry = map.get(owner);
      if (entry === undefined) map.set(owner, (entry = { v4: [], v6: [] }));
      const addresses = v6 ? entry.v6 : entry.v4;
      if (!addresses.includes(line.address)) addresses.push(line.address);
      // Wildcards stand for many names: no PTR points at them (as CoreDNS).
      if (!reverse || wildcard) continue;
      const reverseKey = nameToKey(reverseName(line.address));
      let names = this.byAddress.get(reverseKey);
      if (names === undefined) this.byAddress.set(reverseKey, (names = []));
      if (!names.includes(key)) names.push(key);
    }
  }

  /** CoreDNS's count for coredns_hosts_entries: every name's addresses plus every address's names. */
  get size(): number {
    let count = 0;
    for (const map of [this.byName, this.wildcards]) for (const entry of map.values()) count += entry.v4.length + entry.v6.length;
    for (const names of this.byAddress.values()) count += names.length;
    return count;
  }
}

/**
 * The file's entries and the inline ones, read as one table: a name written inline is answered from the inline
 * lines only, so a Corefile entry overrides the file's for that name, as CoreDNS documents ("entries will be
 * overridden"; its code in fact answers both sets, which gives a name two sets of addresses nobody wrote together).
 */
export class HostsTable {
  private readonly ptrAnswers = new Map<string, PreparedAnswer>();

  private readonly hasWildcards: boolean;

  constructor(private readonly file: HostsEntries, private readonly inline: HostsEntries, private readonly ttl: number) {
    this.hasWildcards = file.wildcards.size + inline.wildcards.size > 0;
  }

  get size(): number {
    return this.file.size + this.inline.size;
  }

  /** The A or AAAA answer for `key`, NODATA for another type or a family it lacks; undefined for a name it lacks. */
  lookup(key: string, qtype: number): PreparedAnswer | undefined {
    const exact = this.inline.byName.get(key) ?? this.file.byName.get(key);
    // Most tables have no wildcard: then a name they lack (every cluster name, with fallthrough) costs two lookups.
    const base = this.hasWildcards ? parentKey(key) : undefined;
    const wildcard = base === undefined ? undefined : this.inline.wildcards.get(base) ?? this.file.wildcards.get(base);
    if (exact === undefined && wildcard === undefined) return undefined;
    // A family the name itself lacks comes from a wildcard above it, if any (CoreDNS looks up each family apart).
    // The answers are the same bytes for every name a wildcard covers (the owner is a pointer to the question), so
    // they are prepared once per entry, never per query.
    const memo = exact ?? wildcard!;
    if (qtype === RRType.A || qtype === RRType.AAAA) {
      const type = qtype === RRType.A ? RRType.A : RRType.AAAA;
      const field = type === RRType.A ? 'a' : 'aaaa';
      const family = type === RRType.A ? 'v4' : 'v6';
      const prepared = memo[field];
      if (prepared !== undefined) return prepared;
      const addresses = exact !== undefined && exact[family].length > 0 ? exact[family] : wildcard?.[family] ?? [];
      const records: ResourceRecord[] = addresses.map((ip) => ({ owner: key, ttl: this.ttl, data: { type, ip } }));
      return (memo[field] = prepareAnswer(key, { rcode: Rcode.NOERROR, authoritative: true, answer: records }));
    }
    return (memo.nodata ??= prepareAnswer(key, { rcode: Rcode.NOERROR, authoritative: true }));
  }

  /** The PTR answer for a reverse name, or undefined when no entry has that address. */
  ptr(key: string): PreparedAnswer | undefined {
    const prepared = this.ptrAnswers.get(key);
    if (prepared !== undefined) return prepared;
    // Reverse names it lacks (a cluster IP's) are the common case: nothing is allocated for them.
    if (!this.file.byAddress.has(key) && !this.inline.byAddress.has(key)) return undefined;
    // The names that have the address: the file's (but those the inline lines give other addresses) and the inline ones.
    const fromFile = (this.file.byAddress.get(key) ?? []).filter((name) => !this.inline.byName.has(name));
    const fromInline = this.inline.byAddress.get(key) ?? [];
    const names = [...new Set([...fromFile, ...fromInline])];
    if (names.length === 0) return undefined;
    const answer = prepareAnswer(key, {
      rcode: Rcode.NOERROR,
      authoritative: true,
      answer: names.map((target) => ({ owner: key, ttl: this.ttl, data: { type: RRType.PTR, target } })),
    });
    this.ptrAnswers.set(key, answer);
    return answer;
  }
}
