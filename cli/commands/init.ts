/**
 * `tidemark init`: writes the annotated example config (config/example-config.yaml; with `--engine postgres`
 * config/example-config-postgres.yaml, a PostgreSQL source and target with the DBA's prerequisites) to a file, or
 * to stdout with `-o -`. Never overwrites an existing file unless --force is given.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { TidemarkError } from '../../core/errors.ts';
import { EXIT_OK, usageError } from './exit.ts';
import type { TextSink } from './context.ts';

export const EXAMPLE_CONFIG_URL = new URL('../../config/example-config.yaml', import.meta.url);
export const EXAMPLE_CONFIG_POSTGRES_URL = new URL('../../config/example-config-postgres.yaml', import.meta.url);

/** The engines `tidemark init --engine` has an example for. */
export const INIT_ENGINES = ['mysql', 'postgres'] as const;
export type InitEngine = (typeof INIT_ENGINES)[number];

export interface InitOptions {
  /** Where to write; "-" writes to stdout. */
  readonly output: string;
  /** Replace an existing file. */
  readonly force: boolean;
  /** Which example: MySQL/MariaDB (default) or PostgreSQL. */
  readonly engine?: InitEngine;
  readonly stdout: TextSink;
}

export function exampleConfigText(engine: InitEngine = 'mysql'): string {
  return readFileSync(engine === 'postgres' ? EXAMPLE_CONFIG_POSTGRES_URL : EXAMPLE_CONFIG_URL, 'utf8');
}

export async function initCommand(opts: InitOptions): Promise<number> {
  const engine = opts.engine ?? 'mysql';
  if (!INIT_ENGINES.includes(engine)) {
    throw usageError(`--engine must be one of ${INIT_ENGINES.join(', ')} (got "${engine}")`);
  }
  const text = exampleConfigText(engine);
  if (opts.output === '-') {
    opts.stdout.write(text);
    return EXIT_OK;
  }
  const path = resolve(opts.output);
  const ioError = (err: unknown) =>
    new TidemarkError(`cannot write ${opts.output}`, { code: 'IO', cause: err, context: { path } });
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (err) {
    throw ioError(err);
  }
  try {
    // 'wx' fails if the file exists, atomically: no window between a check and the write.
    writeFileSync(path, text, { flag: opts.force ? 'w' : 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw usageError(`${opts.output} already exists; use --force to overwrite it`);
    }
    throw ioError(err);
  }
  opts.stdout.write(
    `wrote ${opts.output}\n` +
      'next: edit it, export TIDEMARK_SOURCE_PASSWORD and TIDEMARK_TARGET_PASSWORD, then run\n' +
      `  tidemark run -c ${opts.output}\n`,
  );
  return EXIT_OK;
}
