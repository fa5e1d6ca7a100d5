/** Exponential backoff state and an abortable sleep, for the long-running loops of `tidemark run`. */
export interface Backoff {
  next(): number;
  reset(): void;
}

export function backoff(baseMs: number, maxMs: number): Backoff {
  let cur = baseMs;
  return {
    next() {
      const v = cur;
      cur = Math.min(maxMs, cur * 2);
      return v;
    },
    reset() {
      cur = baseMs;
    },
  };
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
