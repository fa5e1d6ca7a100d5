/**
 * How a journal reader sleeps at the end of what it can read: until an fs.watch notice about one of the directory
 * entries it cares about, or `pollMs`, or its abort signal, whichever comes first. Without inotify (or before the
 * directory exists) it polls alone.
 *
 * Only entries the reader names wake it: the rollback index's SQLite files share the journal directory and change
 * with every batch the index writes, and DURABLE after every fdatasync — a reader woken by those looked for frames
 * that could not be there (issue #15: fewer wake-ups of the applying and shipping processes).
 */
import { type FSWatcher, watch } from 'node:fs';

export class DirChange {
  readonly #dir: string;
  readonly #pollMs: number;
  readonly #signal: AbortSignal | undefined;
  readonly #wakesOn: (name: string) => boolean;
  #watcher: FSWatcher | null = null;
  #dirty = false;
  #wake: (() => void) | null = null;

  constructor(dir: string, pollMs: number, signal: AbortSignal | undefined, wakesOn: (name: string) => boolean) {
    this.#dir = dir;
    this.#pollMs = pollMs;
    this.#signal = signal;
    this.#wakesOn = wakesOn;
  }

  /** Resolves at the next relevant change (at once if one came since the last wait), after pollMs, or on abort. */
  async wait(): Promise<void> {
    this.#start();
    if (this.#dirty) {
      this.#dirty = false;
      return;
    }
    const signal = this.#signal;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.#wake = null;
        resolve();
      };
      const timer = setTimeout(done, this.#pollMs);
      signal?.addEventListener('abort', done);
      this.#wake = done;
    });
    this.#dirty = false;
  }

  close(): void {
    this.#watcher?.close();
    this.#watcher = null;
  }

  #start(): void {
    if (this.#watcher) return;
    try {
      this.#watcher = watch(this.#dir, { persistent: false }, (_event, name) => {
        // A notice without a name (not on Linux) could be anything: wake.
        if (name !== null && !this.#wakesOn(name)) return;
        this.#dirty = true;
        this.#wake?.();
      });
      this.#watcher.on('error', () => this.close());
    } catch {
      // No directory yet, or no inotify: polling alone.
      this.#watcher = null;
    }
  }
}
