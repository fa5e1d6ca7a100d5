/**
 * The serial applier's replica transactions ("groups", applier.ts) as bookkeeping (pure; no I/O): what a group
 * records when it commits and the state a group or a DDL records in the position row; when it must commit is
 * engine/batch-group.ts's rule, shared with apply/postgres.
 */
import type { CommitEntry } from '../../record/record.ts';
import type { GroupCount } from '../../engine/batch-group.ts';
import type { AppliedState } from './position-table.ts';

export interface Group extends GroupCount {
  /** What the group records when it commits at a transaction boundary (the last commit entry seen). */
  target: AppliedState | null;
}

/** A new, empty group. */
export function newGroup(): Group {
  return { waitedMs: 0, txs: 0, rows: 0, target: null };
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
