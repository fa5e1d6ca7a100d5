/**
 * What main() takes from outside: the process's streams, environment and stop signal (MainIO), and the command
 * implementations with the logger factory (MainDeps), which tests replace to check what the parser hands over.
 * Its own module so main.ts and the command groups it adds (main-rewind.ts, main-sites.ts) share them without a
 * cycle.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import type { BackupOptions } from './commands/backup.ts';
import type { CertsCommandOptions } from './commands/certs.ts';
import type { CommandContext, TextSink } from './commands/context.ts';
import type { HistoryOptions } from './commands/history.ts';
import type { InitOptions } from './commands/init.ts';
import type { LogOptions } from './commands/log.ts';
import type { RestoreOptions } from './commands/restore.ts';
import type { RestoreBackupCommandOptions } from './commands/restore-backup.ts';
import type { DrillCommandOptions } from './commands/drill.ts';
import type { ForwardOptions, RewindOptions } from './commands/rewind.ts';
import type { RunOptions } from './commands/run.ts';
import type { ShipOptions } from './commands/ship.ts';
import type { SkipOptions } from './commands/skip.ts';
import type { SwitchoverOptions } from './commands/switchover.ts';
import type { FailoverOptions } from './commands/failover.ts';
import type { FailbackOptions } from './commands/failback.ts';
import type { StatusOptions } from './commands/status.ts';
import type { UndoOptions } from './commands/undo.ts';
import type { VerifyOptions } from './commands/verify.ts';

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
  skip(opts: SkipOptions): Promise<number>;
  log(opts: LogOptions): Promise<number>;
  history(opts: HistoryOptions): Promise<number>;
  rewind(opts: RewindOptions): Promise<number>;
  forward(opts: ForwardOptions): Promise<number>;
  undo(opts: UndoOptions): Promise<number>;
  restore(opts: RestoreOptions): Promise<number>;
  restoreBackup(opts: RestoreBackupCommandOptions): Promise<number>;
  ship(opts: ShipOptions): Promise<number>;
  failover(opts: FailoverOptions): Promise<number>;
  failback(opts: FailbackOptions): Promise<number>;
  witness(opts: CommandContext): Promise<number>;
  switchover(opts: SwitchoverOptions): Promise<number>;
  backup(opts: BackupOptions): Promise<number>;
  drill(opts: DrillCommandOptions): Promise<number>;
}

export interface MainDeps {
  readonly commands: Commands;
  readonly createLogger: (config: Config) => Logger;
}
