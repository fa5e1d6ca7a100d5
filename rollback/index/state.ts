/**
 * The rollback index's progress record, stored as one JSON value in its meta table and written in the same
 * SQLite transaction as the rows it describes. Pure: no I/O.
 *
 * Indexing may stop inside a unit (a large transaction, or the head of a journal being written): the unit's
 * entries and row changes are then already in the tables, `scan` marks the last frame indexed and `unit` holds the
 * unit's running totals. Those rows have seqs above `committedSeq` and queries do not show them. If the journal
 * writer truncates that unfinished unit (recovery), the rows are deleted again.
 */
import { CorruptionError } from '../../core/errors.ts';

/** A frame of the journal as the index saw it. */
export interface FrameMark {
  lsn: bigint;
  segment: bigint;
  offset: number;
  /** Byte offset just past the frame: where the next frame starts (or the segment ends). */
  end: number;
  /** Seq and source transaction id of the entry in the frame. */
  seq: bigint;
  txId: string;
}

/** Running totals of a unit whose commit was not indexed yet. */
export interface UnitState {
  firstLsn: bigint;
  firstSeq: bigint;
  insert: number;
  update: number;
  delete: number;
  ddl: number;
  /** Row changes seen (checked against the commit's rowCount when `verify`). */
  rows: bigint;
  /** Ids (tables table) of the tables its entries name. */
  tables: number[];
  /** The unit's first frame came right after a gap (retention removed frames before it): it may be cut. */
  verify: boolean;
}

export interface IndexState {
  /** LSN of the last indexed commit (0n: none). */
  indexedLsn: bigint;
  /** Seq of that commit: every change with a higher seq belongs to an unfinished unit. */
  committedSeq: bigint;
  /** The commit frame at indexedLsn: on open it must still be there, or the journal was replaced. */
  last: FrameMark | null;
  /** The last frame indexed while inside a unit; null at a unit boundary. */
  scan: FrameMark | null;
  unit: UnitState | null;
  /** Truncation epoch (truncations.ts) noted before the frames after indexedLsn were read. */
  epoch: number;
  /** Highest commit time indexed so far, and the largest amount by which a commit time fell below it. */
  hwmUs: bigint;
  maxLagUs: bigint;
}

/** The state of an empty index (a fresh object: the builder updates its state in place). */
export function emptyState(): IndexState {
  return { indexedLsn: 0n, committedSeq: 0n, last: null, scan: null, unit: null, epoch: 0, hwmUs: 0n, maxLagUs: 0n };
}

/** The LSN the next catch-up starts after. */
export function resumeLsn(s: IndexState): bigint {
  return s.scan ? s.scan.lsn : s.indexedLsn;
}

/** Where the frame after resumeLsn starts, when known. */
export function resumeAt(s: IndexState): { segment: bigint; offset: number } | undefined {
  const m = s.scan ?? s.last;
  return m ? { segment: m.segment, offset: m.end } : undefined;
}

export function encodeState(s: IndexState): string {
  return JSON.stringify(s, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v));
}

const BIG = /^-?\d+n$/;

export function decodeState(text: string): IndexState {
  let raw: unknown;
  try {
    raw = JSON.parse(text, (_k, v) => (typeof v === 'string' && BIG.test(v) ? BigInt(v.slice(0, -1)) : v));
  } catch (err) {
    throw new CorruptionError('rollback index: its state record is not valid JSON', {}, err);
  }
  const s = raw as Partial<IndexState> | null;
  if (
    typeof s?.indexedLsn !== 'bigint' ||
    typeof s.committedSeq !== 'bigint' ||
    typeof s.epoch !== 'number' ||
    typeof s.hwmUs !== 'bigint' ||
    typeof s.maxLagUs !== 'bigint' ||
    !checkMark(s.last) ||
    !checkMark(s.scan) ||
    (s.unit !== null && typeof s.unit?.firstSeq !== 'bigint')
  ) {
    throw new CorruptionError('rollback index: its state record is malformed', {});
  }
  return s as IndexState;
}

function checkMark(m: unknown): boolean {
  if (m === null) return true;
  const f = m as Partial<FrameMark> | undefined;
  return (
    typeof f?.lsn === 'bigint' &&
    typeof f.segment === 'bigint' &&
    typeof f.offset === 'number' &&
    typeof f.end === 'number'
  );
}
