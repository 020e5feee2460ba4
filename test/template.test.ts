/**
 * The template plugin (src/plugins/template/): the Go-template subset and the zone-file record reader as tables,
 * a table of broken stanzas with their exact error lines, the handler's matching rules (zones, class, type,
 * regex, fallthrough, SERVFAIL on a miss) against a recording `next`, and the whole process through real dig
 * with a Corefile: NODATA for AAAA in front of a loopback upstream, NXDOMAIN for a zone, pattern-built answers,
 * a fabricated CNAME with its target's records, and the failure counters.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCorefile } from '../src/corefile/index.js';
import type { Client, Next, Question, Reply } from '../src/plugins/plugin.js';
import { compileTemplate, TemplateExecError, TemplateSyntaxError, type TemplateData } from '../src/plugins/template/go-template.js';
import { TemplateHandler } from '../src/plugins/template/index.js';
import { newTemplateStats } from '../src/plugins/template/metrics.js';
import { parseRecord, RecordTextError } from '../src/plugins/template/rr-text.js';
import { template } from '../src/plugins/template/setup.js';
import { keyToName, nameToKey, prepareAnswer, preparedRecords, Rcode, type PreparedAnswer } from '../src/wire/index.js';
import { dig, lines } from './support/dig.js';
import { metrics, value } from './support/http.js';
import { freePort, runCli, startServer, type ServerProcess } from './support/server-process.js';
import { TestUpstream } from './support/upstream.js';

const DATA: TemplateData = {
  Zone: 'example.',
  Name: 'ip-10-1-2-3.example.',
  Regex: '^ip-.*',
  Class: 'IN',
  Type: 'A',
  Remote: '192.0.2.7',
  Match: ['ip-10-1-2-3.example.', '10', '1'],
  Group: { 0: 'ip-10-1-2-3.example.', 1: '10', 2: '1', a: '10', b: '7b' },
};

describe('template: the Go template subset', () => {
  const renders: Array<[string, string]> = [
    ['{{ .Name }} 60 IN A 10.0.0.1', 'ip-10-1-2-3.example. 60 IN A 10.0.0.1'],
    ['{{.Zone}}|{{ .Class }}|{{ .Type }}|{{ .Remote }}|{{ .Regex }}', 'example.|IN|A|192.0.2.7|^ip-.*'],
    ['{{ index .Match 1 }}.{{ index .Match 2 }}', '10.1'],
    ['{{ .Group.a }}-{{ index .Group "b" }}-{{ index .Group "nope" }}', '10-7b-'],
    ['{{ .Group.nope }}', '<no value>'],
    ['{{ parseInt .Group.b 16 8 }}', '123'],
    ['{{ parseInt "0x7f" 0 8 }} {{ parseInt "0755" 0 16 }} {{ parseInt "1_000" 0 16 }}', '127 493 1000'],
    ['a {{- " b " -}} c', 'a b c'],
    ['x{{/* a comment */}}y', 'xy'],
    ['{{ .Match }}', '[ip-10-1-2-3.example. 10 1]'],
    ['{{ `raw {{` }}', 'raw {{'],
    ['no actions at all', 'no actions at all'],
  ];
  it.each(renders)('%s → %s', (source, out) => {
    expect(compileTemplate(source).render(DATA)).toBe(out);
  });

  const refused: Array<[string, RegExp]> = [
    ['{{ .Message }}', /\.Message \(the whole query\) is not supported/],
    ['{{ .Question }}', /\.Question is not supported/],
    ['{{ .Meta "kubernetes/client-namespace" }}', /\.Meta needs the metadata plugin/],
    ['{{ .Nope }}', /\.Nope is not a field of the template data/],
    ['{{ .Name.Foo }}', /\.Name is a string and has no fields/],
    ['{{ .Match.x }}', /\.Match is a list; use \{\{ index \.Match N \}\}/],
    ['{{ $x := 1 }}', /variables are not supported/],
    ['{{ .Name | printf "%s" }}', /pipes are not supported/],
    ['{{ if .Name }}x{{ end }}', /\{\{ if \}\} is not supported/],
    ['{{ printf "%s" .Name }}', /function "printf" is not supported/],
    ['{{ .Name ', /unclosed action/],
    ['{{ }}', /empty action/],
    ['{{ index .Match }}', /index wants an item and at least one key/],
    ['{{ parseInt .Group.b 16 }}', /parseInt wants a string, a base and a bit size/],
  ];
  it.each(refused)('refuses %s', (source, message) => {
    expect(() => compileTemplate(source)).toThrow(TemplateSyntaxError);
    expect(() => compileTemplate(source)).toThrow(message);
  });

  const failing: Array<[string, string]> = [
    ['{{ index .Match 5 }}', 'error calling index: index out of range: 5'],
    ['{{ index .Match "1" }}', 'error calling index: cannot index slice with type string'],
    ['{{ parseInt .Name 10 8 }}', 'error calling parseInt: strconv.ParseUint: parsing "ip-10-1-2-3.example.": invalid syntax'],
    ['{{ parseInt "300" 10 8 }}', 'error calling parseInt: strconv.ParseUint: parsing "300": value out of range'],
    ['{{ parseInt "1" 1 8 }}', 'error calling parseInt: strconv.ParseUint: parsing "1": invalid base 1'],
  ];
  it.each(failing)('%s fails when it runs: %s', (source, message) => {
    const compiled = compileTemplate(source);
    expect(() => compiled.render(DATA)).toThrow(TemplateExecError);
    expect(() => compiled.render(DATA)).toThrow(message);
  });
});

