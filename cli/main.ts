/**
 * The command line: parses arguments (commander), loads and checks the config, and dispatches to one command
 * module. Returns the exit code instead of exiting, so tests drive it in-process; cli/tidemark.ts wires it to
 * the real process (argv, signals, exit).
 */
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import type { Logger } from 'pino';
import pkg from '../package.json' with { type: 'json' };
import { TidemarkError } from '../record/errors.ts';
import type { CertsCommandOptions } from './commands/certs.ts';
import type { CommandContext, TextSink } from './commands/context.ts';
import type { HistoryOptions } from './commands/history.ts';
import type { InitOptions } from './commands/init.ts';
import type { LogOptions } from './commands/log.ts';
import type { RestoreOptions } from './commands/restore.ts';
import type { ForwardOptions, RewindOptions } from './commands/rewind.ts';
import type { RunOptions } from './commands/run.ts';
import type { ShipOptions } from './commands/ship.ts';
import type { FailoverOptions } from './commands/failover.ts';
import type { StatusOptions } from './commands/status.ts';
import type { UndoOptions } from './commands/undo.ts';
import type { VerifyOptions } from './commands/verify.ts';
import { type Config, loadConfig } from './config.ts';
import { parseTimeArg } from '../rollback/time.ts';
import { EXIT_OK, reportError, usageError } from './exit.ts';
import { createLogger } from './log.ts';

export interface MainIO {
  readonly stdout: TextSink;
  readonly stderr: TextSink;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Aborted when the process is asked to stop; a TidemarkError with code STOPPED as reason names the signal. */
  readonly signal: AbortSignal;
}

/** The command implementations; tests replace them to check what the parser hands over. */
export interface Commands {
  init(opts: InitOptions): Promise<number>;
  certs(opts: CertsCommandOptions): Promise<number>;
  run(opts: RunOptions): Promise<number>;
  status(opts: StatusOptions): Promise<number>;
  verify(opts: VerifyOptions): Promise<number>;
  log(opts: LogOptions): Promise<number>;
  history(opts: HistoryOptions): Promise<number>;
  rewind(opts: RewindOptions): Promise<number>;
  forward(opts: ForwardOptions): Promise<number>;
  undo(opts: UndoOptions): Promise<number>;
  restore(opts: RestoreOptions): Promise<number>;
  ship(opts: ShipOptions): Promise<number>;
  failover(opts: FailoverOptions): Promise<number>;
  witness(opts: CommandContext): Promise<number>;
}

export interface MainDeps {
  readonly commands: Commands;
  readonly createLogger: (config: Config) => Logger;
}

// Loaded on use: `tidemark init` must work even while the pipeline modules cannot be imported.
const defaultCommands: Commands = {
  init: async (o) => (await import('./commands/init.ts')).initCommand(o),
  certs: async (o) => (await import('./commands/certs.ts')).certsCommand(o),
  run: async (o) => (await import('./commands/run.ts')).runCommand(o),
  status: async (o) => (await import('./commands/status.ts')).statusCommand(o),
  verify: async (o) => (await import('./commands/verify.ts')).verifyCommand(o),
  log: async (o) => (await import('./commands/log.ts')).logCommand(o),
  history: async (o) => (await import('./commands/history.ts')).historyCommand(o),
  rewind: async (o) => (await import('./commands/rewind.ts')).rewindCommand(o),
  forward: async (o) => (await import('./commands/rewind.ts')).forwardCommand(o),
  undo: async (o) => (await import('./commands/undo.ts')).undoCommand(o),
  restore: async (o) => (await import('./commands/restore.ts')).restoreCommand(o),
  ship: async (o) => (await import('./commands/ship.ts')).shipCommand(o),
  failover: async (o) => (await import('./commands/failover.ts')).failoverCommand(o),
  witness: async (o) => (await import('./commands/witness.ts')).witnessCommand(o),
};

