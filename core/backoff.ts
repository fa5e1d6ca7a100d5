/**
 * The one exponential backoff of tidemark: the n-th wait is `base · 2ⁿ`, capped at `max`, and (for waits that many
 * processes may take at the same moment: reconnects, restarts of a loop) shortened by up to `jitter` of itself at
 * random, so peers that lost the same server do not all come back in the same millisecond. Jitter only shortens a
 * wait, so every caller's bounds hold: no wait is ever longer than `max`, none shorter than `(1 - jitter) · base`.
 *
 * `backoffDelayMs` is the deterministic schedule (no jitter) for policies that must give the same answer every time
 * they are asked (failover's takeover retries and confirmation gaps are pure decisions replayed in tests).
 *
 * `withRetry` retries a call while it throws a retriable TidemarkError; unknown errors are not retried.
 */
import { isRetriable, TidemarkError } from './errors.ts';

/** The share of a wait that jitter may take off it, unless a caller says otherwise. */
export const DEFAULT_JITTER = 0.2;

export interface JitterOptions {
  /** 0 (none) … 1; default DEFAULT_JITTER. */
  readonly jitter?: number;
  /** [0, 1) source of randomness; default Math.random (tests pass their own). */
  readonly random?: () => number;
}

/** The wait before retry `attempt` (0 = the first retry): base doubling, capped at max; no jitter. */
export function backoffDelayMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(baseMs * 2 ** Math.min(Math.max(attempt, 0), 30), maxMs);
}

/** `ms` shortened by a random share of at most `jitter` of it (whole milliseconds, never below 0). */
export function jittered(ms: number, o: JitterOptions = {}): number {
  const share = Math.min(1, Math.max(0, o.jitter ?? DEFAULT_JITTER));
  const cut = Math.floor(ms * share * (o.random ?? Math.random)());
  return Math.max(0, ms - cut);
}

/** Backoff state for a loop: `next()` is the wait to take now, `reset()` after a success. */
export interface Backoff {
  next(): number;
  reset(): void;
}

export function backoff(baseMs: number, maxMs: number, o: JitterOptions = {}): Backoff {
  let attempt = 0;
  return {
    next() {
      return jittered(backoffDelayMs(attempt++, baseMs, maxMs), o);
    },
    reset() {
      attempt = 0;
    },
  };
}

export interface RetryOptions extends JitterOptions {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  what: string;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  signal?: AbortSignal;
}

/**
 * Retries `fn` while the thrown error is retriable (a TidemarkError with `retriable`; anything else is rethrown at
 * once). Gives up with a TidemarkError that names what was tried and how often, with the last error as cause.
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const delays = backoff(opts.baseDelayMs, opts.maxDelayMs, opts);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!isRetriable(err)) throw err;
      if (attempt >= opts.attempts || opts.signal?.aborted) {
        throw new TidemarkError(`${opts.what}: gave up after ${attempt} attempts`, {
          code: 'RETRIES_EXHAUSTED',
          retriable: false,
          cause: err,
        });
      }
      const delay = delays.next();
      opts.onRetry?.(err, attempt, delay);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
