/**
 * Reads a table's shape from the PostgreSQL target's catalog (columns with their `format_type`, primary key), for
 * the applier's statements (statements.ts) and verify. Generated columns are left out (they cannot be written, and
 * capture does not send them).
 */
import type pg from 'pg';
import { TidemarkError } from '../../core/errors.ts';
import { wrapPgError } from '../../postgres/errors.ts';
import { qualifiedName } from '../../postgres/sql.ts';
import type { TargetTable } from './statements.ts';

const COLUMNS_SQL = `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
   AND a.attgenerated = '' ORDER BY a.attnum`;

const PK_SQL = `SELECT a.attname AS name FROM pg_index i
  CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
 WHERE i.indrelid = to_regclass($1) AND i.indisprimary ORDER BY k.n`;

/** The table's shape, or a clear non-retriable error when it does not exist on the target. */
export async function readTargetTable(client: pg.Client, schema: string, table: string): Promise<TargetTable> {
  const rel = qualifiedName(schema, table);
  let cols: pg.QueryResult;
  let pk: pg.QueryResult;
  try {
    cols = await client.query(COLUMNS_SQL, [rel]);
    pk = await client.query(PK_SQL, [rel]);
  } catch (err) {
    throw wrapPgError(err, `reading the shape of ${schema}.${table} on the PostgreSQL target`, { schema, table });
  }
  if (cols.rows.length === 0) {
    throw new TidemarkError(
      `table ${schema}.${table} does not exist on the PostgreSQL target (or the apply role cannot see it): create ` +
        "it with the source's definition (e.g. pg_dump --schema-only) before applying",
      { code: 'APPLY_BAD_ENTRY', context: { schema, table } },
    );
  }
  return {
    schema,
    table,
    columns: cols.rows.map((r) => ({ name: String(r['name']), type: String(r['type']) })),
    pk: pk.rows.map((r) => String(r['name'])),
  };
}
