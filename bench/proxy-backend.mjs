// The backend of the proxy benchmark: one TCP server per address given, all on one port, speaking a one-byte
// protocol the load client (proxy-load.mjs) chooses per connection:
//   'E'           echo everything that follows (request/response and connection-rate runs)
//   'D' <u64 BE>  send that many bytes, then end (bulk download)
//   'U'           read to the end, then answer the byte count as a u64 BE and end (bulk upload)
// Prints "ready" on stdout once every address listens. Stopped by its PID (SIGTERM) by bench/proxy.sh.
//
//   node bench/proxy-backend.mjs --port 9000 127.0.20.1 127.0.20.2
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ options: { port: { type: 'string' } }, allowPositionals: true });
const port = Number(values.port);
if (!Number.isInteger(port) || positionals.length === 0) {
  console.error('usage: node bench/proxy-backend.mjs --port PORT ADDRESS...');
  process.exit(2);
}

/** What the download sends: one 1 MiB block written over and over (the proxy copies bytes, it never looks). */
const BLOCK = Buffer.alloc(1 << 20, 'clusterdns proxy benchmark ');

function serve(socket) {
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  let header = Buffer.alloc(0);
  const onHeader = (chunk) => {
    header = Buffer.concat([header, chunk]);
    const op = String.fromCharCode(header[0]);
    if (op === 'E') {
      socket.off('data', onHeader);
      if (header.length > 1) socket.write(header.subarray(1));
      socket.pipe(socket);
    } else if (op === 'D') {
      if (header.length < 9) return;
      socket.off('data', onHeader);
      download(socket, Number(header.readBigUInt64BE(1)));
    } else if (op === 'U') {
      socket.off('data', onHeader);
      let received = header.length - 1;
      socket.on('data', (data) => (received += data.length));
      socket.on('end', () => {
        const count = Buffer.alloc(8);
        count.writeBigUInt64BE(BigInt(received));
        socket.end(count);
      });
    } else {
      socket.destroy();
    }
  };
  socket.on('data', onHeader);
}

function download(socket, total) {
  let left = total;
  const more = () => {
    while (left > 0) {
      const piece = left >= BLOCK.length ? BLOCK : BLOCK.subarray(0, left);
      left -= piece.length;
      if (!socket.write(piece)) return socket.once('drain', more);
    }
    socket.end();
  };
  more();
}

await Promise.all(positionals.map((host) => new Promise((resolve, reject) => {
  const server = createServer({ allowHalfOpen: true }, serve);
  server.once('error', reject);
  server.listen({ host, port, backlog: 4096 }, resolve);
})));
process.stdout.write('ready\n');
