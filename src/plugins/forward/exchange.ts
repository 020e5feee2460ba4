/**
 * One question to one upstream and its answer: UDP from a fresh socket (so a random source port, RFC 5452 §9.2)
 * with a random ID, and over TCP when the UDP answer is truncated (or over TCP only: `force_tcp`). The socket is
 * connected to the upstream, as CoreDNS's are: the kernel then delivers only the upstream's datagrams, and an ICMP port unreachable (nothing
 * listens there: a dead node-local cache or stub-domain server) comes back as ECONNREFUSED, so the try fails at
 * once instead of waiting out its timeout. A datagram is accepted only when it parses, is a response, and carries
 * our ID and our question; anything else is ignored and the wait goes on, so a spoofed or garbled packet cannot
 * end the exchange.
 *
 * A failed exchange's message is Go's net error text, what CoreDNS's forward returns and its errors plugin logs
 * (`read udp 10.0.0.5:41234->10.0.0.2:53: i/o timeout`, `...: read: connection refused`): Corefiles match those
 * texts with `errors { consolidate 5m ".* i/o timeout$" }`.
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { canonicalIp, formatHostPort as describe, type HostPort } from '../../ip.js';
import { decodeMessage, encodeQuery, HeaderFlag, MAX_UDP_PAYLOAD, MessageError, tcpExchange, type Message } from '../../wire/index.js';

export interface UpstreamAddress extends HostPort {
  /** DNS over TLS (`tls://`), with this SNI name when given one of its own (`tls://IP%NAME`). */
  readonly tls?: { readonly servername?: string };
}

/** How errors, logs and metrics name an upstream: `10.0.0.2:53`, or `tls://1.1.1.1:853`. */
export function describeUpstream(upstream: UpstreamAddress): string {
  return upstream.tls === undefined ? describe(upstream) : `tls://${describe(upstream)}`;
}

export interface Question {
  readonly key: string;
  readonly qtype: number;
  readonly qclass: number;
  readonly dnssecOk: boolean;
  readonly checkingDisabled: boolean;
}

export class ExchangeError extends Error {
  /** `code`: the socket error's code (`ECONNREFUSED`...) of a network failure, the TLS error's of a failed handshake. */
  constructor(readonly reason: 'timeout' | 'network' | 'malformed' | 'tls', message: string, readonly code?: string) {
    super(message);
  }
}

/** Go's text for the errno codes an exchange meets (syscall.Errno's strings); Node's own message otherwise. */
const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network is unreachable',
  EADDRNOTAVAIL: 'cannot assign requested address',
  EPIPE: 'broken pipe',
};

function errnoText(error: NodeJS.ErrnoException): string {
  return (error.code !== undefined ? ERRNO_TEXT[error.code] : undefined) ?? error.message;
}

/** Go's `op net local->remote` prefix of a net.OpError (without the local side when there is none yet). */
function opPrefix(op: string, net: string, local: string | undefined, remote: string): string {
  return `${op} ${net} ${local === undefined ? '' : `${local}->`}${remote}`;
}

/** How questions go to an upstream: UDP first (TCP when truncated), or TCP only (`force_tcp`). */
export type Transport = 'udp' | 'tcp';

export function exchange(upstream: UpstreamAddress, question: Question, timeoutMs: number, transport: Transport = 'udp'): Promise<Message> {
  const id = randomInt(0x10000);
  const query = encodeQuery({ id, ...question }, MAX_UDP_PAYLOAD);
  return transport === 'tcp' ? exchangeTcp(upstream, query, id, question, timeoutMs) : exchangeUdp(upstream, query, id, question, timeoutMs);
}

