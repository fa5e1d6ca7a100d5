/**
 * Brings a replica's position table up to date and reads the source's row, through any query function: the
 * applier (its own instrumented queries) and the rewind commands share this sequence, so both see the same
 * table, the same `hold` column and a row that claimSql / lockForRewindSql can lock.
 */
import {
  addHoldColumnSql,
  createSchemaSql,
  createTableSql,
  ensureRowSql,
  parsePositionRow,
  positionTableStateSql,
  selectPositionSql,
  type StoredPosition,
} from './position-table.ts';

/** Runs one statement and returns its rows (or result header). */
export type PositionQuery = (sql: string) => Promise<unknown>;

/**
 * Creates the schema and table if missing, adds `hold` to a table made before it existed, ensures the row. A table
 * that is up to date gets no DDL (see positionTableStateSql).
 */
export async function preparePosition(q: PositionQuery, source: string): Promise<StoredPosition> {
  const [state] = (await q(positionTableStateSql())) as { has_table: unknown; has_hold: unknown }[];
  if (Number(state?.has_table) !== 1) {
    await q(createSchemaSql());
    await q(createTableSql());
  } else if (Number(state?.has_hold) !== 1) {
    await q(addHoldColumnSql());
  }
  await q(ensureRowSql(source));
  return readPosition(q, source);
}

/** The source's row as it is now (the table must exist). */
export async function readPosition(q: PositionQuery, source: string): Promise<StoredPosition> {
  const rows = (await q(selectPositionSql(source))) as Record<string, unknown>[];
  return parsePositionRow(rows[0]);
}
