/**
 * The small JSON state files `tidemark run` keeps beside a journal for other processes (ship-state.ts under
 * `<journal>/ship/`, failover-state.ts under `<dir>/failover/`): read, written durably (a decision that must
 * survive a crash), or written as advisory state (rewritten often: atomic, not fsynced).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurable } from '../core/durable-file.ts';

/**
 * The parsed file, or null when it does not exist. A file that is not JSON is an error, or with
 * `damaged: 'absent'` (advisory state) reads as absent.
 */
export async function readJsonFile(file: string, opts: { damaged: 'throw' | 'absent' }): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    if (err instanceof SyntaxError && opts.damaged === 'absent') return null;
    throw err;
  }
}

/** Writes `dir/name` as one JSON line (pretty with `pretty`), creating `dir`; `durable`: fsynced before it counts. */
export async function writeJsonFile(
  dir: string,
  name: string,
  value: unknown,
  opts: { durable: boolean; pretty?: boolean },
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const text = `${opts.pretty ? JSON.stringify(value, null, 2) : JSON.stringify(value)}\n`;
  await writeFileDurable(join(dir, name), text, { sync: opts.durable });
}
