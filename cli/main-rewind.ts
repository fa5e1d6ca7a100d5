/** The rewind commands of the command line (cli/main.ts builds the program): log, history, rewind, forward, undo, restore. */
import { type Command, Option } from 'commander';
import type { CommandContext } from './commands/context.ts';
import { usageError } from './commands/exit.ts';
import { configOption, exactlyOne, parseS3Url, positive, time } from './main-args.ts';
import type { MainDeps, MainIO } from './main-deps.ts';
import type { RestoreBackupCommandOptions, StoreSpec } from './commands/restore-backup.ts';
import { createLogger } from '../core/log.ts';

type ConfigPath = (o: { config?: string }) => string;
type ContextFn = (configFile: string) => CommandContext;

interface MoveFlags {
  config?: string;
  target: string;
  dryRun?: boolean;
  sql?: string;
  yes?: boolean;
}

export function addRewindCommands(
  program: Command,
  io: MainIO,
  deps: MainDeps,
  state: { exitCode: number; secrets: string[] },
  configPath: ConfigPath,
  context: ContextFn,
): void {
  program
    .command('log')
    .description('list the transactions in the journal (the rollback list), oldest first')
    .addOption(configOption())
    .option(
      '--since <time>',
      'committed at or after (ISO 8601, UTC unless a zone is given; or µs since the epoch)',
      time,
    )
    .option('--until <time>', 'committed at or before', time)
    .option('--table <schema.table>', 'only transactions that changed this table')
    .option('--limit <n>', 'only the newest N', positive)
    .option('--baseline', 'also list the baseline (initial copy) chunks')
    .option('--json', 'one JSON object per line')
    .action(
      async (o: {
        config?: string;
        since?: bigint;
        until?: bigint;
        table?: string;
        limit?: number;
        baseline?: boolean;
        json?: boolean;
      }) => {
        state.exitCode = await deps.commands.log({
          ...context(configPath(o)),
          sinceUs: o.since,
          untilUs: o.until,
          table: o.table,
          limit: o.limit,
          baseline: o.baseline === true,
          json: o.json === true,
        });
      },
    );

  program
    .command('history')
    .description('every version of one row: transaction, time, operation, before and after')
    .addOption(configOption())
    .requiredOption('--table <schema.table>', 'the table')
    .requiredOption('--key <col=value,...>', 'the primary key of the row')
    .option('--json', 'print JSON')
    .action(async (o: { config?: string; table: string; key: string; json?: boolean }) => {
      if (!/^[^.\s]+\.[^.\s]+$/.test(o.table)) throw usageError('--table: expected a "schema.table" name');
      state.exitCode = await deps.commands.history({
        ...context(configPath(o)),
        table: o.table,
        key: o.key,
        json: o.json === true,
      });
    });

  const moveOptions = (c: Command) =>
    c
      .addOption(configOption())
      .requiredOption('--target <name>', "the target to change (or the source's name, with --yes)")
      .option('--dry-run', 'show what would be done; change nothing')
      .option(
        '--sql <file>',
        "write the statements as a script for the server's client (mariadb; psql for PostgreSQL) instead of running them",
      )
      .option('--yes', 'confirm changing the source itself');

  moveOptions(
    program
      .command('rewind')
      .description('undo everything after a point on a target, newest first; the target stays held')
      .option('--to-time <time>', 'keep what committed at or before this time', time)
      .option('--steps <n>', 'undo this many transactions (or rows with --unit row)', positive)
      .addOption(new Option('--unit <unit>', 'what --steps counts').choices(['tx', 'row']).default('tx'))
      .option('--before-tx <id>', 'undo this transaction and everything after it'),
  ).action(async (o: MoveFlags & { toTime?: bigint; steps?: number; unit: 'tx' | 'row'; beforeTx?: string }) => {
    exactlyOne(o, ['--to-time', '--steps', '--before-tx']);
    const spec =
      o.toTime !== undefined
        ? { kind: 'time' as const, timeUs: o.toTime }
        : o.steps !== undefined
          ? { kind: 'steps' as const, steps: o.steps, unit: o.unit }
          : { kind: 'before-tx' as const, txId: o.beforeTx! };
    state.exitCode = await deps.commands.rewind({ ...context(configPath(o)), ...moveFlags(o), spec });
  });

  moveOptions(
    program
      .command('forward')
      .description('re-apply from the journal after a rewind; --to-head also releases the hold')
      .option('--to-time <time>', 'redo what committed up to this time', time)
      .option('--steps <n>', 'redo this many transactions', positive)
      .option('--to-head', 'redo everything and let apply continue'),
  ).action(async (o: MoveFlags & { toTime?: bigint; steps?: number; toHead?: boolean }) => {
    exactlyOne(o, ['--to-time', '--steps', '--to-head']);
    const spec =
      o.toTime !== undefined
        ? { kind: 'time' as const, timeUs: o.toTime }
        : o.steps !== undefined
          ? { kind: 'steps' as const, steps: o.steps }
          : { kind: 'head' as const };
    state.exitCode = await deps.commands.forward({ ...context(configPath(o)), ...moveFlags(o), spec });
  });

  moveOptions(
    program
      .command('undo')
      .description('undo one transaction (or some of its rows) while later changes stay')
      .requiredOption('--tx <id>', 'the transaction (its id as tidemark log shows it)')
      .option('--table <schema.table>', 'only its rows in this table')
      .option('--key <col=value,...>', 'only this row (with --table)')
      .addOption(
        new Option('--mode <mode>', 'when later transactions changed the same rows')
          .choices(['nocascade', 'cascade', 'nonconflict'])
          .default('nocascade'),
      ),
  ).action(
    async (
      o: MoveFlags & { tx: string; table?: string; key?: string; mode: 'nocascade' | 'cascade' | 'nonconflict' },
    ) => {
      state.exitCode = await deps.commands.undo({
        ...context(configPath(o)),
        ...moveFlags(o),
        txId: o.tx,
        table: o.table,
        key: o.key,
        mode: o.mode,
      });
    },
  );

  program
    .command('restore')
    .description(
      'restore the protected tables as of a time onto an empty server (--to-time, from the journal), ' +
        'or a backup into a new datadir (--backup, from a backup store)',
    )
    .addOption(configOption())
    .option('--to-time <time>', 'journal mode (or point-in-time mode with --job): the point in time', time)
    .option('--backup <id>', 'backup mode: the backup to restore (full, incremental or differential)')
    .option('--job <name>', 'point-in-time mode: the backup job whose newest backup before the target is restored')
    .option('--to-gtid <gtid>', 'point-in-time mode: the GTID position to stop at (inclusive), e.g. 0-1-1234')
    .option('--log-job <name>', "point-in-time mode: the log job to replay (else the config's backup.jobs[].logs)")
    .option(
      '--scratch-port <port>',
      'point-in-time mode: the port of the scratch server started on the datadir',
      positive,
    )
    .option('--scratch-user <user>', 'point-in-time mode: the account replaying (password: $TIDEMARK_SCRATCH_PASSWORD)')
    .requiredOption(
      '--into <url|dir>',
      '--to-time: mysql://USER[:PASSWORD]@HOST[:PORT] (or the password in $TIDEMARK_INTO_PASSWORD); ' +
        '--backup: an empty or new directory, the datadir to prepare',
    )
    .option('--store <name>', "--backup/--job: a store of the config's backup.stores (else the job's, or the only one)")
    .option('--store-dir <dir>', '--backup: the directory backup store')
    .option('--store-s3 <url>', '--backup: the S3 backup store, s3://BUCKET[/PREFIX/] (credentials: AWS env/profile)')
    .option('--s3-endpoint <url>', '--backup: S3-compatible endpoint (else $TIDEMARK_S3_ENDPOINT, else AWS)')
    .option('--key-file <file>', '--backup: the backup master key file (else $TIDEMARK_BACKUP_KEY)')
    .action(async (o: RestoreFlags) => {
      if (o.job !== undefined || o.toGtid !== undefined) {
        if (o.backup !== undefined)
          throw usageError('--backup restores one backup; --job/--to-gtid a point in time: not both');
        exactlyOne(o, ['--to-time', '--to-gtid']);
        const scratchPassword = io.env['TIDEMARK_SCRATCH_PASSWORD'];
        if (scratchPassword) state.secrets.push(scratchPassword);
        state.exitCode = await deps.commands.restoreBackup(restoreBackupOptions(o, io, configPath, context));
        return;
      }
      exactlyOne(o, ['--to-time', '--backup']);
      if (o.backup !== undefined) {
        state.exitCode = await deps.commands.restoreBackup(restoreBackupOptions(o, io, configPath, context));
        return;
      }
      const backupOnly = [
        'store',
        'storeDir',
        'storeS3',
        's3Endpoint',
        'keyFile',
        'logJob',
        'scratchPort',
        'scratchUser',
      ].filter((k) => o[k as keyof RestoreFlags] !== undefined);
      if (backupOnly.length > 0) {
        throw usageError(
          `--${backupOnly[0]?.replace(/[A-Z0-9]/g, (c) => `-${c.toLowerCase()}`)} goes with --backup or --job, not --to-time alone`,
        );
      }
      const password = io.env['TIDEMARK_INTO_PASSWORD'];
      if (password) state.secrets.push(password);
      const inUrl = /^[a-z]+:\/\/[^:@/]*:([^@/]*)@/i.exec(o.into)?.[1];
      if (inUrl) state.secrets.push(inUrl, decodeURIComponent(inUrl));
      state.exitCode = await deps.commands.restore({
        ...context(configPath(o)),
        toTimeUs: o.toTime as bigint,
        into: o.into,
        intoPassword: password,
      });
    });
}

