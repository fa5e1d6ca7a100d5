/**
 * What the baseline (baseline.ts) reads of each table it copies, checked for every table before anything is
 * copied: the columns with their value specs (values.ts) and the select expression of each — FLOAT as
 * CAST(col AS DOUBLE), ENUM as CONCAT(col + 0, ':', col), MariaDB UUID/INET4/INET6 and spatial columns (their
 * stored SRID + WKB bytes; the driver would otherwise parse them into objects) as CAST(col AS BINARY) — the
 * primary key, and for a system-versioned table its period (hidden row_start/row_end added, row_end appended to
 * the key, as the binlog describes them).
 */
import type { RowDataPacket } from 'mysql2/promise';
import { IMPLICIT_PERIOD, type SystemPeriod, systemPeriodOf } from '../../record/versioning.ts';
import type { SourceConnection } from './connection.ts';
import { qualified, type TableRef } from '../../mysql/sql-text.ts';
import { quoteIdent } from '../../mysql/sql.ts';
import {
  type ColumnSpec,
  columnSpec,
  type RefusedTable,
  unsupportedColumns,
  unsupportedTablesError,
} from './values.ts';
import { isBinaryStored } from '../../mysql/types.ts';

/** A table to read: information_schema.TABLES.TABLE_TYPE = 'SYSTEM VERSIONED' says `versioned`. */
export interface TableToRead extends TableRef {
  readonly versioned: boolean;
}

/** What the baseline reads of one table: its columns (select expressions and specs) and primary key. */
export interface TableShape {
  readonly specs: ColumnSpec[];
  readonly select: string[];
  readonly pk: string[];
  /** The system period of a versioned table (rows are read FOR SYSTEM_TIME ALL). */
  readonly period: SystemPeriod | null;
}

/** Reads every table's shape; refuses all unfit tables in one error before anything is copied. */
export async function readTableShapes<T extends TableToRead>(
  conn: SourceConnection,
  tables: readonly T[],
): Promise<Map<T, TableShape>> {
  const shapes = new Map<T, TableShape>();
  const refused: RefusedTable[] = [];
  for (const t of tables) {
    const shape = await readTableShape(conn, t);
    const why = unsupportedColumns(shape.specs).map((c) => `${c.name} ${c.column.columnType}`);
    if (shape.period) {
      const end = shape.specs.find((c) => c.name === shape.period?.end);
      if (end?.kind !== 'datetime') why.push('system versioning by transaction id');
    }
    if (why.length > 0) refused.push({ schema: t.schema, table: t.table, why });
    shapes.set(t, shape);
  }
  if (refused.length > 0) throw unsupportedTablesError(refused);
  return shapes;
}

/** The columns, select expressions, primary key and system period of one table (see the file comment). */
async function readTableShape(conn: SourceConnection, t: TableToRead): Promise<TableShape> {
  const [cols] = await conn.promise.query<RowDataPacket[]>(
    'SELECT COLUMN_NAME AS n, COLUMN_TYPE AS ct FROM information_schema.COLUMNS ' +
      'WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
    [t.schema, t.table],
  );
  const specs: ColumnSpec[] = [];
  const select: string[] = [];
  for (const r of cols) {
    const spec = columnSpec(String(r['n']), String(r['ct']));
    const q = quoteIdent(spec.name);
    specs.push(spec);
    if (spec.kind === 'float') select.push(`CAST(${q} AS DOUBLE)`);
    else if (spec.kind === 'enum') select.push(`CONCAT(${q} + 0, ':', ${q})`);
    else if (spec.kind === 'geometry' || isBinaryStored(String(r['ct']))) select.push(`CAST(${q} AS BINARY)`);
    else select.push(q);
  }
  const [keys] = await conn.promise.query<RowDataPacket[]>(
    'SELECT COLUMN_NAME AS n FROM information_schema.STATISTICS ' +
      "WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
    [t.schema, t.table],
  );
  const pk = keys.map((r) => String(r['n']));
  let period: SystemPeriod | null = null;
  if (t.versioned) {
    const [[created]] = await conn.promise.query<RowDataPacket[]>({
      sql: `SHOW CREATE TABLE ${qualified(t)}`,
      rowsAsArray: true,
    });
    period = systemPeriodOf(String((created as unknown as unknown[])[1])) ?? IMPLICIT_PERIOD;
    if (period.implicit) {
      // Hidden columns: not in information_schema, but in every binlog row image (after the table's columns).
      for (const n of [period.start, period.end]) {
        specs.push(columnSpec(n, 'timestamp(6)'));
        select.push(quoteIdent(n));
      }
    }
    // The server's key ends with row_end (current and history rows of one key are distinct), as the binlog says.
    if (pk.length > 0 && !pk.includes(period.end)) pk.push(period.end);
  }
  return { specs, select, pk, period };
}
