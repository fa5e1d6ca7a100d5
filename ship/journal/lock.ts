/**
 * The single-writer lock of a journal directory: a file `LOCK` holding the owner's pid, created with O_EXCL.
 *
 * A lock whose pid is no longer running is stale and is taken over: the stale file is removed only if it still
 * holds the pid we saw, then creation is retried. A lock held by a live pid is refused with an error naming the
 * pid. A lock with this process's own pid that no writer in this process holds is from an earlier process with
 * the same pid (usual after a container restart) and is stale too.
 *
 * Limits: pid reuse by an unrelated process can make a stale lock look live (refused, which is safe: delete the
 * file by hand); two writers starting at the same instant over the same stale lock can, in a narrow window, both
 * remove and recreate it; re-reading the file after creating it catches the common form of that race.
 */
import { open, readFile, realpath, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { TidemarkError } from '../../record/errors.ts';
import { JournalLockedError } from './errors.ts';

export const LOCK_FILE = 'LOCK';

/** Lock files held by writers in this process: a lock with our own pid that is not here is from an earlier
 * process that had the same pid (containers restart with the same pids) and is stale. */
const heldHere = new Set<string>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readLockPid(path: string): Promise<{ text: string; pid: number | null } | null> {
  try {
    const text = await readFile(path, 'utf8');
    const m = /^(\d+)\s*$/.exec(text);
    return { text, pid: m?.[1] ? Number(m[1]) : null };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

export class DirLock {
  readonly path: string;
  readonly pid: number;
  private released = false;

  private constructor(path: string, pid: number) {
    this.path = path;
    this.pid = pid;
  }

  static async acquire(dir: string, log: Logger): Promise<DirLock> {
    const path = join(await realpath(dir), LOCK_FILE);
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
      if (held.pid !== null && (ours || (held.pid !== me && isAlive(held.pid)))) {
        const whom = held.pid === me ? `this process (pid ${me}; another writer is open)` : `process ${held.pid}`;
        throw new JournalLockedError(`journal ${dir} is locked by ${whom} (${path})`, { dir, pid: held.pid });
      }
      // Stale (dead pid or unreadable content). Remove it only if it is still the file we judged.
      const again = await readLockPid(path);
      if (again && again.text === held.text) {
        log.warn({ dir, stalePid: held.pid }, 'journal: taking over a stale writer lock');
        await unlink(path).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'ENOENT') throw e;
        });
      }
    }
    throw new TidemarkError(`journal ${dir}: could not acquire the writer lock ${path}`, {
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
