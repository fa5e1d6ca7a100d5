/**
 * Guarded statements: SQL that undoes (or redoes) the row changes of a rows entry only if each row is in the
 * state the journal says it is in. Pure: no I/O.
 *
 *   redo   the change as the source made it, rows in order
 *   undo   the inverse, rows in reverse order: insert → DELETE of the after image, delete → INSERT of the before
 *          image, update → UPDATE from the after image back to the before image
 *
 * Guards. An UPDATE or DELETE matches the primary key with `=` (so the PK index finds the row) AND every other
 * column with `<=>` against the image the row must hold now; it must match exactly 1 row (FOUND_ROWS semantics:
 * matched, not changed, so a no-op update still proves the row exists). Without a primary key the whole image is
 * matched with `<=>` and LIMIT 1 (identical rows are indistinguishable). INSERTs are multi-row (up to ~1000 rows
 * or ~4 MiB) and must insert every row: a row whose key is already present fails them with a duplicate-key error.
 * Columns in skipColumns (generated columns: the server computes them) are neither written nor compared.
 * A statement that writes ENUM index 0 (Value 0n) runs without strict mode, as apply does (batcher.ts), and never
 * merges into a multi-row statement.
 * Comparisons run under the column's collation: a change a case-insensitive collation cannot see (a → A) passes.
 *
 * MariaDB: UPDATE/DELETE rows that can share a multi-row statement carry `batch` (batch-sql.ts); executePlan
 * and writeScript merge runs of them (batch.ts). The per-row statement stays what runs when a row is alone, and
 * what executePlan falls back to when a multi-row statement fails.
 */
import { EntryError, withEnumZero, writesEnumZero } from '../apply/mysql/batcher.ts';
import {
  describeKey,
  type Flavor,
  fullRowWhere,
  insertPrefix,
  keyWhere,
  qualified,
  sameValues,
  setList,
  sqlBytes,
  tuple,
  updateColumns,
} from '../mysql/sql.ts';
import { type ErrorContext, TidemarkError } from '../core/errors.ts';
import { sameItems } from '../core/collections.ts';
import type { Column, RowImage, RowOp, RowsEntry, Value } from '../record/record.ts';
import { isSequenceState } from '../record/sequence.ts';
import { type BatchRow, type BatchShape, batchRow, batchShape } from '../mysql/batch-sql.ts';

export type Direction = 'undo' | 'redo';

export interface GuardedStatement {
  /** One statement, no trailing ';'. */
  readonly sql: string;
  /** Rows it must match (FOUND_ROWS semantics: matched, not changed). */
  readonly expect: number;
  /** "undo update of `s`.`t` (id=5) at seq 1234 of tx 0-1-55": one line, no control characters. */
  readonly what: string;
  /** seq of the first row change the statement handles (in statement order). */
  readonly seq: bigint;
  readonly kind: RowOp;
  /** The update changes no column (its images are equal): a client without FOUND_ROWS sees 0 changed rows. */
  readonly noop?: boolean;
  /** With noop: a locking SELECT that returns a row iff the guarded row exists (the script checks it). */
  readonly exists?: string;
  /** The row in the form a multi-row statement takes (MariaDB UPDATE/DELETE rows that can merge). */
  readonly batch?: BatchRow;
  /** A multi-row statement (batch.ts): the per-row statements it stands for, in order. */
  readonly rows?: readonly GuardedStatement[];
}

/** One step of a plan (executePlan runs it, writeScript writes it). */
export type PlanItem =
  | { kind: 'tx'; txId: string; commitSeq: bigint; commitTimeUs: bigint; direction: Direction; rows: number }
  | { kind: 'stmt'; stmt: GuardedStatement }
  /** Runs after every stmt, just before COMMIT (e.g. the position-table update); expect is checked too. */
  | { kind: 'final'; sql: string; expect: number; what: string };

export interface GuardOptions {
  readonly flavor: Flavor;
  /** Source transaction id (for `what`). */
  readonly txId: string;
  /** Columns never written nor compared (generated columns of the replica table). */
  readonly skipColumns?: ReadonlySet<string>;
  /** Rows [fromRow, toRow) of the entry; default all. */
  readonly fromRow?: number;
  readonly toRow?: number;
  /** Upper bounds of one INSERT (defaults 1000 rows, 4 MiB; a single larger row goes alone). */
  readonly maxRows?: number;
  readonly maxBytes?: number;
}

