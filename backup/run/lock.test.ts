import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockJob } from './lock.ts';

let dir: string;
beforeEach(() => {
  dir = join(mkdtempSync(join(tmpdir(), 'tidemark-lock-')), 'catalog');
});
afterEach(() => rmSync(join(dir, '..'), { recursive: true, force: true }));

describe('lockJob', () => {
  it('one holder per job; a second is BACKUP_BUSY naming the holder; released, it can be taken again', async () => {
    const release = await lockJob(dir, 'nightly', 'run');
    await expect(lockJob(dir, 'nightly', 'expire')).rejects.toMatchObject({
      code: 'BACKUP_BUSY',
      retriable: true,
      message: expect.stringContaining(`run in process ${process.pid}`),
    });
    const other = await lockJob(dir, 'weekly', 'run'); // another job is independent
    await release();
    expect(existsSync(join(dir, 'nightly.lock'))).toBe(false);
    await (await lockJob(dir, 'nightly', 'expire'))();
    await other();
  });

  it('takes over a lock whose process is gone', async () => {
    const dead = spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim();
    await lockJob(dir, 'nightly', 'run').then((r) => r()); // creates the directory
    writeFileSync(join(dir, 'nightly.lock'), `${dead} run\n`);
    const release = await lockJob(dir, 'nightly', 'run');
    await release();
  });
});
