import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../core/log.ts';
import { JournalLockedError } from './errors.ts';
import { removeDir, tempDir } from '../test/fixtures/journal-files.ts';
import { checkLockFree, DirLock, LOCK_FILE, parseProcStat, pidState, sigkillPending } from './lock.ts';

let dir: string;
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await removeDir(dir);
});

/** A zombie: `sleep 0.1` whose parent exec'd into a sleeper that never reaps it. Returns its pid and the parent. */
async function zombie(): Promise<{ pid: number; stop: () => void }> {
  const parent = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const pid = await new Promise<number>((resolve) => parent.stdout.once('data', (d) => resolve(Number(String(d)))));
  for (let i = 0; i < 100 && parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8'))?.state !== 'Z'; i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  return { pid, stop: () => parent.kill('SIGKILL') };
}

describe('pidState', () => {
  it('parses /proc/<pid>/stat with spaces and parentheses in the command name', () => {
    expect(parseProcStat('42 (a (b) c) Z 1 42 42 0 -1 4194564 0 0')).toEqual({ state: 'Z', flags: 4194564 });
    expect(parseProcStat('garbage')).toBeNull();
    expect(sigkillPending('SigPnd:\t0000000000000000\nShdPnd:\t0000000000000100\n')).toBe(true);
    expect(sigkillPending('SigPnd:\t0000000000004000\nShdPnd:\t0000000000000000\n')).toBe(false);
  });

  it('a running process is alive, an unreaped (zombie) one is gone', async () => {
    expect(await pidState(process.ppid)).toBe('alive');
    const z = await zombie();
    try {
      expect(await pidState(z.pid)).toBe('gone');
    } finally {
      z.stop();
    }
  });
});

describe('DirLock', () => {
  it("takes over a lock whose owner is a zombie, and refuses a live owner's at once, naming it", async () => {
    const z = await zombie();
    try {
      await writeFile(join(dir, LOCK_FILE), `${z.pid}\n`);
      await checkLockFree(dir);
      const l = await DirLock.acquire(dir, silentLogger);
      expect((await readFile(join(dir, LOCK_FILE), 'utf8')).trim()).toBe(String(process.pid));
      await l.release();
    } finally {
      z.stop();
    }
    await writeFile(join(dir, 'apply-r.lock'), `${process.ppid}\n`);
    const started = Date.now();
    const err = await DirLock.acquire(dir, silentLogger, {
      file: 'apply-r.lock',
      describe: (whom) => `target r is applied to by ${whom}`,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JournalLockedError);
    expect((err as Error).message).toBe(`target r is applied to by process ${process.ppid}`);
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(checkLockFree(dir, { file: 'apply-r.lock' })).rejects.toThrow(`process ${process.ppid}`);
  });
});
