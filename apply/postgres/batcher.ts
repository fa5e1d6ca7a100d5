/**
 * Turns the rows of a group of source transactions into few statements for a PostgreSQL target (pure; no I/O).
 * Values go in as literals with an explicit cast to the target column's type (`'12.50'::numeric(12,2)`), so that
 * the statements can travel several to a query string (the simple query protocol takes no parameters) and the
 * server's input functions still read exactly the text the source wrote.
 *
 *   insert                 INSERT INTO t (cols) VALUES (…), (…)                     affected rows = rows
 *   baseline insert        … ON CONFLICT (pk) DO UPDATE SET …                       (not counted: DO NOTHING may skip)
 *   update, key unchanged  UPDATE t SET c = v.c … FROM (VALUES (0, …), (1, …)) v(i, …) WHERE t.pk = v.pk RETURNING v.i
 *   delete                 DELETE FROM t USING (VALUES (0, …), …) v(i, …) WHERE t.pk = v.pk RETURNING v.i
 *   update moving its key  UPDATE t SET … WHERE pk = <before key>, one statement per row   affected rows = 1
 *
 * A statement holds one table's consecutive rows of one kind, up to maxRows rows or maxBytes of SQL, and never the
 * same key twice (an UPDATE … FROM or an upsert would touch the row once). Statements of different tables are
 * independent and are kept open side by side: each table's rows stay in source order, while rows of different
 * tables may go out in another order than the source's — which changes nothing in a committed group, because the
 * apply session runs with session_replication_role = replica (no foreign-key checks or ordinary triggers run on
 * the target; unique constraints are per table). A single-row update or delete is the plain `… WHERE pk = …`
 * form. The `RETURNING v.i` ordinals name the rows that matched nothing (mismatch()).
 */
import { TidemarkError } from '../../core/errors.ts';
import { quoteIdent, quoteLiteral } from '../../postgres/sql.ts';
import type { RowImage, RowOp, Value } from '../../record/record.ts';
import { inlineParams, paramOf, paramsOf, type TableStatements } from './statements.ts';

/** One row of a statement, for row-count checks and their error messages. */
export interface RowRef {
  readonly seq: bigint;
  readonly txId: string;
  /** The key values it was matched by (before image), as text. */
  readonly key: readonly (string | null)[];
}

export interface PgStatement {
  readonly sql: string;
  readonly schema: string;
  readonly table: string;
  readonly op: RowOp;
  readonly keyNames: readonly string[];
  readonly rows: readonly RowRef[];
  /** count: affected rows must equal rows.length; returning: every ordinal 0…n-1 must come back; none: upsert. */
  readonly check: 'count' | 'returning' | 'none';
}

export interface PgBatcherOptions {
  /** Rows per statement (default 1000). */
  readonly maxRows?: number;
  /** SQL bytes per statement (default 4 MiB; one larger row goes alone), and of all open statements together. */
  readonly maxBytes?: number;
}

type Kind = 'insert' | 'upsert' | 'update' | 'delete';

interface Open {
  readonly kind: Kind;
  readonly st: TableStatements;
  readonly schema: string;
  readonly table: string;
  readonly op: RowOp;
  readonly parts: string[];
  readonly rows: RowRef[];
  /** The first row's images (a single-row statement uses the plain form). */
  readonly first: { before: readonly Value[] | null; after: readonly Value[] | null };
  readonly keys: Set<string>;
  bytes: number;
}

/** A value as a cast literal: `'text'::type` or `NULL::type`. */
export function literal(v: Value, type: string): string {
  const t = paramOf(v);
  return `${t === null ? 'NULL' : quoteLiteral(t)}::${type}`;
}

const V = 'tidemark_v';
const T = 'tidemark_t';

export class PgBatcher {
  readonly #maxRows: number;
  readonly #maxBytes: number;
  /** Open statements per table ("schema\0table"), in the order they were opened. */
  readonly #open = new Map<string, Open>();
  #bytes = 0;

  constructor(o: PgBatcherOptions = {}) {
    this.#maxRows = o.maxRows ?? 1000;
    this.#maxBytes = o.maxBytes ?? 4 * 1024 * 1024;
  }

