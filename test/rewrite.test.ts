/**
 * The rewrite plugin (src/plugins/rewrite/): a table of broken stanzas with their exact error lines; a table of
 * rules against a recording `next` that answers from a small zone (what name `next` was asked, what the client
 * gets back), with the question object frozen so a handler that changed it would throw; and the whole process
 * through real dig: `name suffix .corp.internal. .svc.cluster.local. answer auto` onto the kubernetes plugin
 * serving manifests, and a regex rule in front of the cache and a loopback upstream.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCorefile } from '../src/corefile/index.js';
import type { Client, Next, Question, Reply } from '../src/plugins/plugin.js';
import { RewriteHandler } from '../src/plugins/rewrite/index.js';
import { rewrite } from '../src/plugins/rewrite/setup.js';
import { classMnemonic, keyToName, nameToKey, presentationToKey, prepareAnswer, preparedRecords, Rcode, RRClass, RRType, typeMnemonic, type Message, type ResourceRecord, type WireRecord } from '../src/wire/index.js';
import { dig, lines } from './support/dig.js';
import { metrics, value } from './support/http.js';
import { freePort, runCli, startServer, type ServerProcess } from './support/server-process.js';
import { TestUpstream } from './support/upstream.js';

function parse(stanzas: string): ReturnType<typeof rewrite.parse> {
  const [block] = parseCorefile(`.:1053 {\n${stanzas}\n}\n`, { file: 'Corefile' });
  return rewrite.parse(block!.directives.filter((d) => d.name === 'rewrite'), ['.']);
}

const USAGE = 'rewrite [continue|stop] name [exact|prefix|suffix|substring|regex] FROM TO [answer auto|answer name FROM TO|answer value FROM TO]';

describe('rewrite: a broken stanza stops the load naming file and line', () => {
  const cases: Array<[string, string, string]> = [
    ['no rule', '    rewrite', `Corefile:2: plugin "rewrite": no rule after "" (usage: ${USAGE})`],
    ['only the mode', '    rewrite continue', `Corefile:2: plugin "rewrite": no rule after "continue" (usage: ${USAGE})`],
    ['an edns0 rule', '    rewrite edns0 local set 0xffee abcd', 'Corefile:2: plugin "rewrite": field "edns0" is not supported by clusterdns (supported: name, type, class, ttl)'],
    ['a cname rule in a block', '    rewrite continue {\n        cname exact a. b.\n    }', 'Corefile:3: plugin "rewrite": field "cname" is not supported by clusterdns (supported: name, type, class, ttl)'],
    ['an rcode rule', '    rewrite rcode exact a. SERVFAIL NOERROR', 'Corefile:2: plugin "rewrite": field "rcode" is not supported by clusterdns (supported: name, type, class, ttl)'],
    ['a type rule with a bad type', '    rewrite type ANY XY', 'Corefile:2: plugin "rewrite": invalid type "XY"'],
    ['a type rule with three types', '    rewrite type ANY A A', 'Corefile:2: plugin "rewrite": type rules must have exactly two arguments (rewrite [continue|stop] type FROM TO)'],
    ['a class rule with a bad class', '    rewrite stop class IN WV', 'Corefile:2: plugin "rewrite": invalid class "WV"'],
    ['a ttl rule without a TTL', '    rewrite ttl a.com', 'Corefile:2: plugin "rewrite": a ttl rule wants a name and a TTL, with a match type before them (usage: rewrite [continue|stop] ttl [exact|prefix|suffix|substring|regex] NAME SECONDS|MIN-MAX)'],
    ['a ttl that is not one', '    rewrite ttl a.com abc', 'Corefile:2: plugin "rewrite": invalid TTL "abc" for a ttl rule (SECONDS, MIN-MAX, -MAX or MIN-, from 0 to 2147483647)'],
    ['a ttl range upside down', '    rewrite continue {\n        ttl regex (.*)\\.coredns\\.rocks 300-30\n    }', 'Corefile:3: plugin "rewrite": invalid TTL "300-30" for a ttl rule (SECONDS, MIN-MAX, -MAX or MIN-, from 0 to 2147483647)'],
    ['a ttl rule with a bad match type', '    rewrite ttl fuzzy a.com 30', 'Corefile:2: plugin "rewrite": ttl rule supports only exact, prefix, suffix, substring, and regex name matching, received: fuzzy'],
    ['an unknown field', '    rewrite nme a.com b.com', `Corefile:2: plugin "rewrite": invalid rule type "nme" (supported: name, type, class, ttl; usage: ${USAGE})`],
    ['an answer rule first', '    rewrite answer name a b', 'Corefile:2: plugin "rewrite": response rewrites must begin with a name rule'],
    ['one name', '    rewrite name a.com', `Corefile:2: plugin "rewrite": too few arguments for a name rule (usage: ${USAGE})`],
    ['an unknown match type', '    rewrite name a.com b.com c.com', 'Corefile:2: plugin "rewrite": name rule supports only exact, prefix, suffix, substring, and regex name matching, received: a.com'],
    ['words after the rule', '    rewrite name suffix a.com b.com c.com d.com', `Corefile:2: plugin "rewrite": "c.com" after a name rule: only answer rules may follow (usage: ${USAGE})`],
    ['answer alone', '    rewrite name suffix a.com b.com answer', `Corefile:2: plugin "rewrite": invalid answer rule "answer" (usage: ${USAGE})`],
    ['an unknown answer rule', '    rewrite name regex (a)\\.com {1}.org answer ttl (a) {1}', 'Corefile:2: plugin "rewrite": invalid type "ttl" for answer rule (auto, name or value)'],
    ['answer name short', '    rewrite name regex (a)\\.com {1}.org answer name (a)', 'Corefile:2: plugin "rewrite": name answer rule: 2 arguments required (answer name FROM TO)'],
    ['auto with answer name', '    rewrite name regex (a)\\.com {1}.org answer auto answer name (a) {1}', 'Corefile:2: plugin "rewrite": auto name answer rule cannot be combined with explicit name answer rules'],
    ['a bad regex', '    rewrite name regex ([a]\\.com new-{1}.com', 'Corefile:2: plugin "rewrite": regular expression "([a]\\.com": Unterminated group'],
    ['more groups than the regex has', '    rewrite name regex (a)\\.com {2}.org', 'Corefile:2: plugin "rewrite": the rewrite regex pattern ({2}.org) uses more subexpressions than its corresponding matching regex pattern ((a)\\.com)'],
    ['a bad answer regex in a block', '    rewrite stop {\n        name regex (.*)\\.a {1}.b\n        answer name (?=x) {1}.a\n    }', 'Corefile:4: plugin "rewrite": option "answer": regular expression "(?=x)": lookaround assertions are not supported (Go\'s regexp has none, or reads them otherwise)'],
    ['an exact target that is not a name', '    rewrite name exact a.com. b..com.', 'Corefile:2: plugin "rewrite": "b..com." is not a name: empty label in name "b..com."'],
    ['a block after a whole rule', '    rewrite name a.com b.com {\n        answer auto\n    }', `Corefile:2: plugin "rewrite": a rule on its line takes no block (usage: ${USAGE}, or rewrite [continue|stop] { name ...; answer ... })`],
  ];
  it.each(cases)('%s', (_what, stanza, message) => {
    expect(() => parse(stanza)).toThrow(message);
  });
});

const CLIENT: Client = { address: '10.0.0.9', port: 5353 };
const rr = (owner: string, ttl: number, data: ResourceRecord['data']): ResourceRecord => ({ owner: nameToKey(owner), ttl, data });
const A = (ip: string) => ({ type: RRType.A, ip }) as const;
const name = (type: typeof RRType.CNAME | typeof RRType.PTR | typeof RRType.NS, target: string) => ({ type, target: nameToKey(target) }) as const;

/** What the plugins after rewrite know: name → records of each type. */
const ZONE: Record<string, Partial<Record<number, ResourceRecord[]>>> = {
  'to.nl.': { [RRType.A]: [rr('to.nl.', 60, A('10.0.0.1'))] },
  'dns.core.rocks.nl.': { [RRType.A]: [rr('dns.core.rocks.nl.', 60, A('10.0.0.2'))] },
  'ftp.service.us-west-1.consul.': { [RRType.A]: [rr('ftp.service.us-west-1.consul.', 0, A('10.10.10.10')), rr('ftp.service.us-west-1.consul.', 0, A('10.20.20.20'))] },
  'web.default.svc.cluster.local.': { [RRType.A]: [rr('web.default.svc.cluster.local.', 5, A('10.96.0.20'))] },
  '_http._tcp.web.default.svc.cluster.local.': {
    [RRType.SRV]: [rr('_http._tcp.web.default.svc.cluster.local.', 5, { type: RRType.SRV, priority: 0, weight: 100, port: 80, target: nameToKey('web.default.svc.cluster.local.') })],
  },
  'alias.default.svc.cluster.local.': {
    [RRType.A]: [rr('alias.default.svc.cluster.local.', 5, name(RRType.CNAME, 'web.default.svc.cluster.local.')), rr('web.default.svc.cluster.local.', 5, A('10.96.0.20'))],
  },
  '30.30.30.10.in-addr.arpa.': { [RRType.PTR]: [rr('30.30.30.10.in-addr.arpa.', 60, name(RRType.PTR, 'ftp-us-west-1.service.consul.'))] },
};
const SOA = rr('nl.', 30, { type: RRType.SOA, mname: nameToKey('ns.nl.'), rname: nameToKey('hostmaster.nl.'), serial: 1, refresh: 7200, retry: 1800, expire: 86400, minimum: 30 });

