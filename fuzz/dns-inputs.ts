/**
 * Whole DNS messages built field by field for the wire targets: header counts that mostly match their sections,
 * names of real and hostile labels that may end in a compression pointer (usually to a name written earlier,
 * sometimes anywhere behind), records of the types whose RDATA holds names, OPT records with options. Random
 * bytes rarely get past a header and a question; these reach the record and RDATA code.
 */
import fc from 'fast-check';

interface NamePlan {
  readonly labels: readonly Uint8Array[];
  /** Where a closing pointer goes, as a fraction: of the names written so far, or of the bytes behind. */
  readonly pointer: number | undefined;
  readonly anywhere: boolean;
}

interface RecordPlan {
  readonly owner: NamePlan;
  readonly type: number;
  readonly klass: number;
  readonly ttl: number;
  readonly names: readonly NamePlan[];
  readonly fixed: Uint8Array;
  readonly tail: Uint8Array;
  readonly lengthDelta: number;
}

interface OptPlan {
  readonly udpSize: number;
  readonly extendedRcode: number;
  readonly version: number;
  readonly dnssecOk: boolean;
  readonly options: ReadonlyArray<{ readonly code: number; readonly data: Uint8Array; readonly lengthDelta: number }>;
}

interface MessagePlan {
  readonly id: number;
  readonly flags: number;
  readonly question: { readonly name: NamePlan; readonly qtype: number; readonly qclass: number } | undefined;
  readonly sections: readonly [readonly RecordPlan[], readonly RecordPlan[], readonly RecordPlan[]];
  readonly opt: OptPlan | undefined;
  readonly countDeltas: readonly number[];
}

const LABELS = ['web', 'default', 'svc', 'cluster', 'local', 'WEB', 'Default', 'kube-system', 'in-addr', 'arpa', 'ip6', '_http', '_tcp', '10', '96', '*', 'a.b', 'x'.repeat(63)];

const label: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...LABELS.map((text) => Buffer.from(text, 'latin1'))) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 0, maxLength: 70 }) },
);

const name: fc.Arbitrary<NamePlan> = fc.record({
  labels: fc.array(label, { maxLength: 6 }),
  pointer: fc.option(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), { nil: undefined, freq: 2 }),
  anywhere: fc.boolean(),
});

/** The types whose RDATA the decoder reads names from (message.ts's NAME_LAYOUT), and a few that it copies. */
const TYPES = [1, 2, 3, 5, 6, 12, 14, 15, 16, 17, 18, 21, 26, 28, 33, 39, 41, 46, 99, 65535];
/** The bytes before the names in those RDATA layouts (MX/AFSDB/RT/PX: 2, SRV: 6). */
const PREFIX = new Map([[15, 2], [18, 2], [21, 2], [26, 2], [33, 6]]);

const smallDelta = fc.oneof({ weight: 12, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) });

const record: fc.Arbitrary<RecordPlan> = fc.record({
  owner: name,
  type: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...TYPES) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) }),
  klass: fc.constantFrom(1, 1, 1, 3, 254, 255, 4096, 0xffff),
  ttl: fc.constantFrom(0, 1, 5, 30, 3600, 0x7fffffff, 0x80000000, 0xffffffff),
  names: fc.array(name, { maxLength: 2 }),
  fixed: fc.uint8Array({ maxLength: 20 }),
  tail: fc.oneof({ weight: 4, arbitrary: fc.constant(new Uint8Array(0)) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 24 }) }),
  lengthDelta: smallDelta,
});

const opt: fc.Arbitrary<OptPlan> = fc.record({
  udpSize: fc.constantFrom(0, 512, 1232, 4096, 65535),
  extendedRcode: fc.constantFrom(0, 0, 0, 1, 255),
  version: fc.constantFrom(0, 0, 0, 1, 255),
  dnssecOk: fc.boolean(),
  options: fc.array(fc.record({ code: fc.constantFrom(3, 8, 10, 12, 15, 0xffff), data: fc.uint8Array({ maxLength: 16 }), lengthDelta: smallDelta }), { maxLength: 3 }),
});

function plan(response: boolean): fc.Arbitrary<MessagePlan> {
  const sectionLength = { maxLength: 4 };
  return fc.record({
    id: fc.integer({ min: 0, max: 0xffff }),
    // QR as the message's role, mostly; the other bits, opcode and rcode included, anything.
    flags: fc.tuple(fc.integer({ min: 0, max: 0x7fff }), fc.oneof({ weight: 15, arbitrary: fc.constant(response) }, { weight: 1, arbitrary: fc.constant(!response) }))
      .map(([bits, qr]) => (qr ? bits | 0x8000 : bits)),
    question: fc.option(fc.record({
      name,
      qtype: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(1, 28, 33, 12, 16, 6, 255, 41, 251, 252) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) }),
      qclass: fc.constantFrom(1, 1, 1, 3, 255, 254),
    }), { nil: undefined, freq: 8 }),
    sections: fc.tuple(fc.array(record, sectionLength), fc.array(record, sectionLength), fc.array(record, sectionLength)),
    opt: fc.option(opt, { nil: undefined, freq: 2 }),
    countDeltas: fc.array(smallDelta, { minLength: 4, maxLength: 4 }),
  });
}

