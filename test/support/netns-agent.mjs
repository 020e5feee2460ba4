// @ts-check
// A helper process that a test starts inside a network namespace (`ip netns exec NS node netns-agent.mjs`),
// to be a backend or a client there. It reads one JSON request per line on stdin and answers one JSON line per
// request on stdout: {id, result} or {id, error}. Plain JavaScript, so it runs without a build. Every wait
// inside has a deadline; the test stops the process by its PID.
//
// Backend ops
//   serve {host, port, name}      on connect write "<name>\n", then echo; on the client's FIN write
//                                 "bye <bytes echoed>\n" and end (so half-close can be seen from the client)
//   closes -> ['fin' | <error code>]   how the connections of `serve` ended since the last call
//   serveStall {host, port, ms}   accept and read nothing for ms, then read everything
//   serveFlood {host, port}       send as fast as the connection takes it, until it closes
//   serveReset {host, port}       reset every connection at once
//   serveBulk {host, port, bytes} send `bytes` random bytes; once they are sent and the client's FIN has come,
//                                 send sha256(sent) and sha256(received) (32 bytes each) and end
// Client ops
//   connect {host, port, count, concurrency, localAddress?}      connections that read the first line and
//                                 close: [{name, startedAt} | {error, ms, startedAt}] in order of completion
//   connectFor {host, port, ms, concurrency}                     the same, for a duration
//   hold {host, port, count, localAddress?} -> [{id, name}]      connections kept open
//   ping {ids} -> ['ok' | 'closed' | <error code>]              "ping\n" each way on held connections
//   release {ids}
//   halfClose {host, port, payload} -> {received, ms}            write, FIN, read to the end
//   reset {host, port}                                           read the first line, then reset
//   push {host, port, ms} -> bytes the socket flushed            write as fast as it drains for ms, then reset
//   stall {host, port, ms}                                       connect and read nothing for ms
//   bulk {host, port, bytes} -> {ok, detail}                      byte-exact transfer both ways at once
//   http {url} -> text
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { createInterface } from 'node:readline';

/** @typedef {import('node:net').Socket} Socket */
/** @typedef {{ host: string, port: number }} Endpoint */
/** @typedef {Endpoint & { localAddress?: string }} Target */
/** @typedef {{ name: string, startedAt: number } | { error: string, ms: number, startedAt: number }} Outcome */
/** @typedef {{ socket: Socket, closed: boolean, error: string | undefined, text: string }} Held */

const DEADLINE_MS = 60_000;
/** @type {Map<number, Held>} */
const held = new Map();
let nextId = 0;
/** @type {string[]} */
let closes = [];

/**
 * @template T
 * @param {Promise<T>} promise
 * @param {string} what
 * @returns {Promise<T>}
 */
