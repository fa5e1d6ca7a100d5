/**
 * Pure SQL for comparing a table on two servers (verify.ts runs it). Every row is reduced to one MD5 over a
 * canonical text of its columns; chunks of rows are reduced to COUNT(*) plus an order-independent aggregate of
 * the two 64-bit halves of those MD5s.
 *
 * Canonical column text (both servers use the session of mysql/session.ts: time_zone +00:00, utf8mb4):
 *   integers, DECIMAL, YEAR, dates and times     CAST(c AS CHAR)
 *   DOUBLE                                       CAST(c AS CHAR) (shortest round-trip text)
 *   FLOAT                                        CAST(CAST(c AS DOUBLE) AS CHAR) (CAST(float AS CHAR) keeps only 6
 *                                                digits; the double of a float is exact)
 *   BIT                                          CAST(c + 0 AS CHAR)
 *   text types, SET, JSON                        HEX(CONVERT(c USING utf8mb4)) (independent of the column charset)
 *   ENUM                                         the same plus ':' and the index (c + 0): the invalid-value index
 *                                                0 and a '' member read alike as text
 *   anything else (binary, BLOB, spatial …)      HEX(c) (a geometry: its stored SRID + WKB, so the SRID counts)
 * NULL becomes 'N', which no rendering above can produce; columns are joined with '#', which none can contain
 * either, so NULL, '' and 'NULL' (and 'a#','b' vs 'a','#b') all hash differently.
 *
 * Aggregates: with a primary key, BIT_XOR of each half (rows are distinct); without one, SUM of each half as
 * DECIMAL (exact, and duplicate rows do not cancel out as they would under XOR).
 *
 * System-versioned tables (MariaDB) are read FOR SYSTEM_TIME ALL: history rows and the period columns (hidden
 * row_start/row_end too, added to the shape by verify.ts) are compared like any other rows and columns.
 */
import { TidemarkError } from '../../core/errors.ts';
import type { Column, Value } from '../../record/record.ts';
import { literal, qualified, quoteIdent, quoteString } from '../../mysql/sql.ts';
import { typeFamily, type ValueKind } from '../../mysql/types.ts';

export interface TableRef {
  readonly schema: string;
  readonly table: string;
}

/** A column as information_schema describes it. */
export interface TableColumn {
  readonly name: string;
  /** DATA_TYPE, lower case (int, varchar, decimal …). */
  readonly dataType: string;
  /** COLUMN_TYPE (int(10) unsigned, enum('a','b') …). */
  readonly columnType: string;
  readonly collation: string | null;
}

export interface TableShape extends TableRef {
  readonly columns: readonly TableColumn[];
  /** Primary-key column names in key order; empty without a primary key. */
  readonly pk: readonly string[];
  /** A system-versioned table: rows are read FOR SYSTEM_TIME ALL (history included). */
  readonly versioned?: boolean;
}

export type Aggregate = 'xor' | 'sum';

export function columnsSql(t: TableRef): string {
  return (
    'SELECT COLUMN_NAME AS name, LOWER(DATA_TYPE) AS data_type, COLUMN_TYPE AS column_type, ' +
    'COLLATION_NAME AS collation FROM information_schema.COLUMNS ' +
    `WHERE TABLE_SCHEMA = ${quoteString(t.schema)} AND TABLE_NAME = ${quoteString(t.table)} ORDER BY ORDINAL_POSITION`
  );
}

export function primaryKeySql(t: TableRef): string {
  return (
    'SELECT COLUMN_NAME AS name FROM information_schema.STATISTICS ' +
    `WHERE TABLE_SCHEMA = ${quoteString(t.schema)} AND TABLE_NAME = ${quoteString(t.table)} ` +
    "AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX"
  );
}

/** Why two shapes cannot be compared row by row, or null when they match. */
export function shapeDifference(src: TableShape, rep: TableShape): string | null {
  if (src.columns.length === 0) return 'table not found on the source';
  if (rep.columns.length === 0) return 'table not found on the replica';
  const out: string[] = [];
  const repBy = new Map(rep.columns.map((c) => [c.name, c]));
  for (const c of src.columns) {
    const r = repBy.get(c.name);
    if (!r) out.push(`column ${c.name} missing on the replica`);
    else if (r.columnType.toLowerCase() !== c.columnType.toLowerCase()) {
      out.push(`column ${c.name}: ${c.columnType} on the source, ${r.columnType} on the replica`);
    } else if ((r.collation ?? '') !== (c.collation ?? '')) {
      out.push(`column ${c.name}: collation ${c.collation} on the source, ${r.collation} on the replica`);
    }
  }
  const srcNames = new Set(src.columns.map((c) => c.name));
  for (const r of rep.columns) if (!srcNames.has(r.name)) out.push(`column ${r.name} only on the replica`);
  if ((src.versioned ?? false) !== (rep.versioned ?? false)) {
    out.push(`system-versioned on the ${src.versioned ? 'source' : 'replica'} only`);
  }
  if (src.pk.join('\0') !== rep.pk.join('\0')) {
    out.push(`primary key (${src.pk.join(', ')}) on the source, (${rep.pk.join(', ')}) on the replica`);
  }
  return out.length ? out.join('; ') : null;
}

/** Families rendered as CAST(c AS CHAR): exact numbers, DOUBLE, dates and times. */
const AS_CHAR: ReadonlySet<ValueKind> = new Set(['int', 'year', 'decimal', 'double', 'date', 'datetime', 'time']);
/** Families rendered as hex of their utf8mb4 text. */
const AS_TEXT: ReadonlySet<ValueKind> = new Set(['text', 'set']);

