/**
 * The command line: parses arguments (commander), loads and checks the config, and dispatches to one command
 * module. Returns the exit code instead of exiting, so tests drive it in-process; cli/program.ts wires it to
 * the real process (argv, signals, exit).
 */
import { Command, Option } from 'commander';
import pkg from '../package.json' with { type: 'json' };
import { TidemarkError } from '../core/errors.ts';
import { type Config, loadConfig } from '../config/config.ts';
import { EXIT_OK, reportError, usageError } from './commands/exit.ts';
import { createLogger } from '../core/log.ts';
import { collect, configOption, exactlyOne, positive, seconds, seqNumber, tableName } from './main-args.ts';
import { addRewindCommands } from './main-rewind.ts';
import { addBackupCommands } from './main-backup.ts';
import { addSiteCommands } from './main-sites.ts';

import type { CommandContext } from './commands/context.ts';
import type { InitEngine } from './commands/init.ts';
import type { Commands, MainDeps, MainIO } from './main-deps.ts';

export type { Commands, MainDeps, MainIO };

// Loaded on use: `tidemark init` must work even while the pipeline modules cannot be imported.
const defaultCommands: Commands = {
  init: async (o) => (await import('./commands/init.ts')).initCommand(o),
  certs: async (o) => (await import('./commands/certs.ts')).certsCommand(o),
  run: async (o) => (await import('./commands/run.ts')).runCommand(o),
  status: async (o) => (await import('./commands/status.ts')).statusCommand(o),
  verify: async (o) => (await import('./commands/verify.ts')).verifyCommand(o),
  skip: async (o) => (await import('./commands/skip.ts')).skipCommand(o),
  log: async (o) => (await import('./commands/log.ts')).logCommand(o),
  history: async (o) => (await import('./commands/history.ts')).historyCommand(o),
  rewind: async (o) => (await import('./commands/rewind.ts')).rewindCommand(o),
  forward: async (o) => (await import('./commands/rewind.ts')).forwardCommand(o),
  undo: async (o) => (await import('./commands/undo.ts')).undoCommand(o),
  restore: async (o) => (await import('./commands/restore.ts')).restoreCommand(o),
  restoreBackup: async (o) => (await import('./commands/restore-backup.ts')).restoreBackupCommand(o),
  ship: async (o) => (await import('./commands/ship.ts')).shipCommand(o),
  failover: async (o) => (await import('./commands/failover.ts')).failoverCommand(o),
  failback: async (o) => (await import('./commands/failback.ts')).failbackCommand(o),
  witness: async (o) => (await import('./commands/witness.ts')).witnessCommand(o),
  switchover: async (o) => (await import('./commands/switchover.ts')).switchoverCommand(o),
  backup: async (o) => (await import('./commands/backup.ts')).backupCommand(o),
  drill: async (o) => (await import('./commands/drill.ts')).drillCommand(o),
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
  'skip',
  'log',
  'history',
  'rewind',
  'forward',
  'undo',
  'restore',
  'ship',
  'failover',
  'failback',
  'switchover',
  'witness',
  'backup',
  'help',
];

const EXIT_CODES_HELP = `
Exit codes: 0 success, 1 runtime error, 2 bad usage or config, 3 verify found differences,
130/143 stopped by SIGINT/SIGTERM. Set TIDEMARK_DEBUG=1 for stack traces.`;

/** Every --target names a target of the config file. */
function checkTargets(config: Config, file: string, names: readonly string[] | undefined): void {
  const known = config.targets.map((t) => t.name);
  for (const name of names ?? []) {
    if (!known.includes(name)) {
      throw usageError(`--target ${name}: ${file} has no such target (it has: ${known.join(', ')})`);
    }
  }
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
    .addOption(
      new Option('--engine <engine>', "the example's source and target engine (postgres: PostgreSQL 15)")
        .choices(['mysql', 'postgres'] satisfies InitEngine[])
        .default('mysql'),
    )
    .action(async (o: { output: string; force?: boolean; engine: string }) => {
      state.exitCode = await deps.commands.init({
        output: o.output,
        force: o.force === true,
        engine: o.engine as InitEngine,
        stdout: io.stdout,
      });
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
    .command('skip')
    .description(
      "move a target past the one transaction it stopped at (or, with --to-baseline, to the journal's newest " +
        'baseline); audited in <journal>/audit.log',
    )
    .addOption(configOption())
    .requiredOption('--target <name>', 'the target')
    .option('--seq <n>', 'a seq of the transaction to skip, as the apply error names it', seqNumber)
    .option('--to-baseline', "restart the target from the journal's newest baseline (after a lost journal)")
    .option('--reason <text>', 'why (recorded in the audit line)')
    .action(async (o: { config?: string; target: string; seq?: bigint; toBaseline?: boolean; reason?: string }) => {
      exactlyOne(o, ['--seq', '--to-baseline']);
      const file = configPath(o);
      const ctx = context(file);
      checkTargets(ctx.config, file, [o.target]);
      state.exitCode = await deps.commands.skip({
        ...ctx,
        target: o.target,
        seq: o.seq,
        toBaseline: o.toBaseline === true,
        reason: o.reason,
      });
    });

  addSiteCommands(program, deps, state, { configPath, context, configOption });
  addRewindCommands(program, io, deps, state, configPath, context);
  addBackupCommands(program, deps, state, { configPath, context, configOption }, io.env);
  return program;
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