function exchangeUdp(upstream: UpstreamAddress, query: Buffer, id: number, question: Question, timeoutMs: number): Promise<Message> {
  const started = Date.now();
  const host = canonicalIp(upstream.host) ?? upstream.host;
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  // Undefined: the answer was truncated.
  return new Promise<Message | undefined>((resolve, reject) => {
    let settled = false;
    // Once only: a timeout can come while connect() is still under way, and its callback after the close.
    const done = (error: Error | undefined, message?: Message): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners('message');
      socket.close();
      if (error !== undefined) reject(error);
      else resolve(message);
    };
    const remote = describe(upstream);
    // The socket's own address once connected (the `local->` of Go's texts).
    let local: string | undefined;
    const timer = setTimeout(() => done(new ExchangeError('timeout', `${opPrefix(local === undefined ? 'dial' : 'read', 'udp', local, remote)}: i/o timeout`)), timeoutMs);
    const failed = (error: NodeJS.ErrnoException, op = 'read'): void =>
      done(new ExchangeError('network', `${opPrefix(op, 'udp', local, remote)}: ${local === undefined ? '' : `${op}: `}${errnoText(error)}`, error.code));
    // A refusal (ECONNREFUSED) arrives here, from the receive that follows the ICMP error.
    socket.on('error', (error) => failed(error));
    socket.on('message', (packet) => {
      const message = accept(packet, id, question);
      if (message === undefined) return;
      // Truncated: the whole answer comes over TCP, in what is left of this try's time.
      done(undefined, (message.flags & HeaderFlag.TC) !== 0 ? undefined : message);
    });
    socket.connect(upstream.port, host, (error?: Error) => {
      if (error) return failed(error, 'dial');
      const address = socket.address();
      local = describe({ host: address.address, port: address.port });
      socket.send(query, (sendError) => sendError && failed(sendError, 'write'));
    });
  }).then((message) => message ?? exchangeTcp(upstream, query, id, question, Math.max(1, timeoutMs - (Date.now() - started))));
}

async function exchangeTcp(upstream: UpstreamAddress, query: Buffer, id: number, question: Question, timeoutMs: number): Promise<Message> {
  const outcome = await tcpExchange(upstream, query, timeoutMs);
  // tcpExchange does not say which local port it had: Go's texts without their `local->`.
  if (outcome.kind === 'timeout') throw new ExchangeError('timeout', `read tcp ${describe(upstream)}: i/o timeout`);
  if (outcome.kind === 'error') {
    const text = ERRNO_TEXT[outcome.code] ?? outcome.detail;
    throw new ExchangeError('network', outcome.code === 'ECONNREFUSED' ? `dial tcp ${describe(upstream)}: connect: ${text}` : `read tcp ${describe(upstream)}: ${text}`, outcome.code);
  }
  const message = accept(outcome.message, id, question);
  if (message === undefined) throw new ExchangeError('malformed', `${describe(upstream)} answered over TCP with a message that does not match the question`);
  return message;
}

/** The decoded reply when it answers our question, else undefined. */
export function accept(packet: Buffer, id: number, question: Question): Message | undefined {
  let message: Message;
  try {
    // A truncated reply may end inside a record: only its header and question matter, the rest comes over TCP.
    const truncated = packet.length >= 12 && (packet.readUInt16BE(2) & HeaderFlag.TC) !== 0;
    message = decodeMessage(truncated ? withoutRecords(packet) : packet);
  } catch (error) {
    if (error instanceof MessageError) return undefined;
    throw error;
  }
  const asked = message.question;
  if (message.id !== id || (message.flags & HeaderFlag.QR) === 0 || asked === undefined) return undefined;
  if (asked.key !== question.key || asked.qtype !== question.qtype || asked.qclass !== question.qclass) return undefined;
  return message;
}

function withoutRecords(packet: Buffer): Buffer {
  const copy = Buffer.from(packet);
  copy.fill(0, 6, 12);
  let end = 12;
  if (copy.readUInt16BE(4) === 1) {
    while (end < copy.length && copy[end] !== 0) end += copy[end]! + 1;
    end += 5;
  }
  return copy.subarray(0, Math.min(end, copy.length));
}
