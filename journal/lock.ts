/**
 * The single-writer lock of a journal directory: a file `LOCK` holding the owner's pid, created with O_EXCL. The
 * same mechanism guards other single-owner roles beside a journal (one applier per target, the run locks of `tidemark run`):
 * `acquire(dir, log, { file, describe })`.
 *
 * A lock whose owner no longer runs is stale and is taken over: the stale file is removed only if it still holds
 * the pid we saw, then creation is retried. "No longer runs" (pidState, Linux /proc): no such pid, or a zombie
 * (state Z/X: killed but not yet reaped by its parent — usual in containers without an init). An owner that is
 * exiting (SIGKILL pending, or the kernel's PF_EXITING flag) is waited for up to `waitDyingMs` (default 10 s).
 * A lock held by a live pid is refused at once with an error naming the pid. A lock with this process's own pid
 * that no writer in this process holds is from an earlier process with the same pid (usual after a container
 * restart) and is stale too.
 *
 * Limits: pid reuse by an unrelated process can make a stale lock look live (refused, which is safe: delete the
 * file by hand); two writers starting at the same instant over the same stale lock can, in a narrow window, both
 * remove and recreate it; re-reading the file after creating it catches the common form of that race. Without
 * /proc (not Linux) a zombie owner looks live.
 */
import { open, readFile, realpath, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { TidemarkError } from '../core/errors.ts';
import { JournalLockedError } from './errors.ts';

export const LOCK_FILE = 'LOCK';

/** Lock files held by writers in this process: a lock with our own pid that is not here is from an earlier
 * process that had the same pid (containers restart with the same pids) and is stale. */
const heldHere = new Set<string>();

/** PF_EXITING in /proc/<pid>/stat's flags field: the process is exiting. */
const PF_EXITING = 0x4;
/** SIGKILL's bit in /proc/<pid>/status SigPnd/ShdPnd masks. */
const SIGKILL_BIT = 1n << 8n;

export type PidState = 'alive' | 'dying' | 'gone';

/** Parses /proc/<pid>/stat: the state letter and the flags (the command name may hold spaces and parentheses). */
export function parseProcStat(text: string): { state: string; flags: number } | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const f = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const state = f[0];
  const flags = Number(f[6]);
  if (!state || !Number.isFinite(flags)) return null;
  return { state, flags };
}

/** Does /proc/<pid>/status show a SIGKILL pending (the process is about to exit)? */
export function sigkillPending(statusText: string): boolean {
  for (const m of statusText.matchAll(/^(?:SigPnd|ShdPnd):\s*([0-9a-fA-F]+)\s*$/gm)) {
    if ((BigInt(`0x${m[1]}`) & SIGKILL_BIT) !== 0n) return true;
  }
  return false;
}

async function readProc(pid: number, file: string): Promise<string | null> {
  try {
    return await readFile(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return null;
  }
}

/**
 * Whether `pid` still runs: 'gone' (no such process, or a zombie nobody reaped yet), 'dying' (exiting: it runs
 * no more code of its own), or 'alive'.
 */
export async function pidState(pid: number): Promise<PidState> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return 'gone';
  }
  const stat = await readProc(pid, 'stat');
  if (stat === null) return process.platform === 'linux' ? 'gone' : 'alive';
  const st = parseProcStat(stat);
  if (!st) return 'alive';
  if (st.state === 'Z' || st.state === 'X' || st.state === 'x') return 'gone';
  if ((st.flags & PF_EXITING) !== 0) return 'dying';
  const status = await readProc(pid, 'status');
  return status !== null && sigkillPending(status) ? 'dying' : 'alive';
}

const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits while `pid` is exiting (up to `maxMs`); returns its state then. */
async function settle(pid: number, maxMs: number): Promise<PidState> {
  const deadline = Date.now() + maxMs;
  let st = await pidState(pid);
  while (st === 'dying' && Date.now() < deadline) {
    await sleepMs(50);
    st = await pidState(pid);
  }
  return st;
}

