/**
 * What DNS answers, for `clusterdns doctor`: asks the running server for a Service's full name (with EDNS, so the
 * reply can carry an Extended DNS Error, RFC 8914, which is shown), walks the short name as a pod of the
 * namespace would (resolve/'s glibc search), and for an ExternalName asks for its target, which the server must
 * forward. Builds the Check of each from what came back. Sends only to the server it is given.
 */
import { parseResolvConf, podResolvConf } from '../config/resolv-conf.js';
import { canonicalIp, formatHostPort, type HostPort } from '../ip.js';
import { resolveName } from '../resolve/index.js';
import { RRClass, RRType, rcodeName, typeName } from '../wire/constants.js';
import { decodeEde } from '../wire/ede.js';
import { decodeMessage, encodeQuery, type WireRecord } from '../wire/message.js';
import { keyToName, nameToKey } from '../wire/names.js';
import { tcpExchange } from '../wire/tcp.js';
import type { Check, Mark } from './checks.js';
import type { ServiceView, SliceView } from './objects.js';

/** One question's outcome, as the report shows it. */
export interface DnsAnswer {
  readonly name: string;
  readonly type: string;
  /** `NOERROR`, `NXDOMAIN`..., `no reply`, or a socket error code (`ECONNREFUSED`). */
  readonly status: string;
  readonly answers: readonly string[];
  readonly addresses: readonly string[];
  /** The CNAME targets in the answer. */
  readonly aliases: readonly string[];
  readonly ede: ReadonlyArray<{ readonly code: number; readonly text: string }>;
}

const TIMEOUT_MS = 3000;
const EDNS_PAYLOAD = 1232;
/** RFC 8914 §5.2 and the IANA registry: the INFO-CODEs dig names. */
const EDE_NAMES = [
  'Other', 'Unsupported DNSKEY Algorithm', 'Unsupported DS Digest Type', 'Stale Answer', 'Forged Answer', 'DNSSEC Indeterminate',
  'DNSSEC Bogus', 'Signature Expired', 'Signature Not Yet Valid', 'DNSKEY Missing', 'RRSIGs Missing', 'No Zone Key Bit Set',
  'NSEC Missing', 'Cached Error', 'Not Ready', 'Blocked', 'Censored', 'Filtered', 'Prohibited', 'Stale NXDOMAIN Answer',
  'Not Authoritative', 'Not Supported', 'No Reachable Authority', 'Network Error', 'Invalid Data',
];

/** One question over TCP with EDNS (a reply never truncates there, and EDE needs an OPT in the query). */
export async function ask(server: HostPort, name: string, type: number): Promise<DnsAnswer> {
  const base = { name: name.endsWith('.') ? name : `${name}.`, type: typeName(type), answers: [], addresses: [], aliases: [], ede: [] };
  const id = Math.floor(Math.random() * 0x10000);
  const query = encodeQuery({ id, key: nameToKey(name), qtype: type, qclass: RRClass.IN, dnssecOk: false, checkingDisabled: false }, EDNS_PAYLOAD);
  const outcome = await tcpExchange(server, query, TIMEOUT_MS);
  if (outcome.kind === 'timeout') return { ...base, status: 'no reply' };
  if (outcome.kind === 'error') return { ...base, status: outcome.code };
  let message;
  try {
    message = decodeMessage(outcome.message);
  } catch (error) {
    return { ...base, status: `malformed reply (${(error as Error).message})` };
  }
  if (message.id !== id) return { ...base, status: 'reply with the wrong ID' };
  return {
    ...base,
    status: rcodeName(message.rcode),
    answers: message.answer.map(recordLine),
    addresses: message.answer.flatMap((record) => (record.type === RRType.A || record.type === RRType.AAAA ? [rdataText(record)] : [])),
    aliases: message.answer.flatMap((record) => (record.type === RRType.CNAME ? [rdataText(record)] : [])),
    ede: message.ede === undefined ? [] : decodeEde(message.ede).map(([code, text]) => ({ code, text })),
  };
}