const defaultDeps: MainDeps = {
  commands: defaultCommands,
  createLogger: (config) => createLogger(config.log.level, config.log.file),
};

const COMMAND_NAMES = [
  'init',
  'certs',
  'run',
  'status',
  'verify',
  'log',
  'history',
  'rewind',
  'forward',
  'undo',
  'restore',
  'help',
];

const EXIT_CODES_HELP = `
Exit codes: 0 success, 1 runtime error, 2 bad usage or config, 3 verify found differences,
130/143 stopped by SIGINT/SIGTERM. Set TIDEMARK_DEBUG=1 for stack traces.`;

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function tableName(value: string, previous: string[] | undefined): string[] {
  if (!/^[^.\s]+\.[^.\s]+$/.test(value)) throw new InvalidArgumentError('expected a "schema.table" name');
  return collect(value, previous);
}

function positive(value: string): number {
  if (!/^[1-9]\d{0,9}$/.test(value)) throw new InvalidArgumentError('expected a whole number, 1 or more');
  return Number(value);
}

function time(value: string): bigint {
  try {
    return parseTimeArg(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message.replace(/^time: /, ''));
  }
}

/** Exactly one of the given options must be set. */
function exactlyOne(o: object, names: readonly string[]): void {
  const given = names.filter(
    (n) =>
      (o as Record<string, unknown>)[n.replace(/^--/, '').replace(/-(\w)/g, (_, c: string) => c.toUpperCase())] !==
      undefined,
  );
  if (given.length !== 1) {
    throw usageError(`give exactly one of ${names.join(', ')}${given.length ? ` (got ${given.join(' and ')})` : ''}`);
  }
}

function seconds(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number of seconds (0 or more)');
  return Number(value);
}

/** Every --target names a target of the config file. */
function checkTargets(config: Config, file: string, names: readonly string[] | undefined): void {
  const known = config.targets.map((t) => t.name);
  for (const name of names ?? []) {
    if (!known.includes(name)) {
      throw usageError(`--target ${name}: ${file} has no such target (it has: ${known.join(', ')})`);
    }
  }
}

function configOption(): Option {
  // Not commander's .env(): that reads process.env, and main() takes its environment from MainIO.
  return new Option('-c, --config <file>', 'config file (YAML); default: $TIDEMARK_CONFIG');
}

