/**
 * How a follower of a journal directory sleeps between looks: until an fs.watch notice about a directory entry it
 * cares about, or `pollMs`, or its abort signal, whichever comes first. Without inotify (or before the directory
 * exists) it polls alone. The journal reader (reader.ts) and the rollback index follower (node/index-follow.ts) use it.
 *
 * Only entries the follower names wake it: the rollback index's SQLite files share the journal directory and change
 * with every batch the index writes, and DURABLE after every fdatasync — a reader woken by those looked for frames
 * that could not be there (issue #15: fewer wake-ups of the applying and shipping processes).
 */
import { type FSWatcher, watch } from 'node:fs';

export interface DirChangeOptions {
  readonly dir: string;
  readonly pollMs: number;
  readonly signal?: AbortSignal | undefined;
  /** Whether a change to entry `name` wakes the waiter. */
  readonly wakesOn: (name: string) => boolean;
  /** The first wait returns at once (as if a change had been seen before watching started). Default false. */
  readonly pending?: boolean;
}

export class DirChange {
  readonly #o: DirChangeOptions;
  #watcher: FSWatcher | null = null;
  #dirty: boolean;
  #wake: (() => void) | null = null;

  constructor(o: DirChangeOptions) {
    this.#o = o;
    this.#dirty = o.pending === true;
  }

  /** Resolves at the next relevant change (at once if one came since the last wait), after pollMs, or on abort. */
  async wait(): Promise<void> {
    this.#start();
    if (this.#dirty) {
      this.#dirty = false;
      return;
    }
    const signal = this.#o.signal;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.#wake = null;
        resolve();
      };
      const timer = setTimeout(done, this.#o.pollMs);
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
      this.#watcher = watch(this.#o.dir, { persistent: false }, (_event, name) => {
        // A notice without a name (not on Linux) could be anything: wake.
        if (name !== null && !this.#o.wakesOn(name)) return;
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
