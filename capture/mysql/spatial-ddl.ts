/**
 * The SRID attribute of spatial columns in a copied table definition. MariaDB keeps a column's declared SRID
 * (`p POINT REF_SYSTEM_ID=4326`) and reports it in information_schema.GEOMETRY_COLUMNS, but its SHOW CREATE TABLE
 * leaves it out (10.11), so the baseline (baseline.ts) would create the replica's column without it. This reads the
 * declared SRIDs and writes them back into the SHOW CREATE TABLE text. Values are not concerned: each carries its
 * own SRID in its stored bytes (values.ts).
 */
import type { RowDataPacket } from 'mysql2/promise';
import type { SourceConnection } from './connection.ts';
import type { TableRef } from '../../mysql/sql-text.ts';
import { quoteIdent } from '../../mysql/sql.ts';

/** Declared non-zero SRIDs of a table's spatial columns, by column name (none on servers without the view). */
export async function declaredSrids(conn: SourceConnection, t: TableRef): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const [rows] = await conn.promise.query<RowDataPacket[]>(
    'SELECT G_GEOMETRY_COLUMN AS c, SRID AS s FROM information_schema.GEOMETRY_COLUMNS ' +
      'WHERE G_TABLE_SCHEMA = ? AND G_TABLE_NAME = ? AND SRID <> 0',
    [t.schema, t.table],
  );
  for (const r of rows) out.set(String(r['c']), Number(r['s']));
  return out;
}

const SPATIAL_TYPE = '(?:geometry|point|linestring|polygon|multipoint|multilinestring|multipolygon|geometrycollection)';

/**
 * Adds `REF_SYSTEM_ID=n` after the type of each named column of a SHOW CREATE TABLE text (a column line is
 * "  `name` type …"); a column whose line already has it, or is not found, is left alone. Pure.
 */
export function withRefSystemIds(createSql: string, srids: ReadonlyMap<string, number>): string {
  let sql = createSql;
  for (const [col, srid] of srids) {
    const name = quoteIdent(col).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const line = new RegExp(`^(\\s+${name}\\s+${SPATIAL_TYPE})(?![\\w(])(?!.*\\bREF_SYSTEM_ID\\b)`, 'im');
    sql = sql.replace(line, `$1 REF_SYSTEM_ID=${Math.trunc(srid)}`);
  }
  return sql;
}
