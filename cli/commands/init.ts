/**
 * `tidemark init`: writes the annotated example config (config/example-config.yaml) to a file, or to stdout with
 * `-o -`. Never overwrites an existing file unless --force is given.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { TidemarkError } from '../../core/errors.ts';
import { EXIT_OK, usageError } from './exit.ts';
import type { TextSink } from './context.ts';

export const EXAMPLE_CONFIG_URL = new URL('../../config/example-config.yaml', import.meta.url);

export interface InitOptions {
  /** Where to write; "-" writes to stdout. */
  readonly output: string;
  /** Replace an existing file. */
  readonly force: boolean;
  readonly stdout: TextSink;
}

export function exampleConfigText(): string {
  return readFileSync(EXAMPLE_CONFIG_URL, 'utf8');
}

export async function initCommand(opts: InitOptions): Promise<number> {
  const text = exampleConfigText();
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
