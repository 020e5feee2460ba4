/**
 * The log plugin's rules and CoreDNS's format, on queries built by the real query parser and replies by the real
 * writer: what test/query-log.test.ts cannot reach through a server (IPv6 clients, TCP's buffer size, slow
 * queries, metadata labels, placeholders CoreDNS does not know).
 */
import { describe, expect, it } from 'vitest';
import { parseCorefile } from '../src/corefile/index.js';
import type { Client, LoggedQuery } from '../src/plugins/plugin.js';
import { log, queryLogRules } from '../src/plugins/log/setup.js';
import { encodeQuery, nameToKey, newQuery, parseQuery, RRClass, RRType } from '../src/wire/index.js';

function rulesOf(stanzas: string): (logged: LoggedQuery) => string | undefined {
  const [block] = parseCorefile(`.:53 {\n${stanzas}\n}\n`, { env: {} });
  return queryLogRules(log.parse(block!.directives.filter((d) => d.name === 'log'), ['.']));
}

/** A query for `name` as dig sends it (RD, EDNS 1232), answered with `rcode` and `answers` records, `seconds` late. */
function logged(name: string, options: { client?: Client; rcode?: number; answers?: number; seconds?: number } = {}): LoggedQuery {
  const packet = encodeQuery({ id: 4242, key: nameToKey(name), qtype: RRType.A, qclass: RRClass.IN, dnssecOk: true, checkingDisabled: false }, 1232);
  const query = newQuery();
  parseQuery(packet, query);
  const reply = Buffer.alloc(12);
  reply.writeUInt16BE(0x8580 | (options.rcode ?? 0), 2); // qr aa rd ra
  reply.writeUInt16BE(options.answers ?? 1, 6);
  return { query, client: options.client ?? { address: '10.0.0.7', port: 5300 }, local: '10.0.0.1', requestSize: packet.length, rcode: options.rcode ?? 0, reply, seconds: options.seconds ?? 0.0005 };
}

describe('log: CoreDNS\'s format', () => {
  it('writes the Common Log Format by default, IPv6 addresses in brackets, TCP\'s buffer size as 65535', () => {
    const rules = rulesOf('log');
    expect(rules(logged('web.default.svc.cluster.local'))).toMatch(/^10\.0\.0\.7:5300 - 4242 "A IN web\.default\.svc\.cluster\.local\. udp \d+ true 1232" NOERROR qr,aa,rd,ra 12 0\.0005s$/);
    const v6 = rules(logged('x.test', { client: { address: 'fd00::7', port: 5300, transport: 'tcp' } }));
    expect(v6).toMatch(/^\[fd00::7\]:5300 - 4242 "A IN x\.test\. tcp \d+ true 65535" /);
  });

  it('fills {local}, {>opcode} and {/LABEL} (no metadata: "-"), and keeps a placeholder CoreDNS does not know', () => {
    const rules = rulesOf('log . "{local} {>opcode} {/kubernetes/client-namespace} {nosuch} {name}"');
    expect(rules(logged('x.test'))).toBe('10.0.0.1 0 - {nosuch} x.test.');
  });
});

describe('log: rules', () => {
  it('the first rule holding the name decides, even when its class keeps the query out', () => {
    const rules = rulesOf('log example.org {\n class error\n}\nlog . "{name}"');
    expect(rules(logged('www.example.org'))).toBeUndefined();
    expect(rules(logged('www.example.net'))).toBe('www.example.net.');
  });

  it('minDuration also logs a query of another class when it was slower than that', () => {
    const rules = rulesOf('log . "{name} {duration}" {\n class error\n minDuration 100ms\n}');
    expect(rules(logged('fast.test', { seconds: 0.05 }))).toBeUndefined();
    expect(rules(logged('slow.test', { seconds: 0.25 }))).toBe('slow.test. 0.25s');
    expect(rules(logged('failed.test', { rcode: 2, seconds: 0.001 }))).toBe('failed.test. 0.001s');
  });

  it('classes: NXDOMAIN and NODATA are denials, NOERROR with answers a success', () => {
    const rules = rulesOf('log . "{rcode}" {\n class denial\n}');
    expect(rules(logged('a.test', { rcode: 3, answers: 0 }))).toBe('NXDOMAIN');
    expect(rules(logged('a.test', { answers: 0 }))).toBe('NOERROR');
    expect(rules(logged('a.test', { answers: 2 }))).toBeUndefined();
  });

  it('refuses an option or class CoreDNS\'s log does not have, naming the line', () => {
    expect(() => rulesOf('log . {\n class sometimes\n}')).toThrow(/:3: plugin "log": option "class": "sometimes" is not one of all, denial, error, success/);
    expect(() => rulesOf('log . {\n format json\n}')).toThrow(/:3: plugin "log": unknown option "format" \(supported: class, minDuration\)/);
  });
});