/** A handler over `stanzas` and a `next` answering from ZONE, recording each name it was asked. */
function handlerOf(stanzas: string): { ask(name: string, qtype?: number, qclass?: number): Reply; asked: string[] } {
  const handler = new RewriteHandler(parse(stanzas).rules);
  const asked: string[] = [];
  const next: Next = (q) => {
    const name = keyToName(q.key);
    // The type and class are shown only when a rule changed them from A and IN.
    asked.push(`${name}${q.qtype === RRType.A ? '' : ` ${typeMnemonic(q.qtype)}`}${q.qclass === RRClass.IN ? '' : ` ${classMnemonic(q.qclass)}`}`);
    const records = ZONE[name]?.[q.qtype];
    return {
      answer: prepareAnswer(q.key, records === undefined
        ? { rcode: ZONE[name] === undefined ? Rcode.NXDOMAIN : Rcode.NOERROR, authoritative: true, authority: [SOA] }
        : { rcode: Rcode.NOERROR, authoritative: true, answer: records }),
      plugin: 'next',
    };
  };
  return {
    asked,
    ask(name, qtype = RRType.A, qclass = RRClass.IN) {
      const q: Question = Object.freeze({ key: presentationToKey(name), qtype, qclass, dnssecOk: false, flags: 0 });
      const result = handler.resolve(q, CLIENT, next);
      if (result instanceof Promise) throw new Error('rewrite waited on a promise in front of a synchronous next');
      return result;
    },
  };
}

