/**
 * The argv of a physical backup's stream command and the option file that carries the account, built from the
 * config's `backup.stream` and the source account (pure). tidemark runs `command` with these arguments and reads
 * only its stdout: mariadb-backup --backup --stream=mbstream --target-dir=<scratch> [--incremental-lsn=N] ….
 * The password is never on the command line: with `option_file: extra|only` it goes into a mode-600 file written
 * by the runner (--defaults-extra-file / --defaults-file, which mariadb-backup requires as the first option).
 */
import { ConfigError } from '../../core/errors.ts';
import type { StreamConfig } from '../config.ts';

export interface StreamAccount {
  readonly user: string;
  readonly password?: string | undefined;
  readonly host?: string | undefined;
  readonly port?: number | undefined;
}

export interface StreamInvocation {
  readonly file: string;
  readonly args: readonly string[];
  /** The option file's text (written mode 600 at `optionFile`), or null with `option_file: none`. */
  readonly optionText: string | null;
}

/** Option-file values are written verbatim after `=`; a newline would start another option. */
function optionValue(key: string, v: string): string {
  if (/[\r\n]/.test(v)) {
    throw new ConfigError(`backup stream option '${key}' contains a line break: it cannot go into an option file`, {
      key,
    });
  }
  return v;
}

export function streamInvocation(
  cfg: StreamConfig,
  account: StreamAccount,
  o: { readonly targetDir: string; readonly optionFile: string; readonly incrementalLsn: bigint | null },
): StreamInvocation {
  const [file, ...prefix] = cfg.command as [string, ...string[]];
  const args: string[] = [...prefix];
  let optionText: string | null = null;
  if (cfg.option_file !== 'none') {
    args.push(`${cfg.option_file === 'only' ? '--defaults-file' : '--defaults-extra-file'}=${o.optionFile}`);
    const lines = ['[mariadb-backup]', `user=${optionValue('user', account.user)}`];
    if (account.password !== undefined && account.password !== '')
      lines.push(`password=${optionValue('password', account.password)}`);
    if (cfg.socket !== undefined) lines.push(`socket=${optionValue('socket', cfg.socket)}`);
    else {
      if (account.host !== undefined) lines.push(`host=${optionValue('host', account.host)}`);
      if (account.port !== undefined) lines.push(`port=${account.port}`);
    }
    optionText = `${lines.join('\n')}\n`;
  }
  args.push('--backup', '--stream=mbstream', `--target-dir=${o.targetDir}`);
  if (cfg.datadir !== undefined) args.push(`--datadir=${cfg.datadir}`);
  if (o.incrementalLsn !== null) args.push(`--incremental-lsn=${o.incrementalLsn}`);
  args.push(...cfg.extra_args);
  return { file, args, optionText };
}
