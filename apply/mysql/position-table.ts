/**
 * The applied position, kept in the replica itself (`tidemark`.`applied_position`, one row per source) and written
 * in the same database transaction as the rows it covers, so it can never disagree with the data after a crash.
 * Pure: SQL text and row parsing; the applier runs the statements.
 *
 *   seq              highest journal seq whose effect is committed in the replica (NULL: nothing applied yet)
 *   journal_lsn      LSN of the last fully applied commit entry; the journal is re-read from journal_lsn + 1
 *   binlog_file, binlog_offset, gtid, commit_time_us, phase
 *                    the source position / commit time / phase of that commit entry (informative)
 *   applied_at       replica time of the write
 *   ddl_pending_seq  seq of a DDL that is about to run or ran without its completion being recorded (see README)
 *   hold             why the target is held (rewind/forward/undo put it there): while set, the applier does not
 *                    apply. Every apply group first claims the row (claimSql: hold IS NULL and the seq the
 *                    applier believes is stored), so an apply group and a rewind never interleave.
 */
import { CorruptionError } from '../../core/errors.ts';
import type { AppliedState, StoredPosition } from '../../engine/target.ts';
import type { MysqlPosition, SourcePosition } from '../../record/position.ts';
import type { Phase } from '../../record/record.ts';
import { qualified, quoteIdent, quoteString } from '../../mysql/sql.ts';

export const POSITION_SCHEMA = 'tidemark';
export const POSITION_TABLE = 'applied_position';

/** How the hold text of a target a takeover promoted starts: it is the primary; it is never applied to again. */
export const PROMOTED_HOLD = 'promoted: ';

/** Does `hold` say a takeover promoted the target to primary (nothing is applied to it again)? */
export function isPromotedHold(hold: string | null): boolean {
  return hold?.startsWith(PROMOTED_HOLD) === true;
}

/** What the replica holds for one source: the engine seam's stored position (engine/target.ts). */
export type { AppliedState, StoredPosition };

const T = qualified(POSITION_SCHEMA, POSITION_TABLE);

export function createSchemaSql(): string {
  return `CREATE DATABASE IF NOT EXISTS ${quoteIdent(POSITION_SCHEMA)} CHARACTER SET utf8mb4`;
}

