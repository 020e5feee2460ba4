/**
 * glibc 2.36's stub resolver, as pure decisions: which names res_search tries in which order, what one name's
 * replies come to (res_query), and what getaddrinfo then reports. Sending is injected, so the same loop runs
 * against a real server in `clusterdns resolve` and against tables in tests. Sources: resolv/res_query.c
 * (__res_context_search, __res_context_query), resolv/res_send.c (send_dg), nss_dns and getaddrinfo.c; each rule
 * below was also watched happening with getent and a scripted server (test/glibc.test.ts).
 */
import { Rcode } from '../wire/constants.js';
import type { Reply } from '../wire/exchange.js';

/** glibc's h_errno values, the reason a name was not found. */
export type HErrno = 'HOST_NOT_FOUND' | 'NO_DATA' | 'TRY_AGAIN' | 'NO_RECOVERY';

/** What one name came to, in res_search's terms. */
export interface NameOutcome {
  /** res_query succeeded: some reply had NOERROR with at least one answer record. The search stops here. */
  readonly found: boolean;
  /** Why not, when not found. */
  readonly herrno?: HErrno;
  /** Not found because every server answered SERVFAIL: the search goes on to the next domain. */
  readonly servfail?: boolean;
  /** No server could be reached at all (ECONNREFUSED): the search stops at once, the name as is untried. */
  readonly unreachable?: boolean;
}

export interface SearchSettings {
  readonly search: readonly string[];
  readonly ndots: number;
  readonly noTldQuery: boolean;
}

export interface SearchResult<T extends NameOutcome> {
  /** Every name asked, in order, with what it came to. */
  readonly tries: ReadonlyArray<{ readonly name: string; readonly outcome: T }>;
  /** The try the search stopped at because it was found (its answer may still hold no address). */
  readonly found?: { readonly name: string; readonly outcome: T };
  /** h_errno when nothing was found. */
  readonly herrno?: HErrno;
}

/** The name glibc puts on the wire, written with its trailing dot. */
export function absolute(name: string): string {
  return name.endsWith('.') ? name : `${name}.`;
}

/** Which order res_search will use for `name`, in words, for the report. */
export function searchOrder(name: string, settings: SearchSettings): string {
  const dots = [...name].filter((c) => c === '.').length;
  if (name.endsWith('.')) return `"${name}" ends with a dot: asked as is, no search list`;
  if (dots >= settings.ndots) return `"${name}" has ${dots} dot${dots === 1 ? '' : 's'} (ndots ${settings.ndots}): as is first, then the search list`;
  return `"${name}" has ${dots} dot${dots === 1 ? '' : 's'}, fewer than ndots ${settings.ndots}: the search list first, then as is`;
}

/**
 * __res_context_search: a name with a trailing dot is asked as is and nothing else; one with at least ndots
 * dots is asked as is first; then each search domain (a dotless name too, unless the search list is empty),
 * stopping at a found name, at an unreachable server, and at any failure other than NXDOMAIN, NODATA or SERVFAIL
 * (REFUSED, a timeout, FORMERR stop the list); then the name as is, unless already asked, or the root was on the
 * search list, or it has no dot and `no-tld-query` is set.
 */
export async function resSearch<T extends NameOutcome>(name: string, settings: SearchSettings, ask: (name: string) => Promise<T>): Promise<SearchResult<T>> {
  const tries: Array<{ name: string; outcome: T }> = [];
  const tryName = async (candidate: string): Promise<T> => {
    const outcome = await ask(candidate);
    tries.push({ name: candidate, outcome });
    return outcome;
  };
  const dots = [...name].filter((c) => c === '.').length;
  const trailingDot = name.endsWith('.');
  let savedHerrno: HErrno | undefined;
  let triedAsIs = false;

  if (dots >= settings.ndots || trailingDot) {
    const outcome = await tryName(absolute(name));
    if (outcome.found || trailingDot) return finish(tries, outcome.herrno);
    savedHerrno = outcome.herrno;
    triedAsIs = true;
  }

  let searched = false;
  let rootOnList = false;
  let gotNodata = false;
  let gotServfail = false;
  for (const entry of settings.search) {
    searched = true;
    const domain = entry.startsWith('.') ? entry.slice(1) : entry;
    if (domain === '') rootOnList = true;
    const outcome = await tryName(absolute(domain === '' ? name : `${name}.${domain}`));
    if (outcome.found) return finish(tries);
    if (outcome.unreachable) return finish(tries, 'TRY_AGAIN');
    if (outcome.herrno === 'NO_DATA') gotNodata = true;
    else if (outcome.servfail) gotServfail = true;
    else if (outcome.herrno !== 'HOST_NOT_FOUND') break;
  }

  if ((dots > 0 || !searched || !settings.noTldQuery) && !(triedAsIs || rootOnList)) {
    const outcome = await tryName(absolute(name));
    if (outcome.found) return finish(tries);
  }
  const last = tries.at(-1)?.outcome.herrno ?? 'HOST_NOT_FOUND';
  return finish(tries, savedHerrno ?? (gotNodata ? 'NO_DATA' : gotServfail ? 'TRY_AGAIN' : last));
}

function finish<T extends NameOutcome>(tries: Array<{ name: string; outcome: T }>, herrno?: HErrno): SearchResult<T> {
  const last = tries.at(-1);
  return last?.outcome.found ? { tries, found: last } : { tries, herrno: herrno ?? 'HOST_NOT_FOUND' };
}

/**
 * A reply send_dg does not accept, so it asks the next server (or the same one again, up to `attempts`):
 * SERVFAIL, NOTIMP, REFUSED, and an empty NOERROR with none of AA, RA or additional records (a lame referral).
 */
export function isRejected(reply: Reply): boolean {
  if (reply.rcode === Rcode.SERVFAIL || reply.rcode === Rcode.NOTIMP || reply.rcode === Rcode.REFUSED) return true;
  return reply.rcode === Rcode.NOERROR && reply.answerCount === 0 && !reply.authoritative && !reply.recursionAvailable && reply.additionalCount === 0;
}

/**
 * __res_context_query on the replies send_dg accepted (A's first; a rejected or missing half is left out): found
 * when either is NOERROR with answers; else NXDOMAIN is HOST_NOT_FOUND, NOERROR (of A, or of AAAA when A was
 * NOERROR) is NO_DATA, anything else NO_RECOVERY.
 */
export function classify(accepted: readonly Reply[]): NameOutcome {
  const [first, second = first] = accepted;
  if (first === undefined || second === undefined) return { found: false, herrno: 'TRY_AGAIN' };
  if (accepted.some((reply) => reply.rcode === Rcode.NOERROR && reply.answerCount > 0)) return { found: true };
  const rcode = first.rcode === Rcode.NOERROR ? second.rcode : first.rcode;
  if (rcode === Rcode.NXDOMAIN) return { found: false, herrno: 'HOST_NOT_FOUND' };
  if (rcode === Rcode.NOERROR) return { found: false, herrno: 'NO_DATA' };
  return { found: false, herrno: 'NO_RECOVERY' };
}

/** What getaddrinfo returns for a failed lookup, as gai_strerror words it (what applications print). */
export function gaiError(herrno: HErrno | 'NO_ADDRESS'): string {
  switch (herrno) {
    case 'TRY_AGAIN':
      return 'EAI_AGAIN: Temporary failure in name resolution';
    case 'NO_DATA':
      return 'EAI_NODATA: No address associated with hostname';
    default:
      // HOST_NOT_FOUND, NO_RECOVERY, and a found name whose answer holds no address (a CNAME alone).
      return 'EAI_NONAME: Name or service not known';
  }
}
