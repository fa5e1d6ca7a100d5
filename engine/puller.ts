/** Pulling from the journal stream with a time limit and an abort signal (used by the appliers' grouping: apply/mysql, apply/postgres). */
/**
 * Pulls from an async iterator with an optional time limit, keeping an unfinished pull for the next call.
 * Every call races fresh promises only: racing a long-lived promise (say, one for the abort signal) with
 * Promise.race would pin every result it ever returned in memory until that promise settles.
 */
export class Puller<T> {
  readonly #it: AsyncIterator<T>;
  readonly #signal: AbortSignal | undefined;
  #pending: Promise<IteratorResult<T>> | null = null;

  constructor(it: AsyncIterator<T>, signal: AbortSignal | undefined) {
    this.#it = it;
    this.#signal = signal;
  }

  next(timeoutMs: number | null): Promise<IteratorResult<T> | 'timeout' | 'abort'> {
    const signal = this.#signal;
    if (signal?.aborted) return Promise.resolve('abort');
    if (!this.#pending) {
      this.#pending = this.#it.next();
      this.#pending.catch(() => {});
    }
    const pending = this.#pending;
    return new Promise((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const cleanup = (): boolean => {
        if (settled) return false;
        settled = true;
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        return true;
      };
      const onAbort = (): void => {
        if (cleanup()) resolve('abort');
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== null) timer = setTimeout(() => cleanup() && resolve('timeout'), timeoutMs);
      pending.then(
        (r) => {
          if (!cleanup()) return;
          this.#pending = null;
          resolve(r);
        },
        (err: unknown) => {
          if (!cleanup()) return;
          this.#pending = null;
          reject(err);
        },
      );
    });
  }

  close(): void {
    // Let the source release its resources; do not wait (a tailing reader may be blocked on new data).
    this.#it.return?.()?.catch?.(() => {});
  }
}
