/** DNS numbers used across clusterdns (RFC 1035, 2782, 3596, 6891). */
export const RRType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  HINFO: 13,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  ANY: 255,
} as const;

/** Classes: IN for everything but the server's own CHAOS TXT records (version.bind, hostname.bind...). */
export const RRClass = { IN: 1, CH: 3, ANY: 255 } as const;

export const Rcode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  /** Extended (RFC 6891): carried as 1 in the OPT record's upper rcode bits, 0 in the header. */
  BADVERS: 16,
} as const;

export const Opcode = { QUERY: 0 } as const;

/** Bits of the header's second 16-bit word (RFC 1035 §4.1.1, RFC 4035 §3.2). */
export const HeaderFlag = {
  /** A response. */
  QR: 0x8000,
  /** Authoritative answer. */
  AA: 0x0400,
  /** Truncated. */
  TC: 0x0200,
  /** Recursion desired. */
  RD: 0x0100,
  /** Recursion available. */
  RA: 0x0080,
  /** Checking disabled. */
  CD: 0x0010,
  /** What a reply copies from its query: the opcode, RD and CD. */
  ECHOED: 0x7910,
} as const;

/** Without EDNS, a UDP reply is at most 512 bytes (RFC 1035 §4.2.1). */
export const CLASSIC_UDP_SIZE = 512;
/**
 * The UDP payload size we advertise and the most we send, whatever larger size a client offers:
 * 1232 bytes fits a 1280-byte IPv6 minimum MTU without fragmentation (DNS Flag Day 2020; BIND, Unbound and
 * NSD default to it). Larger answers get TC and the client retries over TCP.
 */
export const MAX_UDP_PAYLOAD = 1232;
export const MAX_TCP_MESSAGE = 65535;

const typeNames = new Map<number, string>(Object.entries(RRType).map(([name, code]) => [code, name]));
export function typeName(code: number): string {
  return typeNames.get(code) ?? `TYPE${code}`;
}

const rcodeNames = new Map<number, string>(Object.entries(Rcode).map(([name, code]) => [code, name]));
export function rcodeName(code: number): string {
  return rcodeNames.get(code) ?? `RCODE${code}`;
}
