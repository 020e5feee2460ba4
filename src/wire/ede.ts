/**
 * Extended DNS Errors (RFC 8914): an EDNS option (code 15) holding a 16-bit INFO-CODE and a UTF-8 EXTRA-TEXT that
 * says why an answer is what it is. Owns the codes, encoding one option (done when an answer is prepared, never per
 * query), and finding the EDE options in another server's OPT record so they pass through. Where an option goes in
 * a reply, and when it is left out, is response.ts's.
 */
import { keptCopy } from './kept.js';

/** The option code of EDE in an OPT record (RFC 8914 §2). */
export const EDE_OPTION = 15;

/** INFO-CODEs clusterdns sends (RFC 8914 §4). */
export const EdeCode = {
  OTHER: 0,
  STALE_ANSWER: 3,
  NOT_READY: 14,
  STALE_NXDOMAIN_ANSWER: 19,
  NOT_AUTHORITATIVE: 20,
  NO_REACHABLE_AUTHORITY: 22,
  NETWORK_ERROR: 23,
} as const;

/**
 * EXTRA-TEXT is kept to this many bytes: RFC 8914 §2 leaves its length open, but it rides in replies that must
 * fit 512 or 1232 bytes, and a line a person reads in dig needs no more.
 */
export const MAX_EDE_TEXT = 96;

/** One EDE option (OPTION-CODE, OPTION-LENGTH, INFO-CODE, EXTRA-TEXT), the text cut to MAX_EDE_TEXT bytes. */
export function encodeEde(code: number, text: string): Buffer {
  const bytes = utf8Prefix(text, MAX_EDE_TEXT);
  // Kept (kept.ts): options are made when the store changes and live in the prepared answers.
  const option = Buffer.allocUnsafeSlow(6 + bytes.length);
  option.writeUInt16BE(EDE_OPTION, 0);
  option.writeUInt16BE(2 + bytes.length, 2);
  option.writeUInt16BE(code, 4);
  bytes.copy(option, 6);
  return option;
}

/**
 * Encoded options back to back, in order, skipping the absent ones: one kept buffer (kept.ts), since what it joins
 * goes into prepared answers; undefined when none is given. The first is the one a reply keeps when only one fits.
 */
export function joinEde(...options: ReadonlyArray<Buffer | undefined>): Buffer | undefined {
  const present = options.filter((option): option is Buffer => option !== undefined);
  return present.length <= 1 ? present[0] : keptCopy(...present);
}

/** Each EDE option of `options` (encoded options, back to back) as [INFO-CODE, EXTRA-TEXT]. */
export function decodeEde(options: Buffer): Array<readonly [number, string]> {
  const decoded: Array<readonly [number, string]> = [];
  for (let offset = 0; offset + 6 <= options.length; offset += 4 + options.readUInt16BE(offset + 2)) {
    const end = offset + 4 + options.readUInt16BE(offset + 2);
    decoded.push([options.readUInt16BE(offset + 4), options.toString('utf8', offset + 6, end)]);
  }
  return decoded;
}

/**
 * The first of `options` (encoded options, back to back) that fit in `room` bytes, whole: all of them, which is
 * `options` itself, or a prefix; undefined when not even the first fits.
 */
export function fittingOptions(options: Buffer, room: number): Buffer | undefined {
  if (options.length <= room) return options;
  let end = 0;
  while (end + 4 <= options.length) {
    const next = end + 4 + options.readUInt16BE(end + 2);
    if (next > room) break;
    end = next;
  }
  return end === 0 ? undefined : options.subarray(0, end);
}

/**
 * The EDE options of an OPT record's RDATA (`rdata` from `start` to `end`), copied back to back; undefined when
 * there are none. Options of any other code are per hop (cookies, padding, client subnet) and stay behind; an EDE
 * shorter than its INFO-CODE is malformed (RFC 8914 §2) and dropped.
 */
export function extractEde(rdata: Buffer, start: number, end: number): Buffer | undefined {
  let found: Buffer[] | undefined;
  for (let offset = start; offset + 4 <= end; ) {
    const code = rdata.readUInt16BE(offset);
    const length = rdata.readUInt16BE(offset + 2);
    const next = offset + 4 + length;
    if (next > end) break;
    if (code === EDE_OPTION && length >= 2) (found ??= []).push(rdata.subarray(offset, next));
    offset = next;
  }
  return found === undefined ? undefined : keptCopy(...found);
}

/** The longest prefix of `text` that is at most `limit` bytes of UTF-8, never cut inside a character. */
function utf8Prefix(text: string, limit: number): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= limit) return bytes;
  let end = limit;
  // A continuation byte (10xxxxxx) cannot start a character: step back to the start of the one it belongs to.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}
