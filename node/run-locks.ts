/**
 * The locks `tidemark run` takes before it starts anything (journal/lock.ts, the journal writer's
 * mechanism): a second `run` is refused at once, naming the pid that runs, before it opens the metrics port or
 * connects anywhere.
 *
 *   capture   the journal's writer lock `LOCK` is checked (not taken: the capture loop's writer takes it, and
 *             re-takes it after each retried attempt)
 *   apply     one lock file per target beside the journal it applies from, `apply-<target>.lock`, held for the
 *             whole run: two appliers on one target would otherwise take turns through the position table
 *
 * An owner that was killed but not reaped by its parent yet (a zombie, containers without an init) holds
 * nothing; one that is exiting is waited for up to 10 s.
 */
import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import { checkLockFree, DirLock } from '../journal/index.ts';
import type { Config } from '../config/config.ts';
import { journalDirOf } from '../journal/index.ts';

export const applyLockFile = (target: string): string => `apply-${target}.lock`;

/** Refuses (JournalLockedError) when another live process writes the journal `dir`. */
export async function checkCaptureLock(dir: string): Promise<void> {
  await checkLockFree(dir, {
    describe: (whom, path) =>
      `journal ${dir} is locked by ${whom} (${path}): another tidemark run captures into it; stop that one first`,
  });
}

/** Takes each target's applier lock (creating the journal directory if needed); releases what it took on failure. */
export async function lockAppliers(
  config: Config,
  targets: readonly Config['targets'][number][],
  log: Logger,
): Promise<DirLock[]> {
  const held: DirLock[] = [];
  try {
    for (const t of targets) {
      const dir = journalDirOf(config, t);
      await mkdir(dir, { recursive: true });
      held.push(
        await DirLock.acquire(dir, log, {
          file: applyLockFile(t.name),
          describe: (whom, path) =>
            `target ${t.name} is already applied to by ${whom} (${path}): stop that tidemark run first, or run ` +
            'this one for other targets (--target)',
        }),
      );
    }
    return held;
  } catch (err) {
    await releaseAll(held);
    throw err;
  }
}

export async function releaseAll(locks: readonly DirLock[]): Promise<void> {
  for (const l of locks) await l.release().catch(() => undefined);
}
