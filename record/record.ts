/**
 * The change-record model.
 *
 * A source transaction reaches the journal as a sequence of entries: zero or more `rows` and `ddl` entries,
 * then exactly one `commit` entry. Readers treat everything up to and including a `commit` as one atomic unit;
 * entries after the last commit (a transaction cut by a crash) are not part of the stream.
 *
 * Every entry carries a per-source monotonic sequence number `seq` (bigint). A `rows` entry holds N row changes
 * of one table and one operation, sharing column metadata; row i has seq = entry.seq + i, so the record-level
 * view (one ChangeRecord per row, see expandRows) has gap-free monotonic seqs, and the next entry's seq is
 * entry.seq + N. `ddl` and `commit` entries take one seq each.
 *
 * Values (see Value):
 *   null                      SQL NULL
 *   bigint                    every integer type (TINYINT..BIGINT, signed or unsigned), YEAR, BIT(n) as its number;
 *                             0n in an ENUM column: the invalid-value index 0 (a '' member is the string '')
 *   number                    FLOAT, DOUBLE
 *   string                    CHAR/VARCHAR/TEXT (decoded text), DECIMAL (exact text, e.g. "-123.4500"),
 *                             DATE "YYYY-MM-DD", DATETIME/TIMESTAMP "YYYY-MM-DD hh:mm:ss[.ffffff]" (TIMESTAMP in UTC),
 *                             TIME "[-]hhh:mm:ss[.ffffff]", JSON (text), ENUM (the label), SET (comma-joined labels)
 *   Uint8Array                BINARY/VARBINARY/BLOB and other binary strings, GEOMETRY (WKB as stored), MariaDB
 *                             UUID/INET4/INET6 (their binary form; column metadata binary(16)/binary(4))
 */
import type { BinlogPosition, SourcePosition } from './position.ts';

export type Value = null | bigint | number | string | Uint8Array;

export type RowOp = 'insert' | 'update' | 'delete';
export type Op = RowOp | 'ddl';

/** One column of a table as it was when the change was written. */
export interface Column {
  readonly name: string;
  /** Lower-case base type name as in SQL: int, bigint, varchar, decimal, datetime, json, bit, enum, set, blob … */
  readonly type: string;
  /** Full column type when known (e.g. "decimal(20,6) unsigned", "enum('a','b')"); informative only. */
  readonly columnType?: string;
  readonly unsigned?: boolean;
}

export interface RowImage {
  /** Before image (update, delete); null for insert. Values are in `columns` order. */
  readonly before: readonly Value[] | null;
  /** After image (insert, update); null for delete. */
  readonly after: readonly Value[] | null;
}

interface EntryBase {
  /** Source name from the config (who captured this). */
  readonly source: string;
  /** Per-source monotonic sequence number of this entry's first record. */
  readonly seq: bigint;
  /** Source transaction id: the GTID when the server has one, else "file:offset" of the transaction start. */
  readonly txId: string;
}

export interface RowsEntry extends EntryBase {
  readonly kind: 'rows';
  readonly schema: string;
  readonly table: string;
  readonly op: RowOp;
  readonly columns: readonly Column[];
  /** Primary-key column names, in key order; empty when the table has no primary key. */
  readonly pk: readonly string[];
  readonly rows: readonly RowImage[];
  /**
   * The source session ran this statement with foreign_key_checks = 0 (the rows event's NO_FOREIGN_KEY_CHECKS
   * flag): nothing cascaded on the source, so nothing may cascade on a replica. Absent: checks were on.
   */
  readonly fkChecksOff?: boolean;
}

export interface DdlEntry extends EntryBase {
  readonly kind: 'ddl';
  /** Default schema the statement ran in (may be ""). */
  readonly schema: string;
  /** Tables the statement names, as far as tidemark could tell (schema-qualified). */
  readonly tables: readonly { schema: string; table: string }[];
  readonly sql: string;
}

/** Where in its life the source was when it wrote this transaction. */
export type Phase = 'baseline' | 'baseline-end' | 'stream';

export interface CommitEntry extends EntryBase {
  readonly kind: 'commit';
  /** Source position right after this transaction: the resume point. */
  readonly position: SourcePosition;
  /** Commit time from the source's log, microseconds since the Unix epoch. */
  readonly commitTimeUs: bigint;
  /** When tidemark captured the commit, microseconds since the Unix epoch. */
  readonly captureTimeUs: bigint;
  /** Row changes in the transaction (sum of rows over its rows entries). */
  readonly rowCount: bigint;
  /**
   * baseline: a chunk of the initial copy (position = the snapshot's position; not yet a valid resume point);
   * baseline-end: the last unit of a complete baseline (position = snapshot position, resume point);
   * stream: a transaction read from the log.
   */
  readonly phase: Phase;
  /**
   * Tables copied into the journal while streaming (a table that moved into the include set), each with the
   * binlog position its copy was read at: the copy already holds the table's changes before that position, so
   * capture does not take them from the binlog again. Carried by every commit until the stream passes those
   * positions, so a restart from any of them knows. Absent: none pending.
   */
  readonly copied?: readonly CopiedTable[];
}

/** A table copied by capture at binlog position `at` (see CommitEntry.copied). */
export interface CopiedTable {
  readonly schema: string;
  readonly table: string;
  readonly at: BinlogPosition;
}

export type Entry = RowsEntry | DdlEntry | CommitEntry;

/** The record-level view: one row change or one DDL statement. */
export interface ChangeRecord {
  readonly source: string;
  readonly seq: bigint;
  readonly txId: string;
  readonly schema: string;
  readonly table: string;
  readonly op: Op;
  readonly columns: readonly Column[];
  readonly pk: readonly string[];
  readonly before: readonly Value[] | null;
  readonly after: readonly Value[] | null;
  readonly ddl?: string;
}

/** Number of seqs an entry occupies. */
export function seqSpan(e: Entry): bigint {
  return e.kind === 'rows' ? BigInt(e.rows.length) : 1n;
}

export function* expandRows(e: RowsEntry): Generator<ChangeRecord> {
  let seq = e.seq;
  for (const r of e.rows) {
    yield {
      source: e.source,
      seq,
      txId: e.txId,
      schema: e.schema,
      table: e.table,
      op: e.op,
      columns: e.columns,
      pk: e.pk,
      before: r.before,
      after: r.after,
    };
    seq++;
  }
}

/**
 * Where captured entries go. The journal writer implements it; tests use in-memory sinks.
 * `append` may apply backpressure by returning a promise that resolves when there is room.
 * `commit` makes every entry since the previous commit durable according to the fsync policy and resolves once
 * it is (per-transaction) or once the group it belongs to is (group commit).
 */
export interface EntrySink {
  append(entry: RowsEntry | DdlEntry): Promise<void> | void;
  commit(entry: CommitEntry): Promise<void>;
}
