/**
 * Per-table checksums of a schema, the same on any server holding the same rows (I/O: queries only): row count
 * plus a sum and an xor of per-row MD5 hashes over the canonical row text of apply/mysql/checksum.ts (the one
 * `tidemark verify` uses). A plain SELECT, so inside a transaction (a consistent snapshot) it reads that snapshot.
 * A drill compares the source's, read in a snapshot, with the restored server's.
 */
import type mysql from 'mysql2/promise';
import { columnsSql, rowHashExpr, type TableColumn } from '../../apply/mysql/checksum.ts';
import { qualified, quoteString } from '../../mysql/sql.ts';

/** table → `rows:sum:xor`. */
export type Checksums = Record<string, string>;

const SYSTEM = ['mysql', 'information_schema', 'performance_schema', 'sys'];

/** The schemas that are not MariaDB's own, sorted. */
export async function userSchemas(conn: mysql.Connection): Promise<string[]> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>(
    `SELECT schema_name AS s FROM information_schema.schemata WHERE schema_name NOT IN (${SYSTEM.map(quoteString).join(', ')}) ORDER BY 1`,
  );
  return rows.map((r) => String(r['s']));
}

export async function schemaChecksums(conn: mysql.Connection, schema: string): Promise<Checksums> {
  const [tables] = await conn.query<mysql.RowDataPacket[]>(
    `SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ${quoteString(schema)} ` +
      "AND table_type = 'BASE TABLE' ORDER BY 1",
  );
  const out: Checksums = {};
  for (const r of tables) {
    const table = String(r['t']);
    const [cols] = await conn.query<mysql.RowDataPacket[]>(columnsSql({ schema, table }));
    const shape: TableColumn[] = cols.map((c) => ({
      name: String(c['name']),
      dataType: String(c['data_type']),
      columnType: String(c['column_type']),
      collation: c['collation'] == null ? null : String(c['collation']),
    }));
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      'SELECT COUNT(*) AS n, CAST(COALESCE(SUM(CAST(CONV(SUBSTR(h, 1, 15), 16, 10) AS UNSIGNED)), 0) AS CHAR) AS s, ' +
        'CAST(COALESCE(BIT_XOR(CAST(CONV(SUBSTR(h, 17, 15), 16, 10) AS UNSIGNED)), 0) AS CHAR) AS x ' +
        `FROM (SELECT ${rowHashExpr(shape)} AS h FROM ${qualified(schema, table)}) q`,
    );
    out[table] = `${rows[0]?.['n']}:${rows[0]?.['s']}:${rows[0]?.['x']}`;
  }
  return out;
}

/** Checksums of several schemas, keyed `schema.table`. */
export async function allChecksums(conn: mysql.Connection, schemas: readonly string[]): Promise<Checksums> {
  const out: Checksums = {};
  for (const s of schemas) for (const [t, v] of Object.entries(await schemaChecksums(conn, s))) out[`${s}.${t}`] = v;
  return out;
}

/** The tables whose checksums differ (or exist on one side only), sorted. */
export function differences(source: Checksums, restored: Checksums): string[] {
  const keys = new Set([...Object.keys(source), ...Object.keys(restored)]);
  return [...keys].filter((k) => source[k] !== restored[k]).sort();
}
