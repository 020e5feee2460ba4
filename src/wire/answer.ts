/**
 * Prepared answers: the answer, authority and additional sections encoded once (with name compression) and
 * then copied into every reply for that question. Encoding happens when a name is first asked after the records
 * change, never per query; the reply only adds a header, the client's own question bytes and an OPT record.
 */
import { ipBytes } from '../ip.js';
import { RRClass, RRType } from './constants.js';
import { keptCopy } from './kept.js';
import type { Message, WireRecord } from './message.js';

export type Rdata =
  | { readonly type: typeof RRType.A | typeof RRType.AAAA; readonly ip: string }
  | { readonly type: typeof RRType.NS | typeof RRType.CNAME | typeof RRType.PTR; readonly target: string }
  | {
      readonly type: typeof RRType.SRV;
      readonly priority: number;
      readonly weight: number;
      readonly port: number;
      readonly target: string;
    }
  | { readonly type: typeof RRType.TXT; readonly texts: readonly string[] }
  | { readonly type: typeof RRType.HINFO; readonly cpu: string; readonly os: string }
  | {
      readonly type: typeof RRType.SOA;
      readonly mname: string;
      readonly rname: string;
      readonly serial: number;
      readonly refresh: number;
      readonly retry: number;
      readonly expire: number;
      readonly minimum: number;
    };

/** One record; `owner` and every name inside `data` are wire keys (names.ts). */
export interface ResourceRecord {
  readonly owner: string;
  /** IN unless given: only the chaos plugin's records are CH. */
  readonly class?: number;
  readonly ttl: number;
  readonly data: Rdata;
}

export interface PreparedAnswer {
  readonly rcode: number;
  readonly authoritative: boolean;
  readonly answer: Buffer;
  /** End offset (within `answer`) of each answer record, so a reply can be cut on a record boundary. */
  readonly answerEnds: readonly number[];
  readonly authority: Buffer;
  readonly authorityCount: number;
  readonly additional: Buffer;
  readonly additionalCount: number;
  /** Set RA: the answer came through recursion (a forwarded answer). */
  readonly recursionAvailable?: boolean;
  /**
   * The key of a CNAME target outside the answering zones whose records the answer lacks (an ExternalName
   * service): the chain asks the next steps for it and merges their answer.
   */
  readonly chaseTarget?: string;
  /**
   * Extended DNS Error options (ede.ts), encoded, for the reply's OPT record: sent only to clients that sent OPT,
   * and only where they fit (response.ts).
   */
  readonly ede?: Buffer;
}

/** Our own records, or records passed through from another server. */
export type AnyRecord = ResourceRecord | WireRecord;

export interface AnswerSections {
  readonly rcode: number;
  readonly authoritative: boolean;
  readonly recursionAvailable?: boolean;
  readonly chaseTarget?: string;
  readonly ede?: Buffer;
  readonly answer?: readonly AnyRecord[];
  readonly authority?: readonly AnyRecord[];
  readonly additional?: readonly AnyRecord[];
}

const EMPTY = Buffer.alloc(0);

/** An answer with no records (SERVFAIL, REFUSED, FORMERR...), with the EDE options that say why, if any. */
export function emptyAnswer(rcode: number, authoritative = false, ede?: Buffer): PreparedAnswer {
  return {
    rcode,
    authoritative,
    answer: EMPTY,
    answerEnds: [],
    authority: EMPTY,
    authorityCount: 0,
    additional: EMPTY,
    additionalCount: 0,
    ...(ede !== undefined && { ede }),
  };
}

/**
 * Encodes the sections of a reply to a question for `qnameKey`. The question sits at offset 12 whatever the
 * client's spelling, and every case spelling of a name has the same length, so the offsets used for compression
 * hold for any client: owners equal to the question point at it and so echo the client's own case.
 */
export function prepareAnswer(qnameKey: string, sections: AnswerSections): PreparedAnswer {
  const writer = new SectionWriter(12 + qnameKey.length + 4);
  // Every suffix of the question can be pointed at, as BIND and NSD do: smaller replies, so more records fit
  // before TC. Names compressed this way show the client's spelling of the shared labels (DNS ignores case).
  for (let i = 0; qnameKey.charCodeAt(i) !== 0; i += qnameKey.charCodeAt(i) + 1) writer.remember(qnameKey.slice(i), 12 + i);
  const answerEnds: number[] = [];
  for (const record of sections.answer ?? []) {
    writer.record(record);
    answerEnds.push(writer.length);
  }
  const answerEnd = writer.length;
  for (const record of sections.authority ?? []) writer.record(record);
  const authorityEnd = writer.length;
  for (const record of sections.additional ?? []) writer.record(record);
  // One kept buffer (kept.ts) for the three sections: they live and die together.
  const bytes = writer.kept();
  const answer = bytes.subarray(0, answerEnd);
  const authority = bytes.subarray(answerEnd, authorityEnd);
  const additional = bytes.subarray(authorityEnd);
  return {
    rcode: sections.rcode,
    authoritative: sections.authoritative,
    ...(sections.recursionAvailable === true && { recursionAvailable: true }),
    ...(sections.chaseTarget !== undefined && { chaseTarget: sections.chaseTarget }),
    ...(sections.ede !== undefined && { ede: sections.ede }),
    answer,
    answerEnds,
    authority,
    authorityCount: sections.authority?.length ?? 0,
    additional,
    additionalCount: sections.additional?.length ?? 0,
  };
}

