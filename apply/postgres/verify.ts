/**
 * Verify for a PostgreSQL target against a PostgreSQL source, table by table in one REPEATABLE READ snapshot per
 * side: the source's primary-key order is cut into chunks of `chunk_rows` rows (keyset: the chunk's last key), each
 * chunk's rows counted and hashed on both sides (md5 over the ordered md5 of each row's text); only a chunk that
 * differs is compared key by key (missing / extra / changed). The row text is the server's own output of every
 * column (tidemark's session settings make it the same on both sides), so a value that differs in any digit
 * differs here; memory is one chunk's keys at most.
 */
import type pg from 'pg';
import { ConfigError, TidemarkError } from '../../core/errors.ts';
import type { TableRef } from '../../engine/source.ts';
import type { Difference, TableResult } from '../../engine/target.ts';
import { createTableFilter } from '../../mysql/table-filter.ts';
import { wrapPgError } from '../../postgres/errors.ts';
import { publicationTables } from '../../postgres/cross-read.ts';
import { qualifiedName, quoteIdent } from '../../postgres/sql.ts';
import { type PgEndpoint, openPgClient } from '../../postgres/session.ts';
import { readTargetTable } from './catalog.ts';
import type { TargetTable } from './statements.ts';

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
  return (await publicationTables(client, s.publication)).filter((x) => filter.includesTable(x.schema, x.table));
}

/** A table's key and row expressions, and a WHERE for a primary-key range (lo, hi] with cast parameters. */
function tableSql(t: TargetTable) {
  const types = new Map(t.columns.map((c) => [c.name, c.type]));
  const keyList = t.pk.map(quoteIdent).join(', ');
  const row = `md5(ROW(${t.columns.map((c) => quoteIdent(c.name)).join(', ')})::text)`;
  const keyText = t.pk.map((k) => `${quoteIdent(k)}::text`);
  const params = (from: number) => t.pk.map((k, i) => `$${from + i}::${types.get(k)}`).join(', ');
  const range = (lo: readonly string[] | null, hi: readonly string[] | null) => {
    const conds: string[] = [];
    if (lo) conds.push(`(${keyList}) > (${params(1)})`);
    if (hi) conds.push(`(${keyList}) <= (${params(lo ? t.pk.length + 1 : 1)})`);
    return { where: conds.length ? `WHERE ${conds.join(' AND ')}` : '', values: [...(lo ?? []), ...(hi ?? [])] };
  };
  return { from: qualifiedName(t.schema, t.table), keyList, row, keyText, range };
}

type Sql = ReturnType<typeof tableSql>;

/** The key (as text per column) that ends the chunk of `chunkRows` rows after `lo`, or null: the rest is the last. */
async function chunkEnd(c: pg.Client, q: Sql, lo: readonly string[] | null, chunkRows: number) {
  const r = q.range(lo, null);
  const res = await c.query(
    `SELECT ${q.keyText.map((k, i) => `${k} AS k${i}`).join(', ')} FROM ${q.from} ${r.where} ORDER BY ${q.keyList}
      OFFSET ${chunkRows - 1} LIMIT 1`,
    r.values,
  );
  const row = res.rows[0] as Record<string, string> | undefined;
  return row ? q.keyText.map((_, i) => String(row[`k${i}`])) : null;
}

async function chunkSum(c: pg.Client, q: Sql, lo: readonly string[] | null, hi: readonly string[] | null) {
  const r = q.range(lo, hi);
  const res = await c.query(
    `SELECT count(*)::text AS n, md5(string_agg(${q.row}, '' ORDER BY ${q.keyList})) AS h FROM ${q.from} ${r.where}`,
    r.values,
  );
  const row = res.rows[0] as { n: string; h: string | null };
  return { n: Number(row.n), h: row.h };
}

async function keyedHashes(c: pg.Client, q: Sql, lo: readonly string[] | null, hi: readonly string[] | null) {
  const r = q.range(lo, hi);
  const res = await c.query(
    `SELECT ${q.keyText.join(` || ', ' || `)} AS k, ${q.row} AS h FROM ${q.from} ${r.where} ORDER BY ${q.keyList}`,
    r.values,
  );
  return new Map(res.rows.map((x) => [String(x['k']), String(x['h'])]));
}

async function snapshot<T>(clients: readonly pg.Client[], f: () => Promise<T>): Promise<T> {
  for (const c of clients) await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
  try {
    return await f();
  } finally {
    for (const c of clients) await c.query('ROLLBACK').catch(() => {});
  }
}

/** Compares `tables` (default: the source's published, included tables) of source and target. */
export async function verifyPg(
  source: PgVerifySource,
  target: PgEndpoint & { readonly name: string },
  tables: readonly TableRef[] | undefined,
  chunkRows = 10_000,
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
      for (const t of list) out.push(await compareTable(src, dst, t, chunkRows));
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

async function compareTable(src: pg.Client, dst: pg.Client, t: TableRef, chunkRows: number): Promise<TableResult> {
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
  const q = tableSql(a);
  const differences: Difference[] = [];
  let count = 0;
  const add = (key: string, kind: Difference['kind']) => {
    count++;
    if (differences.length < MAX_DIFFERENCES) differences.push({ pk: key.split(', '), key, kind });
  };
  let rows = 0;
  let replicaRows = 0;
  let chunks = 0;
  // Chunks of the source's key order; each compared by count and md5, only a differing one key by key. The target's
  // rows beyond the source's last key fall in the last chunk (open-ended).
  await snapshot([src, dst], async () => {
    let lo: readonly string[] | null = null;
    for (;;) {
      const hi = await chunkEnd(src, q, lo, chunkRows);
      const [x, y] = [await chunkSum(src, q, lo, hi), await chunkSum(dst, q, lo, hi)];
      chunks++;
      rows += x.n;
      replicaRows += y.n;
      if (x.n !== y.n || x.h !== y.h) {
        const [sa, sb] = [await keyedHashes(src, q, lo, hi), await keyedHashes(dst, q, lo, hi)];
        for (const [k, h] of sa) {
          const o = sb.get(k);
          if (o === undefined) add(k, 'missing');
          else if (o !== h) add(k, 'changed');
        }
        for (const k of sb.keys()) if (!sa.has(k)) add(k, 'extra');
      }
      if (!hi) break;
      lo = hi;
    }
  });
  return { ...base, chunks, rows, replicaRows, equal: count === 0, differences, differenceCount: count };
}
