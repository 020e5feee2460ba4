/**
 * resolve/ — `clusterdns resolve`: what a glibc program (or a pod in a namespace) experiences when it looks a
 * name up. Runs glibc's search loop (glibc.ts) with queries sent the way res_send sends them (here), against
 * real servers through wire/exchange.ts, and reports every name tried, what came back, and which one answered.
 * Knows nothing of the server, the store or Kubernetes beyond the resolv.conf it is given.
 */
import type { ResolvConf } from '../config/resolv-conf.js';
import { formatHostPort } from '../ip.js';
import { Rcode, rcodeName, RRType, typeName } from '../wire/constants.js';
import { exchange, type Endpoint, type Outcome, type Question, type Reply } from '../wire/exchange.js';
import { absolute, classify, gaiError, isRejected, resSearch, searchOrder, type HErrno, type NameOutcome } from './glibc.js';

export interface ResolveRequest {
  readonly name: string;
  /** The resolver configuration in force: a file as read, or a pod's as composed. */
  readonly conf: ResolvConf;
  /** Asked in order, as glibc asks its nameservers. */
  readonly servers: readonly Endpoint[];
  /** One record type, as res_search asks; absent: A and AAAA together, as getaddrinfo asks. */
  readonly type?: number;
}

/** The last thing heard for one record type of one name. */
export interface TypeResult {
  readonly type: string;
  readonly server: string;
  /** `NOERROR`, `NXDOMAIN`..., or `no reply` / an error code when nothing usable came back. */
  readonly status: string;
  readonly answers: readonly string[];
  /** The server refused it (SERVFAIL, REFUSED, NOTIMP, lame), so glibc asked again or elsewhere. */
  readonly rejected: boolean;
}

export interface Try extends NameOutcome {
  readonly name: string;
  readonly results: readonly TypeResult[];
  /** How many times the question(s) went out for this name: retries over servers and attempts included. */
  readonly sends: number;
  readonly addresses: readonly string[];
}

export interface Report {
  readonly name: string;
  /** `A+AAAA` (getaddrinfo), or the one type asked. */
  readonly type: string;
  readonly source: string;
  readonly search: readonly string[];
  readonly ndots: number;
  readonly order: string;
  readonly servers: readonly string[];
  readonly tries: readonly Try[];
  /** The name the search stopped at because it had an answer. */
  readonly answeredBy: string | undefined;
  /** Success as the caller sees it: getaddrinfo gets an address, or res_search an answer of that type. */
  readonly ok: boolean;
  readonly addresses: readonly string[];
  /** Why not, in glibc's words, when not ok. */
  readonly error: string | undefined;
}

/** glibc switches to asking one type at a time, for the rest of the lookup, once a server has dropped half a pair. */
interface SendState {
  singleRequest: boolean;
  singleRequestReopen: boolean;
}

export async function resolveName(request: ResolveRequest): Promise<Report> {
  const { conf, servers } = request;
  const types = request.type !== undefined ? [request.type] : conf.noAaaa ? [RRType.A] : [RRType.A, RRType.AAAA];
  const state: SendState = { singleRequest: conf.singleRequest, singleRequestReopen: conf.singleRequestReopen };
  const result = await resSearch(request.name, conf, (name) => askName(name, types, conf, servers, state));
  const found = result.found?.outcome;
  const addresses = found?.addresses ?? [];
  const ok = found !== undefined && (request.type !== undefined || addresses.length > 0);
  let error: string | undefined;
  if (!ok) {
    const herrno: HErrno | 'NO_ADDRESS' = result.herrno ?? 'NO_ADDRESS';
    const why = herrno === 'NO_ADDRESS' ? 'but with no address, and glibc stops searching there' : herrno;
    error = request.type !== undefined ? herrno : `${why}; applications see ${gaiError(herrno)}`;
  }
  return {
    name: request.name,
    type: request.type !== undefined ? typeName(request.type) : types.map(typeName).join('+'),
    source: conf.source,
    search: conf.search,
    ndots: conf.ndots,
    order: searchOrder(request.name, conf),
    servers: servers.map(formatHostPort),
    tries: result.tries.map(({ name, outcome }) => ({ ...outcome, name })),
    answeredBy: result.found?.name,
    ok,
    addresses,
    error,
  };
}

/**
 * res_send for one name: every server in turn, `attempts` rounds, each server's wait as glibc computes it;
 * the first accepted reply ends it. When a server answers one of the pair and drops the other, glibc asks
 * again one type at a time, then once more on a new socket, before making do with the one reply.
 */
