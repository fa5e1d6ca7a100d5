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
import type { AddedColumnFacts } from './shape-diff.ts';

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

/**
 * What the catalog holds now about columns a Relation message added (the DDL fallback, shape-diff.ts): type,
 * NOT NULL, the value the rows already there read (attmissingval), the default, generated/identity. Columns no
 * longer there are left out.
 */
export async function addedColumnFacts(
  client: pg.Client,
  oid: number,
  names: readonly string[],
): Promise<AddedColumnFacts[]> {
  const r = await rows<Record<string, string | boolean | null>>(
    client,
    'read pg_attribute (added columns)',
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
            CASE WHEN a.atthasmissing THEN a.attmissingval::text END AS missing,
            pg_get_expr(d.adbin, d.adrelid) AS def, a.attgenerated <> '' AS gen, a.attidentity <> '' AS ident
       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = $1 AND a.attname = ANY($2::text[]) AND a.attnum > 0 AND NOT a.attisdropped`,
    [oid, names],
  );
  return r.map((x) => ({
    name: String(x['name']),
    type: String(x['type']),
    notNull: x['not_null'] === true,
    missing: (x['missing'] as string | null) ?? null,
    default: (x['def'] as string | null) ?? null,
    generated: x['gen'] === true,
    identity: x['ident'] === true,
  }));
}

/** Which new tables the publication streams by itself: all (FOR ALL TABLES) or those of some schemas. */
export interface PublicationScope {
  readonly allTables: boolean;
  readonly schemas: ReadonlySet<string>;
}

export async function publicationScope(client: pg.Client, publication: string): Promise<PublicationScope> {
  const all = await rows<{ all: boolean }>(
    client,
    'read pg_publication',
    'SELECT puballtables AS "all" FROM pg_publication WHERE pubname = $1',
    [publication],
  );
  const schemas = await rows<{ name: string }>(
    client,
    'read pg_publication_namespace',
    `SELECT n.nspname AS name FROM pg_publication_namespace pn
       JOIN pg_publication p ON p.oid = pn.pnpubid JOIN pg_namespace n ON n.oid = pn.pnnspid WHERE p.pubname = $1`,
    [publication],
  );
  return { allTables: all[0]?.all === true, schemas: new Set(schemas.map((s) => s.name)) };
}

/** Whether tidemark's DDL event triggers (ddl-triggers.sql) are installed and enabled in the database. */
export async function hasDdlTriggers(client: pg.Client): Promise<boolean> {
  const r = await rows<{ n: number }>(
    client,
    'read pg_event_trigger',
    `SELECT count(*)::int AS n FROM pg_event_trigger
      WHERE evtname IN ('tidemark_ddl_end', 'tidemark_ddl_drop') AND evtenabled <> 'D'`,
    [],
  );
  return Number(r[0]?.n) === 2; // tidemark's sessions read every value as text
}