class Builder {
  private readonly parts: Buffer[] = [];
  length = 0;
  /** Offsets of names and of their suffixes written so far: what a real compressor points at. */
  private readonly names: number[] = [];

  push(bytes: Uint8Array): void {
    this.parts.push(Buffer.from(bytes));
    this.length += bytes.length;
  }

  u16(value: number): void {
    const bytes = Buffer.alloc(2);
    bytes.writeUInt16BE(value & 0xffff);
    this.push(bytes);
  }

  u32(value: number): void {
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32BE(value >>> 0);
    this.push(bytes);
  }

  name(plan: NamePlan): void {
    for (const bytes of plan.labels) {
      if (this.length <= 0x3fff) this.names.push(this.length);
      const length = Math.min(bytes.length, 0xff);
      this.push(Uint8Array.of(length));
      this.push(bytes.subarray(0, length));
    }
    if (plan.pointer === undefined || this.length <= 12) return this.push(Uint8Array.of(0));
    const target = plan.anywhere || this.names.length === 0
      ? 12 + Math.floor(plan.pointer * (this.length - 12))
      : this.names[Math.floor(plan.pointer * this.names.length)]!;
    this.u16(0xc000 | (target & 0x3fff));
  }

  /** Writes a length field now and fills it in when `body` is done. */
  sized(delta: number, body: () => void): void {
    const at = this.parts.length;
    this.u16(0);
    const start = this.length;
    body();
    this.parts[at]!.writeUInt16BE(Math.max(0, Math.min(0xffff, this.length - start + delta)));
  }

  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function build(message: MessagePlan): Buffer {
  const b = new Builder();
  b.u16(message.id);
  b.u16(message.flags);
  const counts = [message.question === undefined ? 0 : 1, message.sections[0].length, message.sections[1].length,
    message.sections[2].length + (message.opt === undefined ? 0 : 1)];
  counts.forEach((count, i) => b.u16(Math.max(0, count + message.countDeltas[i]!)));
  if (message.question !== undefined) {
    b.name(message.question.name);
    b.u16(message.question.qtype);
    b.u16(message.question.qclass);
  }
  for (const section of message.sections) {
    for (const r of section) {
      b.name(r.owner);
      b.u16(r.type);
      b.u16(r.klass);
      b.u32(r.ttl);
      b.sized(r.lengthDelta, () => {
        const prefix = PREFIX.get(r.type);
        if (prefix !== undefined) b.push(Buffer.concat([r.fixed, Buffer.alloc(prefix)]).subarray(0, prefix));
        else if (r.names.length === 0) b.push(r.fixed);
        for (const n of r.names) b.name(n);
        if (r.type === 6) b.push(Buffer.concat([r.fixed, Buffer.alloc(20)]).subarray(0, 20));
        b.push(r.tail);
      });
    }
  }
  if (message.opt !== undefined) {
    const o = message.opt;
    b.push(Uint8Array.of(0));
    b.u16(41);
    b.u16(o.udpSize);
    b.u32((o.extendedRcode << 24) | (o.version << 16) | (o.dnssecOk ? 0x8000 : 0));
    b.sized(0, () => {
      for (const option of o.options) {
        b.u16(option.code);
        b.sized(option.lengthDelta, () => b.push(option.data));
      }
    });
  }
  return b.bytes();
}

/**
 * Replies at the size limits: a question name of 200 to 255 bytes, then one record of a type whose RDATA holds
 * names, each a pointer to the question, and RDATA bytes that bring the message to 65,000-65,535 bytes (a UDP
 * payload is at most 65,507, a TCP message 65,535). Expanding the names makes that RDATA longer than it was.
 */
export function bigReplies(): fc.Arbitrary<Buffer> {
  return fc.record({
    nameLength: fc.integer({ min: 200, max: 255 }),
    type: fc.constantFrom(2, 5, 6, 12, 14, 15, 17, 26, 33),
    total: fc.integer({ min: 65_000, max: 65_535 }),
  }).map(({ nameLength, type, total }) => {
    const labels: Buffer[] = [];
    for (let left = nameLength - 1; left > 0; ) {
      const length = Math.min(63, left - 1);
      if (length <= 0) break;
      labels.push(Buffer.alloc(length, 0x61 + labels.length));
      left -= length + 1;
    }
    const b = new Builder();
    b.push(Uint8Array.of(0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0));
    b.name({ labels, pointer: undefined, anywhere: false });
    b.u16(type);
    b.u16(1);
    b.u16(0xc00c);
    b.u16(type);
    b.u16(1);
    b.u32(300);
    const pointers = type === 6 || type === 14 || type === 17 || type === 26 ? 2 : 1;
    const fixed = (PREFIX.get(type) ?? 0) + (type === 6 ? 20 : 0);
    const rdata = Math.max(0, Math.min(0xffff, total - b.length - 2));
    b.u16(rdata);
    b.push(Buffer.alloc(PREFIX.get(type) ?? 0));
    for (let i = 0; i < pointers; i++) b.u16(0xc00c);
    b.push(Buffer.alloc(Math.max(0, rdata - fixed - 2 * pointers)));
    return b.bytes();
  });
}

/** DNS messages: queries (QR clear, mostly) or responses (QR set, mostly). */
export function dnsMessages(response: boolean): fc.Arbitrary<Buffer> {
  return plan(response).map(build);
}
