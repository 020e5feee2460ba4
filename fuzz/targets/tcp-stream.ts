/**
 * Target `tcp-stream`: the bytes of one TCP connection through the server's framing (TcpDeframer,
 * src/wire/tcp.ts) and query answerer. Invariant: the messages handed out are the ones a plain walk of the
 * two-byte lengths finds, stopping at the first message that gets no reply (as the server then closes the
 * connection); the same replies come out whether the bytes arrive at once, in uneven chunks or byte by byte;
 * and each query and its reply keep the `query` target's invariant over TCP.
 */
import fc from 'fast-check';
import { frameTcp, TcpDeframer } from '../../src/wire/index.js';
import { dnsMessages } from '../dns-inputs.js';
import { assert, type FuzzTarget } from '../harness.js';
import { answer, checkAnswer } from './query.js';

interface Run {
  readonly replies: Buffer[];
  readonly closed: boolean;
}

function feed(chunks: readonly Buffer[]): Run {
  const deframer = new TcpDeframer();
  const replies: Buffer[] = [];
  for (const chunk of chunks) {
    const more = deframer.push(chunk, (message) => {
      const result = answer(message, true);
      checkAnswer(message, true, result.answered, result.replies);
      replies.push(...result.replies);
      return result.answered;
    });
    if (!more) return { replies, closed: true };
  }
  return { replies, closed: false };
}

/** Chunk sizes from 1 to 64 bytes, drawn from a small LCG seeded by the data itself, so a failure replays. */
function unevenChunks(data: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  let state = data.length * 2654435761 + (data[0] ?? 0);
  for (let offset = 0; offset < data.length; ) {
    state = (state * 1103515245 + 12345) >>> 0;
    const size = 1 + (state >>> 16) % 64;
    chunks.push(data.subarray(offset, offset + size));
    offset += size;
  }
  return chunks;
}

/** The reference walk: how many messages the stream holds before one that is dropped, and whether one is. */
function walk(data: Buffer, dropped: (message: Buffer) => boolean): { messages: number; closed: boolean } {
  let messages = 0;
  for (let offset = 0; data.length - offset >= 2; ) {
    const length = data.readUInt16BE(offset);
    if (data.length - offset - 2 < length) break;
    messages++;
    if (dropped(data.subarray(offset + 2, offset + 2 + length))) return { messages, closed: true };
    offset += 2 + length;
  }
  return { messages, closed: false };
}

const same = (a: Run, b: Run): boolean => a.closed === b.closed && a.replies.length === b.replies.length && a.replies.every((reply, i) => reply.equals(b.replies[i]!));

export const target: FuzzTarget = {
  name: 'tcp-stream',
  check(data) {
    const whole = feed([data]);
    const reference = walk(data, (message) => message.length < 12 || (message[2]! & 0x80) !== 0);
    assert(whole.closed === reference.closed, `closed ${whole.closed}, the walk says ${reference.closed}`);
    assert(whole.replies.length === reference.messages - (reference.closed ? 1 : 0), `${whole.replies.length} replies for ${reference.messages} messages`);
    assert(same(whole, feed(unevenChunks(data))), 'uneven chunks give the same replies');
    if (data.length <= 2048) assert(same(whole, feed([...data].map((byte) => Buffer.of(byte)))), 'byte-by-byte gives the same replies');
  },
  // Several framed queries on one connection, the last one sometimes cut short.
  generators: [fc.tuple(fc.array(dnsMessages(false), { minLength: 1, maxLength: 4 }), fc.integer({ min: 0, max: 20 })).map(([messages, cut]) => {
    const stream = Buffer.concat(messages.map(frameTcp));
    return cut < 14 ? stream : stream.subarray(0, stream.length - (cut - 13));
  })],
};
