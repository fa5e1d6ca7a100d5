/**
 * The statements the PostgreSQL applier sends, built from a table's shape on the target (its catalog) and a journal
 * rows entry: parameterised INSERT / UPDATE … WHERE pk / DELETE … WHERE pk with every value passed as TEXT and cast
 * explicitly to the target column's type (`$1::timestamp(6) without time zone`, `$2::numeric(38,10)`, `$3::integer[]`),
 * so the server's own input functions read exactly the text the source's output functions wrote. Identifiers are
 * always quoted (postgres/sql.ts). Pure: no I/O.
 */
import { TidemarkError } from '../../core/errors.ts';
import { qualifiedName, quoteIdent, quoteLiteral } from '../../postgres/sql.ts';
import type { Column, Value } from '../../record/record.ts';

/** A target table as its catalog describes it. */
export interface TargetTable {
  readonly schema: string;
  readonly table: string;
  /** Columns in attnum order: name and `format_type` text (the cast). Generated columns are left out. */
  readonly columns: readonly { readonly name: string; readonly type: string }[];
  /** Primary-key column names in key order (empty: no primary key). */
  readonly pk: readonly string[];
}

/** One statement: SQL text and where each parameter comes from in the entry's row images. */
export interface RowStatement {
  readonly sql: string;
  /** Indexes into the entry's `columns` (and so into its images): the SET / VALUES part, from the after image. */
  readonly after: readonly number[];
  /** Indexes of the primary-key columns in the entry's images: the WHERE part, from the before image. */
  readonly key: readonly number[];
}

/** The statements for one (table, entry columns) pair. */
export interface TableStatements {
  /** `"schema"."table"`. */
  readonly name: string;
  /** The target column (name, `format_type`) of each entry column, in the entry's order. */
  readonly cols: readonly { readonly name: string; readonly type: string }[];
  /** `INSERT INTO t (cols) VALUES ` (a multi-row insert appends its tuples). */
  readonly insertHead: string;
  /** The upsert's `ON CONFLICT (pk) DO …` clause. */
  readonly conflict: string;
  readonly insert: RowStatement;
  /** Baseline rows: an insert that overwrites a row of an earlier, unfinished baseline (ON CONFLICT on the pk). */
  readonly upsert: RowStatement;
  readonly update: RowStatement;
  readonly delete: RowStatement;
}

const where = (cols: readonly { name: string; type: string }[], from: number) =>
  cols.map((c, i) => `${quoteIdent(c.name)} = $${from + i}::${c.type}`).join(' AND ');

/**
 * Builds the statements for `t` from the columns a journal entry carries. Every entry column must exist on the
 * target (a clear error names the column); target columns the entry does not carry keep their defaults on insert.
 */
export function buildStatements(t: TargetTable, entryColumns: readonly Column[]): TableStatements {
  const name = qualifiedName(t.schema, t.table);
  if (t.pk.length === 0) {
    throw new TidemarkError(
      `table ${t.schema}.${t.table} on the PostgreSQL target has no primary key: add one (apply/postgres matches rows by it)`,
      { code: 'APPLY_NO_PK', context: { schema: t.schema, table: t.table } },
    );
  }
  const byName = new Map(t.columns.map((c) => [c.name, c]));
  const cols = entryColumns.map((c) => {
    const tc = byName.get(c.name);
    if (!tc) {
      throw new TidemarkError(
        `column ${t.schema}.${t.table}.${c.name} (source type ${c.columnType ?? c.type}) does not exist on the ` +
          "PostgreSQL target: create it with the source's type",
        { code: 'APPLY_BAD_ENTRY', context: { schema: t.schema, table: t.table, column: c.name } },
      );
    }
    return tc;
  });
  const key = t.pk.map((k) => {
    const i = entryColumns.findIndex((c) => c.name === k);
    if (i < 0) {
      throw new TidemarkError(
        `the journal's rows of ${t.schema}.${t.table} do not carry primary-key column ${k} of the target`,
        { code: 'APPLY_BAD_ENTRY', context: { schema: t.schema, table: t.table, column: k } },
      );
    }
    return i;
  });
  const keyCols = key.map((i) => cols[i]!);
  const all = cols.map((_, i) => i);
  const names = cols.map((c) => quoteIdent(c.name)).join(', ');
  const values = cols.map((c, i) => `$${i + 1}::${c.type}`).join(', ');
  const insertHead = `INSERT INTO ${name} (${names}) VALUES `;
  const insertSql = `${insertHead}(${values})`;
  const nonKey = cols.filter((c) => !t.pk.includes(c.name));
  const conflict = `ON CONFLICT (${t.pk.map(quoteIdent).join(', ')}) DO ${
    nonKey.length === 0
      ? 'NOTHING'
      : `UPDATE SET ${nonKey.map((c) => `${quoteIdent(c.name)} = EXCLUDED.${quoteIdent(c.name)}`).join(', ')}`
  }`;
  const set = cols.map((c, i) => `${quoteIdent(c.name)} = $${i + 1}::${c.type}`).join(', ');
  return {
    name,
    cols,
    insertHead,
    conflict,
    insert: { sql: insertSql, after: all, key: [] },
    upsert: { sql: `${insertSql} ${conflict}`, after: all, key: [] },
    update: { sql: `UPDATE ${name} SET ${set} WHERE ${where(keyCols, cols.length + 1)}`, after: all, key },
    delete: { sql: `DELETE FROM ${name} WHERE ${where(keyCols, 1)}`, after: [], key },
  };
}

/** A journal value as the text parameter the cast reads: bytea as `\x` hex, numbers as their decimal text. */
export function paramOf(v: Value): string | null {
  if (v === null) return null;
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return `\\x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`;
  return String(v);
}

/** The parameters of `s` for one row: the after image's values, then the before image's key values. */
export function paramsOf(
  s: RowStatement,
  before: readonly Value[] | null,
  after: readonly Value[] | null,
): (string | null)[] {
  const out: (string | null)[] = [];
  for (const i of s.after) out.push(paramOf(after?.[i] ?? null));
  for (const i of s.key) out.push(paramOf(before?.[i] ?? null));
  return out;
}

/**
 * `sql` with its `$n` parameters replaced by literals (`'text'`, `NULL`), for a multi-statement simple query (which
 * takes no parameters). The casts after the parameters stay (`'7'::integer`). Quoted identifiers are left alone
 * (a column may be named "a$1").
 */
export function inlineParams(sql: string, params: readonly (string | null)[]): string {
  return sql.replace(/("(?:[^"]|"")*")|\$(\d+)/g, (m, ident: string | undefined, n: string | undefined) => {
    if (ident !== undefined) return m;
    const i = Number(n) - 1;
    if (i < 0 || i >= params.length) throw new RangeError(`parameter $${n} of ${params.length}`);
    const v = params[i] ?? null;
    return v === null ? 'NULL' : quoteLiteral(v);
  });
}