/** Each record as dig prints it (`name ttl TYPE data`), for the answer to `name`. */
function shown(name: string, qtype: number, reply: Reply): string[] {
  const message = preparedRecords(nameToKey(name), qtype, reply.answer);
  return [...message.answer, ...message.authority].map(text);
}

function text(record: WireRecord): string {
  const at = (offset: number): string => {
    let end = offset;
    while (record.rdata[end] !== 0) end += record.rdata[end]! + 1;
    return keyToName(record.rdata.toString('latin1', offset, end + 1));
  };
  const data = record.type === RRType.A ? [...record.rdata].join('.')
    : record.type === RRType.SRV ? `${record.rdata.readUInt16BE(0)} ${record.rdata.readUInt16BE(2)} ${record.rdata.readUInt16BE(4)} ${at(6)}`
      : at(0);
  const type = Object.entries(RRType).find(([, code]) => code === record.type)![0];
  return `${keyToName(record.owner)} ${record.ttl} ${type} ${data}`;
}

describe('rewrite: the name next is asked, and the names the client gets back', () => {
  const table: Array<{ rules: string; ask: string; type?: number; klass?: number; next: string[]; answer: string[] }> = [
    // exact (the default match type) always maps the answer back
    { rules: 'rewrite name from.nl to.nl', ask: 'from.nl', next: ['to.nl.'], answer: ['from.nl. 60 A 10.0.0.1'] },
    { rules: 'rewrite name exact From.Exact.NL. to.nl.', ask: 'from.exact.nl', next: ['to.nl.'], answer: ['from.exact.nl. 60 A 10.0.0.1'] },
    { rules: 'rewrite name from.nl to.nl', ask: 'other.nl', next: ['other.nl.'], answer: ['nl. 30 SOA ns.nl.'] },
    // prefix, suffix, substring: without answer auto the answer keeps the rewritten names; with it they map back
    { rules: 'rewrite name prefix prefix to', ask: 'prefix.nl', next: ['to.nl.'], answer: ['to.nl. 60 A 10.0.0.1'] },
    { rules: 'rewrite name prefix prefix to answer auto', ask: 'prefix.nl', next: ['to.nl.'], answer: ['prefix.nl. 60 A 10.0.0.1'] },
    { rules: 'rewrite name suffix .corp.internal. .svc.cluster.local.', ask: 'web.default.corp.internal', next: ['web.default.svc.cluster.local.'], answer: ['web.default.svc.cluster.local. 5 A 10.96.0.20'] },
    { rules: 'rewrite name suffix .corp.internal .svc.cluster.local answer auto', ask: 'web.default.corp.internal', next: ['web.default.svc.cluster.local.'], answer: ['web.default.corp.internal. 5 A 10.96.0.20'] },
    // auto maps the values back too: the SRV target, the CNAME and its target
    { rules: 'rewrite name suffix .corp.internal. .svc.cluster.local. answer auto', ask: '_http._tcp.web.default.corp.internal', type: RRType.SRV, next: ['_http._tcp.web.default.svc.cluster.local. SRV'], answer: ['_http._tcp.web.default.corp.internal. 5 SRV 0 100 80 web.default.corp.internal.'] },
    { rules: 'rewrite name suffix .corp.internal. .svc.cluster.local. answer auto', ask: 'alias.default.corp.internal', next: ['alias.default.svc.cluster.local.'], answer: ['alias.default.corp.internal. 5 CNAME web.default.corp.internal.', 'web.default.corp.internal. 5 A 10.96.0.20'] },
    // a label holding a dot stays one label through the rewrite
    { rules: 'rewrite name suffix .corp.internal. .svc.cluster.local. answer auto', ask: 'web\\.x.corp.internal', next: ['web\\.x.svc.cluster.local.'], answer: ['nl. 30 SOA ns.nl.'] },
    // a suffix that is not on a label boundary is still a suffix, as in CoreDNS
    { rules: 'rewrite name suffix to.suffix. to.nl.', ask: 'into.suffix', next: ['into.nl.'], answer: ['nl. 30 SOA ns.nl.'] },
    { rules: 'rewrite name substring from.substring to', ask: 'from.substring.nl', next: ['to.nl.'], answer: ['to.nl. 60 A 10.0.0.1'] },
    { rules: 'rewrite name substring from.substring to answer auto', ask: 'from.substring.nl', next: ['to.nl.'], answer: ['from.substring.nl. 60 A 10.0.0.1'] },
    // regex with groups, and an explicit answer name rule, on one line and in the block form
    {
      rules: 'rewrite stop name regex (.*)-(us-west-1)\\.coredns\\.rocks {1}.service.{2}.consul answer name (.*)\\.service\\.(us-west-1)\\.consul {1}-{2}.coredns.rocks',
      ask: 'ftp-us-west-1.coredns.rocks', next: ['ftp.service.us-west-1.consul.'], answer: ['ftp-us-west-1.coredns.rocks. 0 A 10.10.10.10', 'ftp-us-west-1.coredns.rocks. 0 A 10.20.20.20'],
    },
    {
      rules: 'rewrite stop {\n        name regex (.*)-(us-west-1)\\.coredns\\.rocks {1}.service.{2}.consul\n        answer name (.*)\\.service\\.(us-west-1)\\.consul {1}-{2}.coredns.rocks\n    }',
      ask: 'FTP-us-west-1.coredns.rocks', next: ['ftp.service.us-west-1.consul.'], answer: ['ftp-us-west-1.coredns.rocks. 0 A 10.10.10.10', 'ftp-us-west-1.coredns.rocks. 0 A 10.20.20.20'],
    },
    { rules: 'rewrite name regex (.*)-(us-west-1)\\.coredns\\.rocks {1}.service.{2}.consul answer auto', ask: 'ftp-us-west-1.coredns.rocks', next: ['ftp.service.us-west-1.consul.'], answer: ['ftp-us-west-1.coredns.rocks. 0 A 10.10.10.10', 'ftp-us-west-1.coredns.rocks. 0 A 10.20.20.20'] },
    // answer value rewrites the name a record points at (the PTR example of CoreDNS's README)
    {
      rules: 'rewrite stop {\n        name suffix .arpa .arpa\n        answer auto\n        answer value (.*)\\.service\\.consul\\. {1}.coredns.rocks.\n    }',
      ask: '30.30.30.10.in-addr.arpa', type: RRType.PTR, next: ['30.30.30.10.in-addr.arpa. PTR'], answer: ['30.30.30.10.in-addr.arpa. 60 PTR ftp-us-west-1.coredns.rocks.'],
    },
    // continue goes on with the rewritten name; stop ends the list; each chained rule is unwound in turn
    { rules: 'rewrite continue name regex consul\\.(rocks) core.dns.{1}\nrewrite name core.dns.rocks to.nl.', ask: 'consul.rocks', next: ['to.nl.'], answer: ['core.dns.rocks. 60 A 10.0.0.1'] },
    { rules: 'rewrite continue name regex consul\\.(rocks) core.dns.{1} answer auto\nrewrite name core.dns.rocks to.nl.', ask: 'consul.rocks', next: ['to.nl.'], answer: ['consul.rocks. 60 A 10.0.0.1'] },
    { rules: 'rewrite name regex consul\\.(rocks) core.dns.{1}\nrewrite name core.dns.rocks to.nl.', ask: 'consul.rocks', next: ['core.dns.rocks.'], answer: ['nl. 30 SOA ns.nl.'] },
    // type and class rules change what next is asked; the records come back as next wrote them
    { rules: 'rewrite type AAAA A', ask: 'to.nl', type: RRType.AAAA, next: ['to.nl.'], answer: ['to.nl. 60 A 10.0.0.1'] },
    { rules: 'rewrite type AAAA A', ask: 'to.nl', type: RRType.TXT, next: ['to.nl. TXT'], answer: ['nl. 30 SOA ns.nl.'] },
    { rules: 'rewrite continue class CH IN\nrewrite name from.nl to.nl', ask: 'from.nl', klass: RRClass.ANY, next: ['to.nl. ANY'], answer: ['from.nl. 60 A 10.0.0.1'] },
    { rules: 'rewrite continue class CH IN\nrewrite name from.nl to.nl', ask: 'from.nl', klass: 3, next: ['to.nl.'], answer: ['from.nl. 60 A 10.0.0.1'] },
    // ttl rules leave the question alone and clamp every TTL of the answer to a name they match
    { rules: 'rewrite ttl suffix .consul. 30-60', ask: 'ftp.service.us-west-1.consul', next: ['ftp.service.us-west-1.consul.'], answer: ['ftp.service.us-west-1.consul. 30 A 10.10.10.10', 'ftp.service.us-west-1.consul. 30 A 10.20.20.20'] },
    { rules: 'rewrite ttl regex ^to\\. -15', ask: 'to.nl', next: ['to.nl.'], answer: ['to.nl. 15 A 10.0.0.1'] },
    { rules: 'rewrite ttl to.nl 120-', ask: 'other.nl', next: ['other.nl.'], answer: ['nl. 30 SOA ns.nl.'] },
    { rules: 'rewrite continue name from.nl to.nl\nrewrite ttl to.nl 120-', ask: 'from.nl', next: ['to.nl.'], answer: ['from.nl. 120 A 10.0.0.1'] },
    { rules: 'rewrite name nomatch.nl to.nl\nrewrite name regex (core)\\.(dns)\\.(rocks)\\.(nl) {2}.{1}.{3}.{4} answer name (dns)\\.(core)\\.(rocks)\\.(nl) {2}.{1}.{3}.{4}', ask: 'core.dns.rocks.nl', next: ['dns.core.rocks.nl.'], answer: ['core.dns.rocks.nl. 60 A 10.0.0.2'] },
  ];
  it.each(table)('$rules: $ask', ({ rules, ask, type = RRType.A, klass = RRClass.IN, next, answer }) => {
    const handler = handlerOf(`    ${rules}`);
    const reply = handler.ask(ask, type, klass);
    expect(handler.asked).toEqual(next);
    expect(shown(ask, type, reply).sort()).toEqual([...answer].sort());
  });

  it('passes a question no rule matches on as it is, the same object', () => {
    const handler = new RewriteHandler(parse('    rewrite name suffix .corp.internal. .svc.cluster.local. answer auto').rules);
    const q: Question = Object.freeze({ key: nameToKey('www.example.org'), qtype: RRType.A, qclass: RRClass.IN, dnssecOk: false, flags: 0 });
    let seen: Question | undefined;
    handler.resolve(q, CLIENT, (asked) => {
      seen = asked;
      return { answer: prepareAnswer(asked.key, { rcode: Rcode.NXDOMAIN, authoritative: true }), plugin: 'next' };
    });
    expect(seen).toBe(q);
  });

  it('answers SERVFAIL, without asking next, for a rewritten name that is not a name', () => {
    const handler = handlerOf(`    rewrite name regex ^(.*)$ {1}${'x'.repeat(60)}.{1}`);
    expect(handler.ask(`${'a'.repeat(10)}.nl`).answer.rcode).toBe(Rcode.SERVFAIL);
    expect(handler.asked).toEqual([]);
  });

  it('maps an upstream message back too, under the asked question, so a cache in front keeps it as asked', () => {
    const handler = new RewriteHandler(parse('    rewrite name suffix .corp.internal. .example.org. answer auto').rules);
    const owner = nameToKey('www.example.org');
    const upstream: Message = {
      id: 1, flags: 0x8180, rcode: 0, question: { key: owner, qtype: RRType.A, qclass: RRClass.IN },
      answer: [{ owner, type: RRType.A, class: RRClass.IN, ttl: 300, rdata: Buffer.from([192, 0, 2, 10]) }], authority: [], additional: [],
    };
    const q: Question = Object.freeze({ key: nameToKey('www.corp.internal'), qtype: RRType.A, qclass: RRClass.IN, dnssecOk: false, flags: 0 });
    const reply = handler.resolve(q, CLIENT, (asked) => ({ answer: prepareAnswer(asked.key, { rcode: 0, authoritative: false, recursionAvailable: true, answer: upstream.answer }), plugin: 'forward', message: upstream })) as Reply;
    expect(reply.plugin).toBe('forward');
    expect(reply.answer.recursionAvailable).toBe(true);
    expect(reply.message?.question).toEqual({ key: q.key, qtype: RRType.A, qclass: RRClass.IN });
    expect(reply.message?.answer.map(text)).toEqual(['www.corp.internal. 300 A 192.0.2.10']);
    expect(shown('www.corp.internal', RRType.A, reply)).toEqual(['www.corp.internal. 300 A 192.0.2.10']);
  });

  it('waits for a next that answers later, and maps its answer back', async () => {
    const handler = new RewriteHandler(parse('    rewrite name from.nl to.nl').rules);
    const q: Question = Object.freeze({ key: nameToKey('from.nl'), qtype: RRType.A, qclass: RRClass.IN, dnssecOk: false, flags: 0 });
    const result = handler.resolve(q, CLIENT, async (asked) => ({ answer: prepareAnswer(asked.key, { rcode: 0, authoritative: true, answer: ZONE['to.nl.']![RRType.A]! }), plugin: 'next' }));
    expect(result).toBeInstanceOf(Promise);
    expect(shown('from.nl', RRType.A, await result)).toEqual(['from.nl. 60 A 10.0.0.1']);
  });
});

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const MANIFESTS = `apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: Namespace, metadata: {name: default}}
  - apiVersion: v1
    kind: Service
    metadata: {name: web, namespace: default}
    spec: {clusterIP: 10.96.0.20, ports: [{name: http, port: 80, protocol: TCP}]}
  - apiVersion: v1
    kind: Service
    metadata: {name: db, namespace: default}
    spec: {clusterIP: None, ports: [{name: pg, port: 5432, protocol: TCP}]}
  - apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: db-1, namespace: default, labels: {kubernetes.io/service-name: db}}
    addressType: IPv4
    endpoints: [{addresses: [10.244.1.1], conditions: {ready: true}}, {addresses: [10.244.1.2], conditions: {ready: true}}]
    ports: [{name: pg, port: 5432, protocol: TCP}]
`;

