/** Wire-format building blocks: name keys, zone matching on label boundaries, IP forms, and prepared answers. */
import { describe, expect, it } from 'vitest';
import { canonicalIp, dashedIp, reverseName, undashIp } from '../src/ip.js';
import { decodeEde, decodeMessage, encodeEde, isInZone, joinEde, keyToName, MessageError, nameToKey, newQuery, ParseOutcome, parseQuery, prepareAnswer, prepareMessage, RRType, writeReply } from '../src/wire/index.js';
import { query } from './support/query-bytes.js';

describe('names', () => {
  it('round-trips names through wire keys, lower-cased', () => {
    expect(keyToName(nameToKey('Web.Default.svc.cluster.local.'))).toBe('web.default.svc.cluster.local.');
    expect(nameToKey('a.b')).toBe('\x01a\x01b\x00');
  });

  it('rejects labels over 63 bytes and names over 255', () => {
    expect(() => nameToKey(`${'a'.repeat(64)}.local`)).toThrow(/longer than 63/);
    expect(() => nameToKey(Array.from({ length: 5 }, () => 'a'.repeat(60)).join('.'))).toThrow(/longer than 255/);
  });

  it('matches zones on label boundaries only', () => {
    const zone = nameToKey('cluster.local');
    expect(isInZone(nameToKey('web.default.svc.cluster.local'), zone)).toBe(true);
    expect(isInZone(zone, zone)).toBe(true);
    expect(isInZone(nameToKey('mycluster.local'), zone)).toBe(false);
    // A label that happens to end in the bytes of the zone's first label is not inside the zone.
    const tricky = `\x09x\x07cluster\x05local\x00`;
    expect(isInZone(tricky, zone)).toBe(false);
  });
});

