/**
 * The backup commands of the command line (cli/main.ts builds the program): `tidemark backup run JOB [--type T]`,
 * `list [--job J] [--json]`, `show ID [--json]`, `star ID [--pitr|--standalone] [--note TEXT]`, `unstar ID`,
 * `expire JOB [--dry-run] [--json]`, `copy NAME [--dry-run] [--json]`; and `tidemark drill JOB --scratch-port P
 * [--log-job L] [--wait S] [--json]`, `drill JOB --history`.
 */
import { type Command, Option } from 'commander';
import type { BackupOptions } from './commands/backup.ts';
import { addBackupLogsCommand } from './commands/backup-logs.ts';
import { usageError } from './commands/exit.ts';
import { positive } from './main-args.ts';
import type { MainDeps } from './main-deps.ts';
import type { ProgramHelpers } from './main-sites.ts';

export function addBackupCommands(
  program: Command,
  deps: MainDeps,
  state: { exitCode: number },
  h: ProgramHelpers,
  env: Readonly<Record<string, string | undefined>> = {},
): void {
  const backup = program
    .command('backup')
    .description('physical backups into a backup store: run a job now, list, show, star, expire, copy');
  const go = async (o: { config?: string }, rest: DistributiveOmit<BackupOptions>) => {
    const ctx = h.context(h.configPath(o));
    state.exitCode = await deps.commands.backup({ ...ctx, ...rest } as BackupOptions);
  };

  backup
    .command('run')
    .description("take one backup of JOB now (streamed into the job's store; the manifest is written last)")
    .argument('<job>', 'a job of backup.jobs')
    .addOption(h.configOption())
    .addOption(new Option('--type <type>', "override the job's type").choices(['full', 'incremental', 'differential']))
    .action(async (job: string, o: { config?: string; type?: 'full' | 'incremental' | 'differential' }) => {
      await go(o, { action: 'run', job, type: o.type });
    });

  addBackupLogsCommand(backup, h, state);

  backup
    .command('list')
    .description('every sealed backup in every configured store, oldest first (the store is listed first)')
    .addOption(h.configOption())
    .option('--job <name>', 'only this job')
    .option('--json', 'print JSON')
    .action(async (o: { config?: string; job?: string; json?: boolean }) => {
      await go(o, { action: 'list', job: o.job, json: o.json === true });
    });

  backup
    .command('show')
    .description('one backup: its manifest, star and restore chain')
    .argument('<id>', 'a backup id (see backup list)')
    .addOption(h.configOption())
    .option('--json', 'print JSON on one line')
    .action(async (id: string, o: { config?: string; json?: boolean }) => {
      await go(o, { action: 'show', id, json: o.json === true });
    });

  backup
    .command('star')
    .description('keep a backup for ever (and its parents); --pitr also keeps the logs after it')
    .argument('<id>', 'a backup id')
    .addOption(h.configOption())
    .option('--pitr', 'also keep the logs from its start to the next full (point-in-time restores after it)')
    .option('--standalone', 'keep the backup and its restore chain only (the default)')
    .option('--note <text>', 'why (kept with the star)', '')
    .action(async (id: string, o: { config?: string; pitr?: boolean; standalone?: boolean; note: string }) => {
      if (o.pitr && o.standalone) throw usageError('--pitr and --standalone cannot go together');
      await go(o, { action: 'star', id, kind: o.pitr ? 'pitr' : 'standalone', note: o.note });
    });

  backup
    .command('unstar')
    .description('remove the star of a backup (retention may then expire it)')
    .argument('<id>', 'a backup id')
    .addOption(h.configOption())
    .action(async (id: string, o: { config?: string }) => {
      await go(o, { action: 'unstar', id });
    });

  backup
    .command('expire')
    .description("apply JOB's retention (stars and parents kept) and delete orphan objects past the grace period")
    .argument('<job>', 'a job of backup.jobs')
    .addOption(h.configOption())
    .option('--dry-run', 'say what would be deleted; delete nothing')
    .option('--json', 'print JSON')
    .action(async (job: string, o: { config?: string; dryRun?: boolean; json?: boolean }) => {
      await go(o, { action: 'expire', job, dryRun: o.dryRun === true, json: o.json === true });
    });

  backup
    .command('copy')
    .description("copy NAME's missing backups to its second store, verified by manifest hashes (no key needed)")
    .argument('<name>', 'a copy of backup.copies')
    .addOption(h.configOption())
    .option('--dry-run', 'say what would be copied; write nothing')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { config?: string; dryRun?: boolean; json?: boolean }) => {
      await go(o, { action: 'copy', name, dryRun: o.dryRun === true, json: o.json === true });
    });

  program
    .command('drill')
    .description(
      "restore drill: JOB's newest chain plus its log archive restored to the source's current point on a scratch " +
        'server, checksums compared with the source, the result kept in the drill history (exit 1 when it fails)',
    )
    .argument('<job>', 'a job of backup.jobs')
    .addOption(h.configOption())
    .option('--log-job <name>', "the log job to replay (else the job's logs:)")
    .option('--scratch-port <port>', 'the port of the scratch server (127.0.0.1)', positive)
    .option('--wait <seconds>', "how long to wait for the archive to reach the source's point", positive, 60)
    .option('--history', "print the job's past drills, newest first")
    .option('--json', 'print JSON')
    .action(
      async (
        job: string,
        o: { config?: string; logJob?: string; scratchPort?: number; wait: number; history?: boolean; json?: boolean },
      ) => {
        const ctx = h.context(h.configPath(o));
        state.exitCode = await deps.commands.drill({
          ...ctx,
          job,
          logJob: o.logJob,
          scratchPort: o.scratchPort,
          waitSeconds: o.wait,
          history: o.history === true,
          json: o.json === true,
          env,
        });
      },
    );
}

/** BackupOptions without the context part, per action. */
type DistributiveOmit<T> = T extends unknown ? Omit<T, 'config' | 'log' | 'signal' | 'stdout'> : never;