describe('template: records in zone-file form', () => {
  const show = (text: string): string => {
    const record = parseRecord(text);
    return `${keyToName(record.owner)} ${record.ttl} ${record.class} ${record.type} ${record.rdata.toString('hex')}`;
  };
  const records: Array<[string, string]> = [
    ['a.example. 60 IN A 10.1.2.3', 'a.example. 60 1 1 0a010203'],
    ['a.example A 10.1.2.3', 'a.example. 3600 1 1 0a010203'],
    ['a.example. IN 1h30m A 10.1.2.3', 'a.example. 5400 1 1 0a010203'],
    ['A.Example. 60 AAAA 2001:db8::1', 'a.example. 60 1 28 20010db8000000000000000000000001'],
    ['foogle.com 60 IN CNAME google.com', `foogle.com. 60 1 5 ${Buffer.from(nameToKey('google.com'), 'latin1').toString('hex')}`],
    ['x. 60 IN MX 10 mail.x.', `x. 60 1 15 000a${Buffer.from(nameToKey('mail.x'), 'latin1').toString('hex')}`],
    ['_h._tcp.x. 60 IN SRV 0 100 80 web.x.', `_h._tcp.x. 60 1 33 000000640050${Buffer.from(nameToKey('web.x'), 'latin1').toString('hex')}`],
    ['x. 60 CH TXT "hello world" two', 'x. 60 3 16 0b68656c6c6f20776f726c640374776f'],
    ['x. 60 IN TXT "a\\"b\\065"', 'x. 60 1 16 0461226241'],
    [
      'invalid. 60 IN SOA ns.invalid. hostmaster.invalid. (1 60 60 60 60) ; negative TTL 60',
      `invalid. 60 1 6 ${Buffer.from(nameToKey('ns.invalid') + nameToKey('hostmaster.invalid'), 'latin1').toString('hex')}000000010000003c0000003c0000003c0000003c`,
    ],
    ['web\\.x.example. 5 IN A 10.0.0.1', `web\\.x.example. 5 1 1 0a000001`],
    ['A\\066c.x. 5 IN A 10.0.0.1', 'abc.x. 5 1 1 0a000001'],
  ];
  it.each(records)('%s', (text, shown) => {
    expect(show(text)).toBe(shown);
  });

  const bad: Array<[string, string]> = [
    ['', 'empty'],
    ['a.example. 60 IN', 'no type'],
    ['a.example. 60 IN BOGUS 1', '"BOGUS" is not a record type'],
    ['a.example. 60 IN A 10.1.2', '"10.1.2" is not an IPv4 address'],
    ['a.example. 60 IN A 10.1.2.3 10.1.2.4', 'A wants 1 field after the type, got 2'],
    ['a.example. 60 IN AAAA 10.1.2.3', '"10.1.2.3" is not an IPv6 address'],
    ['a.example. 60 IN MX 70000 m.', '"70000" is not a number from 0 to 65535'],
    ['a.example. 60 IN HINFO a b', 'type HINFO is not supported in template records'],
    ['a..example. 60 IN A 10.1.2.3', 'empty label in name'],
    ['<no value> 60 IN A 10.1.2.3', '"value>" is not a record type'],
  ];
  it.each(bad)('refuses %j: %s', (text, message) => {
    expect(() => parseRecord(text)).toThrow(RecordTextError);
    expect(() => parseRecord(text)).toThrow(message);
  });
});

