/**
 * `tidemark drill JOB`: a restore drill of a backup job (backup/drill/drill.ts) — the source's consistent snapshot,
 * the newest backup chain plus the log job's archive restored to exactly that point on a scratch server, the
 * checksums compared — recorded in the drill history (the `drills` table of the store's catalog cache). A failed
 * drill ends with BACKUP_DRILL_FAILED (exit 1) naming what failed: the piece and chunk that did not verify, the
 * replay, or the tables that differ. `--history` prints the job's past drills instead.
 *
 * The log job: `--log-job`, else the job's `logs:` in the config. The scratch server: `--scratch-port` (started
 * with compose/local/mariadb.sh on `<catalog_dir>/drill-<job>`, stopped and removed after); the restored copy has
 * the source's accounts, so it is reached as the config's source user (password: $TIDEMARK_SCRATCH_PASSWORD, else
 * the source's).
 */
import { DrillHistory, type DrillRecord } from '../../backup/drill/history.ts';
import { drillHistoryFile, drillJob } from '../../backup/drill/job-drill.ts';
import { TidemarkError } from '../../core/errors.ts';
import { backupSection, jobOf } from './backup-stores.ts';
import type { CommandContext } from './context.ts';
import { usageError } from './exit.ts';

export type DrillCommandOptions = CommandContext & {
  readonly job: string;
  readonly logJob?: string | undefined;
  readonly scratchPort?: number | undefined;
  readonly waitSeconds: number;
  readonly history: boolean;
  readonly json: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
};

function recordJson(r: DrillRecord): Record<string, unknown> {
  return { ...r, startedAt: r.startedAt.toISOString(), endedAt: r.endedAt.toISOString() };
}

function recordLine(r: DrillRecord): string {
  const what = r.ok ? `passed, ${r.tables} tables identical` : `FAILED (${r.code}): ${r.error}`;
  return `${r.startedAt.toISOString()} ${r.job} ${what}; backup ${r.backup ?? '-'}, GTID ${r.gtid ?? '-'}`;
}

export async function drillCommand(o: DrillCommandOptions): Promise<number> {
  const b = backupSection(o.config);
  const job = jobOf(b, o.config.file, o.job);
  const historyFile = drillHistoryFile(b, job.store);
  if (o.history) {
    const h = new DrillHistory(historyFile);
    try {
      const rows = h.list(job.name);
      for (const r of rows) o.stdout.write(o.json ? `${JSON.stringify(recordJson(r))}\n` : `${recordLine(r)}\n`);
      if (rows.length === 0 && !o.json) o.stdout.write(`no drill of '${job.name}' yet\n`);
    } finally {
      h.close();
    }
    return 0;
  }
  const configured = (job as { logs?: unknown }).logs;
  const logJob = o.logJob ?? (typeof configured === 'string' ? configured : undefined);
  if (logJob === undefined)
    throw usageError(`drill ${job.name} needs its log job: --log-job NAME (or 'logs:' on the job)`);
  if (o.scratchPort === undefined)
    throw usageError('drill needs --scratch-port PORT (the scratch server it restores into)');
  const result = await drillJob(b, {
    job,
    logJob,
    source: o.config.source,
    scratchPort: o.scratchPort,
    scratchPassword: o.env['TIDEMARK_SCRATCH_PASSWORD'] ?? o.config.source.password ?? '',
    waitSeconds: o.waitSeconds,
    log: o.log,
    signal: o.signal,
    onLine: (line) => {
      if (!o.json) o.stdout.write(`${line}\n`);
    },
  });
  if (o.json) o.stdout.write(`${JSON.stringify(recordJson(result))}\n`);
  if (!result.ok) {
    throw new TidemarkError(`drill of '${job.name}' FAILED: ${result.error ?? 'unknown'}`, {
      code: 'BACKUP_DRILL_FAILED',
      context: { job: job.name, ...(result.code === null ? {} : { cause: result.code }) },
    });
  }
  return 0;
}
