/**
 * Guarded statements for a PostgreSQL server (the PostgreSQL half of the rollback dialect, rollback/dialect.ts):
 * SQL that undoes (or redoes) the row changes of a rows entry only if each row holds the image the journal says.
 * Pure: no I/O. The same shapes as the MySQL ones (rollback/guard.ts), in PostgreSQL's terms:
 *
 *   UPDATE "s"."t" SET "c" = '…'::type, … WHERE "id" = '5'::integer AND "c" IS NOT DISTINCT FROM '…'::type …
 *   DELETE FROM "s"."t" WHERE <the same guard>
 *   INSERT INTO "s"."t" ("id", "c", …) VALUES (…), (…)           (multi-row; a present key fails it)
 *
 * Values are the source server's text (capture/postgres keeps (type OID, text)), written as text literals with an
 * explicit cast to the column's `format_type` (`'2026-01-02 03:04:05.123456'::timestamp(6) without time zone`,
 * `'{1,2}'::integer[]`), so the server's input function reads exactly what the source's output function wrote; bytea
 * as `'\x…'::bytea`; NULL as NULL. The key is matched with `=` (its index finds the row), every other column with
 * `IS NOT DISTINCT FROM` (NULL-safe). Types without an equality operator (json, xml, the geometric types) are
 * compared as their text, which the server keeps as written (json) or prints the same way the source did (the
 * session settings of postgres/session.ts). Without a primary key the whole image is matched and one row of it
 * (`ctid`) is changed. Each statement must match exactly one row (an INSERT: every row it holds).
 */
import { qualifiedName, quoteIdent, quoteLiteral } from '../postgres/sql.ts';
import type { Column, RowImage, RowsEntry, Value } from '../record/record.ts';
import { CorruptionError, TidemarkError } from '../core/errors.ts';
import {
  type ColumnRoles,
  columnRoles,
  type Direction,
  type GuardedStatement,
  type GuardOptions,
  oneLine,
  rowPass,
} from './guard.ts';

const MAX_KEY_TEXT = 160;
/** Types with no default equality operator: compared as text. */
const TEXT_COMPARED = new Set(['json', 'xml', 'point', 'line', 'lseg', 'box', 'path', 'polygon', 'circle']);

/** The cast a column's values take: the source's `format_type` text, else its pg_type name. */
export function castType(c: Column): string {
  return c.columnType ?? c.type;
}

/** A journal value as a PostgreSQL literal typed as column `c`. */
export function pgLiteral(v: Value, c: Column): string {
  if (v === null) return 'NULL';
  if (v instanceof Uint8Array) {
    return `'\\x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}'::${castType(c)}`;
  }
  try {
    return `${quoteLiteral(String(v))}::${castType(c)}`;
  } catch (err) {
    throw new TidemarkError(
      `a value of column ${c.name} cannot be written as a PostgreSQL literal: ${(err as Error).message}`,
      {
        code: 'REWIND_VALUE',
        cause: err,
      },
    );
  }
}

function textCompared(c: Column): boolean {
  return TEXT_COMPARED.has(c.type.startsWith('_') ? c.type.slice(1) : c.type);
}

/** `"c" IS NOT DISTINCT FROM <literal>` (as text for types without equality). */
function same(v: Value, c: Column): string {
  const lit = pgLiteral(v, c);
  return textCompared(c)
    ? `${quoteIdent(c.name)}::text IS NOT DISTINCT FROM ${lit}::text`
    : `${quoteIdent(c.name)} IS NOT DISTINCT FROM ${lit}`;
}

interface Shape extends ColumnRoles {
  readonly e: RowsEntry;
  readonly dir: Direction;
  readonly txId: string;
  readonly table: string;
  readonly cols: readonly Column[];
}

function badEntry(e: RowsEntry, problem: string): CorruptionError {
  return new CorruptionError(`rows entry for ${e.schema}.${e.table} at seq ${e.seq}${problem}`, {
    schema: e.schema,
    table: e.table,
    seq: e.seq,
  });
}

function shapeOf(e: RowsEntry, dir: Direction, opts: Omit<GuardOptions, 'flavor'>): Shape {
  const roles = columnRoles(e, opts.skipColumns ?? new Set<string>(), (problem) => badEntry(e, problem));
  return { e, dir, txId: opts.txId, table: qualifiedName(e.schema, e.table), cols: e.columns, ...roles };
}

function image(s: Shape, r: RowImage, which: 'before' | 'after', seq: bigint): readonly Value[] {
  const img = r[which];
  if (!img || img.length !== s.cols.length) {
    throw badEntry(s.e, `: ${which} image at seq ${seq} ${img ? `has ${img.length} values` : 'is missing'}`);
  }
  return img;
}