/** The templates of a Corefile's one server block, as the setup builds them. */
function parse(stanzas: string, zones: readonly string[] = ['.']): ReturnType<typeof template.parse> {
  const [block] = parseCorefile(`.:1053 {\n${stanzas}\n}\n`, { file: 'Corefile' });
  return template.parse(block!.directives.filter((d) => d.name === 'template'), zones);
}

describe('template: a broken stanza stops the load naming file and line', () => {
  const cases: Array<[string, string, string]> = [
    ['no type', '    template IN', 'Corefile:2: plugin "template": wants at least 2 arguments, got 1 (usage: template CLASS TYPE [ZONE...] { match REGEX...; answer RR; additional RR; authority RR; rcode CODE; fallthrough [ZONE...] })'],
    ['a bad class', '    template XX A', 'Corefile:2: plugin "template": invalid query class "XX" (one of IN, CS, CH, HS, NONE, ANY)'],
    ['a bad type', '    template IN AA', 'Corefile:2: plugin "template": invalid query type "AA"'],
    ['a bad zone', '    template IN A a..b', 'Corefile:2: plugin "template": "a..b" is not a zone: empty label in name "a..b."'],
    ['an unknown option', '    template IN A {\n        answr "x. 60 IN A 1.2.3.4"\n    }', 'Corefile:3: plugin "template": unknown option "answr" (supported: match, answer, additional, authority, rcode, fallthrough, upstream)'],
    ['ederror', '    template IN A {\n        ederror 21 "blocked"\n    }', 'Corefile:3: plugin "template": option "ederror" is not supported by clusterdns (it writes no extended DNS errors)'],
    ['a bad rcode', '    template IN A {\n        rcode NOSUCH\n    }', 'Corefile:3: plugin "template": option "rcode": "NOSUCH" is not one of NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, YXDOMAIN, YXRRSET, NXRRSET, NOTAUTH, NOTZONE'],
    ['rcode without a code', '    template IN A {\n        rcode\n    }', 'Corefile:3: plugin "template": option "rcode" wants 1 argument, got 0 (usage: rcode CODE)'],
    ['match without a regex', '    template IN A {\n        match\n    }', 'Corefile:3: plugin "template": option "match" wants at least 1 arguments, got 0 (usage: match REGEX...)'],
    ['a regex Go refuses', '    template IN A {\n        match "^(a"\n    }', 'Corefile:3: plugin "template": option "match": regular expression "^(a": Unterminated group'],
    ['a lookahead', '    template IN A {\n        match "^a(?=b)"\n    }', 'Corefile:3: plugin "template": option "match": regular expression "^a(?=b)": lookaround assertions are not supported (Go\'s regexp has none, or reads them otherwise)'],
    ['a template that does not compile', '    template IN A {\n        answer "{{ .Name 60 IN A 1.2.3.4"\n    }', 'Corefile:3: plugin "template": option "answer": template "{{ .Name 60 IN A 1.2.3.4": unclosed action: {{ without }}'],
    ['.Message', '    template IN TXT {\n        answer "{{ .Name }} 60 IN TXT \\"{{ .Message }}\\""\n    }', 'Corefile:3: plugin "template": option "answer": template "{{ .Name }} 60 IN TXT \\"{{ .Message }}\\"": .Message (the whole query) is not supported'],
    ['a record type it cannot write', '    template IN HINFO {\n        answer "{{ .Name }} 60 IN HINFO a b"\n    }', 'Corefile:3: plugin "template": option "answer": record type HINFO is not supported (supported: A, AAAA, CNAME, DNAME, MX, NS, PTR, SOA, SRV, TXT)'],
    ['upstream with an address', '    template IN A {\n        upstream 10.0.0.1\n    }', 'Corefile:3: plugin "template": option "upstream": addresses are not supported (CNAME targets are asked of the plugins after template)'],
    ['an option with a block', '    template IN A {\n        rcode NXDOMAIN {\n        }\n    }', 'Corefile:3: plugin "template": option "rcode" takes no block'],
  ];
  it.each(cases)('%s', (_what, stanza, message) => {
    expect(() => parse(stanza)).toThrow(message);
  });
});

