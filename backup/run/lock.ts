/**
 * One backup job at a time on this host (I/O): `backup run` and `backup expire` of a job hold
 * `<dir>/<job>.lock` (created exclusively, holding the pid) for their whole run. A second one is refused with
 * BACKUP_BUSY naming the holder — the rule an overrunning schedule needs (skip, and say so). A lock whose pid is
 * gone (a crash, kill -9) is taken over. Only this host's processes see the lock: runs of one job from two hosts
 * are not serialized (the orphan grace period still protects a running backup from expire).
 */
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TidemarkError } from '../../core/errors.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the job's lock; the returned function releases it. */
export async function lockJob(dir: string, job: string, what: string): Promise<() => Promise<void>> {
  const path = join(dir, `${job}.lock`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(`${process.pid} ${what}\n`);
      await fh.close();
      return () => rm(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const text = await readFile(path, 'utf8').catch(() => '');
    const [pidText, holder] = text.trim().split(' ');
    const pid = Number(pidText);
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
      throw new TidemarkError(
        `backup job '${job}' is busy: ${holder ?? 'a run'} in process ${pid} holds '${path}'; not starting ${what}`,
        { code: 'BACKUP_BUSY', retriable: true, context: { job, pid, path } },
      );
    }
    await rm(path, { force: true }); // stale: its process is gone
  }
  throw new TidemarkError(`backup job '${job}': could not take '${path}'`, {
    code: 'BACKUP_BUSY',
    retriable: true,
    context: { job, path },
  });
}
