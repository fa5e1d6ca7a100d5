/**
 * Conflicts between parallel units that the writesets missed (PARALLEL.md; used by parallel-run.ts), as decisions
 * with no I/O: the lock-wait breaker's choice of the executed units that must give way to an earlier unit stuck in
 * a statement, and whether a unit's failure may only mean that it ran before an earlier unit it conflicts with
 * committed (speculative: the units in flight are re-run one at a time) or is real (thrown).
 */
import { TidemarkError } from '../../core/errors.ts';
import { DivergenceError, errnoOf } from './errors.ts';
import { ORDERED_COMMIT_REFUSED } from './position-table.ts';
import type { Unit } from './unit-worker.ts';

/** A unit handed to its worker and not committed yet. */
export interface Flight {
  readonly unit: Unit;
  readonly worker: number;
  readonly dependsOn: number;
  readonly prevSeq: bigint | null;
  /** Set by the lock-wait breaker: roll back and execute again once every unit before it committed. */
  evict?: boolean;
}

/**
 * An earlier unit whose statement runs this long while later units sit executed, waiting for their turn, may be
 * waiting on one of their locks — a wait InnoDB cannot see as a deadlock (the later one waits in the client). The
 * breaker rolls those later units back; they execute again after it (PARALLEL.md).
 */
export const BREAK_AFTER_MS = 300;

/**
 * The lock-wait breaker: the earliest of the `executing` units whose worker has been busy for BREAK_AFTER_MS
 * (`busyMs` of a worker) is stuck; every `ready` unit after it not marked yet is marked `evict`. Returns how many
 * were marked.
 */
export function breakWaits(
  executing: ReadonlyMap<number, Flight>,
  ready: ReadonlyMap<number, Flight>,
  busyMs: (worker: number) => number,
): number {
  let stuck = Number.POSITIVE_INFINITY;
  for (const [i, f] of executing) {
    if (i < stuck && busyMs(f.worker) >= BREAK_AFTER_MS) stuck = i;
  }
  if (stuck === Number.POSITIVE_INFINITY) return 0;
  let n = 0;
  for (const [i, f] of ready) {
    if (i > stuck && !f.evict) {
      f.evict = true;
      n++;
    }
  }
  return n;
}

/**
 * Errors of a unit that is not at the head yet that may only mean an earlier unit has not committed (besides lock
 * waits and deadlocks, which are speculative anywhere, and divergence): a duplicate key, a refused ordered commit.
 */
const SPECULATIVE_ERRNO = new Set([1062, ORDERED_COMMIT_REFUSED]);

/**
 * Whether a unit's failure may only mean that it ran before an earlier unit it conflicts with committed. `atHead`:
 * every unit before it had committed when it failed.
 */
export function speculative(err: unknown, atHead: boolean): boolean {
  const errno = errnoOf(err);
  // Lock wait timeout, deadlock: at the head too (a later unit, idle until its turn, may hold the lock).
  if (errno === 1205 || errno === 1213) return true;
  if (atHead) return false;
  if (err instanceof DivergenceError || (err instanceof TidemarkError && err.code === 'APPLY_DIVERGED')) return true;
  return errno !== undefined && SPECULATIVE_ERRNO.has(errno);
}
