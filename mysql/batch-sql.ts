/**
 * Multi-row guarded UPDATE and DELETE for MariaDB: the SQL of one statement that does what a run of per-row
 * statements on one table does. Pure: no I/O. Rewind (rollback/guard.ts, rollback/batch.ts decides which of its
 * statements merge) holds every column to the image the row must have; apply (apply/mysql/join-update.ts) holds
 * none — it matches by key alone, as its per-row UPDATE does.
 *
 *   UPDATE (WITH tidemark_v(k0,c0,c1,n0) AS (VALUES /* key: k0 = `id`; held: c0 = `a`, c1 = `b`; written: n0 = `a` *\/
 *     (NULL,NULL,(SELECT `b` FROM `s`.`t` WHERE 0),NULL),      the typing row (below); its NULL key joins nothing
 *     (5,1,'x',2),                                             one row per guarded row, in statement order:
 *     …) SELECT * FROM tidemark_v) tidemark_v                  key, the image the row holds, the values to write
 *   STRAIGHT_JOIN `s`.`t` ON `s`.`t`.`id` = tidemark_v.k0 AND `s`.`t`.`a` <=> tidemark_v.c0 AND …
 *   SET `s`.`t`.`a` = tidemark_v.n0
 *
 *   DELETE `s`.`t` FROM (…) tidemark_v STRAIGHT_JOIN `s`.`t` ON …
 *
 * The form. MariaDB 10.11 accepts neither `(VALUES …) AS v(a, b)` nor a WITH clause before UPDATE/DELETE; a
 * CTE with a column list inside a derived table names the constructor's columns. (A UNION ALL of one-row
 * SELECTs also works but parses about twice as slowly.) STRAIGHT_JOIN makes the constructor drive the join:
 * each of its rows finds the table row through the primary key (eq_ref), and the server applies the rows in
 * constructor order, the order of the per-row statements (checked: a swap of unique values that only works in
 * one order succeeds or fails exactly as the per-row statements do). DELETE names the table itself: MariaDB
 * resolves a multi-table DELETE alias only when a default database is selected.
 *
 * Exact comparisons. A constructor column has the type aggregated over all its rows, NULLs included without
 * effect: integers and bare decimals → an integer or DECIMAL type wide enough for every value (no rounding),
 * approximate literals → DOUBLE (a FLOAT image is written as its exact float32 value, as in the per-row
 * statement), X'…' → VARBINARY, BIT values are written as numbers. Temporal values stay strings: compared with
 * a DATE/DATETIME/TIMESTAMP/TIME column they compare as temporal values, as the literal does. Text would not
 * compare like a literal: the constructor's column is utf8mb4 (and a latin1 column fails with "Illegal mix of
 * collations"). The typing row therefore puts `(SELECT col FROM t WHERE 0)` in every compared text column
 * (CHAR/VARCHAR/TEXT/ENUM/SET/JSON): the aggregated type takes the table column's charset and collation, the
 * literals are converted to it, and `col <=> v.c` runs under the column's collation exactly like `col <=>
 * 'literal'`. Verified on MariaDB 10.11 with DECIMAL, DOUBLE/FLOAT (-0 too), BIT(64) max, DATETIME(6),
 * TIMESTAMP(6), TIME(6) (negative), zero dates, BINARY(n), BLOB, JSON, ENUM/SET, latin1 and *_unicode_ci text.
 * A value whose kind does not fit its column's class, or a text/binary value over 65,535 characters/bytes (LONG_VALUE:
 * MariaDB cuts long binary literals in a value list), keeps its row per-row (batchRow). A table with a spatial
 * column (family `geometry`, no class) stays per-row: its guards compare `col <=> X'…'` over the stored SRID +
 * WKB bytes, exact on MariaDB 10.11 (a value that differs only by its SRID does not match).
 *
 * Exactly once. Only tables whose primary key is integer or binary merge: the key's literal text is then the
 * row's identity (no collation makes two different keys equal), and a batch holds each key at most once. A
 * multi-row statement matches a table row at most once, so a count equal to the batch's rows means every row
 * matched its own guard.
 */
import { compareLiteral, isExactNumberLiteral, literal, quoteIdent } from './sql.ts';
import { BINARY_STORED, typeFamily, type ValueKind } from './types.ts';
import type { Column, Value } from '../record/record.ts';

type ColumnClass = 'int' | 'bit' | 'decimal' | 'float' | 'text' | 'bin' | 'time';

/**
 * The batch class of each type family (mysql/types.ts, the one table). ENUM and SET batch as text: a label is
 * compared under the column's collation like a literal; an ENUM index 0 (0n) does not fit 'text', so its row
 * stays per-row (written without strictness, guard.ts).
 */
