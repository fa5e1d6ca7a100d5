/**
 * Verify of a PostgreSQL target against a MariaDB source (issue #14 item 8): per table, both sides' columns are read
 * (information_schema; the target's catalog), each source column's mapping (from-mysql.ts) must take the target's
 * type (else the table is reported `columnsDiffer`, naming column and types), then both sides are read in key order
 * in REPEATABLE READ snapshots and compared value by value after normalising each to the mapping's canonical text
 * (engine/cross-compare.ts). A one-value difference is a `changed` key; rows on one side only `missing`/`extra`.
 */
import type mysql from 'mysql2/promise';
import type pg from 'pg';
import { TidemarkError } from '../../core/errors.ts';
import { type CrossPlan, type CrossTableSpec, verifyCross } from '../../engine/cross-compare.ts';
import type { TableRef } from '../../engine/source.ts';
import type { TableResult } from '../../engine/target.ts';
import { mysqlChunkReader, mysqlTableColumns } from '../../mysql/cross-read.ts';
import { type MysqlEndpoint, openSession } from '../../mysql/session.ts';
import { createTableFilter } from '../../mysql/table-filter.ts';
import { baseType, normalizeColumnType } from '../../mysql/types.ts';
import { pgChunkReader, pgTableColumns } from '../../postgres/cross-read.ts';
import { openPgClient, type PgEndpoint } from '../../postgres/session.ts';
import type { Column } from '../../record/record.ts';
import { checkPgTarget } from './from-mysql.ts';

/** What cross verify reads of a `kind: mysql` source section. */
export interface MysqlVerifySource extends MysqlEndpoint {
  readonly include: readonly string[];
  readonly exclude: readonly string[];
}

/** A MariaDB COLUMN_TYPE as the record Column capture writes for it. */
export function mysqlColumn(name: string, rawType: string): Column {
  const columnType = normalizeColumnType(rawType);
  return { name, type: baseType(columnType), columnType, unsigned: /\bunsigned\b/.test(columnType) };
}

/** Why two column lists cannot be compared, or null. */
export function columnsMismatch(source: readonly string[], target: readonly string[], what: string): string | null {
  const a = [...source].sort().join(', ');
  const b = [...target].sort().join(', ');
  return a === b ? null : `${what} differ: source (${a}), target (${b})`;
}

async function plan(my: mysql.Connection, client: pg.Client, t: TableRef): Promise<CrossPlan> {
  const s = await mysqlTableColumns(my, t.schema, t.table);
  const d = await pgTableColumns(client, t.schema, t.table);
  if (s.columns.length === 0) return { columnsDiffer: 'table not found on the source' };
  if (d.columns.length === 0) return { columnsDiffer: 'table not found on the target' };
  const differ =
    columnsMismatch(
      s.columns.map((c) => c.name),
      d.columns.map((c) => c.name),
      'columns',
    ) ?? (s.pk.join(',') === d.pk.join(',') ? null : `primary keys differ: (${s.pk}) and (${d.pk})`);
  if (differ) return { columnsDiffer: differ };
  const pgType = new Map(d.columns.map((c) => [c.name, c.columnType]));
  let cols: { name: string; kind: ReturnType<typeof checkPgTarget>; type: string }[];
  try {
    cols = s.columns.map((c) => {
      const type = pgType.get(c.name)!;
      const kind = checkPgTarget({ ...t, column: c.name }, mysqlColumn(c.name, c.columnType), type);
      return { name: c.name, kind, type };
    });
  } catch (err) {
    if (err instanceof TidemarkError && err.code === 'APPLY_TYPE_MAP') return { columnsDiffer: err.message };
    throw err;
  }
  const key = s.pk.map((k) => cols.findIndex((c) => c.name === k));
  const spec: CrossTableSpec = { ...t, columns: cols, key };
  return {
    spec,
    source: mysqlChunkReader(my, t.schema, t.table, cols, key),
    target: pgChunkReader(client, t.schema, t.table, cols, key),
  };
}

/** Every base table of the MariaDB source that include/exclude take in. */
async function sourceTables(my: mysql.Connection, s: MysqlVerifySource): Promise<TableRef[]> {
  const filter = createTableFilter([...s.include], [...s.exclude]);
  const [rows] = await my.query<mysql.RowDataPacket[]>(
    "SELECT table_schema AS s, table_name AS t FROM information_schema.tables WHERE table_type = 'BASE TABLE' ORDER BY 1, 2",
  );
  return rows
    .map((r) => ({ schema: String(r['s']), table: String(r['t']) }))
    .filter((x) => filter.includesTable(x.schema, x.table));
}

/** Compares the PostgreSQL target with the MariaDB source, table by table. */
export async function verifyFromMysql(
  source: MysqlVerifySource,
  target: PgEndpoint & { readonly name: string },
  tables: readonly TableRef[] | undefined,
  chunkRows = 10_000,
): Promise<TableResult[]> {
  const my = await openSession(source, { apply: false });
  let client: pg.Client | null = null;
  try {
    client = await openPgClient(target, { applicationName: 'tidemark-verify', tlsKey: `targets.${target.name}.tls` });
    const c = client;
    return await verifyCross(tables ?? (await sourceTables(my, source)), {
      chunkRows,
      plan: (t) => plan(my, c, t),
      snapshot: async () => {
        await my.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
        await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        return async () => {
          await my.query('COMMIT');
          await c.query('COMMIT');
        };
      },
    });
  } finally {
    await my.end().catch(() => {});
    await client?.end().catch(() => {});
  }
}
