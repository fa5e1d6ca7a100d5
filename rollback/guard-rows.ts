/**
 * Per-row UPDATE/DELETE statements that can merge into a multi-row statement (batch.ts), with their batch data.
 * Pure: no I/O.
 *
 * A row inside a multi-row statement needs its own text only when that statement fails (executePlan then runs the
 * rows one by one to name the one that does). Until its query's result is in, an undo keeps the statement — up to
 * two queries of 2 MiB in flight, tens of thousands of rows. Each row holding its images, its constructor row and
 * its entry for that kept them alive through every young-generation collection: a 100k-row UPDATE undo spent
 * ~30 % of its CPU in the garbage collector (issue #15). So once the multi-row statement has its text, release()
 * drops the constructor row and, where the entry can be decoded again from its journal bytes (GuardOptions.reload),
 * the images and the entry too: a merged row then keeps its index, and its text and `what` are built from the
 * entry decoded again if they are ever asked for.
 */
import { setList, updateColumns } from '../mysql/sql.ts';
import { sameItems } from '../core/collections.ts';
import type { RowsEntry, Value } from '../record/record.ts';
import { type BatchRow, type BatchShape, batchRow, batchShape } from '../mysql/batch-sql.ts';
import type { GuardedStatement } from './guard.ts';
import { guardWhere, image, imageRoles, keyText, oneLine, rowWhat, type Shape, shapeOf } from './guard-shape.ts';

/** Where the statements of one entry's rows find it again once they released it. */
export class EntryRows {
  readonly #reload: (() => RowsEntry) | undefined;
  readonly #dir: Shape['dir'];
  readonly #opts: Shape['opts'];
  #shape: Shape | null;
  /** The entry's seq: row i's is seq + i. */
  readonly seq: bigint;

  constructor(s: Shape, reload?: () => RowsEntry) {
    this.#reload = reload;
    this.seq = s.e.seq;
    this.#dir = s.dir;
    this.#opts = s.opts;
    // Without a way to decode the entry again, it is kept (as every row's images are).
    this.#shape = reload ? null : s;
  }

  /** Rows may release their images: the entry can be decoded again. */
  get reloadable(): boolean {
    return this.#reload !== undefined;
  }

  /** The entry's shape, its rows decoded again the first time (and kept: a replay asks for row after row). */
  shape(): Shape {
    if (this.#shape) return this.#shape;
    this.#shape = shapeOf(this.#reload!(), this.#dir, this.#opts);
    return this.#shape;
  }
}

/** One row's statement inputs: the shape, the image the row must hold, the one it gets, the columns written. */
export interface RowParts {
  readonly s: Shape;
  readonly cur: readonly Value[];
  readonly next: readonly Value[] | null;
  readonly set: readonly number[];
}

/**
 * A per-row UPDATE/DELETE that can merge into a multi-row statement. Its text and `what` are built on first use:
 * inside a multi-row statement they are only needed when it fails, and most rows of a large plan never are.
 */
export class RowStatement implements GuardedStatement {
  readonly expect = 1;
  readonly kind: 'update' | 'delete';
  readonly seq: bigint;
  readonly #src: EntryRows;
  readonly #i: number;
  #parts: RowParts | null;
  #batch: BatchRow | undefined;
  #sql: string | undefined;
  #what: string | undefined;

  constructor(
    src: EntryRows,
    i: number,
    kind: 'update' | 'delete',
    seq: bigint,
    parts: RowParts | null,
    batch: BatchRow | undefined,
  ) {
    this.#src = src;
    this.#i = i;
    this.kind = kind;
    this.seq = seq;
    this.#parts = parts;
    this.#batch = batch;
  }

  get batch(): BatchRow | undefined {
    return this.#batch;
  }

  release(): void {
    this.#batch = undefined;
    if (this.#src.reloadable) this.#parts = null;
  }

  /**
   * Released rows `rows` as runs of neighbouring rows of one entry (a few words per run instead of an object per
   * row); the function builds their statements again. Rows that keep their entry are kept as they are.
   */
  static compact(rows: readonly GuardedStatement[]): () => readonly GuardedStatement[] {
    const runs: { src: EntryRows; kind: 'update' | 'delete'; first: number; last: number }[] = [];
    for (const r of rows) {
      if (!(r instanceof RowStatement) || r.#parts !== null) return () => rows;
      const run = runs.at(-1);
      // A run goes up (redo) or down (undo) one row at a time; its second row sets which.
      const step = run ? (run.first === run.last ? r.#i - run.last : Math.sign(run.last - run.first)) : 0;
      if (run && run.src === r.#src && run.kind === r.kind && Math.abs(step) === 1 && r.#i === run.last + step) {
        run.last = r.#i;
        continue;
      }
      runs.push({ src: r.#src, kind: r.kind, first: r.#i, last: r.#i });
    }
    return () => {
      const out: RowStatement[] = [];
      for (const { src, kind, first, last } of runs) {
        const step = last >= first ? 1 : -1;
        for (let i = first; ; i += step) {
          const st = new RowStatement(src, i, kind, src.seq + BigInt(i), null, undefined);
          out.push(st);
          if (i === last) break;
        }
      }
      return out;
    };
  }

  get sql(): string {
    if (this.#sql === undefined) {
      const { s, cur, next, set } = this.#row();
      this.#sql = next
        ? `UPDATE ${s.table} SET ${setList(next, s.cols, set)}${guardWhere(s, cur)}`
        : `DELETE FROM ${s.table}${guardWhere(s, cur)}`;
    }
    return this.#sql;
  }

  get what(): string {
    if (this.#what === undefined) {
      const { s, cur } = this.#row();
      this.#what = rowWhat(s, cur, this.seq);
    }
    return this.#what;
  }

  /** The row's parts: kept, or taken from the entry decoded again (the same row, the same images). */
  #row(): RowParts {
    if (this.#parts) return this.#parts;
    const s = this.#src.shape();
    const r = s.e.rows[this.#i]!;
    const { was, will } = imageRoles(s.dir);
    const cur = image(s, r, was, this.seq);
    if (this.kind === 'delete') return { s, cur, next: null, set: [] };
    const next = image(s, r, will, this.seq);
    return { s, cur, next, set: updateColumns(s.cols, s.writeIdx, cur, next) };
  }
}

export type RowOf = (
  kind: 'update' | 'delete',
  setIdx: readonly number[],
  cur: readonly Value[],
  next: readonly Value[] | null,
) => BatchRow | null;

/** Batch data for the rows of one entry (MariaDB, tables with a primary key), or null when they cannot merge. */
export function batcher(s: Shape): RowOf | null {
  const keyIdx = s.pkIdx;
  if (s.opts.flavor !== 'mariadb' || !keyIdx) return null;
  const shapes = new Map<string, BatchShape | null>();
  const head = oneLine(`${s.dir} ${s.e.op} of ${s.table}`);
  const txId = oneLine(s.opts.txId);
  // Not `s` itself: a multi-row statement keeps its shape (and so this function) while in flight, not the entry.
  const named = { cols: s.cols, descIdx: s.descIdx };
  const describe = (row: readonly Value[]): string => oneLine(keyText(named, row));
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
