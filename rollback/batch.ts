/**
 * Merges runs of per-row guarded statements into multi-row statements (batch-sql.ts) as a plan streams by;
 * executePlan and writeScript both run their plans through it, so the two run the same statements.
 *
 * A run is consecutive statements carrying `batch` (guard.ts sets it on UPDATE/DELETE rows that can merge)
 * with the same shape and distinct keys, up to maxRows rows or maxBytes of constructor rows. Anything else — an
 * INSERT, a key move, a no-op update, a row of a table without a primary key, a row of another table or
 * operation, a key already in the run — ends the run first, so statements keep their order. Source
 * transactions may share a run (rewinding many small transactions of one table); their 'tx' items are moved
 * before the statement holding their rows. A run of one row stays its per-row statement.
 *
 * The merged statement carries the per-row statements in `rows`: when it matches fewer rows than it holds or
 * the server refuses it, executePlan rolls it back and runs them instead, which names the exact row. Once its
 * text is built, they release what only that needed (GuardedStatement.release). Streams: at most one run is held.
 */
import { sqlBytes } from '../mysql/sql.ts';
import { type BatchShape, batchSql } from '../mysql/batch-sql.ts';
import type { GuardedStatement, PlanItem } from './guard.ts';
import { RowStatement } from './guard-rows.ts';

export interface BatchOptions {
  /** Rows per multi-row statement; default 500. */
  readonly maxRows?: number;
  /** Bytes of constructor rows per statement; default 512 KiB. */
  readonly maxBytes?: number;
}

const MAX_ROWS = 500;
const MAX_BYTES = 512 * 1024;

/**
 * A multi-row statement; its SQL is built on first use. executePlan falls back to `rows` when it fails.
 */
export class MergedStatement implements GuardedStatement {
  readonly expect: number;
  readonly what: string;
  readonly seq: bigint;
  readonly kind: 'update' | 'delete';
  #rows: readonly GuardedStatement[] | (() => readonly GuardedStatement[]);
  readonly #shape: BatchShape;
  #sql: string | undefined;

  constructor(rows: readonly GuardedStatement[], shape: BatchShape, what: string) {
    this.#rows = rows;
    this.#shape = shape;
    this.expect = rows.length;
    this.what = what;
    this.seq = rows[0]!.seq;
    this.kind = shape.kind;
  }

  get sql(): string {
    if (this.#sql === undefined) {
      const rows = this.rows;
      this.#sql = batchSql(
        this.#shape,
        rows.map((r) => r.batch!.tuple),
      );
      // Held until the query's result is in, for a replay: only what that needs (guard-rows.ts).
      for (const r of rows) r.release?.();
      this.#rows = RowStatement.compact(rows);
    }
    return this.#sql;
  }

  /** Its per-row statements (once its text is built, made again on each call: a replay asks once). */
  get rows(): readonly GuardedStatement[] {
    const r = this.#rows;
    return typeof r === 'function' ? r() : r;
  }
}

/** One statement for the run `rows` (all with the same shape, distinct keys); a run of one is left as it is. */
export function mergeRun(rows: readonly GuardedStatement[]): GuardedStatement {
  const first = rows[0];
  if (!first) throw new Error('mergeRun: no rows');
  if (rows.length === 1) return first;
  const a = first.batch;
  const b = rows[rows.length - 1]!.batch;
  if (!a || !b) throw new Error('mergeRun: a statement without batch data');
  let lo = first.seq;
  let hi = first.seq;
  for (const r of rows) {
    if (r.seq < lo) lo = r.seq;
    if (r.seq > hi) hi = r.seq;
  }
  const tx = a.txId === b.txId ? a.txId : `${a.txId} ... ${b.txId}`;
  const what = `${a.shape.head} (${rows.length} rows: ${a.shape.describe(a.image)} ... ${b.shape.describe(b.image)}) at seq ${lo}..${hi} of tx ${tx}`;
  return new MergedStatement(rows, a.shape, what);
}

/**
 * The merging as a synchronous state machine: push() the plan's items in order, end() at its end; each call
 * appends the items that are ready to `out`. batchItems runs a stream through it; a producer that has many rows
 * at hand (undo.ts, items.ts) runs its rows through one itself, so that only whole statements travel the async
 * stream (a row at a time through four async generators cost a fifth of a 100k-row undo's allocations).
 */
export class Batcher {
  readonly #maxRows: number;
  readonly #maxBytes: number;
  #run: GuardedStatement[] = [];
  #group = '';
  #keys = new Set<string>();
  #bytes = 0;
  // 'tx' items that arrived while a run was open: before a later row of it (inner), or after its last (after).
  #inner: PlanItem[] = [];
  #after: PlanItem[] = [];

  constructor(opts: BatchOptions = {}) {
    this.#maxRows = opts.maxRows ?? MAX_ROWS;
    this.#maxBytes = opts.maxBytes ?? MAX_BYTES;
  }

  push(item: PlanItem, out: PlanItem[]): void {
    if (item.kind === 'tx') {
      if (this.#run.length > 0) this.#after.push(item);
      else out.push(item);
      return;
    }
    const b = item.kind === 'stmt' ? item.stmt.batch : undefined;
    if (item.kind !== 'stmt' || !b) {
      this.end(out);
      out.push(item);
      return;
    }
    const size = sqlBytes(b.tuple) + 2;
    const run = this.#run;
    if (
      run.length > 0 &&
      (b.shape.group !== this.#group ||
        this.#keys.has(b.key) ||
        run.length >= this.#maxRows ||
        this.#bytes + size > this.#maxBytes)
    ) {
      this.end(out);
    }
    if (this.#run.length === 0) this.#group = b.shape.group;
    if (this.#after.length > 0) {
      this.#inner.push(...this.#after);
      this.#after = [];
    }
    this.#run.push(item.stmt);
    this.#keys.add(b.key);
    this.#bytes += size;
  }

  /** Closes the open run (if any): its statement and the tx items held back. */
  end(out: PlanItem[]): void {
    if (this.#run.length > 0) {
      out.push(...this.#inner);
      out.push({ kind: 'stmt', stmt: mergeRun(this.#run) });
      this.#run = [];
      this.#keys = new Set();
      this.#bytes = 0;
      this.#inner = [];
    }
    if (this.#after.length > 0) {
      out.push(...this.#after);
      this.#after = [];
    }
  }
}

/** The plan with runs of mergeable statements merged (see the module comment). */
export async function* batchItems(items: AsyncIterable<PlanItem>, opts: BatchOptions = {}): AsyncGenerator<PlanItem> {
  const b = new Batcher(opts);
  const out: PlanItem[] = [];
  for await (const item of items) {
    b.push(item, out);
    if (out.length > 0) {
      yield* out;
      out.length = 0;
    }
  }
  b.end(out);
  yield* out;
}