/** The answer line as the report shows it: `name. A NOERROR: 10.96.0.10` and the EDE, if any. */
function describe(answer: DnsAnswer): string[] {
  const data = [...answer.aliases.map((alias) => `CNAME ${alias}`), ...answer.addresses];
  const lines = [`${answer.name} ${answer.type} → ${answer.status}${data.length > 0 ? `: ${data.join(', ')}` : ''}`];
  for (const { code, text } of answer.ede) lines.push(`  EDE ${code} (${EDE_NAMES[code] ?? 'Unassigned'})${text === '' ? '' : `: ${text}`}`);
  return lines;
}

/** The short name as a pod of `namespace` looks it up (search list, ndots 5, A and AAAA), in one line. */
async function shortNameLine(server: HostPort, name: string, namespace: string, zone: string): Promise<{ line: string; ok: boolean }> {
  const conf = podResolvConf(parseResolvConf('', { source: 'no node' }), { namespace, zone, nameservers: [server] });
  const report = await resolveName({ name, conf, servers: [server] });
  const from = `from a pod in ${namespace}, "${name}"`;
  if (report.ok) {
    const index = report.tries.findIndex((t) => t.name === report.answeredBy) + 1;
    return { line: `${from} → ${report.answeredBy} (try ${index} of ${report.tries.length}): ${report.addresses.join(', ')}`, ok: true };
  }
  const tries = `${report.tries.length} tr${report.tries.length === 1 ? 'y' : 'ies'}`;
  return { line: `${from} → not resolved after ${tries}: ${report.answeredBy !== undefined ? `${report.answeredBy} answered, ` : ''}${report.error}`, ok: false };
}

function unreachable(server: HostPort, answer: DnsAnswer): Check | undefined {
  if (answer.status !== 'no reply' && !/^E[A-Z]+$/.test(answer.status)) return undefined;
  return {
    check: 'dns',
    mark: 'fail',
    summary: `the DNS server ${formatHostPort(server)} did not answer (${answer.status})`,
    evidence: describe(answer),
    fixes: [`is the cluster DNS serving at ${formatHostPort(server)}? Give its address with --server HOST:PORT`],
  };
}

/** What DNS answers for a Service that exists: its full name must give what the objects say. */
export async function dnsCheck(server: HostPort, service: ServiceView, slices: readonly SliceView[], zone: string): Promise<Check> {
  const { record } = service;
  const fqdn = `${record.name}.${record.namespace}.svc.${zone}.`;
  const v4 = record.kind !== 'ClusterIP' || record.clusterIPs.some((ip) => !ip.includes(':'));
  const answer = await ask(server, fqdn, v4 ? RRType.A : RRType.AAAA);
  const down = unreachable(server, answer);
  if (down !== undefined) return down;
  const evidence = describe(answer);
  const short = await shortNameLine(server, record.name, record.namespace, zone);
  evidence.push(short.line);
  let mark: Mark = 'pass';
  let summary: string;
  const fixes: string[] = [];
  const where = `${record.namespace}/${record.name}`;
  if (record.kind === 'ExternalName') {
    const target = `${record.externalName}.`;
    const aliased = answer.aliases.some((alias) => alias.toLowerCase() === target);
    summary = aliased ? `DNS answers ${fqdn} with CNAME ${target}` : `DNS does not answer ${fqdn} with CNAME ${target}`;
    if (!aliased) mark = 'fail';
  } else {
    const family = v4 ? (ip: string): boolean => !ip.includes(':') : (ip: string): boolean => ip.includes(':');
    const expected = record.kind === 'ClusterIP'
      ? record.clusterIPs.filter(family)
      : [...new Set(slices.flatMap((slice) => slice.endpoints.filter((e) => e.ready && !e.terminating).flatMap((e) => e.addresses)))].filter(family);
    const got = answer.addresses.map((ip) => canonicalIp(ip) ?? ip);
    const agrees = expected.length > 0 && expected.length === got.length && expected.every((ip) => got.includes(ip));
    summary = agrees ? `DNS answers ${fqdn} with ${got.join(', ')}` : `DNS answers ${fqdn} with ${answer.status}${got.length > 0 ? ` ${got.join(', ')}` : ''}`;
    if (!agrees) {
      mark = 'fail';
      if (record.kind === 'Headless' && expected.length === 0) {
        summary += ': a headless Service with no ready endpoint has no address';
        fixes.push('follows from the endpoints above');
      } else if (answer.status === 'NXDOMAIN') {
        fixes.push(`the server does not know ${where}: does it watch namespace ${record.namespace} (the kubernetes plugin's namespaces), and the same cluster or manifests?`);
      } else if (answer.status === 'SERVFAIL') {
        fixes.push('the server is not synced with the API yet, or fails: see its /ready and its log');
      } else {
        fixes.push(`the server's view differs from the API's (${expected.join(', ') || 'no address'}): see its /ready and its log for the watch`);
      }
    }
  }
  if (mark === 'pass' && !short.ok && record.kind !== 'ExternalName') {
    mark = 'warn';
    fixes.push(`the full name resolves, the short one does not: a pod's search list goes ${record.namespace}.svc.${zone} first; is --zone right?`);
  }
  return { check: 'dns', mark, summary, evidence, fixes };
}

