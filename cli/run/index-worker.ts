/**
 * Worker-thread entry of the rollback index loop (index-loop.ts starts it). Runs followIndex and sends its log
 * lines to the parent as { kind: 'log', line } messages; stops on { kind: 'stop' }.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { followIndex } from './index-follow.ts';

export interface IndexWorkerData {
  journalDir: string;
  level: string;
}

const port = parentPort;
if (!port) throw new Error('index-worker.ts runs as a worker thread');
const data = workerData as IndexWorkerData;
const ac = new AbortController();
port.on('message', (m: { kind?: string }) => {
  if (m?.kind === 'stop') ac.abort();
});
const log = pino(
  { level: data.level, base: null, timestamp: false },
  { write: (line: string) => port.postMessage({ kind: 'log', line }) },
);
try {
  await followIndex({ journalDir: data.journalDir, log, signal: ac.signal });
} finally {
  port.close();
}
