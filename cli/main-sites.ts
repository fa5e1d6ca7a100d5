/**
 * The site and takeover commands of the command line (cli/main.ts builds the program): ship pause|resume,
 * failover, failback, switchover, witness.
 */
import { Argument, type Command, type Option } from 'commander';
import type { CommandContext } from './commands/context.ts';
import { usageError } from './commands/exit.ts';
import type { MainDeps } from './main-deps.ts';

export interface ProgramHelpers {
  configPath(o: { config?: string }): string;
  context(configFile: string): CommandContext;
  configOption(): Option;
}

/** The context of FILE, checked to name `standby` among its standbys (and to have a failover section). */
function withStandby(
  h: ProgramHelpers,
  o: { config?: string },
  standby: string,
  what: string,
  needFailover: boolean,
): CommandContext {
  const file = h.configPath(o);
  const ctx = h.context(file);
  if (needFailover && !ctx.config.failover) throw usageError(`${file} has no failover section (see tidemark init)`);
  const names = ctx.config.standbys.map((s) => s.name);
  if (!names.includes(standby)) {
    throw usageError(`${what}${standby}: ${file} has no such standby (it has: ${names.join(', ') || 'none'})`);
  }
  return ctx;
}

export function addSiteCommands(
  program: Command,
  deps: MainDeps,
  state: { exitCode: number },
  h: ProgramHelpers,
): void {
  program
    .command('failover')
    .description('make a standby the primary now: fence the old primary, apply what it received, promote, move the VIP')
    .addOption(h.configOption())
    .requiredOption('--to <standby>', 'the standby to promote (run this at its site)')
    .option('--force', 'go on although the primary answers, the standby is behind another, or fencing failed')
    .action(async (o: { config?: string; to: string; force?: boolean }) => {
      const ctx = withStandby(h, o, o.to, '--to ', true);
      state.exitCode = await deps.commands.failover({ ...ctx, to: o.to, force: o.force === true });
    });

  program
    .command('failback')
    .description(
      'at the old primary after a takeover: quarantine and rewind its errant transactions, make it a standby of the new primary',
    )
    .addOption(h.configOption())
    .option('--yes', 'rewind the errant transactions and demote the journal (without it: show and quarantine only)')
    .option('--quarantine <file>', 'where to write the errant transactions (SQL); default beside the journal')
    .option('--mirror-dir <dir>', "move the demoted journal here (the new topology's mirror directory of this site)")
    .action(async (o: { config?: string; yes?: boolean; quarantine?: string; mirrorDir?: string }) => {
      const file = h.configPath(o);
      const ctx = h.context(file);
      if (!ctx.config.failover) throw usageError(`${file} has no failover section (see tidemark init)`);
      state.exitCode = await deps.commands.failback({
        ...ctx,
        yes: o.yes === true,
        quarantine: o.quarantine,
        mirrorDir: o.mirrorDir,
      });
    });

  program
    .command('switchover')
    .description(
      'planned move of the primary role to a standby: pause writes, wait for zero lag, promote, move the VIP',
    )
    .addOption(h.configOption())
    .requiredOption('--to <standby>', 'the standby to promote (run this at its site)')
    .action(async (o: { config?: string; to: string }) => {
      const ctx = withStandby(h, o, o.to, '--to ', true);
      state.exitCode = await deps.commands.switchover({ ...ctx, to: o.to });
    });

  program
    .command('witness')
    .description('run the takeover witness: watch the primary and tell the standbys what it sees')
    .addOption(h.configOption())
    .action(async (o: { config?: string }) => {
      const file = h.configPath(o);
      const ctx = h.context(file);
      if (!ctx.config.failover?.witness) throw usageError(`${file} has no failover.witness section`);
      state.exitCode = await deps.commands.witness(ctx);
    });

  program
    .command('ship')
    .description('pause or resume shipping to one standby (its cursor keeps the journal it needs meanwhile)')
    .addArgument(new Argument('<action>', 'what to do').choices(['pause', 'resume']))
    .argument('<standby>', 'the standby name (config standbys[].name)')
    .addOption(h.configOption())
    .action(async (action: 'pause' | 'resume', standby: string, o: { config?: string }) => {
      const ctx = withStandby(h, o, standby, '', false);
      state.exitCode = await deps.commands.ship({ ...ctx, action, standby });
    });
}