  /** Rows waiting in open statements. */
  get pendingRows(): number {
    let n = 0;
    for (const o of this.#open.values()) n += o.rows.length;
    return n;
  }

  /** Forgets everything open (after a rollback). */
  reset(): void {
    this.#open.clear();
    this.#bytes = 0;
  }

  /**
   * Adds the rows of one rows entry (images already as the target reads them); returns the statements that are
   * complete. `upsert`: inserts overwrite (a baseline unit).
   */
  push(
    e: { schema: string; table: string; op: RowOp; seq: bigint; txId: string; rows: readonly RowImage[] },
    st: TableStatements,
    upsert: boolean,
  ): PgStatement[] {
    const out: PgStatement[] = [];
    const tk = `${e.schema}\u0000${e.table}`;
    const keyIdx = st.update.key;
    for (let n = 0; n < e.rows.length; n++) {
      const r = e.rows[n]!;
      const seq = e.seq + BigInt(n);
      if ((e.op !== 'insert' && !r.before) || (e.op !== 'delete' && !r.after)) {
        throw new TidemarkError(`journal ${e.op} row at seq ${seq} of ${e.schema}.${e.table} lacks an image`, {
          code: 'APPLY_BAD_ENTRY',
        });
      }
      const keyImg = (e.op === 'insert' ? r.after : r.before)!;
      const key = keyIdx.map((i) => paramOf(keyImg[i] ?? null));
      const ref: RowRef = { seq, txId: e.txId, key };
      let kind: Kind | 'move' = e.op === 'insert' ? (upsert ? 'upsert' : 'insert') : e.op;
      if (kind === 'update' && keyIdx.some((i, k) => paramOf(r.after![i] ?? null) !== key[k])) kind = 'move';
      let o = this.#open.get(tk);
      if (kind === 'move') {
        // A key change: its own statement, after what is open for the table (source order within the table).
        if (o) out.push(this.#close(tk, o));
        out.push(this.#single('update', st, e, r, ref));
        continue;
      }
      const body = this.#body(kind, st, r);
      const dupKey = kind === 'insert' ? null : key.join('\u0000');
      const extra = body.length + 14;
      if (
        o &&
        (o.kind !== kind ||
          o.st !== st ||
          o.rows.length >= this.#maxRows ||
          o.bytes + extra > this.#maxBytes ||
          (dupKey !== null && o.keys.has(dupKey)))
      ) {
        out.push(this.#close(tk, o));
        o = undefined;
      }
      if (!o) {
        o = {
          kind,
          st,
          schema: e.schema,
          table: e.table,
          op: e.op,
          parts: [],
          rows: [],
          first: { before: r.before, after: r.after },
          keys: new Set(),
          bytes: 0,
        };
        this.#open.set(tk, o);
      }
      // An update or delete row leads with its ordinal in the statement (RETURNING names the rows that matched).
      o.parts.push(kind === 'insert' || kind === 'upsert' ? `(${body})` : `(${o.rows.length}, ${body})`);
      o.rows.push(ref);
      if (dupKey !== null) o.keys.add(dupKey);
      o.bytes += extra;
      this.#bytes += extra;
    }
    if (this.#bytes > this.#maxBytes) out.push(...this.drain());
    return out;
  }

  /** Every open statement (before a DDL, at a commit, or when the pipeline must go out). */
  drain(): PgStatement[] {
    const out: PgStatement[] = [];
    for (const [tk, o] of this.#open) out.push(this.#close(tk, o));
    return out;
  }

  #close(tk: string, o: Open): PgStatement {
    this.#open.delete(tk);
    this.#bytes -= o.bytes;
    const st = o.st;
    const base = { schema: o.schema, table: o.table, op: o.op, keyNames: st.update.key.map((i) => st.cols[i]!.name) };
    if (o.rows.length === 1 && (o.kind === 'update' || o.kind === 'delete')) {
      return this.#single(o.kind, st, o, o.first, o.rows[0]!);
    }
    if (o.kind === 'insert' || o.kind === 'upsert') {
      const sql = st.insertHead + o.parts.join(', ') + (o.kind === 'upsert' ? ` ${st.conflict}` : '');
      return { ...base, sql, rows: o.rows, check: o.kind === 'upsert' ? 'none' : 'count' };
    }
    const key = st.update.key;
    const vcols = ['i', ...st.cols.map((_, i) => `c${i}`)].join(', ');
    const on = key.map((i) => `${T}.${quoteIdent(st.cols[i]!.name)} = ${V}.c${i}`).join(' AND ');
    const values = `(VALUES ${o.parts.join(', ')}) AS ${V}(${o.kind === 'delete' ? ['i', ...key.map((i) => `c${i}`)].join(', ') : vcols})`;
    let sql: string;
    if (o.kind === 'delete') sql = `DELETE FROM ${st.name} AS ${T} USING ${values} WHERE ${on} RETURNING ${V}.i`;
    else {
      let set = st.cols.map((c, i) => ({ c, i })).filter(({ i }) => !key.includes(i));
      if (set.length === 0) set = key.map((i) => ({ c: st.cols[i]!, i }));
      const sets = set.map(({ c, i }) => `${quoteIdent(c.name)} = ${V}.c${i}`).join(', ');
      sql = `UPDATE ${st.name} AS ${T} SET ${sets} FROM ${values} WHERE ${on} RETURNING ${V}.i`;
    }
    return { ...base, sql, rows: o.rows, check: 'returning' };
  }

  /** One row in the plain form (the same statement text as the parameterised one, values inlined). */
  #single(
    kind: 'update' | 'delete',
    st: TableStatements,
    e: { schema: string; table: string; op: RowOp },
    r: { before: readonly Value[] | null; after: readonly Value[] | null },
    ref: RowRef,
  ): PgStatement {
    const s = kind === 'update' ? st.update : st.delete;
    return {
      sql: inlineParams(s.sql, paramsOf(s, r.before, r.after)),
      schema: e.schema,
      table: e.table,
      op: e.op,
      keyNames: st.update.key.map((i) => st.cols[i]!.name),
      rows: [ref],
      check: 'count',
    };
  }

  /** One row's values in a multi-row statement: the after image (insert, update) or the before image's key. */
  #body(kind: Kind, st: TableStatements, r: RowImage): string {
    const cols = st.cols;
    if (kind === 'delete') return st.update.key.map((i) => literal(r.before![i] ?? null, cols[i]!.type)).join(', ');
    return cols.map((c, i) => literal(r.after![i] ?? null, c.type)).join(', ');
  }
}

/**
 * A PostgreSQL source's baseline unit that is a table's first chunk (capture/postgres baseline.ts names units
 * `baseline:<schema>.<table>:<chunk>`).
 */
export function isFirstBaselineChunk(txId: string): boolean {
  return txId.startsWith('baseline:') && txId.endsWith(':0');
}

/** `DELETE FROM t` (every row: the apply role has DELETE, not TRUNCATE), no row count to check. */
export function clearTableStatement(st: TableStatements, e: { schema: string; table: string }): PgStatement {
  return {
    sql: `DELETE FROM ${st.name}`,
    schema: e.schema,
    table: e.table,
    op: 'delete',
    keyNames: [],
    rows: [],
    check: 'none',
  };
}

/**
 * The divergence error when a statement's rows did not all match: names the table, the first unmatched row's
 * seq, source transaction and key. `matched`: the ordinals that came back (returning), or the affected-row count.
 */
export function mismatch(
  target: string,
  s: PgStatement,
  affected: number,
  returned: readonly number[] | null,
): TidemarkError | null {
  if (s.check === 'none') return null;
  let missing: RowRef | undefined;
  if (s.check === 'returning' && returned) {
    if (returned.length === s.rows.length) return null;
    const got = new Set(returned);
    missing = s.rows.find((_, i) => !got.has(i));
  } else if (affected === s.rows.length) return null;
  const r = missing ?? s.rows[0]!;
  const matched = s.check === 'returning' && returned ? returned.length : affected;
  const key = s.keyNames.map((k, i) => `${k}=${r.key[i] ?? 'NULL'}`).join(', ');
  const what =
    s.rows.length === 1
      ? `matched ${matched} rows${matched === 0 ? ': no such row on the replica' : ''}`
      : `matched ${matched} of ${s.rows.length} rows${missing ? ` (key ${key}: no such row on the replica)` : ''}`;
  return new TidemarkError(
    `target ${target}: ${s.op} of ${s.schema}.${s.table} at seq ${r.seq} (source transaction ${r.txId}) ${what}` +
      ' — the target has diverged from the source; run tidemark verify and re-baseline the table',
    { code: 'APPLY_DIVERGED', context: { schema: s.schema, table: s.table, seq: `${r.seq}` } },
  );
}