async function askName(name: string, types: readonly number[], conf: ResolvConf, servers: readonly Endpoint[], state: SendState): Promise<Omit<Try, 'name'>> {
  const questions: Question[] = types.map((type) => ({ name: absolute(name), type }));
  const last = new Map<number, { server: Endpoint; outcome: Outcome }>();
  let sends = 0;
  let gotSomewhere = false;
  const ask = async (server: Endpoint, index: number): Promise<Reply[]> => {
    // send_dg: retrans << ns, shared among the servers after the first; never under a second.
    const seconds = Math.max(1, index === 0 ? conf.timeout : Math.floor((conf.timeout * 2 ** index) / servers.length));
    const outcomes = await exchange(server, questions, seconds * 1000, state.singleRequest);
    sends++;
    outcomes.forEach((outcome, i) => {
      last.set(types[i]!, { server, outcome });
      if (outcome.kind !== 'error') gotSomewhere = true;
    });
    return outcomes.flatMap((outcome) => (outcome.kind === 'reply' && !isRejected(outcome.reply) ? [outcome.reply] : []));
  };
  for (let attempt = 0; attempt < conf.attempts; attempt++) {
    for (const [index, server] of servers.entries()) {
      let accepted = await ask(server, index);
      const halfDropped = (): boolean => types.length === 2 && accepted.length === 1 && [...last.values()].some(({ outcome }) => outcome.kind === 'timeout');
      while (accepted.length > 0 && halfDropped() && !(state.singleRequest && state.singleRequestReopen)) {
        if (state.singleRequest) state.singleRequestReopen = true;
        state.singleRequest = true;
        accepted = await ask(server, index);
      }
      if (accepted.length > 0) return summarize(classify(accepted), types, last, sends, accepted);
    }
  }
  const first = last.get(types[0]!)?.outcome;
  const servfail = first?.kind === 'reply' && first.reply.rcode === Rcode.SERVFAIL;
  // With attempts:0 nothing is sent, and glibc reports it as it reports a server that refuses connections.
  return summarize({ found: false, herrno: 'TRY_AGAIN', servfail, unreachable: !gotSomewhere }, types, last, sends, []);
}

function summarize(outcome: NameOutcome, types: readonly number[], last: Map<number, { server: Endpoint; outcome: Outcome }>, sends: number, accepted: readonly Reply[]): Omit<Try, 'name'> {
  const results = types.flatMap((type): TypeResult[] => {
    const heard = last.get(type);
    if (heard === undefined) return [];
    const { server, outcome: got } = heard;
    const base = { type: typeName(type), server: formatHostPort(server) };
    if (got.kind === 'timeout') return [{ ...base, status: 'no reply', answers: [], rejected: false }];
    if (got.kind === 'error') return [{ ...base, status: got.code, answers: [], rejected: false }];
    return [{ ...base, status: rcodeName(got.reply.rcode), answers: got.reply.answers, rejected: isRejected(got.reply) }];
  });
  return { ...outcome, results, sends, addresses: outcome.found ? accepted.flatMap((reply) => reply.addresses) : [] };
}

/** The report as a person reads it: one line per name tried, answers under it, the verdict last. */
export function formatReport(report: Report): string {
  const out = [
    `${report.name}: ${report.type === 'A+AAAA' ? 'looked up as getaddrinfo does (A and AAAA for each name)' : `${report.type} records, as res_search looks them up`}`,
    `search  ${report.search.length > 0 ? report.search.join(' ') : '(none)'}   from ${report.source}`,
    `ndots   ${report.order}`,
    `server  ${report.servers.join(', ')}`,
    '',
  ];
  const width = Math.max(...report.tries.map((t) => t.name.length));
  report.tries.forEach((t, i) => {
    const statuses = t.results.map((r) => `${r.type} ${r.status}`).join('  ');
    const notes = [
      t.sends > 1 ? `sent ${t.sends} times` : '',
      report.servers.length > 1 ? `last from ${[...new Set(t.results.map((r) => r.server))].join(', ')}` : '',
    ].filter(Boolean);
    const mark = t.name === report.answeredBy ? '   <- answered' : '';
    out.push(`${String(i + 1).padStart(3)}  ${t.name.padEnd(width)}  ${statuses}${notes.length > 0 ? `  (${notes.join(', ')})` : ''}${mark}`);
    // A CNAME comes back with both A and AAAA: show each record once.
    for (const line of new Set(t.results.flatMap((r) => r.answers))) out.push(`       ${line}`);
  });
  if (report.tries.length === 0) out.push('  (no name was asked)');
  out.push('');
  if (report.ok) {
    const detail = report.addresses.length > 0 ? `: ${report.addresses.join(', ')}` : '';
    out.push(`answered by ${report.answeredBy} (try ${report.tries.findIndex((t) => t.name === report.answeredBy) + 1} of ${report.tries.length})${detail}`);
  } else {
    out.push(`not resolved: ${report.answeredBy !== undefined ? `${report.answeredBy} answered, ` : ''}${report.error}`);
  }
  return out.join('\n');
}