function buildProgram(io: MainIO, deps: MainDeps, state: { exitCode: number; secrets: string[] }): Command {
  const program = new Command('tidemark')
    .description('Continuous data protection for MySQL/MariaDB: capture, durable journal, exactly-once apply.')
    .version(pkg.version, '-V, --version')
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // Errors are reported once, by main(), as a single "tidemark: ..." line.
      outputError: () => {},
    })
    .exitOverride()
    .addHelpText('after', EXIT_CODES_HELP);

  /** -c FILE, else $TIDEMARK_CONFIG (read from MainIO, not process.env, so tests control it). */
  const configPath = (o: { config?: string }): string => {
    const file = o.config ?? io.env['TIDEMARK_CONFIG'];
    if (!file) throw usageError('no config file: give -c FILE or set TIDEMARK_CONFIG');
    return file;
  };
  /** Loads the config, remembers its secrets for masking, and builds the context every command gets. */
  const context = (configFile: string): CommandContext => {
    const config = loadConfig(configFile);
    for (const e of [config.source, config.source.admin, config.failover?.account, ...config.targets]) {
      if (e?.password) state.secrets.push(e.password);
    }
    return { config, log: deps.createLogger(config), signal: io.signal, stdout: io.stdout };
  };

  program
    .command('init')
    .description('write an annotated example config file')
    .option('-o, --output <file>', 'where to write it ("-" for stdout)', 'tidemark.yaml')
    .option('--force', 'overwrite an existing file')
    .action(async (o: { output: string; force?: boolean }) => {
      state.exitCode = await deps.commands.init({ output: o.output, force: o.force === true, stdout: io.stdout });
    });

  program
    .command('certs')
    .description('make a CA and per-site TLS certificates for shipping between sites')
    .requiredOption('--dir <dir>', 'where the CA and the site keys and certificates go')
    .requiredOption('--ca <name>', 'the CA name (made once; reused when it exists)')
    .requiredOption('--site <name>', 'a site to make a key and certificate for; repeat for several', collect)
    .option('--host <name>', 'a DNS name every site certificate of this call also carries; repeatable', collect)
    .option('--ip <address>', 'an IP address every site certificate of this call also carries; repeatable', collect)
    .option('--days <n>', 'site certificate validity in days', positive)
    .option('--force', 'replace a CA that does not fit, and re-issue existing site certificates')
    .action(
      async (o: {
        dir: string;
        ca: string;
        site: string[];
        host?: string[];
        ip?: string[];
        days?: number;
        force?: boolean;
      }) => {
        state.exitCode = await deps.commands.certs({
          dir: o.dir,
          ca: o.ca,
          sites: o.site,
          ...(o.host ? { hosts: o.host } : {}),
          ...(o.ip ? { ips: o.ip } : {}),
          ...(o.days !== undefined ? { days: o.days } : {}),
          force: o.force === true,
          stdout: io.stdout,
        });
      },
    );

  program
    .command('run')
    .description('capture changes from the source and apply them to the targets until stopped')
    .addOption(configOption())
    .addOption(new Option('--only <part>', 'run only one half of the pipeline').choices(['capture', 'apply']))
    .option('--target <name>', 'apply only to this target; repeat for several (default: every target)', collect)
    .option('--rebaseline', 'take a new baseline before streaming (after the source purged binlogs still needed)')
    .option('--site <name>', "run only this site's roles (the primary's, or a standby's); default: every site")
    .action(
      async (o: {
        config?: string;
        only?: 'capture' | 'apply';
        target?: string[];
        rebaseline?: boolean;
        site?: string;
      }) => {
        if (o.only === 'capture' && o.target) {
          throw usageError('--target applies to apply; it cannot go with --only capture');
        }
        if (o.only === 'apply' && o.rebaseline) {
          throw usageError('--rebaseline applies to capture; it cannot go with --only apply');
        }
        const file = configPath(o);
        const ctx = context(file);
        checkTargets(ctx.config, file, o.target);
        const sites = [ctx.config.site, ...ctx.config.standbys.map((s) => s.name)];
        if (o.site !== undefined && !sites.includes(o.site)) {
          throw usageError(`--site ${o.site}: ${file} has no such site (it has: ${sites.join(', ')})`);
        }
        if (o.rebaseline && o.site !== undefined && o.site !== ctx.config.site) {
          throw usageError(`--rebaseline applies to capture, at the primary's site (${ctx.config.site})`);
        }
        state.exitCode = await deps.commands.run({
          ...ctx,
          only: o.only,
          targets: o.target,
          rebaseline: o.rebaseline === true,
          site: o.site,
        });
      },
    );

  program
    .command('status')
    .description('show capture and apply positions, lag and errors')
    .addOption(configOption())
    .option('--json', 'print JSON instead of a table')
    .action(async (o: { config?: string; json?: boolean }) => {
      state.exitCode = await deps.commands.status({ ...context(configPath(o)), json: o.json === true });
    });

  program
    .command('verify')
    .description('compare source and target tables once the targets have caught up')
    .addOption(configOption())
    .option('--json', 'print JSON instead of a report')
    .option('--table <schema.table...>', 'compare only these tables (default: every captured table)', tableName)
    .option('--wait-seconds <n>', 'how long to wait for the targets to catch up', seconds, 60)
    .option('--target <name>', 'compare only this target; repeat for several (default: every target)', collect)
    .action(
      async (o: { config?: string; json?: boolean; table?: string[]; waitSeconds: number; target?: string[] }) => {
        const file = configPath(o);
        const ctx = context(file);
        checkTargets(ctx.config, file, o.target);
        state.exitCode = await deps.commands.verify({
          ...ctx,
          json: o.json === true,
          tables: o.table,
          waitSeconds: o.waitSeconds,
          targets: o.target,
        });
      },
    );

  program
    .command('failover')
    .description('make a standby the primary now: fence the old primary, apply what it received, promote, move the VIP')
    .addOption(configOption())
    .requiredOption('--to <standby>', 'the standby to promote (run this at its site)')
    .option('--force', 'go on although the primary answers, the standby is behind another, or fencing failed')
    .action(async (o: { config?: string; to: string; force?: boolean }) => {
      const file = configPath(o);
      const ctx = context(file);
      if (!ctx.config.failover) throw usageError(`${file} has no failover section (see tidemark init)`);
      const names = ctx.config.standbys.map((s) => s.name);
      if (!names.includes(o.to)) {
        throw usageError(`--to ${o.to}: ${file} has no such standby (it has: ${names.join(', ') || 'none'})`);
      }
      state.exitCode = await deps.commands.failover({ ...ctx, to: o.to, force: o.force === true });
    });

  program
    .command('witness')
    .description('run the takeover witness: watch the primary and tell the standbys what it sees')
    .addOption(configOption())
    .action(async (o: { config?: string }) => {
      const file = configPath(o);
      const ctx = context(file);
      if (!ctx.config.failover?.witness) throw usageError(`${file} has no failover.witness section`);
      state.exitCode = await deps.commands.witness(ctx);
    });

  program
    .command('ship')
    .description('pause or resume shipping to one standby (its cursor keeps the journal it needs meanwhile)')
    .addArgument(new Argument('<action>', 'what to do').choices(['pause', 'resume']))
    .argument('<standby>', 'the standby name (config standbys[].name)')
    .addOption(configOption())
    .action(async (action: 'pause' | 'resume', standby: string, o: { config?: string }) => {
      const file = configPath(o);
      const ctx = context(file);
      const names = ctx.config.standbys.map((s) => s.name);
      if (!names.includes(standby)) {
        throw usageError(`${standby}: ${file} has no such standby (it has: ${names.join(', ') || 'none'})`);
      }
      state.exitCode = await deps.commands.ship({ ...ctx, action, standby });
    });

  addRewindCommands(program, io, deps, state, configPath, context);
  return program;
}

