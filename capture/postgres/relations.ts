/**
 * Catalog reads of PostgreSQL capture (I/O only): which tables the publication streams and the config includes,
 * and each captured table's shape as the record model holds it (record/record.ts Column: `type` the pg_type name,
 * e.g. int4, numeric, timestamptz, _int4 for int4[]; `columnType` the full format_type text, e.g. numeric(38,10);
 * `pk` the primary key's columns in key order). The baseline and the stream build shapes with the same query
 * (`typesOf`), the stream from the Relation message's type OIDs and modifiers.
 */
import type pg from 'pg';
import { TidemarkError } from '../../core/errors.ts';
import type { TableFilter } from '../../mysql/table-filter.ts';
import { wrapPgError } from '../../postgres/errors.ts';
import type { Column } from '../../record/record.ts';

export interface PgTableRef {
  readonly schema: string;
  readonly table: string;
  /** pg_class OID: the relation OID of the pgoutput stream. */
  readonly oid: number;
}

export interface TableShape {
  readonly schema: string;
  readonly table: string;
  readonly columns: readonly Column[];
  readonly pk: readonly string[];
  /** Per column: the value is bytea (carried as bytes, record/record.ts). */
  readonly bytea: readonly boolean[];
}

/** pg_type OID of bytea. */
export const BYTEA_OID = 17;

async function rows<R>(client: pg.Client, what: string, sql: string, params: unknown[]): Promise<R[]> {
  try {
    return (await client.query(sql, params)).rows as R[];
  } catch (err) {
    throw wrapPgError(err, what);
  }
}

/**
 * The publication's tables that `filter` includes, sorted. A missing publication is a PREREQUISITE error saying
 * how to create it.
 */
export async function capturedTables(
  client: pg.Client,
  publication: string,
  filter: TableFilter,
): Promise<PgTableRef[]> {
  const pub = await rows(client, 'read pg_publication', 'SELECT 1 FROM pg_publication WHERE pubname = $1', [
    publication,
  ]);
  if (pub.length === 0) {
    throw new TidemarkError(
      `publication "${publication}" does not exist in the captured database: as the tables' owner, ` +
        `CREATE PUBLICATION "${publication}" FOR TABLE …`,
      { code: 'PREREQUISITE', retriable: false, context: { publication } },
    );
  }
  const found = await rows<{ schema: string; table: string; oid: string }>(
    client,
    'read pg_publication_tables',
    `SELECT p.schemaname AS schema, p.tablename AS "table", c.oid::text AS oid
       FROM pg_publication_tables p
       JOIN pg_namespace n ON n.nspname = p.schemaname
       JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
      WHERE p.pubname = $1 ORDER BY 1, 2`,
    [publication],
  );
  return found
    .filter((t) => filter.includesTable(t.schema, t.table))
    .map((t) => ({ schema: t.schema, table: t.table, oid: Number(t.oid) }));
}

/** Type name and full type text of each (type OID, type modifier), in order. */
export async function typesOf(
  client: pg.Client,
  cols: readonly { readonly typeOid: number; readonly typeMod: number }[],
): Promise<{ type: string; columnType: string }[]> {
  const r = await rows<{ type: string; full: string }>(
    client,
    'read pg_type',
    `SELECT t.typname AS type, format_type(x.oid, x.mod) AS full
       FROM unnest($1::oid[], $2::int4[]) WITH ORDINALITY AS x(oid, mod, n)
       JOIN pg_type t ON t.oid = x.oid ORDER BY x.n`,
    [cols.map((c) => c.typeOid), cols.map((c) => c.typeMod)],
  );
  if (r.length !== cols.length) {
    throw new TidemarkError(`pg_type lacks ${cols.length - r.length} of the stream's column types`, {
      code: 'PG_PROTOCOL',
      context: { oids: cols.map((c) => c.typeOid).join(',') },
    });
  }
  return r.map((x) => ({ type: x.type, columnType: x.full }));
}

/** The primary key's column names in key order (empty without one). */
export async function primaryKeyOf(client: pg.Client, oid: number): Promise<string[]> {
  const r = await rows<{ name: string }>(
    client,
    'read the primary key',
    `SELECT a.attname AS name
       FROM pg_index i, unnest(i.indkey) WITH ORDINALITY AS k(attnum, n), pg_attribute a
      WHERE i.indrelid = $1 AND i.indisprimary AND a.attrelid = i.indrelid AND a.attnum = k.attnum
      ORDER BY k.n`,
    [oid],
  );
  return r.map((x) => x.name);
}

/** A shape from column names, type OIDs and modifiers (the Relation message's, or the catalog's). */
export async function shapeOf(
  client: pg.Client,
  t: PgTableRef,
  cols: readonly { readonly name: string; readonly typeOid: number; readonly typeMod: number }[],
): Promise<TableShape> {
  const types = await typesOf(client, cols);
  const columns = cols.map((c, i) => ({ name: c.name, ...(types[i] as { type: string; columnType: string }) }));
  return {
    schema: t.schema,
    table: t.table,
    columns,
    pk: await primaryKeyOf(client, t.oid),
    bytea: cols.map((c) => c.typeOid === BYTEA_OID),
  };
}

/**
 * A table's shape from the catalog, with the columns pgoutput sends: user columns in attnum order, without dropped
 * and generated ones (the baseline reads exactly these, so its rows line up with the stream's).
 */
export async function tableShape(client: pg.Client, t: PgTableRef): Promise<TableShape> {
  const cols = await rows<{ name: string; oid: string; mod: string }>(
    client,
    'read pg_attribute',
    `SELECT attname AS name, atttypid::text AS oid, atttypmod::text AS mod FROM pg_attribute
      WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum`,
    [t.oid],
  );
  return shapeOf(
    client,
    t,
    cols.map((c) => ({ name: c.name, typeOid: Number(c.oid), typeMod: Number(c.mod) })),
  );
}
