/**
 * Verify of a MariaDB target against a PostgreSQL source (issue #14 item 8): per table, both sides' columns are read
 * (the source's catalog; information_schema), each source column's mapping (from-postgres.ts) must take the target's
 * type (else the table is reported `columnsDiffer`, naming column and types), then both sides are read in key order
 * in consistent snapshots and compared value by value after normalising each to the mapping's canonical text
 * (engine/cross-compare.ts). A one-value difference is a `changed` key; rows on one side only `missing`/`extra`.
 */
import type mysql from 'mysql2/promise';
import type pg from 'pg';
import { TidemarkError } from '../../core/errors.ts';
import { type CanonKind, type CrossPlan, verifyCross } from '../../engine/cross-compare.ts';
import type { TableRef } from '../../engine/source.ts';
import type { TableResult } from '../../engine/target.ts';
import { mysqlChunkReader, mysqlTableColumns } from '../../mysql/cross-read.ts';
import { type MysqlEndpoint, openSession } from '../../mysql/session.ts';
import { createTableFilter } from '../../mysql/table-filter.ts';
import { pgChunkReader, pgTableColumns, publicationTables } from '../../postgres/cross-read.ts';
import { openPgClient, type PgEndpoint } from '../../postgres/session.ts';
import { checkMysqlTarget } from './from-postgres.ts';

/** What cross verify reads of a `kind: postgres` source section. */
export interface PgVerifySource extends PgEndpoint {
  readonly publication: string;
  readonly include: readonly string[];
  readonly exclude: readonly string[];
}

async function plan(client: pg.Client, my: mysql.Connection, t: TableRef): Promise<CrossPlan> {
  const s = await pgTableColumns(client, t.schema, t.table);
  const d = await mysqlTableColumns(my, t.schema, t.table);
  if (s.columns.length === 0) return { columnsDiffer: 'table not found on the source' };
  if (d.columns.length === 0) return { columnsDiffer: 'table not found on the target' };
  const a = s.columns.map((c) => c.name).sort();
  const b = d.columns.map((c) => c.name).sort();
  if (a.join('\0') !== b.join('\0')) return { columnsDiffer: `columns differ: source (${a}), target (${b})` };
  if (s.pk.join('\0') !== d.pk.join('\0')) return { columnsDiffer: `primary keys differ: (${s.pk}) and (${d.pk})` };
  const target = new Map(d.columns.map((c) => [c.name, c]));
  let cols: { name: string; kind: CanonKind; type: string }[];
  try {
    cols = s.columns.map((c) => ({
      name: c.name,
      kind: checkMysqlTarget({ ...t, column: c.name }, c, target.get(c.name)!).canon,
      type: c.columnType,
    }));
  } catch (err) {
    if (err instanceof TidemarkError && err.code === 'APPLY_TYPE_MAP') return { columnsDiffer: err.message };
    throw err;
  }
  const key = s.pk.map((k) => cols.findIndex((c) => c.name === k));
  return {
    spec: { ...t, columns: cols, key },
    source: pgChunkReader(client, t.schema, t.table, cols, key),
    target: mysqlChunkReader(my, t.schema, t.table, cols, key),
  };
}

/** The source publication's tables that include/exclude take in. */
async function publishedTables(client: pg.Client, s: PgVerifySource): Promise<TableRef[]> {
  const filter = createTableFilter([...s.include], [...s.exclude]);
  return (await publicationTables(client, s.publication)).filter((x) => filter.includesTable(x.schema, x.table));
}

/** Compares the MariaDB target with the PostgreSQL source, table by table. */
export async function verifyFromPostgres(
  source: PgVerifySource,
  target: MysqlEndpoint,
  tables: readonly TableRef[] | undefined,
  chunkRows = 10_000,
): Promise<TableResult[]> {
  const client = await openPgClient(source, { applicationName: 'tidemark-verify', tlsKey: 'source.tls' });
  let my: mysql.Connection | null = null;
  try {
    my = await openSession(target, { apply: false });
    const m = my;
    return await verifyCross(tables ?? (await publishedTables(client, source)), {
      chunkRows,
      plan: (t) => plan(client, m, t),
      snapshot: async () => {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        await m.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
        return async () => {
          await client.query('COMMIT');
          await m.query('COMMIT');
        };
      },
    });
  } finally {
    await client.end().catch(() => {});
    await my?.end().catch(() => {});
  }
}