/** A lock file's text and the pid it holds (null: not a pid), or null when there is no such file. */
export async function readLockPid(path: string): Promise<{ text: string; pid: number | null } | null> {
  try {
    const text = await readFile(path, 'utf8');
    const m = /^(\d+)\s*$/.exec(text);
    return { text, pid: m?.[1] ? Number(m[1]) : null };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

export interface LockOptions {
  /** The lock file's name in the directory (default LOCK, the journal writer's). */
  readonly file?: string;
  /** The refusal's message for a lock held by `whom` ("process 123"); default "journal DIR is locked by …". */
  readonly describe?: (whom: string, path: string) => string;
  /** How long to wait for an owner that is exiting (default 10 s). */
  readonly waitDyingMs?: number;
}

const DEFAULT_WAIT_DYING_MS = 10_000;

function refusal(dir: string, path: string, pid: number, whom: string, o: LockOptions): JournalLockedError {
  const text = o.describe ? o.describe(whom, path) : `journal ${dir} is locked by ${whom} (${path})`;
  return new JournalLockedError(text, { dir, pid });
}

/** Refuses when the owner `pid` still runs, after waiting for it while it is exiting. */
async function refuseLiveOwner(dir: string, path: string, pid: number, o: LockOptions): Promise<void> {
  const st = await settle(pid, o.waitDyingMs ?? DEFAULT_WAIT_DYING_MS);
  if (st === 'alive') throw refusal(dir, path, pid, `process ${pid}`, o);
  if (st === 'dying') throw refusal(dir, path, pid, `process ${pid} (still exiting)`, o);
}

/**
 * Refuses at once (JournalLockedError naming the pid) when a live process other than this one holds the lock,
 * after waiting for an exiting owner; does not take the lock. For a command that wants to fail before starting
 * anything else (`tidemark run`); the real acquisition later stays the arbiter.
 */
export async function checkLockFree(dir: string, o: LockOptions = {}): Promise<void> {
  let path: string;
  try {
    path = join(await realpath(dir), o.file ?? LOCK_FILE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const held = await readLockPid(path);
  if (!held || held.pid === null || held.pid === process.pid) return;
  await refuseLiveOwner(dir, path, held.pid, o);
}

export class DirLock {
  readonly path: string;
  readonly pid: number;
  private released = false;

  private constructor(path: string, pid: number) {
    this.path = path;
    this.pid = pid;
  }

  static async acquire(dir: string, log: Logger, o: LockOptions = {}): Promise<DirLock> {
    const path = join(await realpath(dir), o.file ?? LOCK_FILE);
    const me = process.pid;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const fh = await open(path, 'wx');
        try {
          await fh.writeFile(`${me}\n`);
          await fh.sync();
        } finally {
          await fh.close();
        }
        const check = await readLockPid(path);
        if (check?.pid !== me) continue;
        heldHere.add(path);
        return new DirLock(path, me);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const held = await readLockPid(path);
      if (!held) continue;
      const ours = held.pid === me && heldHere.has(path);
      if (held.pid !== null && ours) {
        throw refusal(dir, path, me, `this process (pid ${me}; another owner is open)`, o);
      }
      if (held.pid !== null && held.pid !== me) await refuseLiveOwner(dir, path, held.pid, o);
      // Stale (a pid that no longer runs, a zombie, or unreadable content). Remove it only if it is still the
      // file we judged.
      const again = await readLockPid(path);
      if (again && again.text === held.text) {
        log.warn({ dir, lock: path, stalePid: held.pid }, 'taking over a stale lock');
        await unlink(path).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'ENOENT') throw e;
        });
      }
    }
    throw new TidemarkError(`${dir}: could not acquire the lock ${path}`, {
      code: 'JOURNAL_LOCKED',
      retriable: true,
      context: { dir },
    });
  }

  /** Removes the lock file if it is still ours. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    heldHere.delete(this.path);
    const held = await readLockPid(this.path);
    if (held?.pid === this.pid) await unlink(this.path);
  }
}
