/**
 * Applying row changes to a MariaDB system-versioned table (record/versioning.ts) so that the replica holds the
 * same current rows AND the same history, timestamps included. Pure SQL text; the batcher (batcher.ts) uses it
 * for tables the applier found versioned on the replica (`versionedTableSql`).
 *
 * The binlog shows the versions MariaDB wrote, with both period columns (row_end is part of the key):
 *
 *   source statement      binlog rows                                       replica statement
 *   INSERT                insert (row_end = max)                            INSERT with row_start/row_end
 *   UPDATE                update current→current (new row_start = T),        SET STATEMENT timestamp = T FOR UPDATE …
 *                         insert of the history row (old values, row_end T)  (the replica writes that history row
 *                                                                            itself, the same one: the insert is
 *                                                                            recognized and skipped)
 *   DELETE                update current→history (row_end max → T)          SET STATEMENT timestamp = T FOR DELETE …
 *   insert_history rows   insert (any row_end)                              INSERT with row_start/row_end
 *   DELETE HISTORY        delete of history rows                            DELETE HISTORY … BEFORE SYSTEM_TIME
 *                                                                            (greatest row_end + 1 µs); the count
 *                                                                            must match exactly
 *
 * INSERTs run as `SET STATEMENT system_versioning_insert_history = 1 FOR INSERT …` (MariaDB 10.11+), which lets
 * the period columns be written; both it and `SET STATEMENT timestamp` need the server's secure_timestamp = NO
 * (the default; with SUPER/REPLICATION the apply account needs SUPER or BINLOG REPLAY). DELETE HISTORY needs the
 * DELETE HISTORY privilege. Versioning by transaction id (BIGINT UNSIGNED periods) is refused: those ids mean
 * nothing on another server.
 */
import { TidemarkError } from '../../core/errors.ts';
import type { Column, Value } from '../../record/record.ts';
import {
  epochText,
  IMPLICIT_PERIOD,
  isCurrentRowEnd,
  type SystemPeriod,
  systemPeriodOf,
} from '../../record/versioning.ts';
import { qualified, quoteString, tuple } from '../../mysql/sql.ts';

/** The period columns of a versioned table, as indexes into a rows entry's columns. */
export interface PeriodIdx {
  readonly start: number;
  readonly end: number;
}

/** The table's TABLE_TYPE as `k` ('SYSTEM VERSIONED' for a versioned table). */
function tableTypeSql(schema: string, table: string): string {
  return (
    'SELECT TABLE_TYPE AS k FROM information_schema.TABLES ' +
    `WHERE TABLE_SCHEMA = ${quoteString(schema)} AND TABLE_NAME = ${quoteString(table)}`
  );
}

/**
 * The system period of a table on a server, or null when it is not system-versioned: its TABLE_TYPE, then for a
 * versioned table its SHOW CREATE TABLE text (a period the text does not show is the implicit one). `rows` runs
 * a query and returns its rows.
 */
export async function tablePeriod(
  rows: (sql: string) => Promise<readonly Record<string, unknown>[]>,
  schema: string,
  table: string,
): Promise<SystemPeriod | null> {
  const type = await rows(tableTypeSql(schema, table));
  if (type[0]?.['k'] !== 'SYSTEM VERSIONED') return null;
  const [created] = await rows(`SHOW CREATE TABLE ${qualified(schema, table)}`);
  return systemPeriodOf(String(Object.values(created ?? {})[1] ?? '')) ?? IMPLICIT_PERIOD;
}

function versionedError(schema: string, table: string, what: string, seq: bigint): TidemarkError {
  return new TidemarkError(
    `system-versioned table ${qualified(schema, table)} at seq ${seq}: ${what}; exclude the table (source.exclude) ` +
      'or drop its system versioning',
    { code: 'APPLY_VERSIONED', retriable: false, context: { schema, table, seq } },
  );
}

/** Where the period columns are in `cols`; refuses entries without them or with transaction-id periods. */
export function periodIdx(
  schema: string,
  table: string,
  cols: readonly Column[],
  period: SystemPeriod,
  seq: bigint,
): PeriodIdx {
  const start = cols.findIndex((c) => c.name === period.start);
  const end = cols.findIndex((c) => c.name === period.end);
  if (start < 0 || end < 0) {
    throw versionedError(schema, table, `the change lacks the period columns ${period.start}, ${period.end}`, seq);
  }
  if (cols[end]!.type !== 'timestamp') throw versionedError(schema, table, 'versioning by transaction id', seq);
  return { start, end };
}