function withDeadline(promise, what, ms = DEADLINE_MS) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    /** @type {Promise<never>} */ (new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no outcome within ${ms} ms`)), ms)))),
  ]);
}

/**
 * @param {string} host
 * @param {number} port
 * @param {(socket: Socket) => void} onConnection
 * @returns {Promise<void>}
 */
function listen(host, port, onConnection) {
  return new Promise((resolve, reject) => {
    const server = createServer({ allowHalfOpen: true }, onConnection);
    server.once('error', reject);
    server.listen({ host, port, backlog: 2048 }, () => resolve());
  });
}

/**
 * @param {Target} target
 * @returns {Promise<Socket>}
 */
function open({ host, port, localAddress }) {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, allowHalfOpen: true, ...(localAddress && { localAddress }) });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/**
 * The first line the socket receives (the backend's name); rejects with the error code or 'closed'.
 * @param {Socket} socket
 * @returns {Promise<string>}
 */
function firstLine(socket) {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (/** @type {string} */ chunk) => {
      text += chunk;
      const end = text.indexOf('\n');
      if (end < 0) return;
      socket.off('data', onData).off('error', onError).off('end', onEnd);
      resolve(text.slice(0, end));
    };
    const onError = (/** @type {NodeJS.ErrnoException} */ error) => reject(new Error(error.code ?? error.message));
    const onEnd = () => reject(new Error('closed'));
    socket.setEncoding('utf8').on('data', onData).once('error', onError).once('end', onEnd);
  });
}

/**
 * @param {Target} target
 * @returns {Promise<Outcome>}
 */
async function oneConnection(target) {
  const startedAt = Date.now();
  try {
    const socket = await open(target);
    const name = await firstLine(socket);
    socket.destroy();
    return { name, startedAt };
  } catch (error) {
    return { error: (/** @type {NodeJS.ErrnoException} */ (error)).code ?? (/** @type {NodeJS.ErrnoException} */ (error)).message, ms: Date.now() - startedAt, startedAt };
  }
}

/**
 * @param {Target} target
 * @param {number} concurrency
 * @param {(done: number) => boolean} more
 */
async function runConnections(target, concurrency, more) {
  /** @type {Outcome[]} */
  const outcomes = [];
  const worker = async () => {
    while (more(outcomes.length)) outcomes.push(await oneConnection(target));
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return outcomes;
}

const ops = {
  /** @param {Endpoint & { name: string }} request */
  async serve({ host, port, name }) {
    await listen(host, port, (socket) => {
      socket.on('error', (/** @type {NodeJS.ErrnoException} */ error) => {
        closes.push(error.code ?? error.message);
        socket.destroy();
      });
      socket.on('end', () => closes.push('fin'));
      let echoed = 0;
      socket.write(`${name}\n`);
      socket.on('data', (chunk) => {
        echoed += chunk.length;
        socket.write(chunk);
      });
      socket.on('end', () => socket.end(`bye ${echoed}\n`));
    });
    return 'listening';
  },

  /** @param {Endpoint & { bytes: number }} request */
  async serveBulk({ host, port, bytes }) {
    await listen(host, port, (socket) => {
      socket.on('error', () => socket.destroy());
      const sent = createHash('sha256');
      const received = createHash('sha256');
      let sending = true;
      let ended = false;
      const finish = () => {
        if (sending || !ended) return;
        socket.end(Buffer.concat([sent.digest(), received.digest()]));
      };
      socket.on('data', (chunk) => received.update(chunk));
      socket.on('end', () => {
        ended = true;
        finish();
      });
      let left = bytes;
      const more = () => {
        while (left > 0) {
          const chunk = randomBytes(Math.min(left, 1 << 20));
          left -= chunk.length;
          sent.update(chunk);
          if (!socket.write(chunk)) return void socket.once('drain', more);
        }
        sending = false;
        finish();
      };
      more();
    });
    return 'listening';
  },

  closes() {
    const seen = closes;
    closes = [];
    return seen;
  },

  /** @param {Endpoint & { ms: number }} request */
  async serveStall({ host, port, ms }) {
    await listen(host, port, (socket) => {
      socket.on('error', () => socket.destroy());
      socket.on('end', () => socket.end());
      socket.pause();
      setTimeout(() => socket.resume(), ms);
    });
    return 'listening';
  },

  /** @param {Endpoint} request */
  async serveFlood({ host, port }) {
    const block = Buffer.alloc(1 << 20, 'flood ');
    await listen(host, port, (socket) => {
      socket.on('error', () => socket.destroy());
      const more = () => {
        while (!socket.destroyed && socket.write(block));
        if (!socket.destroyed) socket.once('drain', more);
      };
      more();
    });
    return 'listening';
  },

  /** @param {Endpoint} request */
  async serveReset({ host, port }) {
    await listen(host, port, (socket) => {
      socket.on('error', () => undefined);
      socket.resetAndDestroy();
    });
    return 'listening';
  },

  /** @param {Target & { count: number, concurrency?: number }} request */
  connect({ host, port, count, concurrency = 1, localAddress }) {
    let started = 0;
    return runConnections({ host, port, localAddress }, concurrency, () => started++ < count);
  },

  /** @param {Endpoint & { ms: number, concurrency?: number }} request */
  connectFor({ host, port, ms, concurrency = 1 }) {
    const stopAt = Date.now() + ms;
    return runConnections({ host, port }, concurrency, () => Date.now() < stopAt);
  },

  /** @param {Target & { count: number }} request */
  async hold({ host, port, count, localAddress }) {
    const opened = [];
    for (let i = 0; i < count; i++) {
      const socket = await open({ host, port, localAddress });
      const name = await firstLine(socket);
      const id = nextId++;
      /** @type {Held} */
      const entry = { socket, closed: false, error: undefined, text: '' };
      socket.on('data', (chunk) => (entry.text += chunk));
      socket.on('error', (/** @type {NodeJS.ErrnoException} */ error) => (entry.error = error.code ?? error.message));
      // The proxy closing its side shows as 'end' here (this socket allows half-open, so no 'close' follows).
      socket.on('end', () => (entry.closed = true));
      socket.on('close', () => (entry.closed = true));
      held.set(id, entry);
      opened.push({ id, name });
    }
    return opened;
  },

  /** @param {{ ids: number[] }} request */
  async ping({ ids }) {
    return Promise.all(ids.map(async (id) => {
      const entry = /** @type {Held} */ (held.get(id));
      if (entry.error !== undefined) return entry.error;
      if (entry.closed) return 'closed';
      entry.text = '';
      entry.socket.write('ping\n');
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        if (entry.text === 'ping\n') return 'ok';
        if (entry.error !== undefined) return entry.error;
        if (entry.closed) return 'closed';
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return 'timeout';
    }));
  },

  /** @param {{ ids: number[] }} request */
  release({ ids }) {
    for (const id of ids) {
      held.get(id)?.socket.destroy();
      held.delete(id);
    }
    return ids.length;
  },

  /** @param {Endpoint & { payload: string }} request */
  async halfClose({ host, port, payload }) {
    const started = Date.now();
    const socket = await open({ host, port });
    socket.setEncoding('utf8');
    let received = '';
    socket.on('data', (chunk) => (received += chunk));
    const ended = new Promise((resolve, reject) => socket.once('end', resolve).once('error', reject));
    socket.end(payload);
    await withDeadline(ended, 'halfClose', 10_000);
    socket.destroy();
    return { received, ms: Date.now() - started };
  },

  /** @param {Endpoint} request */
  async reset({ host, port }) {
    const socket = await open({ host, port });
    const name = await firstLine(socket);
    socket.on('error', () => undefined);
    socket.resetAndDestroy();
    return name;
  },

  /** @param {Endpoint & { ms: number }} request */
  async push({ host, port, ms }) {
    const socket = await open({ host, port });
    socket.on('error', () => undefined);
    const block = Buffer.alloc(1 << 20, 'push ');
    const stopAt = Date.now() + ms;
    while (Date.now() < stopAt) {
      if (!socket.write(block)) await Promise.race([once(socket, 'drain'), new Promise((resolve) => setTimeout(resolve, stopAt - Date.now()))]);
    }
    const flushed = socket.bytesWritten - socket.writableLength;
    socket.resetAndDestroy();
    return flushed;
  },

  /** @param {Endpoint & { ms: number }} request */
  async stall({ host, port, ms }) {
    const socket = await open({ host, port });
    socket.on('error', () => undefined);
    socket.pause();
    await new Promise((resolve) => setTimeout(resolve, ms));
    socket.destroy();
    return 'done';
  },

  /** @param {Endpoint & { bytes: number }} request */
  async bulk({ host, port, bytes }) {
    const socket = await open({ host, port });
    const sent = createHash('sha256');
    const received = createHash('sha256');
    let count = 0;
    let tail = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      // The first `bytes` are data; the 64 after them are the backend's two digests.
      const dataPart = Math.max(0, Math.min(chunk.length, bytes - count));
      received.update(chunk.subarray(0, dataPart));
      tail = Buffer.concat([tail, chunk.subarray(dataPart)]);
      count += chunk.length;
    });
    const ended = new Promise((resolve, reject) => socket.once('end', resolve).once('error', reject));
    for (let left = bytes; left > 0; ) {
      const chunk = randomBytes(Math.min(left, 1 << 20));
      left -= chunk.length;
      sent.update(chunk);
      if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve));
    }
    socket.end();
    await withDeadline(ended, 'bulk transfer');
    socket.destroy();
    const ours = { sent: sent.digest('hex'), received: received.digest('hex') };
    const theirs = { sent: tail.subarray(0, 32).toString('hex'), received: tail.subarray(32).toString('hex') };
    const ok = count === bytes + 64 && ours.received === theirs.sent && ours.sent === theirs.received;
    return { ok, detail: { count, expected: bytes + 64, ours, theirs } };
  },

  /** @param {{ url: string }} request */
  async http({ url }) {
    const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return response.text();
  },
};

createInterface({ input: process.stdin }).on('line', (line) => {
  // `op` is taken to name one of `ops` (an unknown one makes the call throw, which is answered as an error).
  const { id, op, ...args } = /** @type {{ id: unknown, op: keyof typeof ops }} */ (JSON.parse(line));
  withDeadline(Promise.resolve().then(() => /** @type {Record<keyof typeof ops, (args: any) => unknown>} */ (ops)[op](args)), op)
    .then((result) => process.stdout.write(`${JSON.stringify({ id, result })}\n`))
    .catch((error) => process.stdout.write(`${JSON.stringify({ id, error: error.message })}\n`));
});
process.stdin.on('end', () => process.exit(0));
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