/** Compression pointers hold 14 bits of offset. */
const MAX_POINTER_TARGET = 0x3fff;

class SectionWriter {
  private buffer = Buffer.alloc(512);
  private used = 0;
  private readonly offsets = new Map<string, number>();

  constructor(private readonly base: number) {}

  /** Bytes written so far, every section together. */
  get length(): number {
    return this.used;
  }

  remember(key: string, messageOffset: number): void {
    if (messageOffset <= MAX_POINTER_TARGET && !this.offsets.has(key)) this.offsets.set(key, messageOffset);
  }

  /** Everything written, in a buffer of its own (kept.ts). */
  kept(): Buffer {
    return keptCopy(this.buffer.subarray(0, this.used));
  }

  record(record: AnyRecord): void {
    if ('rdata' in record) {
      this.name(record.owner, true);
      this.u16(record.type);
      this.u16(record.class);
      this.u32(record.ttl);
      this.u16(record.rdata.length);
      this.bytes(record.rdata);
      return;
    }
    const data = record.data;
    this.name(record.owner, true);
    this.u16(data.type);
    this.u16(record.class ?? RRClass.IN);
    this.u32(record.ttl);
    const lengthAt = this.used;
    this.u16(0);
    switch (data.type) {
      case RRType.A:
      case RRType.AAAA:
        this.bytes(ipBytes(data.ip));
        break;
      case RRType.NS:
      case RRType.CNAME:
      case RRType.PTR:
        this.name(data.target, true);
        break;
      case RRType.SRV:
        this.u16(data.priority);
        this.u16(data.weight);
        this.u16(data.port);
        // RFC 2782: the target is never compressed.
        this.name(data.target, false);
        break;
      case RRType.TXT:
        for (const text of data.texts) this.characterString(text);
        break;
      case RRType.HINFO:
        this.characterString(data.cpu);
        this.characterString(data.os);
        break;
      case RRType.SOA:
        this.name(data.mname, true);
        this.name(data.rname, true);
        for (const value of [data.serial, data.refresh, data.retry, data.expire, data.minimum]) this.u32(value);
        break;
    }
    this.buffer.writeUInt16BE(this.used - lengthAt - 2, lengthAt);
  }

  private name(key: string, compress: boolean): void {
    for (let i = 0; key.charCodeAt(i) !== 0; i += key.charCodeAt(i) + 1) {
      const suffix = i === 0 ? key : key.slice(i);
      const known = this.offsets.get(suffix);
      if (compress && known !== undefined) {
        this.u16(0xc000 | known);
        return;
      }
      this.remember(suffix, this.base + this.used);
      const labelEnd = i + 1 + key.charCodeAt(i);
      this.bytes(Buffer.from(key.slice(i, labelEnd), 'latin1'));
    }
    this.u8(0);
  }

  private ensure(more: number): void {
    if (this.used + more <= this.buffer.length) return;
    const bigger = Buffer.alloc(Math.max(this.buffer.length * 2, this.used + more));
    this.buffer.copy(bigger, 0, 0, this.used);
    this.buffer = bigger;
  }

  private u8(value: number): void {
    this.ensure(1);
    this.buffer[this.used++] = value;
  }

  private u16(value: number): void {
    this.ensure(2);
    this.buffer.writeUInt16BE(value, this.used);
    this.used += 2;
  }

  private u32(value: number): void {
    this.ensure(4);
    this.buffer.writeUInt32BE(value >>> 0, this.used);
    this.used += 4;
  }

  private bytes(bytes: Buffer): void {
    this.ensure(bytes.length);
    bytes.copy(this.buffer, this.used);
    this.used += bytes.length;
  }

  /** RFC 1035 §3.3: a length octet and at most 255 octets (TXT strings, HINFO's CPU and OS). */
  private characterString(text: string): void {
    const bytes = Buffer.from(text, 'utf8');
    this.u8(bytes.length);
    this.bytes(bytes);
  }
}

/**
 * The client's answer from another server's message, with each record's TTL given by `ttl`. Its EDE options pass
 * through, unless `ede` replaces them (a stale answer says it is stale).
 */
export function prepareMessage(message: Message, ttl: (record: WireRecord) => number, ede = message.ede): PreparedAnswer {
  const withTtl = (records: readonly WireRecord[]): WireRecord[] => records.map((record) => ({ ...record, ttl: ttl(record) }));
  return prepareAnswer(message.question?.key ?? '\0', {
    rcode: message.rcode,
    authoritative: false,
    recursionAvailable: true,
    ede,
    answer: withTtl(message.answer),
    authority: withTtl(message.authority),
    additional: withTtl(message.additional),
  });
}
