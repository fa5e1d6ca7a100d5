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
import { withEnumZero, writesEnumZero } from '../apply/mysql/batcher.ts';
import { type Flavor, insertPrefix, sameValues, setList, sqlBytes, tuple, updateColumns } from '../mysql/sql.ts';
import { type ErrorContext, TidemarkError } from '../core/errors.ts';
import type { RowOp, RowsEntry, Value } from '../record/record.ts';
import { isSequenceState } from '../record/sequence.ts';
import type { BatchRow } from '../mysql/batch-sql.ts';
import { guardWhere, image, imageRoles, keyText, rowWhat, type Shape, shapeOf, whatOf } from './guard-shape.ts';
import { batcher, EntryRows, RowStatement } from './guard-rows.ts';

export { type ColumnRoles, columnRoles, oneLine } from './guard-shape.ts';

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
  /**
   * The multi-row statement holding this row has built its text: drop what only that needed (and, where the entry
   * can be decoded again, the row's images: guard-rows.ts). `sql` and `what` still work.
   */
  release?(): void;
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
  /**
   * The same entry, decoded again from its journal bytes (undo and rewind pass it): a row inside a multi-row
   * statement then keeps nothing of the entry once that statement has its text (guard-rows.ts).
   */
  readonly reload?: () => RowsEntry;
}

/** A guarded statement did not find what it expected, or the server refused it: the whole plan is rolled back. */
export class GuardError extends TidemarkError {
  constructor(message: string, context: ErrorContext = {}, cause?: unknown) {
    super(message, { code: 'REWIND_GUARD', retriable: false, context, cause });
    this.name = 'GuardError';
  }
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
  const src = rowOf ? new EntryRows(s, opts.reload) : null;
  for (const i of order()) {
    const seq = e.seq + BigInt(i);
    const r = e.rows[i]!;
    const cur = image(s, r, was, seq);
    if (op === 'delete') {
      const batch = rowOf?.('delete', [], cur, null);
      if (batch) yield new RowStatement(src!, i, 'delete', seq, { s, cur, next: null, set: [] }, batch);
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
      yield new RowStatement(src!, i, 'update', seq, { s, cur, next, set: cols }, batch);
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
    ...imageRoles(dir),
    *order() {
      if (dir === 'redo') for (let i = from; i < to; i++) yield i;
      else for (let i = to - 1; i >= from; i--) yield i;
    },
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