describe('IP forms', () => {
  it('canonical text (RFC 5952), dashed names and reverse names', () => {
    expect(canonicalIp('FD00:0:0:0:0:0:0:0020')).toBe('fd00::20');
    expect(canonicalIp('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(canonicalIp('::ffff:10.0.0.1')).toBe('::ffff:a00:1');
    expect(canonicalIp('10.0.0.256')).toBeUndefined();
    expect(dashedIp('10.244.1.5')).toBe('10-244-1-5');
    expect(dashedIp('fd00::2:a')).toBe('fd00--2-a');
    expect(undashIp('fd00--2-a')).toBe('fd00::2:a');
    expect(undashIp('10-244-1-5')).toBe('10.244.1.5');
    expect(undashIp('1-2-3')).toBeUndefined();
    expect(reverseName('10.96.0.10')).toBe('10.0.96.10.in-addr.arpa');
    expect(reverseName('fd00::20')).toBe(`${'0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f'}.ip6.arpa`);
  });
});

describe('prepared answers', () => {
  it('points owners at the question (so they echo its case) and compresses names after the first', () => {
    const key = nameToKey('web.default.svc.cluster.local');
    const prepared = prepareAnswer(key, {
      rcode: 0,
      authoritative: true,
      answer: [{ owner: key, ttl: 5, data: { type: RRType.CNAME, target: nameToKey('x.default.svc.cluster.local') } }],
    });
    // owner pointer (2) + type/class/ttl/length (10) + "x" label (2) + pointer to "default.svc.cluster.local" (2)
    expect(prepared.answer.subarray(0, 2)).toEqual(Buffer.from([0xc0, 0x0c]));
    expect(prepared.answer.length).toBe(16);
    const packet = query('WEB.default.svc.cluster.local', RRType.CNAME);
    const q = newQuery();
    expect(parseQuery(packet, q)).toBe(ParseOutcome.Ok);
    expect(q.key).toBe(key);
    const reply = writeReply(packet, q, prepared, 512);
    expect(reply.readUInt16BE(0)).toBe(0x1234);
    expect(reply.readUInt16BE(2)).toBe(0x8500); // QR, AA, RD echoed
    expect(reply.subarray(12, q.questionEnd)).toEqual(packet.subarray(12, q.questionEnd));
  });

  it('echoes the DO bit and advertises 1232 in the OPT record', () => {
    const packet = query('a.cluster.local', RRType.A, 4096);
    const q = newQuery();
    expect(parseQuery(packet, q)).toBe(ParseOutcome.Ok);
    expect([q.edns, q.udpSize, q.dnssecOk]).toEqual([true, 4096, true]);
    const reply = writeReply(packet, q, prepareAnswer(q.key, { rcode: 3, authoritative: true }), 1232);
    const opt = reply.subarray(reply.length - 11);
    expect(opt.readUInt16BE(1)).toBe(41);
    expect(opt.readUInt16BE(3)).toBe(1232);
    expect(opt[7]).toBe(0x80);
    expect(reply.readUInt16BE(2) & 0xf).toBe(3);
  });
});

describe('kept bytes own their memory (src/wire/kept.ts)', () => {
  // A slice of Node's shared 8 KB pool keeps the whole pool alive: in bench/soak.sh that was 50-60 MB of external
  // memory per thread. What is kept must sit in a buffer of exactly its own size.
  const ownsExactly = (bytes: Buffer, size = bytes.length): void => expect(bytes.buffer.byteLength).toBe(size);

  it('a prepared answer: its three sections share one buffer of their own size', () => {
    const key = nameToKey('web.default.svc.cluster.local');
    const prepared = prepareAnswer(key, {
      rcode: 0,
      authoritative: true,
      answer: [{ owner: key, ttl: 5, data: { type: RRType.A, ip: '10.96.0.20' } }],
      authority: [{ owner: key, ttl: 5, data: { type: RRType.CNAME, target: nameToKey('x.default.svc.cluster.local') } }],
    });
    const total = prepared.answer.length + prepared.authority.length + prepared.additional.length;
    for (const section of [prepared.answer, prepared.authority, prepared.additional]) {
      expect(section.buffer).toBe(prepared.answer.buffer);
      ownsExactly(section, total);
    }
  });

  it('a decoded upstream message (what the cache keeps) and an EDE option', () => {
    const header = Buffer.from([0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0]);
    const question = Buffer.concat([Buffer.from('\x03www\x07example\x00', 'latin1'), Buffer.from([0, 1, 0, 1])]);
    const a = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
    const cname = Buffer.from([0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 0x10]);
    const message = decodeMessage(Buffer.concat([header, question, a, cname]));
    expect(message.answer.map((record) => record.rdata.length)).toEqual([4, 9]);
    for (const record of message.answer) ownsExactly(record.rdata);
    const age = encodeEde(0, 'state from the Kubernetes API as of 42 s ago');
    ownsExactly(age);
    // Joined options (an answer's own, then the age) are kept too, in order; one alone is itself.
    const joined = joinEde(encodeEde(0, 'service "cart" has no ready endpoints'), undefined, age)!;
    ownsExactly(joined);
    expect(decodeEde(joined).map(([, text]) => text)).toEqual(['service "cart" has no ready endpoints', 'state from the Kubernetes API as of 42 s ago']);
    expect(joinEde(undefined, age)).toBe(age);
    expect(joinEde(undefined, undefined)).toBeUndefined();
  });
});

describe('hostile query names (found by fuzzing, fuzz/targets/query.ts)', () => {
  /** A query for the raw labels given, qtype A. */
  function rawQuery(labels: readonly Buffer[]): Buffer {
    const header = Buffer.from([0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    return Buffer.concat([header, ...labels.flatMap((label) => [Buffer.from([label.length]), label]), Buffer.from([0, 0, 1, 0, 1])]);
  }
  const key = (labels: readonly Buffer[]): string => `${labels.map((label) => String.fromCharCode(label.length) + label.toString('latin1')).join('')}\0`;
  const LATIN1_CAPITALS = Buffer.from([0xc0, 0xd0, 0xde]);

  const ROWS: Record<string, { labels: Buffer[]; key: string }> = {
    // String's toLowerCase folded 0xC0-0xDE too whenever an ASCII capital was in the name: the key was another
    // name than the client's, and the forwarder asked upstream for it (RFC 4343 §3: only A-Z fold).
    'ASCII capitals beside latin1 capitals: only A-Z fold': {
      labels: [Buffer.from('WEB'), LATIN1_CAPITALS, Buffer.from('local')],
      key: key([Buffer.from('web'), LATIN1_CAPITALS, Buffer.from('local')]),
    },
    'latin1 capitals alone stay as they are': { labels: [LATIN1_CAPITALS, Buffer.from('local')], key: key([LATIN1_CAPITALS, Buffer.from('local')]) },
    'a capital next to bytes 0x5b-0x60 and 0x7b-0x7f, which are not letters': {
      labels: [Buffer.from('A[`{\x7f')],
      key: key([Buffer.from('a[`{\x7f')]),
    },
  };
  for (const [name, row] of Object.entries(ROWS)) {
    it(name, () => {
      const packet = rawQuery(row.labels);
      const q = newQuery();
      expect(parseQuery(packet, q)).toBe(ParseOutcome.Ok);
      expect(Buffer.from(q.key, 'latin1').toString('hex')).toBe(Buffer.from(row.key, 'latin1').toString('hex'));
      // The client's own bytes stay untouched: the reply echoes them.
      expect(packet.subarray(12, q.questionEnd - 4)).toEqual(rawQuery(row.labels).subarray(12, q.questionEnd - 4));
    });
  }
});

describe('hostile upstream replies (found by fuzzing, fuzz/targets/reply.ts)', () => {
  /** A reply whose question name is 255 bytes and whose SOA's two names are pointers to it, `size` bytes in all. */
  function bigSoaReply(size: number): Buffer {
    const labels = ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)];
    const qname = Buffer.concat([...labels.flatMap((label) => [Buffer.from([label.length]), Buffer.from(label)]), Buffer.from([0])]);
    const head = Buffer.concat([Buffer.from([0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]), qname, Buffer.from([0, 6, 0, 1])]);
    const rdataLength = size - head.length - 12;
    const fixed = Buffer.alloc(12);
    fixed.writeUInt16BE(0xc00c, 0);
    fixed.writeUInt16BE(RRType.SOA, 2);
    fixed.writeUInt16BE(1, 4);
    fixed.writeUInt32BE(300, 6);
    fixed.writeUInt16BE(rdataLength, 10);
    return Buffer.concat([head, fixed, Buffer.from([0xc0, 12, 0xc0, 12]), Buffer.alloc(rdataLength - 4)]);
  }

  it('an SOA whose names expand its RDATA past 65,535 bytes (a 65,507-byte UDP reply) is a MessageError', () => {
    const reply = bigSoaReply(65_507);
    expect(reply.length).toBe(65_507);
    expect(() => decodeMessage(reply)).toThrow(new MessageError('type 6 RDATA is longer than 65,535 bytes with its names expanded'));
  });

  it('the same reply 300 bytes smaller still fits once expanded: decoded, and prepared again without loss', () => {
    const message = decodeMessage(bigSoaReply(65_207));
    expect(message.answer[0]!.rdata.length).toBe(65_207 - 12 - 259 - 12 - 4 + 2 * 255);
    expect(prepareMessage(message, (record) => record.ttl).answerEnds).toHaveLength(1);
  });
});
