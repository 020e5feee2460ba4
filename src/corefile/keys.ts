/**
 * Server block keys, `[dns://]ZONE[:PORT]`, normalised as CoreDNS does: the zone lower-case and absolute, a CIDR
 * turned into the reverse zones it covers. A prefix that does not fall on a label boundary (8 bits for IPv4, 4
 * for IPv6) is split into the zones that together cover exactly that network, as CoreDNS 1.8.4+ does:
 * `10.0.0.0/15` serves `0.10.in-addr.arpa.` and `1.10.in-addr.arpa.`.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { ipBytes } from '../ip.js';
import { corefileError, type CorefilePlace } from './errors.js';
import type { ServerKey } from './types.js';

/** Transports CoreDNS serves that clusterdns does not: named so the error says what to change. */
const OTHER_SCHEMES = ['tls', 'grpc', 'https', 'https3', 'quic'];

export function parseServerKey(text: string, at: CorefilePlace): ServerKey[] {
  const fail = (why: string): never => {
    throw corefileError(at, `server key "${text}": ${why}`);
  };
  let rest = text;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(rest);
  if (scheme) {
    const name = scheme[1]!.toLowerCase();
    if (name !== 'dns') {
      fail(OTHER_SCHEMES.includes(name) ? `${name}:// is not supported (clusterdns serves dns:// only)` : `unknown scheme ${name}://`);
    }
    rest = rest.slice(scheme[0].length);
  }

  let host = rest;
  let port: number | undefined;
  // An IPv6 CIDR has colons of its own; only a colon after the whole key parsed as a CIDR can start a port.
  if (cidrParts(rest) === undefined) {
    const colon = rest.lastIndexOf(':');
    if (colon >= 0) {
      const portText = rest.slice(colon + 1);
      if (!/^\d{1,5}$/.test(portText)) fail(portText === '' ? 'a port must follow the ":"' : `"${portText}" is not a port number`);
      port = Number(portText);
      if (port > 65535) fail(`port ${port} is out of range`);
      host = rest.slice(0, colon);
    }
  }

  if (host.includes('/')) {
    const cidr = cidrParts(host) ?? fail(`"${host}" is not a CIDR (ADDRESS/PREFIX)`);
    return reverseZones(cidr).map((zone) => ({ zone, port, text }));
  }
  return [{ zone: normaliseZone(host, fail), port, text }];
}

function normaliseZone(host: string, fail: (why: string) => never): string {
  if (host === '') fail('no zone before the port');
  if (host === '.') return '.';
  const name = host.toLowerCase().replace(/\.$/, '');
  const labels = name.split('.');
  if (labels.some((label) => label === '')) fail('empty label in the zone name');
  if (labels.some((label) => label.length > 63)) fail('a label of the zone name is longer than 63 characters');
  if (name.length + 1 > 255) fail('the zone name is longer than 255 characters');
  // Printable ASCII but ':' only, as every name the wire format writes (wire/names.ts): a control character or
  // a non-ASCII letter here would fail later, in a plugin's setup, without a line.
  if (/[^\x21-\x39\x3b-\x7e]/.test(name)) fail('not a zone name');
  return `${name}.`;
}

interface Cidr {
  readonly family: 4 | 6;
  readonly bytes: Buffer;
  readonly prefix: number;
}

function cidrParts(text: string): Cidr | undefined {
  const match = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (!match) return undefined;
  const address = match[1]!;
  const prefix = Number(match[2]);
  const family = isIPv4(address) ? 4 : isIPv6(address) ? 6 : undefined;
  if (family === undefined || prefix > (family === 4 ? 32 : 128)) return undefined;
  return { family, bytes: ipBytes(address), prefix };
}

/**
 * The reverse zones of a network, in address order. A reverse label is an octet (IPv4) or a nibble (IPv6); a
 * prefix that ends inside a label fixes that label's top bits, so the network is every value of the rest.
 */
function reverseZones({ family, bytes, prefix }: Cidr): string[] {
  const width = family === 4 ? 8 : 4;
  const digits = family === 4 ? [...bytes] : [...bytes].flatMap((byte) => [byte >> 4, byte & 15]);
  const whole = Math.floor(prefix / width);
  const spare = (width - (prefix % width)) % width;
  const suffix = family === 4 ? 'in-addr.arpa.' : 'ip6.arpa.';
  const format = (digit: number): string => digit.toString(family === 4 ? 10 : 16);
  const fixed = digits.slice(0, whole).map(format);
  if (spare === 0) return [[...fixed].reverse().concat(suffix).join('.')];
  const base = (digits[whole]! >> spare) << spare;
  const zones: string[] = [];
  for (let value = base; value < base + (1 << spare); value++) {
    zones.push([format(value), ...[...fixed].reverse(), suffix].join('.'));
  }
  return zones;
}