const CLASS_OF_FAMILY: Partial<Record<ValueKind, ColumnClass>> = {
  int: 'int',
  year: 'int',
  bit: 'bit',
  decimal: 'decimal',
  float: 'float',
  double: 'float',
  text: 'text',
  enum: 'text',
  set: 'text',
  binary: 'bin',
  date: 'time',
  datetime: 'time',
  time: 'time',
};

/** A column type's batch class; undefined: the table does not batch. */
function classOf(type: string): ColumnClass | undefined {
  // MariaDB's UUID/INET4/INET6 travel as binary(n) in records; named by their own type they do not batch.
  if (Object.hasOwn(BINARY_STORED, type)) return undefined;
  return CLASS_OF_FAMILY[typeFamily(type)];
}

/**
 * Longest text or binary value that goes into a value list; a longer one keeps its row per-row. MariaDB 10.11
 * returns a binary literal of 65,536 bytes or more from a table value constructor cut modulo 65,536 bytes —
 * silently, strict mode or not (`VALUES (NULL),(X'…70000 bytes…')` gives back 4,464 bytes; measured, issue #15).
 * Text was exact up to the 70,000 characters tried; it gets the same bound, values that long are rare.
 */
const LONG_VALUE = 65_535;

/** Does `v` become a literal of the kind the column's class needs (so the constructor column has one type)? */
function fits(cls: ColumnClass, v: Value, col: Column): boolean {
  if (v === null) return true;
  switch (cls) {
    case 'int':
      return typeof v === 'bigint';
    case 'bit':
      return typeof v === 'bigint' || v instanceof Uint8Array;
    case 'decimal':
      return isExactNumberLiteral(v, col);
    case 'float':
      return typeof v === 'number' && Number.isFinite(v);
    case 'text':
      return typeof v === 'string' && v.length <= LONG_VALUE;
    case 'time':
      return typeof v === 'string';
    case 'bin':
      return v instanceof Uint8Array && v.length <= LONG_VALUE;
  }
}

/** What every statement of one batch shares: the table, the operation and its columns. */
export interface BatchShape {
  /** Statements merge only with the same group (it names all of the below). */
  readonly group: string;
  readonly kind: 'update' | 'delete';
  /** `schema`.`table` */
  readonly table: string;
  /** Name of the derived table (differs from the table's name). */
  readonly alias: string;
  /** Start of `what`, one line: "undo update of `s`.`t`". */
  readonly head: string;
  readonly cols: readonly Column[];
  readonly keyIdx: readonly number[];
  readonly cmpIdx: readonly number[];
  readonly setIdx: readonly number[];
  readonly classes: readonly (ColumnClass | undefined)[];
  /** The key of a row for `what`, one line: "id=5". */
  readonly describe: (row: readonly Value[]) => string;
}

/** One guarded row, ready to join a batch of its shape. */
export interface BatchRow {
  readonly shape: BatchShape;
  /** The row's identity (literal text of its key): at most once per batch. */
  readonly key: string;
  /** Its constructor row: `(key…, compared…, written…)`. */
  readonly tuple: string;
  /** The image the row must hold (shape.describe names its key). */
  readonly image: readonly Value[];
  /** Source transaction, one line. */
  readonly txId: string;
}

export interface ShapeSpec {
  readonly kind: 'update' | 'delete';
  readonly schemaTable: string;
  readonly tableName: string;
  readonly head: string;
  readonly describe: (row: readonly Value[]) => string;
  readonly cols: readonly Column[];
  readonly keyIdx: readonly number[];
  readonly cmpIdx: readonly number[];
  /** Columns an update writes (none for a delete). */
  readonly setIdx: readonly number[];
}

/** The shape, or null when the table cannot be batched (key not integer/binary, a column of another type). */
export function batchShape(spec: ShapeSpec): BatchShape | null {
  const cls = (i: number): ColumnClass | undefined => classOf(spec.cols[i]!.type);
  if (spec.keyIdx.length === 0) return null;
  if (!spec.keyIdx.every((i) => cls(i) === 'int' || cls(i) === 'bin')) return null;
  if (spec.kind === 'update' && spec.setIdx.length === 0) return null;
  if (spec.setIdx.some((i) => spec.keyIdx.includes(i))) return null;
  if (![...spec.cmpIdx, ...spec.setIdx].every((i) => cls(i) !== undefined)) return null;
  const alias = spec.tableName.toLowerCase() === 'tidemark_v' ? 'tidemark_w' : 'tidemark_v';
  const group = JSON.stringify([
    spec.kind,
    spec.head,
    spec.schemaTable,
    spec.cols.map((c) => [c.name, c.type]),
    spec.keyIdx,
    spec.cmpIdx,
    spec.setIdx,
  ]);
  return {
    group,
    kind: spec.kind,
    table: spec.schemaTable,
    alias,
    head: spec.head,
    cols: spec.cols,
    keyIdx: spec.keyIdx,
    cmpIdx: spec.cmpIdx,
    setIdx: spec.setIdx,
    classes: spec.cols.map((_, i) => cls(i)),
    describe: spec.describe,
  };
}

