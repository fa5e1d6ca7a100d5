/**
 * Verify for a PostgreSQL target against a PostgreSQL source: for each table, both sides' rows as (primary-key text,
 * md5 of the row's text) ordered by the primary key, in one REPEATABLE READ snapshot per side; a table is equal
 * when both lists are; otherwise the differing keys (missing / extra / changed) are listed. The row text is the
 * server's own output of every column (tidemark's session settings make it the same on both sides), so a value
 * that differs in any digit differs here. Not chunked yet: both sides' key/hash lists are held in memory.
 */
import type pg from 'pg';
import { ConfigError, TidemarkError } from '../../core/errors.ts';
import type { TableRef } from '../../engine/source.ts';
import type { Difference, TableResult } from '../../engine/target.ts';
import { createTableFilter } from '../../mysql/table-filter.ts';
import { wrapPgError } from '../../postgres/errors.ts';
import { qualifiedName, quoteIdent } from '../../postgres/sql.ts';
import { type PgEndpoint, openPgClient } from '../../postgres/session.ts';
import { readTargetTable } from './catalog.ts';

/** What verify reads of a `kind: postgres` source section. */
export interface PgVerifySource extends PgEndpoint {
  readonly kind: string;
  readonly publication: string;
  readonly include: readonly string[];
  readonly exclude: readonly string[];
}

const MAX_DIFFERENCES = 100;

/** The source publication's tables that include/exclude take in. */
export async function publishedTables(client: pg.Client, s: PgVerifySource): Promise<TableRef[]> {
  const filter = createTableFilter([...s.include], [...s.exclude]);
  const r = await client.query(
    'SELECT schemaname AS s, tablename AS t FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2',
    [s.publication],
  );
  return r.rows
    .map((x) => ({ schema: String(x['s']), table: String(x['t']) }))
    .filter((t) => filter.includesTable(t.schema, t.table));
}

async function keyedHashes(client: pg.Client, t: TableRef, cols: readonly string[], pk: readonly string[]) {
  const row = `ROW(${cols.map(quoteIdent).join(', ')})::text`;
  const key = pk.map((k) => `${quoteIdent(k)}::text`).join(` || ', ' || `);
  const r = await client.query(
    `SELECT ${key} AS k, md5(${row}) AS h FROM ${qualifiedName(t.schema, t.table)} ORDER BY ${pk.map(quoteIdent).join(', ')}`,
  );
  return new Map(r.rows.map((x) => [String(x['k']), String(x['h'])]));
}

async function snapshot<T>(client: pg.Client, f: () => Promise<T>): Promise<T> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
  try {
    return await f();
  } finally {
    await client.query('ROLLBACK').catch(() => {});
  }
}

/** Compares `tables` (default: the source's published, included tables) of source and target. */
export async function verifyPg(
  source: PgVerifySource,
  target: PgEndpoint & { readonly name: string },
  tables: readonly TableRef[] | undefined,
): Promise<TableResult[]> {
  if (source.kind !== 'postgres') {
    throw new ConfigError(
      `target ${target.name}: a postgres target verifies against a postgres source only (source.kind is "${source.kind}")`,
      { target: target.name },
    );
  }
  const src = await openPgClient(source, { applicationName: 'tidemark-verify', tlsKey: 'source.tls' });
  try {
    const dst = await openPgClient(target, {
      applicationName: 'tidemark-verify',
      tlsKey: `targets.${target.name}.tls`,
    });
    try {
      const list = tables ?? (await publishedTables(src, source));
      const out: TableResult[] = [];
      for (const t of list) out.push(await compareTable(src, dst, t));
      return out;
    } finally {
      await dst.end().catch(() => {});
    }
  } catch (err) {
    if (err instanceof TidemarkError) throw err;
    throw wrapPgError(err, `verify of target ${target.name}`, { target: target.name });
  } finally {
    await src.end().catch(() => {});
  }
}

async function compareTable(src: pg.Client, dst: pg.Client, t: TableRef): Promise<TableResult> {
  const [a, b] = [await readTargetTable(src, t.schema, t.table), await readTargetTable(dst, t.schema, t.table)];
  const base = { schema: t.schema, table: t.table, chunks: 1 };
  const sig = (x: typeof a) => `${x.columns.map((c) => `${c.name} ${c.type}`).join(', ')}; pk (${x.pk.join(', ')})`;
  if (sig(a) !== sig(b)) {
    const columnsDiffer = `source: ${sig(a)} / target: ${sig(b)}`;
    return { ...base, rows: 0, replicaRows: 0, equal: false, differences: [], differenceCount: 0, columnsDiffer };
  }
  if (a.pk.length === 0) {
    return { ...base, rows: 0, replicaRows: 0, equal: false, differences: [], differenceCount: 0, noPrimaryKey: true };
  }
  const cols = a.columns.map((c) => c.name);
  const sa = await snapshot(src, () => keyedHashes(src, t, cols, a.pk));
  const sb = await snapshot(dst, () => keyedHashes(dst, t, cols, a.pk));
  const differences: Difference[] = [];
  let count = 0;
  const add = (key: string, kind: Difference['kind']) => {
    count++;
    if (differences.length < MAX_DIFFERENCES) differences.push({ pk: key.split(', '), key, kind });
  };
  for (const [k, h] of sa) {
    const o = sb.get(k);
    if (o === undefined) add(k, 'missing');
    else if (o !== h) add(k, 'changed');
  }
  for (const k of sb.keys()) if (!sa.has(k)) add(k, 'extra');
  return { ...base, rows: sa.size, replicaRows: sb.size, equal: count === 0, differences, differenceCount: count };
}
