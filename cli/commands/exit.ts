/**
 * How the CLI ends: exit codes and the single stderr line that reports a failure. Nothing here prints a stack
 * trace unless TIDEMARK_DEBUG=1, and known secrets are masked even if some library put one in a message.
 */
import { CommanderError } from 'commander';
import { ConfigError, describeChain, type ErrorCode, TidemarkError } from '../../core/errors.ts';

export const EXIT_OK = 0;
/** A runtime failure: a server refused, the journal is damaged, an invariant broke. */
export const EXIT_RUNTIME = 1;
/** The user asked for something malformed: bad flags, bad config. Fix the input, not the system. */
export const EXIT_USAGE = 2;
/** `verify` found differences (reserved for the verify command; distinct from a failure to verify). */
export const EXIT_DIFFERENT = 3;
/** Stopped by a signal before the command finished on its own: 128 + signal number, as shells report it. */
export const EXIT_SIGNAL: Readonly<Record<'SIGINT' | 'SIGTERM', number>> = { SIGINT: 130, SIGTERM: 143 };

/** Error codes (TidemarkError.code) that mean "the input is wrong" and so end with EXIT_USAGE. */
const USAGE_CODES: ReadonlySet<ErrorCode> = new Set(['CONFIG', 'USAGE']);

/** For problems found in flags after commander accepted them (an unknown --target name, a file that exists). */
export function usageError(message: string): TidemarkError {
  return new TidemarkError(message, { code: 'USAGE' });
}

export interface ErrorReport {
  readonly exitCode: number;
  /** The text to write to stderr, newline-terminated: one line, plus stack traces in debug mode. */
  readonly text: string;
}

export interface ReportOptions {
  readonly debug: boolean;
  /** Values to mask wherever they appear (resolved passwords). */
  readonly secrets?: readonly string[];
  /** The signal that asked us to stop, if one did: errors caused by that stop are reported as the stop. */
  readonly stoppedBy?: 'SIGINT' | 'SIGTERM' | undefined;
  /** Where to read more after a usage error, e.g. "tidemark run --help". */
  readonly helpHint?: string;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

function mask(s: string, secrets: readonly string[]): string {
  let out = s;
  // Very short values would mangle ordinary words; config passwords that short are not worth hiding anyway.
  for (const secret of secrets) if (secret.length >= 4) out = out.split(secret).join('[redacted]');
  return out;
}

function stacks(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur instanceof Error && depth < 8; depth++) {
    parts.push(depth === 0 ? (cur.stack ?? cur.message) : `caused by: ${cur.stack ?? cur.message}`);
    if (cur instanceof TidemarkError && Object.keys(cur.context).length > 0) {
      parts.push(`context: ${JSON.stringify(cur.context, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
    }
    cur = (cur as { cause?: unknown }).cause;
  }
  return parts.join('\n');
}

function isAbort(err: unknown): boolean {
  return (
    err instanceof Error && (err.name === 'AbortError' || (err instanceof TidemarkError && err.code === 'STOPPED'))
  );
}

/** Maps any thrown value to an exit code and the stderr text `tidemark: <message>`. */
export function reportError(err: unknown, opts: ReportOptions): ErrorReport {
  const secrets = opts.secrets ?? [];
  let exitCode: number;
  let message: string;
  if (err instanceof CommanderError) {
    // Help and --version arrive here too (exit code 0); commander already printed them.
    if (err.exitCode === 0) return { exitCode: EXIT_OK, text: '' };
    // `tidemark` with no command prints the help on stderr and needs no extra line.
    if (err.code === 'commander.help') return { exitCode: EXIT_USAGE, text: '' };
    exitCode = EXIT_USAGE;
    message = `${err.message.replace(/^error: /, '')} (see ${opts.helpHint ?? 'tidemark --help'})`;
  } else if (opts.stoppedBy && isAbort(err)) {
    exitCode = EXIT_SIGNAL[opts.stoppedBy];
    message = `stopped by ${opts.stoppedBy}`;
  } else if (err instanceof ConfigError || (err instanceof TidemarkError && USAGE_CODES.has(err.code))) {
    exitCode = EXIT_USAGE;
    message = describeChain(err);
  } else if (err instanceof TidemarkError) {
    exitCode = EXIT_RUNTIME;
    message = describeChain(err);
  } else {
    exitCode = EXIT_RUNTIME;
    const hint = opts.debug ? '' : ' (set TIDEMARK_DEBUG=1 for a stack trace)';
    message = `unexpected error: ${describeChain(err)}${hint}`;
  }
  let text = `tidemark: ${oneLine(message)}\n`;
  if (opts.debug) text += `${stacks(err)}\n`;
  return { exitCode, text: mask(text, secrets) };
}
