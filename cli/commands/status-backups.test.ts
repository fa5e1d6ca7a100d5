import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../../config/config.ts';
import { backupScheduleLines, readBackupSchedule } from './status-backups.ts';

let dir: string | undefined;
afterEach(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

const item = {
  kind: 'job',
  name: 'nightly',
  schedule: "cron '0 2 * * *' Europe/Paris",
  next: '2026-12-07T01:00:00.000Z',
  running: null,
  runs: 3,
  failures: 1,
  skipped: 2,
  last: { trigger: '2026-12-06T01:00:00.000Z', ended: '2026-12-06T01:04:00.000Z', ok: true, detail: 'id-3' },
};

describe('status: scheduled backups', () => {
  it('reads the scheduler state file, stale when its process is gone, and prints it', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tm-st-bk-'));
    const config = { backup: { catalog_dir: dir } } as unknown as Config;
    expect(await readBackupSchedule(config)).toBeNull();
    expect(await readBackupSchedule({} as Config)).toBeNull();
    writeFileSync(join(dir, 'schedule.json'), JSON.stringify({ pid: process.pid, items: [item] }));
    const live = await readBackupSchedule(config);
    expect(live?.stale).toBe(false);
    expect(backupScheduleLines(live)).toEqual([
      `backups scheduled by pid ${process.pid}`,
      `  job nightly  cron '0 2 * * *' Europe/Paris, next 2026-12-07T01:00:00.000Z`,
      '    3 run(s), 1 failed, 2 skipped; last ok at 2026-12-06T01:04:00.000Z: id-3',
    ]);
    writeFileSync(join(dir, 'schedule.json'), JSON.stringify({ pid: 2 ** 22 + 1, items: [] }));
    expect((await readBackupSchedule(config))?.stale).toBe(true);
  });
});
