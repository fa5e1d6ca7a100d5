/** A child process's end (exit code, signal or spawn error) and the tail of its stderr, for error messages. */
import type { ChildProcess } from 'node:child_process';

const TAIL = 4000;

export interface Watched {
  readonly exited: Promise<number | string | null>;
  readonly tail: () => string;
}

export function watchChild(child: ChildProcess): Watched {
  let tail = '';
  child.stderr?.on('data', (b: Buffer) => {
    tail = (tail + b.toString()).slice(-TAIL);
  });
  const exited = new Promise<number | string | null>((res) => {
    child.on('error', (e) => res((e as NodeJS.ErrnoException).code ?? e.message));
    child.on('close', (c, s) => res(c ?? s));
  });
  return { exited, tail: () => tail };
}
