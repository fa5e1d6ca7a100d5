/**
 * The grouping rule of `targets[].batch` (batch-config.ts), one for every applier that groups source transactions
 * into target transactions (apply/mysql, apply/postgres): when an open group must commit at the next source
 * transaction boundary, and the timed pull that measures what `max_wait_ms` bounds — the time the group spent
 * waiting for journal entries, never the time its statements ran (a backlog fills groups to the other limits).
 */
import type { Puller } from './puller.ts';

/** What a group has taken in so far. */
export interface GroupCount {
  txs: number;
  rows: number;
  /** Time (ms) the group has spent waiting for journal entries. */
  waitedMs: number;
}

/** targets[].batch. */
export interface GroupLimits {
  readonly max_transactions: number;
  readonly max_rows: number;
  readonly max_wait_ms: number;
}

/** Must `g` commit now (called between source transactions)? `isolating`: one source transaction per group. */
export function groupDue(g: GroupCount, limits: GroupLimits, isolating: boolean): boolean {
  const maxTx = isolating ? 1 : limits.max_transactions;
  const maxWait = limits.max_wait_ms;
  return g.txs >= maxTx || g.rows >= limits.max_rows || (maxWait > 0 && g.waitedMs >= maxWait);
}

/** How long `g` may still wait for the next entry (ms) before it commits. */
export function groupWait(g: GroupCount, limits: GroupLimits): number {
  return Math.max(0, limits.max_wait_ms - g.waitedMs);
}

/**
 * The next item for open group `g`, waiting at most what is left of its wait; the wait is added to `g`. A timeout
 * uses the whole allowance (a timer may fire a fraction of a millisecond before performance.now() says it is due):
 * the group is due after it.
 */
export async function pullForGroup<T>(
  puller: Puller<T>,
  g: GroupCount,
  limits: GroupLimits,
): Promise<IteratorResult<T> | 'timeout' | 'abort'> {
  const t0 = performance.now();
  const r = await puller.next(groupWait(g, limits));
  g.waitedMs += performance.now() - t0;
  if (r === 'timeout') g.waitedMs = Math.max(g.waitedMs, limits.max_wait_ms);
  return r;
}