/** Canonical text of one column (see the file comment); NULL stays NULL. */
export function renderColumn(c: TableColumn): string {
  const q = quoteIdent(c.name);
  const family = typeFamily(c.dataType);
  if (family === 'float') return `CAST(CAST(${q} AS DOUBLE) AS CHAR)`;
  if (family === 'bit') return `CAST(${q} + 0 AS CHAR)`;
  if (AS_CHAR.has(family)) return `CAST(${q} AS CHAR)`;
  if (AS_TEXT.has(family)) return `HEX(CONVERT(${q} USING utf8mb4))`;
  if (family === 'enum') return `CONCAT(HEX(CONVERT(${q} USING utf8mb4)), ':', ${q} + 0)`;
  return `HEX(${q})`;
}

/** MD5 hex of the row's canonical text. */
export function rowHashExpr(cols: readonly TableColumn[]): string {
  return `MD5(CONCAT_WS('#', ${cols.map((c) => `COALESCE(${renderColumn(c)}, 'N')`).join(', ')}))`;
}

/** The record Column used to format literals of this column. */
export function asColumn(c: TableColumn): Column {
  return { name: c.name, type: c.dataType, columnType: c.columnType };
}

function pkColumns(s: TableShape): TableColumn[] {
  return s.pk.map((n) => {
    const c = s.columns.find((x) => x.name === n);
    if (!c) {
      throw new TidemarkError(`primary key column ${n} is not a column of ${qualified(s.schema, s.table)}`, {
        code: 'VERIFY_SHAPE',
      });
    }
    return c;
  });
}

/**
 * Lexicographic key comparison spelled out with OR/AND (MariaDB does not use an index for row-constructor `>`):
 * op '>' for an exclusive lower bound, '<=' for an inclusive upper bound.
 */
export function keyCompare(cols: readonly TableColumn[], key: readonly Value[], op: '>' | '<='): string {
  const strict = op === '>' ? '>' : '<';
  const build = (i: number): string => {
    const c = cols[i]!;
    const lit = literal(key[i] ?? null, asColumn(c));
    const name = quoteIdent(c.name);
    if (i === cols.length - 1) return `${name} ${op} ${lit}`;
    return `(${name} ${strict} ${lit} OR (${name} = ${lit} AND ${build(i + 1)}))`;
  };
  return build(0);
}

/** WHERE text for keys in (lower, upper]; either bound may be null (open). */
export function rangeWhere(s: TableShape, lower: readonly Value[] | null, upper: readonly Value[] | null): string {
  const cols = pkColumns(s);
  const parts: string[] = [];
  if (lower) parts.push(keyCompare(cols, lower, '>'));
  if (upper) parts.push(keyCompare(cols, upper, '<='));
  return parts.length ? ` WHERE ${parts.join(' AND ')}` : '';
}

function from(s: TableShape): string {
  return (
    qualified(s.schema, s.table) +
    (s.versioned ? ' FOR SYSTEM_TIME ALL' : '') +
    (s.pk.length ? ' FORCE INDEX (PRIMARY)' : '')
  );
}

function orderBy(s: TableShape): string {
  return ' ORDER BY ' + s.pk.map((n) => quoteIdent(n)).join(', ');
}

/** The key `chunkRows` rows after `lower` on this server: the inclusive upper bound of the next chunk. */
export function boundarySql(s: TableShape, lower: readonly Value[] | null, chunkRows: number): string {
  const sel = s.pk.map((n) => quoteIdent(n)).join(', ');
  return `SELECT ${sel} FROM ${from(s)}${rangeWhere(s, lower, null)}${orderBy(s)} LIMIT 1 OFFSET ${Math.max(0, Math.floor(chunkRows) - 1)}`;
}

/** n, a, b (as text) for rows in (lower, upper]; the whole table without a primary key. */
export function chunkChecksumSql(
  s: TableShape,
  lower: readonly Value[] | null,
  upper: readonly Value[] | null,
  agg: Aggregate,
): string {
  const h = rowHashExpr(s.columns);
  const half = (start: number): string =>
    agg === 'xor'
      ? `BIT_XOR(CAST(CONV(SUBSTRING(${h}, ${start}, 16), 16, 10) AS UNSIGNED))`
      : `SUM(CAST(CONV(SUBSTRING(${h}, ${start}, 16), 16, 10) AS DECIMAL(20,0)))`;
  const where = s.pk.length ? rangeWhere(s, lower, upper) : '';
  return (
    `SELECT CAST(COUNT(*) AS CHAR) AS n, CAST(COALESCE(${half(1)}, 0) AS CHAR) AS a, ` +
    `CAST(COALESCE(${half(17)}, 0) AS CHAR) AS b FROM ${from(s)}${where}`
  );
}

/** Key columns and row hash for rows in (lower, upper], in key order, at most `limit` rows. */
export function rowHashesSql(
  s: TableShape,
  lower: readonly Value[] | null,
  upper: readonly Value[] | null,
  limit: number | null,
): string {
  const sel = s.pk.map((n) => quoteIdent(n)).join(', ');
  return (
    `SELECT ${sel}, ${rowHashExpr(s.columns)} AS tidemark_row_hash FROM ${from(s)}${rangeWhere(s, lower, upper)}` +
    orderBy(s) +
    (limit !== null ? ` LIMIT ${Math.floor(limit)}` : '')
  );
}

/** "id=5, region='eu'" for reports, and a canonical map key. */
export function keyText(s: TableShape, key: readonly Value[]): string {
  const cols = pkColumns(s);
  return cols.map((c, i) => `${c.name}=${literal(key[i] ?? null, asColumn(c))}`).join(', ');
}
