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
  /** How #pending settled, once it has (set by its own handlers, so a settled pull is known synchronously). */
  #settled: { readonly r: IteratorResult<T> } | { readonly err: unknown } | null = null;

  constructor(it: AsyncIterator<T>, signal: AbortSignal | undefined) {
    this.#it = it;
    this.#signal = signal;
  }

  /**
   * Asks the source for its next value and notes how it settles. Called for the value after the one just
   * handed out too (one value read ahead): an applier working through a backlog then finds its next value
   * already there and takes it without a timer, an abort listener and a race per value (issue #15: those were
   * ~3 % of an OLTP apply's main thread and its allocations).
   */
  #pull(): void {
    const p = this.#it.next();
    this.#pending = p;
    this.#settled = null;
    p.then(
      (r) => {
        if (this.#pending === p) this.#settled = { r };
      },
      (err: unknown) => {
        if (this.#pending === p) this.#settled = { err };
      },
    );
  }

  /** Hands out the settled pull (its value or its error) and starts the next one unless the source ended. */
  #take(s: { readonly r: IteratorResult<T> } | { readonly err: unknown }): Promise<IteratorResult<T>> {
    this.#pending = null;
    this.#settled = null;
    if ('err' in s) return Promise.reject(s.err);
    if (!s.r.done) this.#pull();
    return Promise.resolve(s.r);
  }

  next(timeoutMs: number | null): Promise<IteratorResult<T> | 'timeout' | 'abort'> {
    const signal = this.#signal;
    if (signal?.aborted) return Promise.resolve('abort');
    if (!this.#pending) this.#pull();
    const ready = this.#settled;
    if (ready) return this.#take(ready);
    const pending = this.#pending!;
    return new Promise((resolve) => {
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
        (r) => cleanup() && resolve(this.#take({ r })),
        (err: unknown) => cleanup() && resolve(this.#take({ err })),
      );
    });
  }

  close(): void {
    // Let the source release its resources; do not wait (a tailing reader may be blocked on new data).
    this.#it.return?.()?.catch?.(() => {});
  }
}
