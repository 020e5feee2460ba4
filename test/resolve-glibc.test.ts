/**
 * glibc's search loop and reply rules (src/resolve/glibc.ts) as tables. Each row is a lookup watched with getent
 * on glibc 2.36 against a scripted server (search a.test b.test c.test): the names glibc sent, in order, and
 * how it ended. test/glibc.test.ts repeats the cluster cases end to end.
 */
import { describe, expect, it } from 'vitest';
import { classify, gaiError, isRejected, resSearch, type HErrno, type NameOutcome } from '../src/resolve/glibc.js';
import { Rcode } from '../src/wire/constants.js';
import type { Reply } from '../src/wire/exchange.js';

const FOUND: NameOutcome = { found: true };
const NXDOMAIN: NameOutcome = { found: false, herrno: 'HOST_NOT_FOUND' };
const NODATA: NameOutcome = { found: false, herrno: 'NO_DATA' };
const SERVFAIL: NameOutcome = { found: false, herrno: 'TRY_AGAIN', servfail: true };
/** REFUSED, NOTIMP or no reply from every server: TRY_AGAIN without SERVFAIL. */
const FAILED: NameOutcome = { found: false, herrno: 'TRY_AGAIN' };
const FORMERR: NameOutcome = { found: false, herrno: 'NO_RECOVERY' };
const UNREACHABLE: NameOutcome = { found: false, herrno: 'TRY_AGAIN', unreachable: true };

interface Row {
  readonly name: string;
  readonly ndots?: number;
  readonly search?: readonly string[];
  readonly noTldQuery?: boolean;
  /** What each name comes to; names not listed are NXDOMAIN. */
  readonly outcomes: Readonly<Record<string, NameOutcome>>;
  readonly tried: readonly string[];
  readonly found?: string;
  readonly herrno?: HErrno;
}

const SEARCH = ['a.test', 'b.test', 'c.test'];

const ROWS: Record<string, Row> = {
  'fewer dots than ndots: the search list first, the first answer ends it': {
    name: 'x', ndots: 5, outcomes: { 'x.b.test.': FOUND }, tried: ['x.a.test.', 'x.b.test.'], found: 'x.b.test.',
  },
  'nothing anywhere: every domain, then as is; the last try decides': {
    name: 'x', ndots: 5, outcomes: { 'x.': FAILED }, tried: ['x.a.test.', 'x.b.test.', 'x.c.test.', 'x.'], herrno: 'TRY_AGAIN',
  },
  'NXDOMAIN as is, from an upstream: HOST_NOT_FOUND': {
    name: 'x', ndots: 5, outcomes: {}, tried: ['x.a.test.', 'x.b.test.', 'x.c.test.', 'x.'], herrno: 'HOST_NOT_FOUND',
  },
  'SERVFAIL goes on to the next domain': {
    name: 'x', ndots: 5, outcomes: { 'x.a.test.': SERVFAIL, 'x.c.test.': FOUND }, tried: ['x.a.test.', 'x.b.test.', 'x.c.test.'], found: 'x.c.test.',
  },
  'REFUSED (or a timeout) stops the search list, then as is': {
    name: 'x', ndots: 5, outcomes: { 'x.a.test.': FAILED, 'x.': FAILED }, tried: ['x.a.test.', 'x.'], herrno: 'TRY_AGAIN',
  },
  'FORMERR stops the search list too': {
    name: 'x', ndots: 5, outcomes: { 'x.a.test.': FORMERR, 'x.': FAILED }, tried: ['x.a.test.', 'x.'], herrno: 'TRY_AGAIN',
  },
  'NODATA goes on, and is the reason given when nothing is found': {
    name: 'y', ndots: 5, outcomes: { 'y.a.test.': NODATA, 'y.': FAILED }, tried: ['y.a.test.', 'y.b.test.', 'y.c.test.', 'y.'], herrno: 'NO_DATA',
  },
  'SERVFAIL somewhere and nothing found: TRY_AGAIN': {
    name: 'x', ndots: 5, outcomes: { 'x.b.test.': SERVFAIL }, tried: ['x.a.test.', 'x.b.test.', 'x.c.test.', 'x.'], herrno: 'TRY_AGAIN',
  },
  'a found name ends the search even if its answer holds no address (a CNAME alone)': {
    name: 'e', ndots: 5, outcomes: { 'e.a.test.': FOUND }, tried: ['e.a.test.'], found: 'e.a.test.',
  },
  'ndots dots or more: as is first': {
    name: 'm.n.test', ndots: 2, outcomes: { 'm.n.test.': FOUND }, tried: ['m.n.test.'], found: 'm.n.test.',
  },
  'as is first, NODATA there: then the search list, and the as-is reason is kept': {
    name: 'm.n', ndots: 1, outcomes: { 'm.n.': NODATA }, tried: ['m.n.', 'm.n.a.test.', 'm.n.b.test.', 'm.n.c.test.'], herrno: 'NO_DATA',
  },
  'a trailing dot: as is only': {
    name: 'm.n.', ndots: 5, outcomes: { 'm.n.': FAILED }, tried: ['m.n.'], herrno: 'TRY_AGAIN',
  },
  'the root on the search list stands for the as-is try': {
    name: 'q', ndots: 1, search: ['a.test', '.', 'b.test'], outcomes: { 'q.': FAILED }, tried: ['q.a.test.', 'q.'], herrno: 'TRY_AGAIN',
  },
  'no-tld-query: a dotless name is never asked as is': {
    name: 'q', ndots: 1, search: ['a.test'], noTldQuery: true, outcomes: {}, tried: ['q.a.test.'], herrno: 'HOST_NOT_FOUND',
  },
  'no-tld-query does not stop a dotted name': {
    name: 'q.r', ndots: 5, search: ['a.test'], noTldQuery: true, outcomes: {}, tried: ['q.r.a.test.', 'q.r.'], herrno: 'HOST_NOT_FOUND',
  },
  'no search list: as is only': {
    name: 'q', ndots: 1, search: [], outcomes: {}, tried: ['q.'], herrno: 'HOST_NOT_FOUND',
  },
  'an unreachable server stops everything, the name as is untried': {
    name: 'x', ndots: 5, outcomes: { 'x.a.test.': UNREACHABLE }, tried: ['x.a.test.'], herrno: 'TRY_AGAIN',
  },
  'a search domain with a trailing dot': {
    name: 'q', ndots: 1, search: ['a.test.'], outcomes: {}, tried: ['q.a.test.', 'q.'], herrno: 'HOST_NOT_FOUND',
  },
};

