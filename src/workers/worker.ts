/**
 * A worker thread (see pool.ts): makes the main thread's plan again from its origin, starts from the store's
 * snapshot, binds the main thread's addresses beside its sockets (SO_REUSEPORT) and answers on them, while the
 * main thread's writes, reloads and metrics requests arrive as messages. It watches nothing and serves no HTTP.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { planFromOrigin, serve, type RunningServer } from '../main.js';
import { RecordStore } from '../store/index.js';
import { createLogger } from '../telemetry/index.js';
import type { FromWorker, ToWorker, WorkerStart } from './pool.js';

/** How often the thread tells the main one whether it is ready (only when that changed). */
const STATE_INTERVAL_MS = 250;

const start = workerData as WorkerStart;
const port = parentPort!;
const send = (message: FromWorker): void => port.postMessage(message);
const log = createLogger(start.logLevel).child({ worker: start.index });

// The replica's changes carry the main thread's time, so both give the same SOA serial.
let changeAtMs = start.snapshotAtMs;
const store = new RecordStore(() => changeAtMs);
store.apply(start.snapshot);

let running: RunningServer;
try {
  running = await serve(planFromOrigin(start.origin, start.logLevel), log, { replica: { store, listen: start.listen, thread: start.index } });
} catch (error) {
  send({ type: 'failed', message: (error as Error).message });
  process.exit(1);
}

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'writes':
      changeAtMs = message.atMs;
      store.apply(message.writes);
      break;
    case 'reload':
      void running.applyCorefile(message.text, message.hash);
      break;
    case 'ask':
      if (message.what === 'metrics') void running.metricsJson().then((answer) => send({ type: 'answer', id: message.id, answer }));
      else send({ type: 'answer', id: message.id, answer: running.topReport() });
      break;
    case 'close':
      void running.close().then(() => process.exit(0));
      break;
  }
});

let reported: string | undefined = 'starting';
const report = (): void => {
  const now = running.notReady();
  if (now === reported) return;
  reported = now;
  send({ type: 'state', notReady: now });
};
report();
setInterval(report, STATE_INTERVAL_MS).unref();
send({ type: 'started' });
