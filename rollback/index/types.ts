/** Public shapes of the rollback index (rollback/README.md, "Internals"). */
import type { SourcePosition } from '../../record/position.ts';
import type { Phase, RowOp } from '../../record/record.ts';

export interface RowCounts {
  insert: number;
  update: number;
  delete: number;
}

export interface DdlInfo {
  seq: bigint;
  lsn: bigint;
  schema: string;
  sql: string;
  commitTimeUs: bigint;
  txId: string;
}

export interface TxInfo {
  /** Seq of the commit entry (the transaction's id inside tidemark). */
  commitSeq: bigint;
  /** Seq of its first entry (== commitSeq for an empty transaction). */
  firstSeq: bigint;
  /** Source transaction id (GTID, or file:offset). */
  txId: string;
  commitTimeUs: bigint;
  firstLsn: bigint;
  commitLsn: bigint;
  phase: Phase;
  position: SourcePosition;
  rows: RowCounts;
  /** "schema.table" of every table a rows or ddl entry of the transaction names; sorted, distinct. */
  tables: string[];
  /** DDL statements inside the transaction (usually one, alone). */
  ddl: DdlInfo[];
}

export interface EntryRef {
  lsn: bigint;
  segment: bigint;
  offset: number;
  kind: 'rows' | 'ddl';
  seq: bigint;
  /** Row count (0 for ddl). */
  rows: number;
  /** For ddl: the statement's default schema and the first table it names ("" when it names none). */
  schema: string;
  table: string;
  op: RowOp | 'ddl';
}

export interface RowVersionRef {
  seq: bigint;
  commitSeq: bigint;
  lsn: bigint;
  segment: bigint;
  offset: number;
  /** Index of the row inside the rows entry. */
  row: number;
  op: RowOp;
}

export interface TxQuery {
  /** Inclusive bounds on commit time (µs since the epoch). */
  sinceUs?: bigint;
  untilUs?: bigint;
  /** afterSeq exclusive, uptoSeq inclusive, on commitSeq. */
  afterSeq?: bigint;
  uptoSeq?: bigint;
  /** "schema.table": transactions touching it. */
  table?: string;
  order?: 'asc' | 'desc';
  limit?: number;
}

export interface CatchUpProgress {
  lsn: bigint;
  head: bigint;
  changes: number;
}

export interface CatchUpOptions {
  signal?: AbortSignal;
  /** Called at most about once a second while catching up. */
  onProgress?: (p: CatchUpProgress) => void;
}
