/**
 * The applied position on a PostgreSQL target: one row per source in `tidemark.applied`, written by the applier in
 * the same transaction as the rows of the source transaction it ends (exactly once rests on it), read back by
 * open() and readStored. The statements and the row parsing are pure; the applier and the adapter run them.
 *
 *   source          text PRIMARY KEY   the source's name
 *   seq, lsn        bigint             last applied commit's seq and journal LSN (NULL: nothing applied yet)
 *   position        text               positionToJson of the source position, as JSON text
 *   commit_time_us  bigint, phase text the commit's source time and phase
 *   hold            text               why the target is held (rewind/takeover), NULL: not held
 *   applied_at      timestamptz        when it was written (informative)
 */
import { CorruptionError } from '../../core/errors.ts';
import type { AppliedState, StoredPosition } from '../../engine/target.ts';
import { positionFromJson, positionToJson } from '../../record/position.ts';
import type { Phase } from '../../record/record.ts';
import { quoteLiteral } from '../../postgres/sql.ts';

export const POSITION_TABLE = 'tidemark.applied';

/** The hold a takeover leaves on the promoted target (its applier stops for good); the same text as MySQL's. */
export const PROMOTED_HOLD = 'promoted: ';

/** true when the table exists (the apply role may lack CREATE on the database once it is made). */
export const hasTableSql = "SELECT to_regclass('tidemark.applied') IS NOT NULL AS present";

export const createSql = [
  'CREATE SCHEMA IF NOT EXISTS tidemark',
  `CREATE TABLE IF NOT EXISTS tidemark.applied (source text PRIMARY KEY, seq bigint, lsn bigint, position text,
     commit_time_us bigint, phase text, hold text, applied_at timestamptz NOT NULL DEFAULT now())`,
];

/** Makes the source's row when missing ($1 source). */
export const ensureRowSql = 'INSERT INTO tidemark.applied (source) VALUES ($1) ON CONFLICT (source) DO NOTHING';

/** The source's row ($1 source). */
export const selectSql =
  'SELECT seq::text, lsn::text, position, commit_time_us::text, phase, hold FROM tidemark.applied WHERE source = $1';

/**
 * Stores the commit's position, only while the row is still at the seq this applier read and not held
 * ($1 source, $2 previous seq or NULL, $3 seq, $4 lsn, $5 position JSON, $6 commit time, $7 phase). Another applier
 * of the same source, or a hold set meanwhile, makes it match 0 rows: the transaction is rolled back.
 */
export const storeSql = `UPDATE tidemark.applied SET seq = $3::bigint, lsn = $4::bigint, position = $5, commit_time_us = $6::bigint,
  phase = $7, applied_at = now() WHERE source = $1 AND seq IS NOT DISTINCT FROM $2::bigint AND hold IS NULL`;

export function storeParams(source: string, prev: AppliedState | null, next: AppliedState): (string | null)[] {
  return [
    source,
    prev ? `${prev.seq}` : null,
    `${next.seq}`,
    `${next.lsn}`,
    next.position ? JSON.stringify(positionToJson(next.position)) : null,
    next.commitTimeUs === null ? null : `${next.commitTimeUs}`,
    next.phase,
  ];
}

/** The row as selectSql returns it (all text), or undefined when there is none. */
export function parseStored(row: Record<string, unknown> | undefined): StoredPosition {
  if (!row) return { state: null, ddlPendingSeq: null, hold: null };
  const hold = (row['hold'] as string | null) ?? null;
  if (row['seq'] === null || row['seq'] === undefined) return { state: null, ddlPendingSeq: null, hold };
  const text = row['position'] as string | null;
  let position = null;
  if (text !== null) {
    try {
      position = positionFromJson(JSON.parse(text), 'tidemark.applied.position');
    } catch (err) {
      if (err instanceof CorruptionError) throw err;
      throw new CorruptionError(`tidemark.applied.position is not JSON: ${(err as Error).message}`);
    }
  }
  const ct = row['commit_time_us'] as string | null;
  const state: AppliedState = {
    seq: BigInt(String(row['seq'])),
    lsn: BigInt(String(row['lsn'])),
    position,
    commitTimeUs: ct === null ? null : BigInt(ct),
    phase: (row['phase'] as Phase | null) ?? null,
  };
  return { state, ddlPendingSeq: null, hold };
}

const lit = (v: string | null | undefined): string => (v === null || v === undefined ? 'NULL' : quoteLiteral(v));
const num = (v: bigint | null | undefined): string => (v === null || v === undefined ? 'NULL' : `${v}`);

/**
 * Rewind's first statement (RewindCapability): locks the source's row and sets the hold it leaves behind, only
 * while the target still stores `seq` (1 row). Literal SQL: the same text runs in tidemark and in a psql script.
 */
export function lockForRewindSql(source: string, seq: bigint | null, hold: string): string {
  return (
    `UPDATE tidemark.applied SET hold = ${lit(hold)}, applied_at = now() WHERE source = ${lit(source)} ` +
    `AND seq IS NOT DISTINCT FROM ${num(seq)}::bigint`
  );
}

/** Rewind's last statement (RewindCapability): the point the target is left at, and its hold (1 row). */
export function setPointSql(source: string, st: AppliedState, hold: string | null): string {
  const position = st.position ? JSON.stringify(positionToJson(st.position)) : null;
  return (
    `UPDATE tidemark.applied SET seq = ${num(st.seq)}, lsn = ${num(st.lsn)}, position = ${lit(position)}, ` +
    `commit_time_us = ${num(st.commitTimeUs)}, phase = ${lit(st.phase)}, hold = ${lit(hold)}, applied_at = now() ` +
    `WHERE source = ${lit(source)}`
  );
}

/** Sets or clears only the hold ($1 source, $2 hold or NULL). */
export const setHoldSql = 'UPDATE tidemark.applied SET hold = $2 WHERE source = $1';