/** What DNS answers for a Service that does not exist: shown as a pod of that namespace sees it. */
export async function missingDnsCheck(server: HostPort, name: string, namespace: string, zone: string): Promise<Check> {
  const fqdn = `${name}.${namespace}.svc.${zone}.`;
  const answer = await ask(server, fqdn, RRType.A);
  const down = unreachable(server, answer);
  if (down !== undefined) return down;
  const evidence = [...describe(answer), (await shortNameLine(server, name, namespace, zone)).line];
  if (answer.addresses.length > 0) {
    return { check: 'dns', mark: 'warn', summary: `DNS still answers ${fqdn}`, evidence, fixes: ['the server serves a Service the objects do not have: is it watching the same cluster or manifests?'] };
  }
  return { check: 'dns', mark: 'fail', summary: `DNS answers ${fqdn} with ${answer.status}`, evidence, fixes: ['follows from the Service check above'] };
}

/** An ExternalName is only as good as its target: the server must resolve it upstream. */
export async function externalNameCheck(server: HostPort, target: string): Promise<Check> {
  const answer = await ask(server, target, RRType.A);
  const down = unreachable(server, answer);
  if (down !== undefined) return { ...down, check: 'externalname' };
  const evidence = describe(answer);
  if (answer.status === 'NOERROR' && answer.addresses.length > 0) {
    return { check: 'externalname', mark: 'pass', summary: `the target ${target}. resolves upstream: ${answer.addresses.join(', ')}`, evidence: [], fixes: [] };
  }
  const why = answer.status === 'NXDOMAIN' ? `check spec.externalName: ${target} does not exist`
    : answer.status === 'REFUSED' || answer.status === 'SERVFAIL' ? 'the server does not resolve names outside the cluster zone: give it a forwarder (forward . /etc/resolv.conf, or --upstream)'
      : `${target} has no address record: point spec.externalName at a name that has one`;
  return { check: 'externalname', mark: 'fail', summary: `the target ${target}. does not resolve through ${formatHostPort(server)} (${answer.status})`, evidence, fixes: [why] };
}

function recordLine(record: WireRecord): string {
  return `${keyToName(record.owner)} ${record.ttl} IN ${typeName(record.type)} ${rdataText(record)}`;
}

function rdataText(record: WireRecord): string {
  const { rdata, type } = record;
  if (type === RRType.A && rdata.length === 4) return [...rdata].join('.');
  if (type === RRType.AAAA && rdata.length === 16) {
    const groups = Array.from({ length: 8 }, (_, i) => rdata.readUInt16BE(i * 2).toString(16));
    return canonicalIp(groups.join(':')) ?? groups.join(':');
  }
  if (type === RRType.CNAME || type === RRType.PTR || type === RRType.NS) return keyToName(rdata.toString('latin1'));
  return `\\# ${rdata.length}`;
}

