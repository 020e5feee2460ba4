// The load client of the proxy benchmark (the backend is proxy-backend.mjs). One mode per run, one JSON line
// of results on stdout. Every mode is bounded in time: a run that cannot finish by its deadline reports what
// it has and exits non-zero.
//
//   bulk     --mode down|up --bytes N         one connection moves N bytes; {mbps, seconds}
//   connect  --seconds S --concurrency C      new connection, 32-byte echo, close, again; {cps, errors}
//   latency  --seconds S --rate R --connections K
//            R requests/s of 64-byte echoes spread over K kept-open connections, sent on a fixed schedule; a
//            request due while every connection is busy is skipped and counted; {p50_ms, p99_ms, p999_ms, sent, skipped}
//
//   node bench/proxy-load.mjs --target 127.0.40.1:9000 --mode connect --seconds 5 --concurrency 16
import { connect } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    mode: { type: 'string' },
    bytes: { type: 'string', default: String(1e9) },
    seconds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '16' },
    rate: { type: 'string', default: '1000' },
    connections: { type: 'string', default: '8' },
  },
});
const [host, portText] = (values.target ?? '').split(/:(?=\d+$)/);
const port = Number(portText);
if (!host || !Number.isInteger(port)) {
  console.error('usage: node bench/proxy-load.mjs --target HOST:PORT --mode down|up|connect|latency [...]');
  process.exit(2);
}
const seconds = Number(values.seconds);
const deadline = Date.now() + Math.max(seconds, 1) * 1000 + 60_000;
setTimeout(() => {
  console.error(`proxy-load: ${values.mode} did not finish in time`);
  process.exit(1);
}, deadline - Date.now()).unref();

const open = () => new Promise((resolve, reject) => {
  const socket = connect({ host, port, noDelay: true, allowHalfOpen: true });
  socket.once('connect', () => {
    socket.off('error', reject);
    resolve(socket);
  });
  socket.once('error', reject);
});

/** Resolves with the next `length` bytes the socket receives (it must not be in flowing mode elsewhere). */
const receive = (socket, length) => new Promise((resolve, reject) => {
  const chunks = [];
  let got = 0;
  const onData = (chunk) => {
    chunks.push(chunk);
    got += chunk.length;
    if (got < length) return;
    socket.off('data', onData).off('error', reject).off('end', early);
    resolve(Buffer.concat(chunks));
  };
  const early = () => reject(new Error(`connection ended after ${got} of ${length} bytes`));
  socket.on('data', onData).once('error', reject).once('end', early);
});

async function bulk(direction, bytes) {
  const socket = await open();
  const started = process.hrtime.bigint();
  if (direction === 'down') {
    const header = Buffer.alloc(9);
    header.write('D');
    header.writeBigUInt64BE(BigInt(bytes), 1);
    socket.write(header);
    let got = 0;
    socket.on('data', (chunk) => (got += chunk.length));
    await new Promise((resolve, reject) => socket.once('end', resolve).once('error', reject));
    if (got !== bytes) throw new Error(`received ${got} of ${bytes} bytes`);
  } else {
    socket.write('U');
    const block = Buffer.alloc(1 << 20, 'upload ');
    for (let left = bytes; left > 0; left -= block.length) {
      if (!socket.write(left >= block.length ? block : block.subarray(0, left))) await new Promise((resolve) => socket.once('drain', resolve));
    }
    socket.end();
    const count = Number((await receive(socket, 8)).readBigUInt64BE());
    if (count !== bytes) throw new Error(`backend counted ${count} of ${bytes} bytes`);
  }
  const secondsTaken = Number(process.hrtime.bigint() - started) / 1e9;
  socket.destroy();
  return { mode: `bulk-${direction}`, bytes, seconds: secondsTaken, mbps: bytes / secondsTaken / 1e6 };
}

async function connectRate(seconds, concurrency) {
  const request = Buffer.alloc(33, 'r');
  request.write('E');
  const stopAt = Date.now() + seconds * 1000;
  let done = 0;
  let errors = 0;
  const worker = async () => {
    while (Date.now() < stopAt) {
      try {
        const socket = await open();
        socket.write(request);
        await receive(socket, 32);
        socket.end();
        socket.destroy();
        done++;
      } catch {
        errors++;
      }
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { mode: 'connect', concurrency, connections: done, errors, cps: done / ((Date.now() - started) / 1000) };
}

async function latency(seconds, rate, count) {
  const sockets = await Promise.all(Array.from({ length: count }, () => open()));
  for (const socket of sockets) socket.write('E');
  const idle = [...sockets];
  const samples = [];
  const payload = Buffer.alloc(64, 'q');
  let skipped = 0;
  const total = Math.round(seconds * rate);
  const one = async (socket) => {
    const reply = receive(socket, payload.length);
    const sent = process.hrtime.bigint();
    socket.write(payload);
    await reply;
    samples.push(Number(process.hrtime.bigint() - sent) / 1e6);
    idle.push(socket);
  };
  // Requests go out on a fixed schedule, on a ~1 ms timer (the client shares its core with the backend, so it
  // must not spin); each is timed from its own write to its reply.
  const inFlight = [];
  const started = Date.now();
  for (let sent = 0; sent < total; ) {
    const due = Math.min(total, Math.floor(((Date.now() - started) * rate) / 1000));
    for (; sent < due; sent++) {
      const socket = idle.pop();
      if (socket === undefined) skipped++;
      else inFlight.push(one(socket));
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(inFlight);
  for (const socket of sockets) socket.destroy();
  samples.sort((a, b) => a - b);
  const at = (q) => samples[Math.min(samples.length - 1, Math.ceil(q * samples.length) - 1)];
  return { mode: 'latency', rate, sent: samples.length, skipped, p50_ms: at(0.5), p99_ms: at(0.99), p999_ms: at(0.999) };
}

let result;
switch (values.mode) {
  case 'down':
  case 'up':
    result = await bulk(values.mode, Number(values.bytes));
    break;
  case 'connect':
    result = await connectRate(seconds, Number(values.concurrency));
    break;
  case 'latency':
    result = await latency(seconds, Number(values.rate), Number(values.connections));
    break;
  default:
    console.error(`proxy-load: unknown --mode ${values.mode}`);
    process.exit(2);
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
