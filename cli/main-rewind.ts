/** The rewind commands of the command line (cli/main.ts builds the program): log, history, rewind, forward, undo, restore. */
import { type Command, Option } from 'commander';
import type { CommandContext } from './commands/context.ts';
import { usageError } from './commands/exit.ts';
import { configOption, exactlyOne, positive, time } from './main-args.ts';
import type { MainDeps, MainIO } from './main-deps.ts';

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
      .option('--sql <file>', 'write the statements as a script for the mariadb client instead of running them')
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
    .description('build the protected tables as of a time on an empty server, from the baseline and the journal')
    .addOption(configOption())
    .requiredOption('--to-time <time>', 'the point in time', time)
    .requiredOption('--into <url>', 'mysql://USER[:PASSWORD]@HOST[:PORT] (or the password in $TIDEMARK_INTO_PASSWORD)')
    .action(async (o: { config?: string; toTime: bigint; into: string }) => {
      const password = io.env['TIDEMARK_INTO_PASSWORD'];
      if (password) state.secrets.push(password);
      const inUrl = /^[a-z]+:\/\/[^:@/]*:([^@/]*)@/i.exec(o.into)?.[1];
      if (inUrl) state.secrets.push(inUrl, decodeURIComponent(inUrl));
      state.exitCode = await deps.commands.restore({
        ...context(configPath(o)),
        toTimeUs: o.toTime,
        into: o.into,
        intoPassword: password,
      });
    });
}

function moveFlags(o: MoveFlags) {
  return { target: o.target, dryRun: o.dryRun === true, sqlFile: o.sql, yes: o.yes === true };
}