/** "id=5, region='eu'": the row's key (or whole image) for messages, cut to MAX_KEY_TEXT characters. */
function keyText(s: Shape, row: readonly Value[]): string {
  const t = (s.pkIdx ?? s.writeIdx)
    .map((i) => {
      const v = row[i] ?? null;
      let lit = v === null ? 'NULL' : v instanceof Uint8Array ? `\\x${Buffer.from(v).toString('hex')}` : String(v);
      if (lit.length > 80) lit = lit.slice(0, 77) + '...';
      return `${s.cols[i]!.name}=${lit}`;
    })
    .join(', ');
  return t.length > MAX_KEY_TEXT ? t.slice(0, MAX_KEY_TEXT - 3) + '...' : t;
}

function whatOf(s: Shape, detail: string, seqText: string): string {
  return oneLine(`${s.dir} ${s.e.op} of ${s.e.schema}.${s.e.table} (${detail}) at seq ${seqText} of tx ${s.txId}`);
}

/** ` WHERE …` matching the row only while it holds `img`. */
function guardWhere(s: Shape, img: readonly Value[]): string {
  const rest = s.cmpIdx.map((i) => same(img[i] ?? null, s.cols[i]!));
  if (!s.pkIdx) {
    // No key: one of the identical rows, by its physical address.
    return ` WHERE ctid = (SELECT ctid FROM ${s.table} WHERE ${rest.join(' AND ')} LIMIT 1 FOR UPDATE)`;
  }
  const key = s.pkIdx.map((i) => `${quoteIdent(s.cols[i]!.name)} = ${pgLiteral(img[i] ?? null, s.cols[i]!)}`);
  return ` WHERE ${[...key, ...rest].join(' AND ')}`;
}

function setList(s: Shape, next: readonly Value[]): string {
  return s.writeIdx.map((i) => `${quoteIdent(s.cols[i]!.name)} = ${pgLiteral(next[i] ?? null, s.cols[i]!)}`).join(', ');
}

/** Statements for rows [fromRow, toRow) of a rows entry (module comment), one row at a time. */
export function* pgGuardedStatements(
  e: RowsEntry,
  dir: Direction,
  opts: Omit<GuardOptions, 'flavor'>,
): Generator<GuardedStatement> {
  const pass = rowPass(e, dir, opts);
  if (!pass) return;
  const s = shapeOf(e, dir, opts);
  const { op, was, will, order } = pass;
  if (op === 'insert') {
    yield* inserts(s, order(), will, opts);
    return;
  }
  for (const i of order()) {
    const seq = e.seq + BigInt(i);
    const cur = image(s, e.rows[i]!, was, seq);
    const what = whatOf(s, keyText(s, cur), seq.toString());
    const sql =
      op === 'delete'
        ? `DELETE FROM ${s.table}${guardWhere(s, cur)}`
        : `UPDATE ${s.table} SET ${setList(s, image(s, e.rows[i]!, will, seq))}${guardWhere(s, cur)}`;
    yield { sql, expect: 1, what, seq, kind: op };
  }
}

/** Multi-row INSERTs of the `will` images, bounded by rows and bytes. */
function* inserts(
  s: Shape,
  rows: Iterable<number>,
  will: 'before' | 'after',
  opts: Omit<GuardOptions, 'flavor'>,
): Generator<GuardedStatement> {
  const maxRows = opts.maxRows ?? 1000;
  const maxBytes = opts.maxBytes ?? 4 * 1024 * 1024;
  const head = `INSERT INTO ${s.table} (${s.writeIdx.map((i) => quoteIdent(s.cols[i]!.name)).join(', ')}) VALUES `;
  let parts: string[] = [];
  let bytes = head.length;
  let first: { seq: bigint; img: readonly Value[] } | null = null;
  let last: { seq: bigint; img: readonly Value[] } | null = null;
  const done = (): GuardedStatement => {
    const a = first!;
    const b = last!;
    const n = parts.length;
    const [lo, hi] = a.seq < b.seq ? [a.seq, b.seq] : [b.seq, a.seq];
    const what =
      n === 1
        ? whatOf(s, keyText(s, a.img), a.seq.toString())
        : whatOf(s, `${n} rows: ${keyText(s, a.img)} ... ${keyText(s, b.img)}`, `${lo}..${hi}`);
    return { sql: head + parts.join(', '), expect: n, what, seq: a.seq, kind: 'insert' };
  };
  for (const i of rows) {
    const seq = s.e.seq + BigInt(i);
    const img = image(s, s.e.rows[i]!, will, seq);
    const part = `(${s.writeIdx.map((j) => pgLiteral(img[j] ?? null, s.cols[j]!)).join(', ')})`;
    if (parts.length > 0 && (parts.length >= maxRows || bytes + part.length + 2 > maxBytes)) {
      yield done();
      parts = [];
      bytes = head.length;
      first = null;
    }
    last = { seq, img };
    if (!first) first = last;
    parts.push(part);
    bytes += part.length + 2;
  }
  if (parts.length > 0) yield done();
}