const CLIENT: Client = { address: '10.0.0.9', port: 5353 };
const question = (name: string, qtype = 1, qclass = 1): Question => ({ key: nameToKey(name), qtype, qclass, dnssecOk: false, flags: 0 });
const NEXT_ANSWER: PreparedAnswer = prepareAnswer('\0', { rcode: Rcode.REFUSED, authoritative: false });

/** A handler over `stanzas`, with a `next` that records what it was asked and answers REFUSED from plugin "next". */
function handlerOf(stanzas: string, zones?: readonly string[]): { ask(name: string, qtype?: number, qclass?: number): Reply; asked: string[] } {
  const handler = new TemplateHandler(parse(stanzas, zones).templates, newTemplateStats());
  const asked: string[] = [];
  const next: Next = (q) => {
    asked.push(keyToName(q.key));
    return { answer: NEXT_ANSWER, plugin: 'next' };
  };
  return {
    asked,
    ask: (name, qtype, qclass) => {
      const result = handler.resolve(question(name, qtype, qclass), CLIENT, next);
      if (result instanceof Promise) throw new Error('a template answer waited on a promise');
      return result;
    },
  };
}

/** rcode, then each record as `name ttl type rdata-hex`. */
function shown(name: string, qtype: number, reply: Reply): string[] {
  const message = preparedRecords(nameToKey(name), qtype, reply.answer);
  const line = (r: { owner: string; ttl: number; type: number; rdata: Buffer }): string => `${keyToName(r.owner)} ${r.ttl} ${r.type} ${r.rdata.toString('hex')}`;
  return [`rcode ${reply.answer.rcode} aa ${reply.answer.authoritative} by ${reply.plugin}`, ...message.answer.map(line), ...message.authority.map((r) => `authority ${line(r)}`)];
}