type ConfigPath = (o: { config?: string }) => string;
type ContextFn = (configFile: string) => CommandContext;

interface MoveFlags {
  config?: string;
  target: string;
  dryRun?: boolean;
  sql?: string;
  yes?: boolean;
}

function addRewindCommands(
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

function stopSignal(signal: AbortSignal): 'SIGINT' | 'SIGTERM' | undefined {
  if (!signal.aborted) return undefined;
  const reason: unknown = signal.reason;
  const name = reason instanceof TidemarkError ? reason.context['signal'] : undefined;
  return name === 'SIGINT' || name === 'SIGTERM' ? name : undefined;
}

/** Runs one command line (without the node and script arguments) and returns the exit code. */
export async function main(argv: readonly string[], io: MainIO, deps: Partial<MainDeps> = {}): Promise<number> {
  const state = { exitCode: EXIT_OK, secrets: [] as string[] };
  const program = buildProgram(io, { ...defaultDeps, ...deps }, state);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return state.exitCode;
  } catch (err) {
    const command = argv.find((a) => !a.startsWith('-'));
    const report = reportError(err, {
      debug: io.env['TIDEMARK_DEBUG'] === '1',
      secrets: state.secrets,
      stoppedBy: stopSignal(io.signal),
      helpHint: command && COMMAND_NAMES.includes(command) ? `tidemark ${command} --help` : 'tidemark --help',
    });
    if (report.text) io.stderr.write(report.text);
    return report.exitCode;
  }
}
