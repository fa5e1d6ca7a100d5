/**
 * What every config-driven command receives from cli/main.ts: the validated config (passwords resolved, kept
 * non-enumerable), a logger built from its `log` section, the stop signal (aborted on SIGINT/SIGTERM) and where
 * to print results. Commands return their exit code (cli/commands/exit.ts) and throw TidemarkError for failures.
 */
import type { Logger } from 'pino';
import type { Config } from '../../config/config.ts';

/** Where a command prints its human or JSON output (stdout). Logs go to the logger, never here. */
export interface TextSink {
  write(text: string): unknown;
}

export interface CommandContext {
  readonly config: Config;
  readonly log: Logger;
  /** Aborted on the first SIGINT/SIGTERM: stop taking new work, flush, close, then return. */
  readonly signal: AbortSignal;
  readonly stdout: TextSink;
}