describe('template: which question a template answers', () => {
  it('answers NODATA for AAAA anywhere and leaves every other type to next, synchronously', () => {
    const { ask, asked } = handlerOf('    template ANY AAAA {\n        rcode NOERROR\n    }');
    expect(shown('www.example.org', 28, ask('www.example.org', 28))).toEqual(['rcode 0 aa true by template']);
    expect(ask('www.example.org', 1).plugin).toBe('next');
    // A question of type ANY meets every template type, as in CoreDNS.
    expect(ask('www.example.org', 255).plugin).toBe('template');
    expect(asked).toEqual(['www.example.org.']);
  });

  it('answers NXDOMAIN with its SOA for a zone, in every class, and passes names outside the zone on', () => {
    const { ask } = handlerOf('    template ANY ANY invalid {\n        rcode NXDOMAIN\n        authority "invalid. 60 {{ .Class }} SOA ns.invalid. hostmaster.invalid. (1 60 60 60 60)"\n    }');
    const soa = `authority invalid. 60 6 ${Buffer.from(nameToKey('ns.invalid') + nameToKey('hostmaster.invalid'), 'latin1').toString('hex')}000000010000003c0000003c0000003c0000003c`;
    expect(shown('a.b.invalid', 1, ask('a.b.invalid'))).toEqual(['rcode 3 aa true by template', soa]);
    expect(ask('invalid', 16).answer.rcode).toBe(Rcode.NXDOMAIN);
    expect(ask('a.invalid', 16, 3).answer.rcode).toBe(Rcode.NXDOMAIN);
    expect(ask('notinvalid').plugin).toBe('next');
  });

  it('builds an answer from named groups; a regex miss is SERVFAIL without fallthrough and goes on with it', () => {
    const regex = 'match (^|[.])ip-(?P<a>[0-9]*)-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$';
    const answer = 'answer "{{ .Name }} 60 IN A {{ .Group.a }}.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}"';
    const strict = handlerOf(`    template IN A example {\n        ${regex}\n        ${answer}\n    }`);
    expect(shown('Ip-10-1-2-3.example', 1, strict.ask('Ip-10-1-2-3.example'))).toEqual(['rcode 0 aa true by template', 'ip-10-1-2-3.example. 60 1 0a010203']);
    expect(strict.ask('www.example').answer.rcode).toBe(Rcode.SERVFAIL);
    // A class or type mismatch is not a miss: it goes on.
    expect(strict.ask('www.example', 28).plugin).toBe('next');
    expect(strict.ask('www.example', 1, 3).plugin).toBe('next');
    const lenient = handlerOf(`    template IN A example {\n        ${regex}\n        ${answer}\n        fallthrough\n    }`);
    expect(lenient.ask('www.example').plugin).toBe('next');
    const some = handlerOf(`    template IN A example {\n        ${regex}\n        ${answer}\n        fallthrough sub.example\n    }`);
    expect(some.ask('www.sub.example').plugin).toBe('next');
    expect(some.ask('www.example').answer.rcode).toBe(Rcode.SERVFAIL);
  });

  it('tries templates in order, the first whose regex matches answering; the zone is the longest that holds the name', () => {
    const { ask } = handlerOf([
      '    template IN TXT example {\n        match ^a\\.\n        answer "{{ .Name }} 60 IN TXT first {{ .Zone }}"\n        fallthrough\n    }',
      '    template IN TXT example sub.example {\n        answer "{{ .Name }} 60 IN TXT second {{ .Zone }}"\n    }',
    ].join('\n'));
    const txt = (...texts: string[]): string => Buffer.concat(texts.map((text) => Buffer.concat([Buffer.from([text.length]), Buffer.from(text)]))).toString('hex');
    expect(shown('a.example', 16, ask('a.example', 16))[1]).toBe(`a.example. 60 16 ${txt('first', 'example.')}`);
    expect(shown('b.sub.example', 16, ask('b.sub.example', 16))[1]).toBe(`b.sub.example. 60 16 ${txt('second', 'sub.example.')}`);
  });

  it('counts a template that fails and a record that does not parse, and answers SERVFAIL', () => {
    const stats = newTemplateStats();
    const handler = new TemplateHandler(parse([
      '    template IN A one.example {\n        answer "{{ index .Match 5 }} 60 IN A 10.0.0.1"\n    }',
      '    template IN A two.example {\n        answer "{{ .Name }} 60 IN A {{ .Name }}"\n    }',
    ].join('\n')).templates, stats);
    const next: Next = () => ({ answer: NEXT_ANSWER, plugin: 'next' });
    expect((handler.resolve(question('x.one.example'), CLIENT, next) as Reply).answer.rcode).toBe(Rcode.SERVFAIL);
    expect((handler.resolve(question('x.two.example'), CLIENT, next) as Reply).answer.rcode).toBe(Rcode.SERVFAIL);
    expect([...stats.templateFailures.entries()]).toEqual([['one.example.\0IN\0A\0answer\0{{ index .Match 5 }} 60 IN A 10.0.0.1', 1]]);
    expect([...stats.rrFailures.entries()]).toEqual([['two.example.\0IN\0A\0answer\0{{ .Name }} 60 IN A {{ .Name }}', 1]]);
    expect([...stats.matches.entries()].map(([key, count]) => [key.split('\0').join(' '), count])).toEqual([['one.example. IN A', 1], ['two.example. IN A', 1]]);
  });
});

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** clusterdns -conf with `body` as its one server block (on a free loopback port), and `upstream` for `forward`. */
async function serve(body: (upstream: TestUpstream) => string): Promise<{ server: ServerProcess; upstream: TestUpstream }> {
  const upstream = await TestUpstream.start({ records: { 'www.example.test': { A: ['192.0.2.10'], AAAA: ['2001:db8::10'], ttl: 300 } } });
  cleanups.push(() => upstream.stop());
  const dir = await mkdtemp(join(tmpdir(), 'clusterdns-template-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  await writeFile(join(dir, 'Corefile'), `.:${port} {\n    bind 127.0.0.1\n    prometheus 127.0.0.1:0\n${body(upstream)}\n}\n`);
  const server = await startServer([], '127.0.0.1', { corefile: join(dir, 'Corefile') });
  cleanups.push(() => server.stop());
  return { server, upstream };
}

const CLUSTER_TEMPLATES = `
    template ANY AAAA {
        rcode NOERROR
    }
    template ANY ANY invalid {
        rcode NXDOMAIN
        authority "invalid. 60 {{ .Class }} SOA ns.invalid. hostmaster.invalid. (1 60 60 60 60)"
    }
    template IN A example {
        match (^|[.])ip-(?P<a>[0-9]*)-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$
        answer "{{ .Name }} 60 IN A {{ .Group.a }}.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}"
        fallthrough
    }
    template IN ANY foogle.test {
        match "^foogle\\.test\\.$"
        answer "foogle.test 60 IN CNAME www.example.test"
    }`;

describe('template: the whole process, through dig', () => {
  it('answers NODATA for AAAA without asking the upstream, which still answers A', async () => {
    const { server, upstream } = await serve((up) => `${CLUSTER_TEMPLATES}\n    forward . ${up.address}`);
    const aaaa = await dig(server.port, ['www.example.test', 'AAAA']);
    expect(aaaa.status).toBe('NOERROR');
    expect(aaaa.flags).toContain('aa');
    expect(aaaa.answer).toEqual([]);
    expect(upstream.queries.filter((q) => q.type === 28)).toEqual([]);
    expect((await dig(server.port, ['www.example.test', 'A'])).answer).toEqual(lines('www.example.test. 300 IN A 192.0.2.10'));
  });

  it('NXDOMAIN with the SOA for a zone, an answer from the name, a fallthrough to the upstream, a CNAME with its target', async () => {
    const { server, upstream } = await serve((up) => `${CLUSTER_TEMPLATES}\n    forward . ${up.address}`);
    const invalid = await dig(server.port, ['host.invalid', 'A']);
    expect(invalid.status).toBe('NXDOMAIN');
    expect(invalid.authority).toEqual(lines('invalid. 60 IN SOA ns.invalid. hostmaster.invalid. 1 60 60 60 60'));
    const ip = await dig(server.port, ['IP-10-1-2-3.example', 'A']);
    expect(ip.flags).toContain('aa');
    expect(ip.answer).toEqual(lines('IP-10-1-2-3.example. 60 IN A 10.1.2.3'));
    expect((await dig(server.port, ['other.example', 'A'])).status).toBe('NXDOMAIN');
    expect(upstream.queriesFor('other.example')).toHaveLength(1);
    expect([...upstream.queriesFor('host.invalid'), ...upstream.queriesFor('ip-10-1-2-3.example')]).toEqual([]);
    expect((await dig(server.port, ['foogle.test', 'A'])).answer).toEqual(lines('foogle.test. 60 IN CNAME www.example.test.', 'www.example.test. 300 IN A 192.0.2.10'));
    expect(upstream.queries.at(-1)?.name.toLowerCase()).toBe('www.example.test');
    const samples = await metrics(server);
    const matches = (zone: string, type: string): number | undefined => value(samples, 'coredns_template_matches_total', { server: '', zone, view: '', class: 'IN', type });
    expect(matches('invalid.', 'A')).toBe(1);
    expect(matches('example.', 'A')).toBe(1);
    expect(matches('foogle.test.', 'A')).toBe(1);
  });

  it('a template that fails answers SERVFAIL and is counted with its section and text', async () => {
    const { server } = await serve(() => '    template IN A broken.test {\n        answer "{{ index .Match 3 }} 60 IN A 10.0.0.1"\n    }\n    template IN A bad.test {\n        answer "{{ .Name }} 60 IN A not-an-ip"\n    }');
    expect((await dig(server.port, ['x.broken.test', 'A'])).status).toBe('SERVFAIL');
    expect((await dig(server.port, ['x.bad.test', 'A'])).status).toBe('SERVFAIL');
    const samples = await metrics(server);
    const labels = { server: '', zone: 'broken.test.', view: '', class: 'IN', type: 'A', section: 'answer', template: '{{ index .Match 3 }} 60 IN A 10.0.0.1' };
    expect(value(samples, 'coredns_template_template_failures_total', labels)).toBe(1);
    expect(value(samples, 'coredns_template_rr_failures_total', { ...labels, zone: 'bad.test.', template: '{{ .Name }} 60 IN A not-an-ip' })).toBe(1);
  });

  it('a broken template stops start-up with one line naming file and line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clusterdns-template-bad-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'Corefile'), '.:1053 {\n    template IN A {\n        answer "{{ .Name }} 60 IN A {{ .Meta \\"x\\" }}"\n    }\n}\n');
    const { code, stderr } = await runCli(['-conf', join(dir, 'Corefile')]);
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/Corefile:3: plugin "template": option "answer": template .*: \.Meta needs the metadata plugin/);
  });
});
