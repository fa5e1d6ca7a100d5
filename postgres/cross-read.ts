/**
 * What cross-engine apply and verify (issue #14 item 8) read of a PostgreSQL table: its columns (pg_type name and
 * format_type) and primary key, and its rows in key order, chunk after chunk, each value as the server's text for
 * engine/cross-compare.ts to normalise (timestamptz read AT TIME ZONE 'UTC', bytea as hex). Text keys order by
 * COLLATE "C" (UTF-8 byte order: what MariaDB's CAST AS BINARY gives); other keys by value. I/O only. The kinds are
 * engine/cross-compare.ts CanonKind's (a sibling floor: named here by value).
 */
import type pg from 'pg';
import { wrapPgError } from './errors.ts';
import { qualifiedName, quoteIdent } from './sql.ts';

/** A PostgreSQL column: `type` the pg_type name (int4, numeric, timestamptz, _int4), `columnType` its format_type. */
export interface PgColumn {
  readonly name: string;
  readonly type: string;
  readonly columnType: string;
}

export interface PgTableColumns {
  /** In attnum order, without dropped and generated columns; empty when the table does not exist. */
  readonly columns: readonly PgColumn[];
  readonly pk: readonly string[];
}

/** The table's columns and primary key. */
export async function pgTableColumns(client: pg.Client, schema: string, table: string): Promise<PgTableColumns> {
  const rel = qualifiedName(schema, table);
  try {
    const cols = await client.query(
      `SELECT a.attname AS name, t.typname AS type, format_type(a.atttypid, a.atttypmod) AS full
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
        ORDER BY a.attnum`,
      [rel],
    );
    const pk = await client.query(
      `SELECT a.attname AS name FROM pg_index i
        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
       WHERE i.indrelid = to_regclass($1) AND i.indisprimary ORDER BY k.n`,
      [rel],
    );
    return {
      columns: cols.rows.map((r) => ({
        name: String(r['name']),
        type: String(r['type']),
        columnType: String(r['full']),
      })),
      pk: pk.rows.map((r) => String(r['name'])),
    };
  } catch (err) {
    throw wrapPgError(err, `reading the columns of ${schema}.${table}`, { schema, table });
  }
}

/** The publication's tables (schema, table), sorted (verify's default table list). */
export async function publicationTables(
  client: pg.Client,
  publication: string,
): Promise<{ schema: string; table: string }[]> {
  try {
    const r = await client.query(
      'SELECT schemaname AS s, tablename AS t FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2',
      [publication],
    );
    return r.rows.map((x) => ({ schema: String(x['s']), table: String(x['t']) }));
  } catch (err) {
    throw wrapPgError(err, `reading the tables of publication ${publication}`, { publication });
  }
}

/** A column to read: name, how it compares, and its format_type. */
export interface PgReadColumn {
  readonly name: string;
  readonly kind: string;
  readonly type: string;
}

const withTz = (t: string) => /^timestamp.* with time zone$/.test(t);
/** Types text keys may order by COLLATE "C" (uuid is not collatable; its own order is its text's). */
const collatable = (t: string) => /^(text|character varying|character|json)/.test(t);

function selectExpr(c: PgReadColumn): string {
  const q = quoteIdent(c.name);
  if (c.kind === 'bytes') return `encode(${q}, 'hex')`;
  if (withTz(c.type)) return `(${q} AT TIME ZONE 'UTC')::text`;
  // character(n) cast to text loses its padding; its output (what pgoutput carried) has it.
  const bpchar = /^character(?:\((\d+)\))?$/.exec(c.type);
  if (bpchar) return `rpad(${q}::text, ${bpchar[1] ?? 1})`;
  return `${q}::text`;
}

const orderExpr = (c: PgReadColumn) =>
  c.kind === 'text' && collatable(c.type) ? `${quoteIdent(c.name)} COLLATE "C"` : quoteIdent(c.name);

/** Reads `schema.table` in key order, `limit` rows after a key (canonical key text; engine/cross-compare.ts ChunkReader). */
export function pgChunkReader(
  client: pg.Client,
  schema: string,
  table: string,
  cols: readonly PgReadColumn[],
  key: readonly number[],
): (after: readonly string[] | null, limit: number) => Promise<(string | null)[][]> {
  // Aliased: ORDER BY a bare name would otherwise sort by a select item of that name (its text), not the column.
  const select = cols.map((c, i) => `${selectExpr(c)} AS c${i}`).join(', ');
  const order = key.map((i) => orderExpr(cols[i]!)).join(', ');
  const bound = key
    .map((i, j) => {
      const c = cols[i]!;
      const coll = c.kind === 'text' && collatable(c.type) ? ' COLLATE "C"' : '';
      return `$${j + 1}::${c.type}${coll}`;
    })
    .join(', ');
  return async (after, limit) => {
    const where = after ? ` WHERE (${order}) > (${bound})` : '';
    const values = after ? key.map((i, j) => (cols[i]!.kind === 'bytes' ? `\\x${after[j]}` : after[j]!)) : [];
    try {
      const r = await client.query({
        text: `SELECT ${select} FROM ${qualifiedName(schema, table)}${where} ORDER BY ${order} LIMIT ${limit}`,
        values,
        rowMode: 'array',
      });
      return (r.rows as unknown[][]).map((row) => row.map((v) => (v === null ? null : String(v))));
    } catch (err) {
      throw wrapPgError(err, `reading ${schema}.${table}`, { schema, table });
    }
  };
}
