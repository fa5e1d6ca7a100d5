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
 * the server refuses it, executePlan rolls it back and runs them instead, which names the exact row. Streams:
 * at most one run is held.
 */
import { sqlBytes } from '../mysql/sql.ts';
import { batchSql } from '../mysql/batch-sql.ts';
import type { GuardedStatement, PlanItem } from './guard.ts';

export interface BatchOptions {
  /** Rows per multi-row statement; default 500. */
  readonly maxRows?: number;
  /** Bytes of constructor rows per statement; default 512 KiB. */
  readonly maxBytes?: number;
}

const MAX_ROWS = 500;
const MAX_BYTES = 512 * 1024;

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
  return {
    sql: batchSql(
      a.shape,
      rows.map((r) => r.batch!.tuple),
    ),
    expect: rows.length,
    what: `${a.shape.head} (${rows.length} rows: ${a.shape.describe(a.image)} ... ${b.shape.describe(b.image)}) at seq ${lo}..${hi} of tx ${tx}`,
    seq: first.seq,
    kind: a.shape.kind,
    rows,
  };
}

/** The plan with runs of mergeable statements merged (see the module comment). */
export async function* batchItems(items: AsyncIterable<PlanItem>, opts: BatchOptions = {}): AsyncGenerator<PlanItem> {
  const maxRows = opts.maxRows ?? MAX_ROWS;
  const maxBytes = opts.maxBytes ?? MAX_BYTES;
  let run: GuardedStatement[] = [];
  let group = '';
  let keys = new Set<string>();
  let bytes = 0;
  // 'tx' items that arrived while a run was open: before a later row of it (inner), or after its last (after).
  let inner: PlanItem[] = [];
  let after: PlanItem[] = [];

  function* flush(): Generator<PlanItem> {
    if (run.length > 0) {
      yield* inner;
      yield { kind: 'stmt', stmt: mergeRun(run) };
    }
    yield* after;
    run = [];
    keys = new Set();
    bytes = 0;
    inner = [];
    after = [];
  }

  for await (const item of items) {
    if (item.kind === 'tx') {
      if (run.length > 0) after.push(item);
      else yield item;
      continue;
    }
    const b = item.kind === 'stmt' ? item.stmt.batch : undefined;
    if (item.kind !== 'stmt' || !b) {
      yield* flush();
      yield item;
      continue;
    }
    const size = sqlBytes(b.tuple) + 2;
    if (
      run.length > 0 &&
      (b.shape.group !== group || keys.has(b.key) || run.length >= maxRows || bytes + size > maxBytes)
    ) {
      yield* flush();
    }
    if (run.length === 0) group = b.shape.group;
    inner.push(...after);
    after = [];
    run.push(item.stmt);
    keys.add(b.key);
    bytes += size;
  }
  yield* flush();
}
