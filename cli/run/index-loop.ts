/**
 * The rollback index part of `tidemark run` (rollback/DESIGN.md §2): keeps <journal.dir>/rollback-index.sqlite
 * current so that history and rewind commands answer at once. The work (index-follow.ts) runs in a worker thread:
 * node:sqlite is synchronous and indexing a backlog is CPU-bound, and neither may stall capture or apply on this
 * thread. Its log lines come back through messages and are written by this process's logger.
 *
 * Never fails `run`: a worker that dies is restarted with backoff. Resolves once stopped.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { describeChain, sleep } from '../../record/errors.ts';
import type { Config } from '../config.ts';
import { backoff } from './backoff.ts';
import type { IndexWorkerData } from './index-worker.ts';

const STOP_TIMEOUT_MS = 15_000;
/** Fields pino adds that the parent's logger adds again. */
const DROP = new Set(['level', 'msg', 'time', 'pid', 'hostname']);

/** Whether `run` keeps the rollback index: config key rollback.index, default true. */
export function indexEnabled(config: Config): boolean {
  // TODO(lead): add `rollback: { index: boolean (default true) }` to cli/config.ts and read it typed here.
  return (config as { rollback?: { index?: boolean } }).rollback?.index !== false;
}

function relay(log: Logger, line: string): void {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    log.info(line);
    return;
  }
  const level = typeof o.level === 'number' ? o.level : 30;
  const msg = typeof o.msg === 'string' ? o.msg : '';
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (!DROP.has(k)) fields[k] = v;
  if (level >= 50) log.error(fields, msg);
  else if (level >= 40) log.warn(fields, msg);
  else if (level >= 30) log.info(fields, msg);
  else log.debug(fields, msg);
}

/** Runs one worker until it exits; asks it to stop when `signal` aborts. Resolves with its exit code. */
function runWorker(data: IndexWorkerData, log: Logger, signal: AbortSignal): Promise<number> {
  return new Promise((resolve) => {
    const w = new Worker(new URL('./index-worker.ts', import.meta.url), { workerData: data });
    let killer: NodeJS.Timeout | undefined;
    const stop = () => {
      w.postMessage({ kind: 'stop' });
      killer = setTimeout(() => {
        log.warn('rollback index worker did not stop in time; terminating it');
        void w.terminate();
      }, STOP_TIMEOUT_MS);
    };
    signal.addEventListener('abort', stop, { once: true });
    w.on('message', (m: { kind?: string; line?: string }) => {
      if (m?.kind === 'log' && typeof m.line === 'string') relay(log, m.line);
    });
    w.on('error', (err) => log.error({ err: describeChain(err) }, 'rollback index worker failed'));
    w.on('exit', (code) => {
      clearTimeout(killer);
      signal.removeEventListener('abort', stop);
      resolve(code);
    });
  });
}

export async function indexLoop(config: Config, log: Logger, signal: AbortSignal): Promise<void> {
  const ilog = log.child({ component: 'rollback-index' });
  const data: IndexWorkerData = { journalDir: config.journal.dir, level: log.level };
  const delay = backoff(1000, 60_000);
  while (!signal.aborted) {
    const code = await runWorker(data, ilog, signal);
    if (signal.aborted) return;
    const ms = delay.next();
    ilog.error({ code, delayMs: ms }, 'rollback index worker exited; restarting it');
    await sleep(ms, signal);
  }
}
