/**
 * The client side of the wire, for `clusterdns resolve` (never the query path): sends questions the way a stub
 * resolver does (RD set, no EDNS, over UDP, the whole exchange over TCP when a reply comes back truncated) and
 * reads the replies into plain data with dig-style record lines. Encoding and decoding are dns2's; the
 * transport is our own because a stub resolver needs what dns2's clients do not give: several questions on one
 * socket at once (as glibc sends A and AAAA), ICMP port-unreachable seen as such (a connected socket), and a
 * timeout on TCP too.
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import dns2 from 'dns2';
import type { HostPort } from '../ip.js';
import { typeName } from './constants.js';
import { tcpExchange } from './tcp.js';

const { Packet } = dns2;

export type Endpoint = HostPort;

export interface Question {
  /** As typed, with or without the trailing dot. */
  readonly name: string;
  readonly type: number;
}

export interface Reply {
  readonly rcode: number;
  readonly authoritative: boolean;
  readonly recursionAvailable: boolean;
  readonly truncated: boolean;
  readonly answerCount: number;
  readonly additionalCount: number;
  /** The answer section as dig prints it: `name. ttl IN TYPE data`. */
  readonly answers: readonly string[];
  /** The A and AAAA data of the answer section. */
  readonly addresses: readonly string[];
  readonly overTcp: boolean;
}

/** What came of one question: a reply, nothing within the time, or an error from the network (ECONNREFUSED...). */
export type Outcome =
  | { readonly kind: 'reply'; readonly reply: Reply }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'error'; readonly code: string };

const TIMEOUT: Outcome = Object.freeze({ kind: 'timeout' });

/**
 * Asks `server` every question at once over one UDP socket (or one after the other with `sequential`, as glibc's
 * single-request option does), waiting at most `timeoutMs` in all; a truncated reply is asked again over TCP.
 */
export async function exchange(server: Endpoint, questions: readonly Question[], timeoutMs: number, sequential = false): Promise<Outcome[]> {
  if (sequential) {
    const outcomes: Outcome[] = [];
    for (const question of questions) outcomes.push(...(await exchangeUdp(server, [question], timeoutMs)));
    return outcomes;
  }
  return exchangeUdp(server, questions, timeoutMs);
}

async function exchangeUdp(server: Endpoint, questions: readonly Question[], timeoutMs: number): Promise<Outcome[]> {
  const queries = questions.map((question) => encodeQuery(question));
  const outcomes: Array<Outcome | undefined> = questions.map(() => undefined);
  const socket = createSocket(isIPv6(server.host.split('%')[0]!) ? 'udp6' : 'udp4');
  await new Promise<void>((resolve) => {
    const finish = (): void => {
      clearTimeout(timer);
      socket.removeAllListeners('message');
      resolve();
    };
    const timer = setTimeout(finish, timeoutMs);
    const settle = (index: number, outcome: Outcome): void => {
      outcomes[index] ??= outcome;
      if (outcomes.every((done) => done !== undefined)) finish();
    };
    socket.on('message', (message: Buffer) => {
      const index = queries.findIndex((query, i) => outcomes[i] === undefined && answers(query, message));
      if (index >= 0) settle(index, { kind: 'reply', reply: decodeReply(message, false) });
    });
    // On a connected socket an ICMP port unreachable comes back as ECONNREFUSED: no server there.
    socket.on('error', (error: NodeJS.ErrnoException) => {
      outcomes.forEach((outcome, i) => outcome === undefined && settle(i, { kind: 'error', code: error.code ?? error.message }));
    });
    socket.connect(server.port, server.host, () => {
      for (const query of queries) socket.send(query.bytes);
    });
  });
  socket.close();
  return Promise.all(outcomes.map(async (outcome, i) => {
    if (outcome?.kind === 'reply' && outcome.reply.truncated) return exchangeTcp(server, queries[i]!.bytes, timeoutMs);
    return outcome ?? TIMEOUT;
  }));
}

/** One question over TCP, bounded by `timeoutMs`. */
async function exchangeTcp(server: Endpoint, query: Buffer, timeoutMs: number): Promise<Outcome> {
  const outcome = await tcpExchange(server, query, timeoutMs);
  if (outcome.kind === 'reply') return { kind: 'reply', reply: decodeReply(outcome.message, true) };
  return outcome.kind === 'timeout' ? TIMEOUT : { kind: 'error', code: outcome.code };
}

interface EncodedQuery {
  readonly id: number;
  readonly question: Question;
  readonly bytes: Buffer;
}

function encodeQuery(question: Question): EncodedQuery {
  const packet = new Packet();
  packet.header.id = randomInt(0x10000);
  packet.header.rd = 1;
  packet.questions.push({ name: question.name.replace(/\.$/, ''), type: question.type, class: Packet.CLASS.IN } as dns2.Packet.Question);
  return { id: packet.header.id, question, bytes: packet.toBuffer() };
}

/** A reply to `query`: same id and the same question (names compared without case), as res_send checks. */
function answers(query: EncodedQuery, message: Buffer): boolean {
  if (message.length < 12 || message.readUInt16BE(0) !== query.id || (message[2]! & 0x80) === 0) return false;
  try {
    const question = Packet.parse(message).questions[0];
    return question !== undefined && question.type === query.question.type
      && question.name.toLowerCase() === query.question.name.replace(/\.$/, '').toLowerCase();
  } catch {
    return false;
  }
}

function decodeReply(message: Buffer, overTcp: boolean): Reply {
  const packet = Packet.parse(message);
  const answerRecords = packet.answers;
  return {
    rcode: packet.header.rcode,
    authoritative: packet.header.aa === 1,
    recursionAvailable: packet.header.ra === 1,
    truncated: packet.header.tc === 1,
    answerCount: message.readUInt16BE(6),
    additionalCount: message.readUInt16BE(10),
    answers: answerRecords.map(formatRecord),
    addresses: answerRecords.filter((record) => record.address !== undefined && (record.type === 1 || record.type === 28)).map((record) => record.address!),
    overTcp,
  };
}

/** One record as a dig answer line. */
export function formatRecord(record: dns2.Packet.Resource): string {
  const owner = `${record.name}.`;
  const type = typeName(record.type);
  let data: string;
  switch (type) {
    case 'A':
    case 'AAAA':
      data = record.address ?? '';
      break;
    case 'CNAME':
    case 'PTR':
      data = `${record.domain ?? ''}.`;
      break;
    case 'NS':
      data = `${record.ns ?? ''}.`;
      break;
    case 'SRV':
      data = `${record.priority} ${record.weight} ${record.port} ${record.target ?? ''}.`;
      break;
    case 'TXT':
      data = [record.data ?? ''].flat().map((text) => JSON.stringify(text)).join(' ');
      break;
    case 'SOA':
      data = `${record.primary}. ${record.admin}. ${record.serial} ${record.refresh} ${record.retry} ${record.expiration} ${record.minimum}`;
      break;
    default:
      data = '\\# (not shown)';
  }
  return `${owner} ${record.ttl} IN ${type} ${data}`;
}
