/**
 * The scheduled backups of `tidemark status`: what the scheduler of a `tidemark run` wrote to
 * `<catalog_dir>/schedule.json` (node/backup-loop.ts) — per job, copy and drill, its schedule, next trigger, the run in
 * progress, counts of runs, failures and skipped triggers, and the last run. `stale` when the process that wrote
 * it is gone (the figures are then how things stood when it stopped).
 */
import { join } from 'node:path';
import type { Config } from '../../config/config.ts';
import { pidState } from '../../journal/index.ts';
import { SCHEDULE_FILE } from '../../node/backup-loop.ts';
import { readJsonFile } from '../../node/state-files.ts';

interface ItemStatus {
  readonly kind: string;
  readonly name: string;
  readonly schedule: string;
  readonly next: string | null;
  readonly running: string | null;
  readonly runs: number;
  readonly failures: number;
  readonly skipped: number;
  readonly last: { readonly ended: string; readonly ok: boolean; readonly detail: string } | null;
}

export interface BackupScheduleStatus {
  readonly pid: number;
  readonly stale: boolean;
  readonly items: readonly ItemStatus[];
}

export async function readBackupSchedule(config: Config): Promise<BackupScheduleStatus | null> {
  if (config.backup === undefined) return null;
  const doc = (await readJsonFile(join(config.backup.catalog_dir, SCHEDULE_FILE), { damaged: 'absent' })) as {
    pid: number;
    items: ItemStatus[];
  } | null;
  if (doc === null) return null;
  return { pid: doc.pid, stale: (await pidState(doc.pid)) !== 'alive', items: doc.items };
}

export function backupScheduleLines(s: BackupScheduleStatus | null): string[] {
  if (s === null) return [];
  const lines = [`backups scheduled by pid ${s.pid}${s.stale ? ' (not running: as it stopped)' : ''}`];
  for (const i of s.items) {
    lines.push(`  ${i.kind} ${i.name}  ${i.schedule}, next ${i.next ?? '-'}`);
    const last = i.last === null ? 'none yet' : `${i.last.ok ? 'ok' : 'FAILED'} at ${i.last.ended}: ${i.last.detail}`;
    lines.push(`    ${i.runs} run(s), ${i.failures} failed, ${i.skipped} skipped; last ${last}`);
    if (i.running !== null) lines.push(`    running since ${i.running}`);
  }
  return lines;
}
