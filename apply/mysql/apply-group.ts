/**
 * The serial applier's replica transactions ("groups", applier.ts) as bookkeeping (pure; no I/O): what a group
 * has taken in, when it must commit at the next source transaction boundary (targets[].batch: max_transactions,
 * max_rows, max_wait_ms; one source transaction per group while isolating), and the state a group or a DDL
 * records in the position row.
 */
import type { CommitEntry } from '../../record/record.ts';
import type { AppliedState } from './position-table.ts';

export interface Group {
  /**
   * Time (ms) the group has spent waiting for journal entries: what max_wait_ms bounds. Time spent running its
   * statements does not count, so a backlog fills groups up to max_transactions / max_rows (fewer replica
   * commits while catching up), while a live stream still commits within max_wait_ms of waiting.
   */
  waitedMs: number;
  txs: number;
  rows: number;
  /** What the group records when it commits at a transaction boundary (the last commit entry seen). */
  target: AppliedState | null;
}

/** targets[].batch. */
export interface GroupLimits {
  readonly max_transactions: number;
  readonly max_rows: number;
  readonly max_wait_ms: number;
}

/** A new, empty group. */
export function newGroup(): Group {
  return { waitedMs: 0, txs: 0, rows: 0, target: null };
}

/**
 * Must `g` commit now (called between source transactions)? `isolating`: one source transaction per group (up to
 * RunOptions.isolateThroughLsn).
 */
export function groupDue(g: Group, limits: GroupLimits, isolating: boolean): boolean {
  const maxTx = isolating ? 1 : limits.max_transactions;
  const maxWait = limits.max_wait_ms;
  return g.txs >= maxTx || g.rows >= limits.max_rows || (maxWait > 0 && g.waitedMs >= maxWait);
}

/** How long `g` may still wait for the next entry (ms) before it commits. */
export function groupWait(g: Group, limits: GroupLimits): number {
  return Math.max(0, limits.max_wait_ms - g.waitedMs);
}

/** Counts a source transaction's commit entry (at `lsn`) into `g`: the group now records its state. */
export function addCommit(g: Group, e: CommitEntry, lsn: bigint): void {
  g.txs++;
  g.target = { seq: e.seq, lsn, position: e.position, commitTimeUs: e.commitTimeUs, phase: e.phase };
}

/**
 * A state that covers entries up to `seq` inside a source transaction that is not complete yet, its LSN `lsn`
 * (never below `base`'s); position, commit time and phase stay `base`'s (the open group's target, else the stored
 * state).
 */
export function midState(seq: bigint, lsn: bigint, base: AppliedState | null): AppliedState {
  return {
    seq,
    lsn: base && base.lsn > lsn ? base.lsn : lsn,
    position: base?.position ?? null,
    commitTimeUs: base?.commitTimeUs ?? null,
    phase: base?.phase ?? null,
  };
}
