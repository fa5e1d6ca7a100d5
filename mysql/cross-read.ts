/**
 * What cross-engine apply and verify (issue #14 item 8) read of a MariaDB table: its columns as information_schema
 * describes them (type, charset, primary key), and its rows in key order, chunk after chunk, each value as the text
 * engine/cross-compare.ts normalises (FLOAT/DOUBLE read in the binary protocol, so as the exact float/double the
 * column holds, not MariaDB's rounded display). Keys order by their bytes for text (CAST AS BINARY: the UTF-8 order
 * PostgreSQL's COLLATE "C" gives), by value otherwise. I/O only; the SQL is built here from quoted identifiers and
 * literals (sql.ts). The kinds are engine/cross-compare.ts CanonKind's (a sibling floor: named here by value).
 */
import type mysql from 'mysql2/promise';
import { hexLiteral, qualified, quoteIdent, quoteString } from './sql.ts';

/** A MariaDB column as information_schema.COLUMNS describes it. */
export interface MysqlTargetColumn {
  readonly name: string;
  /** COLUMN_TYPE, e.g. "decimal(38,10)", "int(11)", "bigint(20) unsigned", "datetime(6)". */
  readonly columnType: string;
  /** CHARACTER_SET_NAME (null for non-text columns). */
  readonly charset: string | null;
}

export interface MysqlTableColumns {
  /** In ordinal order; empty when the table does not exist. */
  readonly columns: readonly MysqlTargetColumn[];
  /** Primary-key column names in key order. */
  readonly pk: readonly string[];
}

/** The table's columns and primary key. */
export async function mysqlTableColumns(
  conn: mysql.Connection,
  schema: string,
  table: string,
): Promise<MysqlTableColumns> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>(
    'SELECT COLUMN_NAME AS n, COLUMN_TYPE AS t, CHARACTER_SET_NAME AS cs FROM information_schema.COLUMNS ' +
      'WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
    [schema, table],
  );
  const [pk] = await conn.query<mysql.RowDataPacket[]>(
    'SELECT COLUMN_NAME AS n FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ' +
      "AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
    [schema, table],
  );
  return {
    columns: rows.map((r) => ({
      name: String(r['n']),
      columnType: String(r['t']),
      charset: r['cs'] == null ? null : String(r['cs']),
    })),
    pk: pk.map((r) => String(r['n'])),
  };
}

/** A column to read: its name and how it compares (engine/cross-compare.ts CanonKind). */
export interface ReadColumn {
  readonly name: string;
  readonly kind: string;
}

/** One cell as read: text, an exact number (FLOAT/DOUBLE), or NULL. */
export type RawCell = string | number | null;

function selectExpr(c: ReadColumn): string {
  const q = quoteIdent(c.name);
  switch (c.kind) {
    case 'float4':
    case 'float8':
      return q; // binary protocol: the exact float/double
    case 'bits':
      return `BIN(${q})`; // binary digits, as PostgreSQL's bit text
    case 'bytes':
      return `HEX(${q})`;
    case 'text':
      return `CONVERT(${q} USING utf8mb4)`;
    default:
      return `CAST(${q} AS CHAR)`;
  }
}

const orderExpr = (c: ReadColumn) => (c.kind === 'text' ? `CAST(${quoteIdent(c.name)} AS BINARY)` : quoteIdent(c.name));

function keyLiteral(kind: string, v: string): string {
  if (kind === 'int') return BigInt(v).toString();
  if (kind === 'text') return hexLiteral(Buffer.from(v, 'utf8'));
  if (kind === 'bytes') return hexLiteral(Buffer.from(v, 'hex'));
  return quoteString(v);
}

/** Reads `schema.table` in key order, `limit` rows after a key (canonical key text; engine/cross-compare.ts ChunkReader). */
export function mysqlChunkReader(
  conn: mysql.Connection,
  schema: string,
  table: string,
  cols: readonly ReadColumn[],
  key: readonly number[],
): (after: readonly string[] | null, limit: number) => Promise<RawCell[][]> {
  // Aliased: ORDER BY a bare name would otherwise sort by a select item of that name (its text), not the column.
  const select = cols.map((c, i) => `${selectExpr(c)} AS c${i}`).join(', ');
  const order = key.map((i) => orderExpr(cols[i]!)).join(', ');
  return async (after, limit) => {
    const where = after
      ? ` WHERE (${order}) > (${key.map((i, j) => keyLiteral(cols[i]!.kind, after[j]!)).join(', ')})`
      : '';
    const sql = `SELECT ${select} FROM ${qualified(schema, table)}${where} ORDER BY ${order} LIMIT ${limit}`;
    // execute(): the binary protocol, for FLOAT/DOUBLE as their exact values; unprepared at once (bounds differ).
    const [rows] = await conn.execute<mysql.RowDataPacket[]>({ sql, rowsAsArray: true });
    conn.unprepare(sql);
    return (rows as unknown as unknown[][]).map((r) =>
      r.map((v): RawCell => (v === null || v === undefined ? null : typeof v === 'number' ? v : String(v))),
    );
  };
}