/** A guarded statement did not find what it expected, or the server refused it: the whole plan is rolled back. */
export class GuardError extends TidemarkError {
  constructor(message: string, context: ErrorContext = {}, cause?: unknown) {
    super(message, { code: 'REWIND_GUARD', retriable: false, context, cause });
    this.name = 'GuardError';
  }
}

const MAX_KEY_TEXT = 160;

/** Control characters (newlines in identifiers, say) as \xNN, so text stays on one line. */
export function oneLine(s: string): string {
  return s.replace(/[\x00-\x1f\x7f\u2028\u2029]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

interface Shape {
  readonly e: RowsEntry;
  readonly dir: Direction;
  readonly opts: GuardOptions;
  readonly table: string;
  readonly cols: readonly Column[];
  /** Key column indexes, or null when rows are matched by the whole image. */
  readonly pkIdx: readonly number[] | null;
  /** Written columns: all but skipped ones. */
  readonly writeIdx: readonly number[];
  /** Columns compared with <=> besides the key (all written columns without a key). */
  readonly cmpIdx: readonly number[];
  /** Columns that identify a row in `what`. */
  readonly descIdx: readonly number[];
}

/** Which columns of a rows entry are the key, are written, and are compared besides the key. */
export interface ColumnRoles {
  /** Key column indexes, or null when rows are matched by the whole image. */
  readonly pkIdx: readonly number[] | null;
  /** Written columns: all but skipped ones. */
  readonly writeIdx: readonly number[];
  /** Columns compared besides the key (all written columns without a key). */
  readonly cmpIdx: readonly number[];
}

/** The column roles of `e` (every engine's guards); `fail` makes the error for an entry that cannot be guarded. */
export function columnRoles(e: RowsEntry, skip: ReadonlySet<string>, fail: (problem: string) => Error): ColumnRoles {
  const cols = e.columns;
  const pkIdx =
    e.pk.length === 0
      ? null
      : e.pk.map((name) => {
          const i = cols.findIndex((c) => c.name === name);
          if (i < 0) throw fail(`: key column ${name} is not among its columns`);
          return i;
        });
  const writeIdx: number[] = [];
  for (let i = 0; i < cols.length; i++) if (!skip.has(cols[i]!.name)) writeIdx.push(i);
  if (writeIdx.length === 0) throw fail(' has no writable columns');
  const cmpIdx = pkIdx ? writeIdx.filter((i) => !pkIdx.includes(i)) : writeIdx;
  return { pkIdx, writeIdx, cmpIdx };
}

function shapeOf(e: RowsEntry, dir: Direction, opts: GuardOptions): Shape {
  const cols = e.columns;
  const where = { schema: e.schema, table: e.table, seq: e.seq };
  const fail = (problem: string) => new EntryError(`rows entry for ${qualified(e.schema, e.table)}${problem}`, where);
  const { pkIdx, writeIdx, cmpIdx } = columnRoles(e, opts.skipColumns ?? new Set<string>(), fail);
  return {
    e,
    dir,
    opts,
    table: qualified(e.schema, e.table),
    cols,
    pkIdx,
    writeIdx,
    cmpIdx,
    descIdx: pkIdx ?? writeIdx,
  };
}

function image(s: Shape, r: RowImage, which: 'before' | 'after', seq: bigint): readonly Value[] {
  const img = r[which];
  if (!img || img.length !== s.cols.length) {
    throw new EntryError(
      `${s.e.op} of ${s.table} at seq ${seq}: ${which} image ${img ? `has ${img.length} values for ${s.cols.length} columns` : 'is missing'}`,
      { schema: s.e.schema, table: s.e.table, seq },
    );
  }
  return img;
}

function keyText(s: Shape, row: readonly Value[]): string {
  const t = describeKey(row, s.cols, s.descIdx);
  return t.length > MAX_KEY_TEXT ? t.slice(0, MAX_KEY_TEXT - 3) + '...' : t;
}

function whatOf(s: Shape, detail: string, seqText: string): string {
  return oneLine(`${s.dir} ${s.e.op} of ${s.table} (${detail}) at seq ${seqText} of tx ${s.opts.txId}`);
}

/** `WHERE …` that matches the row only if it holds `img` (key with =, the other columns with <=>). */
function guardWhere(s: Shape, img: readonly Value[]): string {
  const f = s.opts.flavor;
  const rest = fullRowWhere(
    s.cmpIdx.map((i) => img[i] ?? null),
    s.cmpIdx.map((i) => s.cols[i]!),
    f,
  );
  if (!s.pkIdx) return ` WHERE ${rest} LIMIT 1`;
  const key = keyWhere(img, s.cols, s.pkIdx, f);
  return ` WHERE ${rest === '' ? key : `${key} AND ${rest}`}`;
}

/**
 * Statements for rows [fromRow, toRow) of a rows entry (see the module comment). Rows are consumed one at a
 * time: memory stays bounded however large the entry's range is.
 */
export function* guardedStatements(e: RowsEntry, dir: Direction, opts: GuardOptions): Generator<GuardedStatement> {
  const pass = rowPass(e, dir, opts);
  if (!pass) return;
  const s = shapeOf(e, dir, opts);
  const { op, was, will, order } = pass;
  if (op === 'insert') {
    yield* inserts(s, order(), will);
    return;
  }
  const rowOf = batcher(s);
  for (const i of order()) {
    const seq = e.seq + BigInt(i);
    const r = e.rows[i]!;
    const cur = image(s, r, was, seq);
    if (op === 'delete') {
      const batch = rowOf?.('delete', [], cur, null);
      if (batch) yield new RowStatement(s, 'delete', seq, cur, null, [], batch);
      else
        yield {
          sql: `DELETE FROM ${s.table}${guardWhere(s, cur)}`,
          expect: 1,
          what: rowWhat(s, cur, seq),
          seq,
          kind: op,
        };
      continue;
    }
    const next = image(s, r, will, seq);
    const cols = updateColumns(s.cols, s.writeIdx, cur, next);
    const noop = sameValues(s.writeIdx, cur, next);
    const zero = writesEnumZero(next, s.cols, cols);
    const batch = noop || zero ? null : rowOf?.('update', cols, cur, next);
    if (batch) {
      yield new RowStatement(s, 'update', seq, cur, next, cols, batch);
      continue;
    }
    const where = guardWhere(s, cur);
    const update = `UPDATE ${s.table} SET ${setList(next, s.cols, cols)}${where}`;
    const sql = zero ? withEnumZero(update, s.opts.flavor) : update;
    const what = rowWhat(s, cur, seq);
    if (noop) {
      yield { sql, expect: 1, what, seq, kind: 'update', noop, exists: `SELECT 1 FROM ${s.table}${where} FOR UPDATE` };
    } else yield { sql, expect: 1, what, seq, kind: 'update' };
  }
}

/** What one direction does with rows [fromRow, toRow) of an entry (every engine's guarded statements follow it). */
export interface RowPass {
  /** The operation this direction performs. */
  readonly op: RowOp;
  /** Which image the row holds before the statement, and which after it. */
  readonly was: 'before' | 'after';
  readonly will: 'before' | 'after';
  /** Row indexes in statement order: redo forwards, undo backwards. */
  order(): Generator<number>;
}

/**
 * The pass over rows [fromRow, toRow) of `e` in direction `dir`, or null when there is nothing to do: no rows in
 * the range, or a sequence's state, which keeps its newest state in both directions (one that went back would
 * hand out values again, and it cannot be UPDATEd or DELETEd anyway: record/sequence.ts).
 */
export function rowPass(e: RowsEntry, dir: Direction, opts: Pick<GuardOptions, 'fromRow' | 'toRow'>): RowPass | null {
  if (isSequenceState(e)) return null;
  const from = Math.max(0, opts.fromRow ?? 0);
  const to = Math.min(e.rows.length, opts.toRow ?? e.rows.length);
  if (from >= to) return null;
  return {
    op: dir === 'redo' ? e.op : e.op === 'insert' ? 'delete' : e.op === 'delete' ? 'insert' : 'update',
    was: dir === 'redo' ? 'before' : 'after',
    will: dir === 'redo' ? 'after' : 'before',
    *order() {
      if (dir === 'redo') for (let i = from; i < to; i++) yield i;
      else for (let i = to - 1; i >= from; i--) yield i;
    },
  };
}

function rowWhat(s: Shape, cur: readonly Value[], seq: bigint): string {
  return whatOf(s, keyText(s, cur), seq.toString());
}

/**
 * A per-row UPDATE/DELETE that can merge into a multi-row statement. Its text and `what` are built on first use:
 * inside a multi-row statement they are only needed when it fails, and most rows of a large plan never are.
 */
class RowStatement implements GuardedStatement {
  readonly expect = 1;
  readonly kind: 'update' | 'delete';
  readonly seq: bigint;
  readonly batch: BatchRow;
  readonly #s: Shape;
  readonly #cur: readonly Value[];
  readonly #next: readonly Value[] | null;
  readonly #set: readonly number[];
  #sql: string | undefined;
  #what: string | undefined;

  constructor(
    s: Shape,
    kind: 'update' | 'delete',
    seq: bigint,
    cur: readonly Value[],
    next: readonly Value[] | null,
    set: readonly number[],
    batch: BatchRow,
  ) {
    this.#s = s;
    this.kind = kind;
    this.seq = seq;
    this.#cur = cur;
    this.#next = next;
    this.#set = set;
    this.batch = batch;
  }

  get sql(): string {
    const s = this.#s;
    this.#sql ??= this.#next
      ? `UPDATE ${s.table} SET ${setList(this.#next, s.cols, this.#set)}${guardWhere(s, this.#cur)}`
      : `DELETE FROM ${s.table}${guardWhere(s, this.#cur)}`;
    return this.#sql;
  }

  get what(): string {
    this.#what ??= rowWhat(this.#s, this.#cur, this.seq);
    return this.#what;
  }
}

type RowOf = (
  kind: 'update' | 'delete',
  setIdx: readonly number[],
  cur: readonly Value[],
  next: readonly Value[] | null,
) => BatchRow | null;

/** Batch data for the rows of one entry (MariaDB, tables with a primary key), or null when they cannot merge. */
function batcher(s: Shape): RowOf | null {
  const keyIdx = s.pkIdx;
  if (s.opts.flavor !== 'mariadb' || !keyIdx) return null;
  const shapes = new Map<string, BatchShape | null>();
  const head = oneLine(`${s.dir} ${s.e.op} of ${s.table}`);
  const txId = oneLine(s.opts.txId);
  const describe = (row: readonly Value[]): string => oneLine(keyText(s, row));
  // The rows of an entry mostly write the same columns: the last shape is reused without building its id.
  let last: { kind: string; setIdx: readonly number[]; shape: BatchShape | null } | null = null;
  return (kind, setIdx, cur, next) => {
    let shape: BatchShape | null | undefined;
    if (last && last.kind === kind && sameItems(last.setIdx, setIdx)) shape = last.shape;
    else {
      const id = kind === 'delete' ? kind : setIdx.join(',');
      shape = shapes.get(id);
      if (shape === undefined) {
        const spec = { kind, schemaTable: s.table, tableName: s.e.table, head, describe, cols: s.cols, keyIdx };
        shape = batchShape({ ...spec, cmpIdx: s.cmpIdx, setIdx });
        shapes.set(id, shape);
      }
      last = { kind, setIdx, shape };
    }
    return shape && batchRow(shape, cur, next, txId);
  };
}

/** Multi-row INSERTs of the `will` images, bounded by rows and bytes. */
function* inserts(s: Shape, rows: Iterable<number>, will: 'before' | 'after'): Generator<GuardedStatement> {
  const maxRows = s.opts.maxRows ?? 1000;
  const maxBytes = s.opts.maxBytes ?? 4 * 1024 * 1024;
  const head = insertPrefix(s.e.schema, s.e.table, s.cols, s.writeIdx);
  let parts: string[] = [];
  let bytes = sqlBytes(head);
  let first: { seq: bigint; img: readonly Value[] } | null = null;
  let last: { seq: bigint; img: readonly Value[] } | null = null;
  let zero = false;
  const done = (): GuardedStatement => {
    const a = first!;
    const b = last!;
    const n = parts.length;
    const lo = a.seq < b.seq ? a.seq : b.seq;
    const hi = a.seq < b.seq ? b.seq : a.seq;
    const what =
      n === 1
        ? whatOf(s, keyText(s, a.img), a.seq.toString())
        : whatOf(s, `${n} rows: ${keyText(s, a.img)} ... ${keyText(s, b.img)}`, `${lo}..${hi}`);
    const insert = head + parts.join(',');
    const sql = zero ? withEnumZero(insert, s.opts.flavor) : insert;
    return { sql, expect: n, what, seq: a.seq, kind: 'insert' };
  };
  for (const i of rows) {
    const seq = s.e.seq + BigInt(i);
    const img = image(s, s.e.rows[i]!, will, seq);
    const part = tuple(img, s.cols, s.writeIdx);
    const size = sqlBytes(part) + 1;
    if (parts.length > 0 && (parts.length >= maxRows || bytes + size > maxBytes)) {
      yield done();
      parts = [];
      bytes = sqlBytes(head);
      first = null;
      zero = false;
    }
    if (writesEnumZero(img, s.cols, s.writeIdx)) zero = true;
    last = { seq, img };
    if (!first) first = last;
    parts.push(part);
    bytes += size;
  }
  if (parts.length > 0) yield done();
}
