/**
 * IP address helpers shared by every part: canonical text, bytes for A/AAAA, the dashed form used in
 * endpoint and pod names, and reverse (PTR) names. Pure functions; no DNS wire format, no Kubernetes.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type IpFamily = 4 | 6;

/** An IP address and a port: a listen address, an upstream, a nameserver, a proxy target. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** `10.0.0.1:53`, or `[fd00::1]:53` for IPv6: how addresses are written in flags, logs and messages. */
export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function ipFamily(text: string): IpFamily | undefined {
  if (isIPv4(text)) return 4;
  if (isIPv6(text)) return 6;
  return undefined;
}

/** The 16 bytes of an IPv6 address (any valid text form, including embedded IPv4). */
export function ipv6Bytes(text: string): Buffer {
  const out = Buffer.alloc(16);
  let head = text;
  let tailV4: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) !== -1) {
    tailV4 = text.slice(lastColon + 1).split('.').map(Number);
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const [left = '', right] = head.split('::');
  const leftGroups = left === '' ? [] : left.split(':');
  const rightGroups = right === undefined || right === '' ? [] : right.split(':');
  const groups = right === undefined
    ? leftGroups
    : [...leftGroups, ...new Array<string>(8 - leftGroups.length - rightGroups.length).fill('0'), ...rightGroups];
  groups.forEach((group, i) => out.writeUInt16BE(parseInt(group, 16), i * 2));
  if (tailV4.length === 4) tailV4.forEach((octet, i) => (out[12 + i] = octet));
  return out;
}

export function ipBytes(text: string): Buffer {
  if (isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  return ipv6Bytes(text);
}

/** RFC 5952 text form, so one address has one key whatever way a manifest spelled it. */
export function canonicalIp(text: string): string | undefined {
  if (isIPv4(text)) return text.split('.').map(Number).join('.');
  if (!isIPv6(text)) return undefined;
  const bytes = ipv6Bytes(text);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  // Longest run of two or more zero groups becomes '::' (first one on a tie).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** `10.244.1.5` → `10-244-1-5`; `fd00::1` → `fd00--1` (CoreDNS's endpoint and pod names). */
export function dashedIp(canonical: string): string {
  return canonical.replace(/[.:]/g, '-');
}

/**
 * The address a dashed pod label stands for, or undefined when it is not one.
 * IPv4 needs exactly four decimal parts; anything else is tried as IPv6 with '-' for ':'.
 */
export function undashIp(label: string): string | undefined {
  const v4 = label.replace(/-/g, '.');
  if (isIPv4(v4)) return canonicalIp(v4);
  if (/^[0-9a-f-]+$/i.test(label) && label.includes('-')) return canonicalIp(label.replace(/-/g, ':'));
  return undefined;
}

/** `10.96.0.10` → `10.0.96.10.in-addr.arpa`; IPv6 → 32 reversed nibbles under `ip6.arpa`. */
export function reverseName(canonical: string): string {
  if (isIPv4(canonical)) return `${canonical.split('.').reverse().join('.')}.in-addr.arpa`;
  const hex = ipv6Bytes(canonical).toString('hex');
  return `${hex.split('').reverse().join('.')}.ip6.arpa`;
}

/** An IPv4 address as an unsigned 32-bit number (for ranges); the address must be valid IPv4 text. */
export function ipv4ToNumber(text: string): number {
  return text.split('.').reduce((value, octet) => value * 256 + Number(octet), 0);
}

export function numberToIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 255).join('.');
}