describe('resSearch: the names glibc tries, in order', () => {
  for (const [title, row] of Object.entries(ROWS)) {
    it(title, async () => {
      const settings = { search: row.search ?? SEARCH, ndots: row.ndots ?? 1, noTldQuery: row.noTldQuery ?? false };
      const result = await resSearch(row.name, settings, async (name) => row.outcomes[name] ?? NXDOMAIN);
      expect(result.tries.map((t) => t.name)).toEqual(row.tried);
      expect(result.found?.name).toBe(row.found);
      expect(result.herrno).toBe(row.herrno);
    });
  }
});

function reply(rcode: number, answerCount = 0, flags: Partial<Reply> = {}): Reply {
  return {
    rcode, answerCount, authoritative: true, recursionAvailable: false, truncated: false, additionalCount: 0,
    answers: [], addresses: [], overTcp: false, ...flags,
  };
}

describe('one name: which replies res_send accepts, and what res_query makes of them', () => {
  it.each([
    ['SERVFAIL', reply(Rcode.SERVFAIL), true],
    ['REFUSED', reply(Rcode.REFUSED), true],
    ['NOTIMP', reply(Rcode.NOTIMP), true],
    ['an empty NOERROR without AA, RA or additional records (a lame referral)', reply(Rcode.NOERROR, 0, { authoritative: false }), true],
    ['an empty NOERROR from a recursive server', reply(Rcode.NOERROR, 0, { authoritative: false, recursionAvailable: true }), false],
    ['an authoritative NODATA', reply(Rcode.NOERROR), false],
    ['NXDOMAIN', reply(Rcode.NXDOMAIN), false],
    ['FORMERR', reply(Rcode.FORMERR), false],
  ])('%s: rejected %s', (_title, got, rejected) => {
    expect(isRejected(got)).toBe(rejected);
  });

  it.each([
    ['A answers', [reply(Rcode.NOERROR, 1), reply(Rcode.NOERROR)], { found: true }],
    ['only AAAA answers', [reply(Rcode.NOERROR), reply(Rcode.NOERROR, 1)], { found: true }],
    ['both NXDOMAIN', [reply(Rcode.NXDOMAIN), reply(Rcode.NXDOMAIN)], { found: false, herrno: 'HOST_NOT_FOUND' }],
    ['A NODATA, AAAA NXDOMAIN: the AAAA rcode counts', [reply(Rcode.NOERROR), reply(Rcode.NXDOMAIN)], { found: false, herrno: 'HOST_NOT_FOUND' }],
    ['A NXDOMAIN, AAAA NODATA: the A rcode counts', [reply(Rcode.NXDOMAIN), reply(Rcode.NOERROR)], { found: false, herrno: 'HOST_NOT_FOUND' }],
    ['both NODATA', [reply(Rcode.NOERROR), reply(Rcode.NOERROR)], { found: false, herrno: 'NO_DATA' }],
    ['one half only (the other rejected or dropped)', [reply(Rcode.NXDOMAIN)], { found: false, herrno: 'HOST_NOT_FOUND' }],
    ['FORMERR', [reply(Rcode.FORMERR), reply(Rcode.FORMERR)], { found: false, herrno: 'NO_RECOVERY' }],
  ])('%s', (_title, accepted, outcome) => {
    expect(classify(accepted)).toEqual(outcome);
  });

  it('maps h_errno to the getaddrinfo error applications print', () => {
    expect(gaiError('TRY_AGAIN')).toBe('EAI_AGAIN: Temporary failure in name resolution');
    expect(gaiError('NO_DATA')).toBe('EAI_NODATA: No address associated with hostname');
    expect(gaiError('HOST_NOT_FOUND')).toBe('EAI_NONAME: Name or service not known');
    expect(gaiError('NO_ADDRESS')).toBe('EAI_NONAME: Name or service not known');
  });
});