/**
 * The row's batch form: `cur` is the image the row must hold, `next` (updates) the image it gets. Null when a
 * value does not fit its column's class or the update moves the key (those stay per-row).
 */
export function batchRow(
  shape: BatchShape,
  cur: readonly Value[],
  next: readonly Value[] | null,
  txId: string,
): BatchRow | null {
  const { cols, classes } = shape;
  let key = '';
  for (const i of shape.keyIdx) {
    const v = cur[i] ?? null;
    if (v === null || !fits(classes[i]!, v, cols[i]!)) return null;
    const lit = literal(v, cols[i]!);
    // The key must not move: the same value (most rows) needs no second literal to say so.
    const n = next?.[i] ?? null;
    if (next && n !== v && literal(n, cols[i]!) !== lit) return null;
    key = key === '' ? lit : `${key},${lit}`;
  }
  let tuple = `(${key}`;
  for (const i of shape.cmpIdx) {
    const v = cur[i] ?? null;
    if (!fits(classes[i]!, v, cols[i]!)) return null;
    tuple += `,${compareLiteral(v, cols[i]!, 'mariadb')}`;
  }
  if (next) {
    for (const i of shape.setIdx) {
      const v = next[i] ?? null;
      if (!fits(classes[i]!, v, cols[i]!)) return null;
      tuple += `,${literal(v, cols[i]!)}`;
    }
  }
  return { shape, key, tuple: `${tuple})`, image: cur, txId };
}

/**
 * A comment naming the constructor's columns, for a reader of the script: `/* key: k0 = `id`; held: c0 = `a`;
 * written: n0 = `a` *\/`. One line, without '*\/' or '$$' (script.ts's delimiter) inside.
 */
export function columnsComment(shape: BatchShape): string {
  const name = (i: number) => quoteIdent(shape.cols[i]!.name);
  const part = (label: string, prefix: string, idx: readonly number[]) =>
    idx.length ? [`${label}: ${idx.map((i, j) => `${prefix}${j} = ${name(i)}`).join(', ')}`] : [];
  const text = [
    ...part('key', 'k', shape.keyIdx),
    ...part('held', 'c', shape.cmpIdx),
    ...part('written', 'n', shape.setIdx),
  ].join('; ');
  const safe = text
    .replace(/[\x00-\x1f\x7f\u2028\u2029]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    .replace(/\*\//g, '* /')
    .replace(/\$(?=\$)/g, '$ ');
  return `/* ${safe} */`;
}

/** The multi-row statement for constructor rows `tuples` (see the module comment). */
export function batchSql(shape: BatchShape, tuples: readonly string[]): string {
  const t = shape.table;
  const v = shape.alias;
  const col = (i: number): string => quoteIdent(shape.cols[i]!.name);
  const names = [
    ...shape.keyIdx.map((_, j) => `k${j}`),
    ...shape.cmpIdx.map((_, j) => `c${j}`),
    ...shape.setIdx.map((_, j) => `n${j}`),
  ];
  const typing = [
    ...shape.keyIdx.map(() => 'NULL'),
    ...shape.cmpIdx.map((i) => (shape.classes[i] === 'text' ? `(SELECT ${col(i)} FROM ${t} WHERE 0)` : 'NULL')),
    ...shape.setIdx.map(() => 'NULL'),
  ];
  const on = [
    ...shape.keyIdx.map((i, j) => `${t}.${col(i)} = ${v}.k${j}`),
    ...shape.cmpIdx.map((i, j) => `${t}.${col(i)} <=> ${v}.c${j}`),
  ].join(' AND ');
  const from =
    `(WITH ${v}(${names.join(',')}) AS (VALUES ${columnsComment(shape)} (${typing.join(',')}),\n${tuples.join(',\n')}\n) ` +
    `SELECT * FROM ${v}) ${v} STRAIGHT_JOIN ${t} ON ${on}`;
  if (shape.kind === 'delete') return `DELETE ${t} FROM ${from}`;
  return `UPDATE ${from} SET ${shape.setIdx.map((i, j) => `${t}.${col(i)} = ${v}.n${j}`).join(', ')}`;
}