interface RestoreFlags {
  config?: string;
  toTime?: bigint;
  backup?: string;
  into: string;
  store?: string;
  storeDir?: string;
  storeS3?: string;
  s3Endpoint?: string;
  keyFile?: string;
  job?: string;
  toGtid?: string;
  logJob?: string;
  scratchPort?: number;
  scratchUser?: string;
}

/**
 * The backup and point-in-time modes' options. The config is optional here (a restore host may have none); when
 * one is given (-c or $TIDEMARK_CONFIG) its `backup:` section names the store and the key, else the flags do.
 */
function restoreBackupOptions(
  o: RestoreFlags,
  io: MainIO,
  configPath: ConfigPath,
  context: ContextFn,
): RestoreBackupCommandOptions {
  if (/^[a-z]+:\/\//i.test(o.into)) throw usageError(`--into with --backup is a directory, not a URL`);
  if (o.storeDir !== undefined && o.storeS3 !== undefined) {
    throw usageError('give one backup store: --store-dir DIR or --store-s3 s3://BUCKET/PREFIX/, not both');
  }
  if (o.s3Endpoint !== undefined && o.storeS3 === undefined) throw usageError('--s3-endpoint goes with --store-s3');
  const hasConfig = o.config !== undefined || io.env['TIDEMARK_CONFIG'] !== undefined;
  const ctx = hasConfig ? context(configPath(o)) : null;
  const b = ctx?.config.backup;
  let store: StoreSpec;
  if (o.storeS3 !== undefined) {
    store = {
      kind: 's3',
      ...parseS3Url(o.storeS3),
      endpoint: o.s3Endpoint ?? io.env['TIDEMARK_S3_ENDPOINT'],
      region: io.env['AWS_REGION'] ?? 'us-east-1',
    };
  } else if (o.storeDir !== undefined) {
    store = { kind: 'dir', path: o.storeDir };
  } else if (b !== undefined) {
    const jobStore = o.job === undefined ? undefined : b.jobs.find((j) => j.name === o.job)?.store;
    const name = o.store ?? jobStore ?? (b.stores.length === 1 ? b.stores[0]?.name : undefined);
    const known = b.stores.map((s) => s.name).join(', ');
    if (name === undefined) throw usageError(`name the backup store: --store NAME (backup.stores has: ${known})`);
    if (!b.stores.some((s) => s.name === name)) {
      throw usageError(`--store ${name}: no such store in backup.stores (it has: ${known})`);
    }
    store = { kind: 'configured', backup: b, name };
  } else {
    throw usageError(
      'the backup store: a config with a backup: section (-c), or --store-dir DIR, or --store-s3 s3://BUCKET/PREFIX/',
    );
  }
  const key =
    o.keyFile !== undefined
      ? { file: o.keyFile }
      : b?.encryption.key_file !== undefined
        ? { file: b.encryption.key_file }
        : { env: b?.encryption.key_env ?? 'TIDEMARK_BACKUP_KEY' };
  const log = ctx?.log ?? createLogger('info');
  const common = { into: o.into, store, key, env: io.env, log, signal: io.signal, stdout: io.stdout };
  if (o.job === undefined) return { id: o.backup as string, ...common };
  return { id: '', pointInTime: pointInTimeSpec(o, o.job, ctx), ...common };
}

/** The point-in-time mode's spec; the log job from --log-job, else from the config's job (`logs:`). */
function pointInTimeSpec(o: RestoreFlags, job: string, ctx: CommandContext | null) {
  const configured = ctx?.config.backup?.jobs.find((j) => j.name === job) as { logs?: unknown } | undefined;
  const logJob = o.logJob ?? (typeof configured?.logs === 'string' ? configured.logs : undefined);
  if (logJob === undefined) {
    throw usageError(`--job ${job} needs its log job: --log-job NAME (or 'logs:' on the job in the config)`);
  }
  if (o.scratchPort === undefined) {
    throw usageError('a point-in-time restore needs --scratch-port PORT (the scratch server it replays into)');
  }
  const target = o.toGtid !== undefined ? { gtid: o.toGtid } : { time: new Date(Number((o.toTime as bigint) / 1000n)) };
  return { job, logJob, target, scratchPort: o.scratchPort, scratchUser: o.scratchUser ?? 'root' };
}

function moveFlags(o: MoveFlags) {
  return { target: o.target, dryRun: o.dryRun === true, sqlFile: o.sql, yes: o.yes === true };
}
