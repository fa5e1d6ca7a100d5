/**
 * `tidemark backup logs JOB [--restart]`: runs the binlog archiver of a log job (backup.logs) in the foreground
 * until SIGINT/SIGTERM — the complete event groups received are sealed before it exits 0. A gap (a purged binlog,
 * GTIDs that do not continue the archive) stops it with BACKUP_LOG_GAP after an error log line with
 * `needsFull: true`; once a new full backup is taken, `--restart` starts the archive again at the server's oldest
 * binlog, one sequence number left out so the hole stays visible. One archiver per job on this host (the job
 * lock `<catalog_dir>/<job>-logs.lock`).
 */
import type { Command, Option } from 'commander';
import { backupSection } from './backup-stores.ts';
import type { CommandContext } from './context.ts';
import { usageError } from './exit.ts';

export interface BackupLogsOptions extends CommandContext {
  readonly job: string;
  readonly restart: boolean;
}

export async function backupLogsCommand(o: BackupLogsOptions): Promise<number> {
  const b = backupSection(o.config);
  const job = b.logs.find((j) => j.name === o.job);
  if (job === undefined) {
    const known = b.logs.map((j) => j.name).join(', ') || 'none';
    throw usageError(`log job '${o.job}': ${o.config.file} has no such job (backup.logs has: ${known})`);
  }
  // Loaded on use: the backup pipeline (S3 client and all) is not for every command's start-up.
  const { runLogJob } = await import('../../backup/logs/log-job.ts');
  const st = await runLogJob(b, job, { source: o.config.source, signal: o.signal, restart: o.restart, log: o.log });
  o.stdout.write(`log job '${job.name}': ${st.sealed} segment(s) sealed, stopped at ${st.file}:${st.pos}\n`);
  return 0;
}

/** What cli/main-sites.ts's ProgramHelpers gives (not imported: cli/ imports cli/commands/, not the reverse). */
interface Helpers {
  configPath(o: { config?: string }): string;
  context(configFile: string): CommandContext;
  configOption(): Option;
}

/** Registers `backup logs` under the `backup` command (cli/main-backup.ts). */
export function addBackupLogsCommand(backup: Command, h: Helpers, state: { exitCode: number }): void {
  backup
    .command('logs')
    .description('archive the binlog of log job JOB live into its store until stopped (SIGINT/SIGTERM)')
    .argument('<job>', 'a job of backup.logs')
    .addOption(h.configOption())
    .option('--restart', "after a gap (and a new full): start again at the server's oldest binlog")
    .action(async (job: string, o: { config?: string; restart?: boolean }) => {
      const ctx = h.context(h.configPath(o));
      state.exitCode = await backupLogsCommand({ ...ctx, job, restart: o.restart === true });
    });
}
