/** Argument parsers and shared options of the command line (cli/main.ts and its command groups). */
import { InvalidArgumentError, Option } from 'commander';
import { parseTimeArg } from '../rollback/time.ts';
import { usageError } from './commands/exit.ts';

export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function tableName(value: string, previous: string[] | undefined): string[] {
  if (!/^[^.\s]+\.[^.\s]+$/.test(value)) throw new InvalidArgumentError('expected a "schema.table" name');
  return collect(value, previous);
}

export function positive(value: string): number {
  if (!/^[1-9]\d{0,9}$/.test(value)) throw new InvalidArgumentError('expected a whole number, 1 or more');
  return Number(value);
}

export function time(value: string): bigint {
  try {
    return parseTimeArg(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message.replace(/^time: /, ''));
  }
}

/** Exactly one of the given options must be set. */
export function exactlyOne(o: object, names: readonly string[]): void {
  const given = names.filter(
    (n) =>
      (o as Record<string, unknown>)[n.replace(/^--/, '').replace(/-(\w)/g, (_, c: string) => c.toUpperCase())] !==
      undefined,
  );
  if (given.length !== 1) {
    throw usageError(`give exactly one of ${names.join(', ')}${given.length ? ` (got ${given.join(' and ')})` : ''}`);
  }
}

/** A journal seq: a whole number, 1 or more (a bigint). */
export function seqNumber(value: string): bigint {
  if (!/^[1-9]\d{0,19}$/.test(value))
    throw new InvalidArgumentError('expected a journal seq (a whole number, 1 or more)');
  return BigInt(value);
}

export function seconds(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number of seconds (0 or more)');
  return Number(value);
}

export function configOption(): Option {
  // Not commander's .env(): that reads process.env, and main() takes its environment from MainIO.
  return new Option('-c, --config <file>', 'config file (YAML); default: $TIDEMARK_CONFIG');
}

/** `s3://BUCKET[/PREFIX]` → bucket and prefix ('' or ending with '/'). */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (m === null) throw usageError(`--store-s3 ${url}: expected s3://BUCKET[/PREFIX/]`);
  const rest = m[2] ?? '';
  return { bucket: m[1] as string, prefix: rest === '' || rest.endsWith('/') ? rest : `${rest}/` };
}