export function createTableSql(): string {
  return `CREATE TABLE IF NOT EXISTS ${T} (
  source VARCHAR(64) NOT NULL,
  seq BIGINT UNSIGNED NULL,
  journal_lsn BIGINT UNSIGNED NULL,
  binlog_file VARCHAR(512) NULL,
  binlog_offset BIGINT UNSIGNED NULL,
  gtid TEXT NULL,
  commit_time_us BIGINT NULL,
  phase VARCHAR(16) NULL,
  applied_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  ddl_pending_seq BIGINT UNSIGNED NULL,
  hold VARCHAR(512) NULL,
  PRIMARY KEY (source)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;
}

/**
 * Whether the table exists, and whether it has the `hold` column (a table created by a version before rewind
 * lacks it). Read before creating anything: CREATE … IF NOT EXISTS is written to the binlog even when nothing is
 * created, and the applier prepares the table at every open (a held target re-opens every few seconds).
 */
export function positionTableStateSql(): string {
  return (
    "SELECT COUNT(*) > 0 AS has_table, COALESCE(SUM(COLUMN_NAME = 'hold'), 0) > 0 AS has_hold " +
    `FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ${quoteString(POSITION_SCHEMA)} ` +
    `AND TABLE_NAME = ${quoteString(POSITION_TABLE)}`
  );
}

export function addHoldColumnSql(): string {
  return `ALTER TABLE ${T} ADD COLUMN hold VARCHAR(512) NULL`;
}

/** Makes sure the source has a row, so that claimSql can lock it from the first group on. */
export function ensureRowSql(source: string): string {
  return `INSERT IGNORE INTO ${T} (source) VALUES (${quoteString(source)})`;
}

export function selectPositionSql(source: string, forUpdate = false): string {
  return (
    'SELECT CAST(seq AS CHAR) AS seq, CAST(journal_lsn AS CHAR) AS lsn, binlog_file, ' +
    'CAST(binlog_offset AS CHAR) AS binlog_offset, gtid, CAST(commit_time_us AS CHAR) AS commit_time_us, phase, ' +
    `CAST(ddl_pending_seq AS CHAR) AS ddl_pending_seq, hold FROM ${T} WHERE source = ${quoteString(source)}` +
    (forUpdate ? ' FOR UPDATE' : '')
  );
}

/**
 * The first statement of every apply group: locks the source's row and matches it (1 row, FOUND_ROWS) only when
 * the target is not held and still stores the seq the applier believes (`seq` null: nothing applied yet).
 * 0 rows means a rewind/forward/undo holds or moved the target: the applier must stop and re-read.
 */
export function claimSql(source: string, seq: bigint | null): string {
  return (
    `UPDATE ${T} SET applied_at = applied_at WHERE source = ${quoteString(source)} AND hold IS NULL ` +
    `AND seq <=> ${n(seq)}`
  );
}

/**
 * Sets the point a rewind/forward/undo leaves the target at, and its hold (null releases it), in the
 * transaction that changed the rows. Expected to match 1 row.
 */
export function setPointSql(source: string, st: AppliedState, hold: string | null): string {
  const p = mysqlPart(st.position);
  return (
    `UPDATE ${T} SET seq = ${n(st.seq)}, journal_lsn = ${n(st.lsn)}, binlog_file = ${s(p?.binlog.file)}, ` +
    `binlog_offset = ${n(p?.binlog.offset)}, gtid = ${s(p?.gtid)}, commit_time_us = ${n(st.commitTimeUs)}, ` +
    `phase = ${s(st.phase)}, applied_at = CURRENT_TIMESTAMP(6), hold = ${s(hold)} ` +
    `WHERE source = ${quoteString(source)}`
  );
}

/**
 * First statement of a rewind/forward/undo transaction: locks the row and sets the hold it leaves behind, only if
 * the target still stores `seq` and no DDL is pending (1 row; applied_at changes, so the count is 1 with or
 * without FOUND_ROWS, as a script run by the plain client sees it).
 */
export function lockForRewindSql(source: string, seq: bigint | null, hold: string): string {
  return (
    `UPDATE ${T} SET hold = ${s(hold)}, applied_at = CURRENT_TIMESTAMP(6) WHERE source = ${quoteString(source)} ` +
    `AND seq <=> ${n(seq)} AND ddl_pending_seq IS NULL`
  );
}

/** Sets or clears only the hold (expected to match 1 row). */
export function setHoldSql(source: string, hold: string | null): string {
  return `UPDATE ${T} SET hold = ${s(hold)} WHERE source = ${quoteString(source)}`;
}

/**
 * The binlog columns hold a MySQL source's position; another engine's is not stored there (seq and journal_lsn,
 * what exactly-once rests on, are stored for every engine).
 */
function mysqlPart(p: SourcePosition | null): MysqlPosition | null {
  return p?.kind === 'mysql' ? p : null;
}

function n(v: bigint | null | undefined): string {
  return v === null || v === undefined ? 'NULL' : v.toString();
}

function s(v: string | null | undefined): string {
  return v === null || v === undefined ? 'NULL' : quoteString(v);
}

/** Records `state` and clears any pending DDL (run inside the transaction that applied the rows). */
export function upsertPositionSql(source: string, st: AppliedState): string {
  const p = mysqlPart(st.position);
  const vals = [
    quoteString(source),
    n(st.seq),
    n(st.lsn),
    s(p?.binlog.file),
    n(p?.binlog.offset),
    s(p?.gtid),
    n(st.commitTimeUs),
    s(st.phase),
    'CURRENT_TIMESTAMP(6)',
    'NULL',
  ];
  return (
    `INSERT INTO ${T} (source, seq, journal_lsn, binlog_file, binlog_offset, gtid, commit_time_us, phase, applied_at, ddl_pending_seq) ` +
    `VALUES (${vals.join(', ')}) ON DUPLICATE KEY UPDATE seq = VALUES(seq), journal_lsn = VALUES(journal_lsn), ` +
    'binlog_file = VALUES(binlog_file), binlog_offset = VALUES(binlog_offset), gtid = VALUES(gtid), ' +
    'commit_time_us = VALUES(commit_time_us), phase = VALUES(phase), applied_at = VALUES(applied_at), ' +
    'ddl_pending_seq = NULL'
  );
}

/**
 * The commit statement of a parallel-apply unit (PARALLEL.md, "Ordered commit"): records `st` only if the row still
 * holds `prevSeq` — what the unit before it stored — and no hold or pending DDL is set. Otherwise `journal_lsn`
 * (assigned first, while `seq` is still the old value) gets -1, which strict mode refuses for BIGINT UNSIGNED
 * (error 1264, ORDERED_COMMIT_REFUSED): the statement fails, so a COMMIT sent after it in the same query never runs.
 * A unit therefore commits only right after its predecessor, whatever the client does.
 */
export function orderedPositionSql(source: string, prevSeq: bigint | null, st: AppliedState): string {
  const p = mysqlPart(st.position);
  return (
    `UPDATE ${T} SET journal_lsn = IF(seq <=> ${n(prevSeq)} AND hold IS NULL AND ddl_pending_seq IS NULL, ` +
    `${n(st.lsn)}, -1), seq = ${n(st.seq)}, binlog_file = ${s(p?.binlog.file)}, binlog_offset = ${n(p?.binlog.offset)}, ` +
    `gtid = ${s(p?.gtid)}, commit_time_us = ${n(st.commitTimeUs)}, phase = ${s(st.phase)}, ` +
    `applied_at = CURRENT_TIMESTAMP(6) WHERE source = ${quoteString(source)}`
  );
}

/** The server error orderedPositionSql raises when the row is not what the unit expects (out of range value). */
export const ORDERED_COMMIT_REFUSED = 1264;

/**
 * Marks the DDL at `seq` as about to run (committed on its own before the DDL executes). Matches 1 row only
 * while the target is not held and stores `storedSeq` (the row exists: ensureRowSql); 0 rows: held or moved.
 */
export function setDdlPendingSql(source: string, seq: bigint, storedSeq: bigint | null): string {
  return (
    `UPDATE ${T} SET ddl_pending_seq = ${seq} WHERE source = ${quoteString(source)} AND hold IS NULL ` +
    `AND seq <=> ${n(storedSeq)}`
  );
}

/** Clears the pending mark of the DDL at `seq` once it is known not to have run (the server refused it). */
export function clearDdlPendingSql(source: string, seq: bigint): string {
  return `UPDATE ${T} SET ddl_pending_seq = NULL WHERE source = ${quoteString(source)} AND ddl_pending_seq = ${seq}`;
}

function big(row: Record<string, unknown>, key: string): bigint | null {
  const v = row[key];
  if (v === null || v === undefined) return null;
  const t = String(v);
  if (!/^-?\d+$/.test(t)) throw new CorruptionError(`${T}.${key} holds "${t}", not an integer`, { key });
  return BigInt(t);
}

function str(row: Record<string, unknown>, key: string): string | null {
  const v = row[key];
  if (v === null || v === undefined) return null;
  return Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
}

const PHASES: readonly Phase[] = ['baseline', 'baseline-end', 'stream'];

/** Parses the row selected by selectPositionSql (undefined: no row). */
export function parsePositionRow(row: Record<string, unknown> | undefined): StoredPosition {
  if (!row) return { state: null, ddlPendingSeq: null, hold: null };
  const ddlPendingSeq = big(row, 'ddl_pending_seq');
  const hold = str(row, 'hold');
  const seq = big(row, 'seq');
  if (seq === null) return { state: null, ddlPendingSeq, hold };
  const lsn = big(row, 'lsn');
  if (lsn === null) throw new CorruptionError(`${T}: seq is set but journal_lsn is NULL`, {});
  const file = str(row, 'binlog_file');
  const offset = big(row, 'binlog_offset');
  const gtid = str(row, 'gtid');
  const position: SourcePosition | null =
    file !== null && offset !== null ? { kind: 'mysql', binlog: { file, offset }, ...(gtid ? { gtid } : {}) } : null;
  const ph = str(row, 'phase');
  const phase = ph !== null && (PHASES as readonly string[]).includes(ph) ? (ph as Phase) : null;
  return { state: { seq, lsn, position, commitTimeUs: big(row, 'commit_time_us'), phase }, ddlPendingSeq, hold };
}
