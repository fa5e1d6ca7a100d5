/** Exponential backoff state for the long-running loops of `tidemark run` (sleep: core/errors.ts). */
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
