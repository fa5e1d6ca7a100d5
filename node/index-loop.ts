/**
 * The rollback index part of `tidemark run` (rollback/README.md, "Internals"): keeps <journal.dir>/rollback-index.sqlite
 * current so that history and rewind commands answer at once. The work (index-follow.ts) runs in a child process
 * (index-child.mjs): node:sqlite is synchronous and indexing a backlog is CPU-bound, and neither may stall capture
 * or apply, nor take their memory. Its log lines come back on its stdout and are written by this process's logger.
 *
 * Never fails `run`: a follower that dies is restarted with backoff. Resolves once stopped.
 */
import { spawn } from 'node:child_process';
import { setPriority } from 'node:os';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { describeChain, sleep } from '../core/errors.ts';
import type { Config } from '../config/config.ts';
import { backoff } from '../core/backoff.ts';

const STOP_TIMEOUT_MS = 15_000;
/** Fields pino adds that the parent's logger adds again. */
const DROP = new Set(['level', 'msg', 'time', 'pid', 'hostname']);

/** Whether `run` keeps the rollback index: config key rollback.index, default true. */
export function indexEnabled(config: Config): boolean {
  return config.rollback.index;
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

/**
 * Node flags of the index follower: its own small heap. It runs in a child process, not a worker thread, so that
 * `run` keeps its memory budget (peak RSS < 256 MB per process with a 1M-row transaction; a worker thread in the
 * same process measured 293 MB) and a blocking SQLite batch can never stall capture or apply. bench/rewind-index.ts
 * builds the index under the same flags.
 */
export const INDEX_CHILD_FLAGS = [
  '--no-warnings=ExperimentalWarning',
  '--max-semi-space-size=4',
  '--max-old-space-size=64',
];
const CHILD_NICE = 10;
const CHILD = fileURLToPath(new URL('./index-child.mjs', import.meta.url));

/** Runs one follower process until it exits; stops it when `signal` aborts. Resolves with its exit code. */
function runChild(journalDir: string, level: string, log: Logger, signal: AbortSignal): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...INDEX_CHILD_FLAGS, CHILD, journalDir, level], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    // Indexing is background work: capture and apply come first when the cores are busy.
    try {
      if (child.pid !== undefined) setPriority(child.pid, CHILD_NICE);
    } catch {
      // Not permitted here: run at normal priority.
    }
    let killer: NodeJS.Timeout | undefined;
    const stop = () => {
      child.kill('SIGTERM');
      killer = setTimeout(() => {
        log.warn('rollback index follower did not stop in time; killing it');
        child.kill('SIGKILL');
      }, STOP_TIMEOUT_MS);
    };
    signal.addEventListener('abort', stop, { once: true });
    const { stdout, stderr } = child as typeof child & { stdout: Readable; stderr: Readable };
    createInterface({ input: stdout }).on('line', (line) => relay(log, line));
    let err = '';
    stderr.setEncoding('utf8');
    stderr.on('data', (d: string) => {
      err = (err + d).slice(-2000);
    });
    child.on('error', (e) => log.error({ err: describeChain(e) }, 'rollback index follower failed to start'));
    child.on('exit', (code) => {
      clearTimeout(killer);
      signal.removeEventListener('abort', stop);
      if (code !== 0 && err.trim()) log.error({ stderr: err.trim() }, 'rollback index follower failed');
      resolve(code);
    });
  });
}

/** Keeps the index of the journal at `dir` (the primary's journal, or a standby's mirror journal). */
export async function indexLoop(dir: string, log: Logger, signal: AbortSignal): Promise<void> {
  const ilog = log.child({ component: 'rollback-index', dir });
  const delay = backoff(1000, 60_000);
  while (!signal.aborted) {
    const code = await runChild(dir, log.level, ilog, signal);
    if (signal.aborted) return;
    const ms = delay.next();
    ilog.error({ code, delayMs: ms }, 'rollback index follower exited; restarting it');
    await sleep(ms, signal);
  }
}
