/**
 * The lineage row on a PostgreSQL new primary (the PostgreSQL counterpart of lineage.ts, same fields and meaning):
 * `tidemark.failover_lineage` in the promoted target's database, one row per source, written through the failover
 * account when the promoted site takes the primary role (node/promoted.ts) and read by `tidemark failback` at the
 * old primary's site. The schema `tidemark` is never published (pg-promote.ts leaves it out of the publication), so
 * the row is not captured.
 *
 * Privileges: the failover account's documented grants cover it (CREATE on the database for the schema and table,
 * or membership in the apply role that owns the schema `tidemark`; INSERT, UPDATE on the table it then owns).
 * `INSERT … ON CONFLICT (source) DO UPDATE`: no DELETE needed. The server may still be read-only by default for
 * clients: the session turns that off for itself, as the promotion does.
 */
import type pg from 'pg';
import { sqlStateOf, wrapPgError } from '../postgres/errors.ts';
import { openPgClient, type PgEndpoint } from '../postgres/session.ts';
import { positionToJson } from '../record/position.ts';
import { type Lineage, parseLineageRow } from './lineage.ts';
import { PG_FENCE_SQL } from './pg-fence.ts';

export const PG_LINEAGE_TABLE = 'tidemark.failover_lineage';

const COLUMNS = [
  'source',
  'site',
  'promoted_at',
  'journal_id',
  'branch_of',
  'branch_lsn',
  'branch_seq',
  'branch_tx',
  'branch_epoch',
  'marker_lsn',
  'position',
] as const;

/** numeric(20): journal LSNs and seqs are unsigned 64-bit, as MySQL's BIGINT UNSIGNED. */
export const PG_LINEAGE_CREATE = [
  'CREATE SCHEMA IF NOT EXISTS tidemark',
  `CREATE TABLE IF NOT EXISTS ${PG_LINEAGE_TABLE} (source text PRIMARY KEY, site text NOT NULL,
     promoted_at text NOT NULL, journal_id text NOT NULL, branch_of text NOT NULL, branch_lsn numeric(20) NOT NULL,
     branch_seq numeric(20) NOT NULL, branch_tx text NOT NULL, branch_epoch integer NOT NULL,
     marker_lsn numeric(20) NOT NULL, position text NOT NULL)`,
] as const;

/** The upsert with $1…$11 in COLUMNS order (pgLineageParams). */
export const PG_LINEAGE_UPSERT =
  `INSERT INTO ${PG_LINEAGE_TABLE} (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((_, i) => `$${i + 1}`).join(', ')}) ` +
  `ON CONFLICT (source) DO UPDATE SET ${COLUMNS.slice(1)
    .map((c) => `${c} = EXCLUDED.${c}`)
    .join(', ')}`;

/** Numbers as text (the server reads them exactly, the row parser expects digits). */
export const PG_LINEAGE_SELECT =
  'SELECT source, site, promoted_at, journal_id, branch_of, branch_lsn::text AS branch_lsn, ' +
  'branch_seq::text AS branch_seq, branch_tx, branch_epoch, marker_lsn::text AS marker_lsn, position ' +
  `FROM ${PG_LINEAGE_TABLE} WHERE source = $1`;

/** The upsert's parameters (pure). */
export function pgLineageParams(l: Lineage): string[] {
  return [
    l.source,
    l.site,
    l.promotedAt,
    l.journalId,
    l.branchOf,
    l.branchLsn.toString(),
    l.branchSeq.toString(),
    l.branchTx,
    String(l.branchEpoch),
    l.markerLsn.toString(),
    JSON.stringify(positionToJson(l.position)),
  ];
}

async function withSession<T>(ep: PgEndpoint, what: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await openPgClient(ep, { applicationName: 'tidemark-lineage' });
  try {
    return await fn(c);
  } catch (err) {
    throw wrapPgError(err, `${what} ${PG_LINEAGE_TABLE} on ${ep.host}:${ep.port}`);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Writes (or rewrites) the lineage row on the new primary. */
export function writePgLineage(ep: PgEndpoint, l: Lineage): Promise<void> {
  return withSession(ep, 'writing', async (c) => {
    await c.query(PG_FENCE_SQL.sessionWritable);
    for (const sql of PG_LINEAGE_CREATE) await c.query(sql);
    await c.query(PG_LINEAGE_UPSERT, pgLineageParams(l));
  });
}

/** The lineage row of `source` on the server, or null when it has none (never promoted, or no table yet). */
export function readPgLineage(ep: PgEndpoint, source: string): Promise<Lineage | null> {
  return withSession(ep, 'reading', async (c) => {
    let rows: Record<string, unknown>[];
    try {
      rows = (await c.query(PG_LINEAGE_SELECT, [source])).rows as Record<string, unknown>[];
    } catch (err) {
      // 42P01 undefined_table, 3F000 invalid_schema_name: nothing was ever promoted there.
      if (sqlStateOf(err) === '42P01' || sqlStateOf(err) === '3F000') return null;
      throw err;
    }
    const r = rows[0];
    return r ? parseLineageRow(r, `${ep.host}:${ep.port} ${PG_LINEAGE_TABLE}`) : null;
  });
}