/** Key of a whole row for recognizing a history row the replica wrote itself. */
function rowKey(schema: string, table: string, row: readonly Value[], cols: readonly Column[]): string {
  return `${qualified(schema, table)}${tuple(
    row,
    cols,
    cols.map((_, i) => i),
  )}`;
}

/**
 * History rows the replica wrote itself while applying an UPDATE (the same rows the source wrote and the binlog
 * shows next as inserts). Bounded: entries are consumed by the insert that follows the update.
 */
export class ImpliedHistory {
  readonly #rows = new Map<string, number>();

  add(schema: string, table: string, row: readonly Value[], cols: readonly Column[]): void {
    if (this.#rows.size >= 100_000) this.#rows.clear();
    const k = rowKey(schema, table, row, cols);
    this.#rows.set(k, (this.#rows.get(k) ?? 0) + 1);
  }

  /** Consumes the row if the replica already wrote it. */
  take(schema: string, table: string, row: readonly Value[], cols: readonly Column[]): boolean {
    const k = rowKey(schema, table, row, cols);
    const n = this.#rows.get(k);
    if (n === undefined) return false;
    if (n <= 1) this.#rows.delete(k);
    else this.#rows.set(k, n - 1);
    return true;
  }

  clear(): void {
    this.#rows.clear();
  }
}

/** The SET STATEMENT setting that lets an INSERT name the period columns. */
export const INSERT_HISTORY = 'system_versioning_insert_history = 1';

function timestampFor(v: Value, schema: string, table: string, seq: bigint): string {
  const t = epochText(v);
  if (t === null) throw versionedError(schema, table, 'a period column holds no valid timestamp', seq);
  return `timestamp = ${t}`;
}

/** What one update row of a versioned table is on the source, and the SET STATEMENT timestamp to run it at. */
export type VersionedUpdate =
  | { readonly kind: 'update'; readonly timestamp: string; readonly history: readonly Value[] | null }
  | { readonly kind: 'delete'; readonly timestamp: string };

/**
 * Classifies one update row: current→current is an UPDATE at the new row_start (returning the history row the
 * replica will write, or null when the source wrote none); current→history with equal values a DELETE at the new
 * row_end. Anything else (a history row changed) is refused.
 */
export function versionedUpdate(
  schema: string,
  table: string,
  p: PeriodIdx,
  before: readonly Value[],
  after: readonly Value[],
  seq: bigint,
): VersionedUpdate {
  if (!isCurrentRowEnd(before[p.end] ?? null)) {
    throw versionedError(schema, table, 'an update of a history row cannot be applied', seq);
  }
  if (isCurrentRowEnd(after[p.end] ?? null)) {
    const startBefore = String(before[p.start]);
    const startAfter = String(after[p.start]);
    // MariaDB writes no history row when the old version started at (or after) the new one's start.
    const history =
      startBefore < startAfter ? before.map((v, i) => (i === p.end ? (after[p.start] ?? null) : v)) : null;
    return { kind: 'update', timestamp: timestampFor(after[p.start] ?? null, schema, table, seq), history };
  }
  const same = before.every((v, i) => i === p.end || sameValue(v, after[i] ?? null));
  if (!same) throw versionedError(schema, table, 'a row became history with other values changed', seq);
  return { kind: 'delete', timestamp: timestampFor(after[p.end] ?? null, schema, table, seq) };
}

function sameValue(a: Value, b: Value): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(b);
  return a === b;
}

/**
 * `DELETE HISTORY FROM t BEFORE SYSTEM_TIME TIMESTAMP'…'` removing history rows up to the greatest row_end of
 * `rows` (the statement cannot name rows: its count is checked against theirs instead). Current rows are refused.
 */
export function deleteHistorySql(
  schema: string,
  table: string,
  p: PeriodIdx,
  rows: readonly (readonly Value[])[],
  seq: bigint,
): string {
  let max = '';
  for (const r of rows) {
    const end = r[p.end] ?? null;
    if (isCurrentRowEnd(end) || typeof end !== 'string') {
      throw versionedError(schema, table, 'a delete of a current row cannot be applied exactly', seq);
    }
    if (end > max) max = end;
  }
  const t = epochText(max);
  if (t === null) throw versionedError(schema, table, 'a period column holds no valid timestamp', seq);
  const [s, us] = t.split('.') as [string, string];
  // One microsecond past the greatest row_end: BEFORE SYSTEM_TIME removes rows ending strictly before it.
  const next = BigInt(s) * 1_000_000n + BigInt(us) + 1n;
  const secs = next / 1_000_000n;
  const micros = (next % 1_000_000n).toString().padStart(6, '0');
  return `DELETE HISTORY FROM ${qualified(schema, table)} BEFORE SYSTEM_TIME FROM_UNIXTIME(${secs}.${micros})`;
}
