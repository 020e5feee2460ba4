/**
 * One question to one upstream and its answer: UDP from a fresh socket (so a random source port, RFC 5452 §9.2)
 * with a random ID, and over TCP when the UDP answer is truncated. A datagram is accepted only when it comes from
 * the upstream's address and port, parses, is a response, and carries our ID and our question; anything else
 * is ignored (counted) and the wait goes on, so a spoofed or garbled packet cannot end the exchange.
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { canonicalIp } from '../../ip.js';
import { decodeMessage, encodeQuery, MAX_UDP_PAYLOAD, MessageError, type Message } from '../../wire/index.js';

export interface UpstreamAddress {
  readonly host: string;
  readonly port: number;
}

export interface Question {
  readonly key: string;
  readonly qtype: number;
  readonly qclass: number;
  readonly dnssecOk: boolean;
  readonly checkingDisabled: boolean;
}

export class ExchangeError extends Error {
  constructor(readonly reason: 'timeout' | 'network' | 'malformed', message: string) {
    super(message);
  }
}

export interface ExchangeResult {
  readonly message: Message;
  /** Datagrams ignored on the way: wrong source, ID or question, or unparseable. */
  readonly ignored: number;
}

export function exchange(upstream: UpstreamAddress, question: Question, timeoutMs: number): Promise<ExchangeResult> {
  const id = randomInt(0x10000);
  const query = encodeQuery({ id, ...question }, MAX_UDP_PAYLOAD);
  return exchangeUdp(upstream, query, id, question, timeoutMs);
}

function exchangeUdp(upstream: UpstreamAddress, query: Buffer, id: number, question: Question, timeoutMs: number): Promise<ExchangeResult> {
  const started = Date.now();
  const host = canonicalIp(upstream.host) ?? upstream.host;
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  let ignored = 0;
  return new Promise<ExchangeResult>((resolve, reject) => {
    const done = (error: Error | undefined, result?: ExchangeResult): void => {
      clearTimeout(timer);
      socket.removeAllListeners('message');
      socket.close();
      if (error !== undefined) reject(error);
      else resolve(result!);
    };
    const timer = setTimeout(() => done(new ExchangeError('timeout', `no answer from ${describe(upstream)} in ${timeoutMs} ms`)), timeoutMs);
    socket.on('error', (error) => done(new ExchangeError('network', `${describe(upstream)}: ${error.message}`)));
    socket.on('message', (packet, peer) => {
      if ((canonicalIp(peer.address) ?? peer.address) !== host || peer.port !== upstream.port) {
        ignored++;
        return;
      }
      const message = accept(packet, id, question);
      if (message === undefined) {
        ignored++;
        return;
      }
      if (message.flags & 0x0200) {
        // Truncated: the whole answer comes over TCP, in what is left of this try's time.
        const left = Math.max(1, timeoutMs - (Date.now() - started));
        clearTimeout(timer);
        socket.removeAllListeners('message');
        socket.close();
        exchangeTcp(upstream, query, id, question, left).then((result) => resolve({ ...result, ignored: result.ignored + ignored }), reject);
        return;
      }
      done(undefined, { message, ignored });
    });
    socket.send(query, upstream.port, host, (error) => {
      if (error) done(new ExchangeError('network', `${describe(upstream)}: ${error.message}`));
    });
  });
}

function exchangeTcp(upstream: UpstreamAddress, query: Buffer, id: number, question: Question, timeoutMs: number): Promise<ExchangeResult> {
  return new Promise<ExchangeResult>((resolve, reject) => {
    const socket = connect({ host: upstream.host, port: upstream.port, noDelay: true });
    let received = Buffer.alloc(0);
    const done = (error: Error | undefined, result?: ExchangeResult): void => {
      clearTimeout(timer);
      socket.destroy();
      if (error !== undefined) reject(error);
      else resolve(result!);
    };
    const timer = setTimeout(() => done(new ExchangeError('timeout', `no TCP answer from ${describe(upstream)} in ${timeoutMs} ms`)), timeoutMs);
    socket.on('error', (error) => done(new ExchangeError('network', `${describe(upstream)} over TCP: ${error.message}`)));
    socket.on('connect', () => {
      const framed = Buffer.allocUnsafe(query.length + 2);
      framed.writeUInt16BE(query.length, 0);
      query.copy(framed, 2);
      socket.write(framed);
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 2 || received.length < 2 + received.readUInt16BE(0)) return;
      const message = accept(received.subarray(2, 2 + received.readUInt16BE(0)), id, question);
      if (message === undefined) done(new ExchangeError('malformed', `${describe(upstream)} answered over TCP with a message that does not match the question`));
      else done(undefined, { message, ignored: 0 });
    });
    socket.on('end', () => done(new ExchangeError('network', `${describe(upstream)} closed the TCP connection before answering`)));
  });
}

/** The decoded reply when it answers our question, else undefined. */
function accept(packet: Buffer, id: number, question: Question): Message | undefined {
  let message: Message;
  try {
    // A truncated reply may end inside a record: only its header and question matter, the rest comes over TCP.
    const truncated = packet.length >= 12 && (packet.readUInt16BE(2) & 0x0200) !== 0;
    message = decodeMessage(truncated ? withoutRecords(packet) : packet);
  } catch (error) {
    if (error instanceof MessageError) return undefined;
    throw error;
  }
  const asked = message.question;
  if (message.id !== id || (message.flags & 0x8000) === 0 || asked === undefined) return undefined;
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

export function describe(upstream: UpstreamAddress): string {
  return upstream.host.includes(':') ? `[${upstream.host}]:${upstream.port}` : `${upstream.host}:${upstream.port}`;
}