/** clusterdns -conf with `body` (given the directory that holds cluster.yaml) as its one server block on a free loopback port. */
async function serve(body: (dir: string) => string): Promise<ServerProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'clusterdns-rewrite-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'cluster.yaml'), MANIFESTS);
  const port = await freePort();
  await writeFile(join(dir, 'Corefile'), `.:${port} {\n    bind 127.0.0.1\n    prometheus 127.0.0.1:0\n${body(dir)}\n}\n`);
  const server = await startServer([], '127.0.0.1', { corefile: join(dir, 'Corefile') });
  cleanups.push(() => server.stop());
  return server;
}

describe('rewrite: the whole process, through dig', () => {
  it('serves the cluster zone under a company suffix: answers, SRV targets and denials in the asked names', async () => {
    const server = await serve((dir) => [
      '    rewrite name suffix .corp.internal. .svc.cluster.local. answer auto',
      '    kubernetes cluster.local in-addr.arpa ip6.arpa {',
      `        manifests ${join(dir, 'cluster.yaml')}`,
      '        ttl 30',
      '    }',
    ].join('\n'));
    const web = await dig(server.port, ['Web.Default.corp.internal', 'A']);
    expect(web.status).toBe('NOERROR');
    expect(web.flags).toContain('aa');
    expect(web.raw).toContain(';Web.Default.corp.internal.\tIN\tA');
    expect(web.answer).toEqual(lines('Web.Default.corp.internal. 30 IN A 10.96.0.20'));
    const db = await dig(server.port, ['db.default.corp.internal', 'A']);
    expect(db.answer).toEqual(lines('db.default.corp.internal. 30 IN A 10.244.1.1', 'db.default.corp.internal. 30 IN A 10.244.1.2'));
    const srv = await dig(server.port, ['_pg._tcp.db.default.corp.internal', 'SRV']);
    expect(srv.answer).toEqual(lines(
      '_pg._tcp.db.default.corp.internal. 30 IN SRV 0 50 5432 10-244-1-1.db.default.corp.internal.',
      '_pg._tcp.db.default.corp.internal. 30 IN SRV 0 50 5432 10-244-1-2.db.default.corp.internal.',
    ));
    expect(srv.additional).toEqual(lines('10-244-1-1.db.default.corp.internal. 30 IN A 10.244.1.1', '10-244-1-2.db.default.corp.internal. 30 IN A 10.244.1.2'));
    const nope = await dig(server.port, ['nope.default.corp.internal', 'A']);
    expect(nope.status).toBe('NXDOMAIN');
    expect(nope.authority[0]).toMatch(/^cluster\.local\. 30 IN SOA ns\.dns\.cluster\.local\. hostmaster\.cluster\.local\. \d+ 7200 1800 86400 30$/);
    // The cluster's own names are served as they are.
    expect((await dig(server.port, ['web.default.svc.cluster.local', 'A'])).answer).toEqual(lines('web.default.svc.cluster.local. 30 IN A 10.96.0.20'));
    const samples = await metrics(server);
    expect(value(samples, 'coredns_dns_responses_total', { server: `dns://127.0.0.1:${server.port}`, zone: '.', view: '', rcode: 'NOERROR', plugin: 'kubernetes' })).toBe(4);
  });

  it('a regex rule in front of the cache and an upstream: forwarded once, answered from the cache after, in the asked name and TTL', async () => {
    const upstream = await TestUpstream.start({ records: { 'ftp.service.us-west-1.consul': { A: ['10.10.10.10'], ttl: 300 } } });
    cleanups.push(() => upstream.stop());
    const server = await serve(() => [
      '    cache 30',
      '    rewrite continue ttl suffix .coredns.rocks. 20-25',
      '    rewrite stop {',
      '        name regex (.*)-(us-west-1)\\.coredns\\.rocks {1}.service.{2}.consul',
      '        answer name (.*)\\.service\\.(us-west-1)\\.consul {1}-{2}.coredns.rocks',
      '    }',
      `    forward . ${upstream.address}`,
    ].join('\n'));
    // The upstream's TTL of 300 comes back clamped to 25 (below the cache's 30), and the cache counts down from there.
    expect((await dig(server.port, ['ftp-us-west-1.coredns.rocks', 'A'])).answer).toEqual(lines('ftp-us-west-1.coredns.rocks. 25 IN A 10.10.10.10'));
    const cached = await dig(server.port, ['ftp-us-west-1.coredns.rocks', 'A']);
    expect(cached.answer).toHaveLength(1);
    expect(cached.answer[0]).toMatch(/^ftp-us-west-1\.coredns\.rocks\. (25|24|23) IN A 10\.10\.10\.10$/);
    expect(upstream.queriesFor('ftp.service.us-west-1.consul')).toHaveLength(1);
    expect(upstream.queriesFor('ftp-us-west-1.coredns.rocks')).toHaveLength(0);
    const samples = await metrics(server);
    expect(value(samples, 'coredns_cache_hits_total', { type: 'success' })).toBe(1);
  });

  it('a rule it cannot honour stops start-up with one line naming file and line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clusterdns-rewrite-bad-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'Corefile'), '.:1053 {\n    rewrite name suffix .a. .b. answer auto\n    rewrite edns0 local set 0xffee abcd\n}\n');
    const { code, stderr } = await runCli(['-conf', join(dir, 'Corefile')]);
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/Corefile:3: plugin "rewrite": field "edns0" is not supported by clusterdns \(supported: name, type, class, ttl\)$/m);
  });
});
