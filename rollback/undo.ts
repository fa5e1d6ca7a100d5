/**
 * Undo of one transaction (or some of its rows) while later work stays: conflict analysis and the statements.
 *
 * A conflict is a later change (seq after the transaction, up to what the server holds) of a row the transaction
 * changed: same table and key, looked up in the rollback index under the row's before key and after key (so a
 * re-insert of a deleted key, or an update that moved a key, is found too).
 *   nocascade    any conflict: refuse and list the conflicting transactions; nothing is changed
 *   cascade      undo the dependents first: every transaction that conflicts, transitively, newest first
 *   nonconflict  undo only the rows no later transaction touched; report exactly what was skipped
 */
import type { RowsEntry } from '../record/record.ts';
import { TidemarkError } from '../core/errors.ts';
import type { Direction, PlanItem } from './guard.ts';
import type { RollbackIndex, TxInfo } from './index/index.ts';
import { type ItemContext, loadRows, loadRowsReloadable, statementsOf } from './items.ts';
import { Batcher } from './batch.ts';
import { keyText } from './index/index.ts';
import { describeTx } from './points.ts';
import { formatTimeUs } from './time.ts';
import { redactSecrets } from '../mysql/accounts.ts';
import { crossable } from './objects.ts';

export type UndoMode = 'nocascade' | 'cascade' | 'nonconflict';

/** Which rows of the transaction to undo: all, or those of one table, or one key of one table. */
export interface RowFilter {
  /** "schema.table" */
  readonly table?: string;
  readonly keyText?: string;
}

export interface SkippedRow {
  readonly table: string;
  readonly key: string;
  readonly seq: bigint;
  /** Transactions that changed the row later. */
  readonly by: readonly string[];
}

export interface UndoPlan {
  readonly root: TxInfo;
  /** Transactions to undo, newest first (the root last). */
  readonly txs: readonly TxInfo[];
  /** nonconflict: rows of the root left alone, with who changed them later. */
  readonly skipped: readonly SkippedRow[];
  /** Rows of the root that will be undone (after filter and skips). */
  readonly rows: number;
}

/** Keys a row is known by: its before key and its after key (the whole row when the table has no key). */
export function rowKeys(e: RowsEntry, i: number): string[] {
  const r = e.rows[i]!;
  const idx = e.pk.length ? e.pk.map((n) => e.columns.findIndex((c) => c.name === n)) : e.columns.map((_, j) => j);
  const out: string[] = [];
  for (const img of [r.before, r.after]) {
    if (!img) continue;
    const k = keyText(idx.map((j) => img[j] ?? null));
    if (!out.includes(k)) out.push(k);
  }
  return out;
}

const tableOf = (e: { schema: string; table: string }) => `${e.schema}.${e.table}`;

function matches(e: RowsEntry, i: number, f: RowFilter | undefined): boolean {
  if (!f) return true;
  if (f.table !== undefined && tableOf(e) !== f.table) return false;
  if (f.keyText !== undefined && !rowKeys(e, i).includes(f.keyText)) return false;
  return true;
}

interface RowVisit {
  readonly e: RowsEntry;
  readonly i: number;
  readonly seq: bigint;
  /** Commit seqs of the later transactions that changed any key of the row (up to the head); empty: none. */
  readonly later: ReadonlySet<bigint>;
}

const NONE: ReadonlySet<bigint> = new Set();

/**
 * Every row of a transaction (matching the filter), ascending seq, with its later changes; one entry in memory at
 * a time, and one bulk index lookup per entry (index.laterCommitsMany). Without a filter, an entry of a table no
 * later transaction changed comes as its row count alone: none of its rows can conflict, so it is not read (a
 * dry run of a 100k-row undo read and decoded every row for nothing).
 */
async function* rowsOf(ctx: ItemContext, tx: TxInfo, head: bigint, f?: RowFilter): AsyncGenerator<RowVisit | number> {
  const touched = touchedAfter(ctx.index, tx.commitSeq);
  for (const ref of ctx.index.entriesOf(tx.commitSeq)) {
    if (ref.kind !== 'rows') continue;
    const later = touched(ref.schema, ref.table);
    if (!f && !later) yield ref.rows;
    else yield* entryVisits(ctx.index, await loadRows(ctx, ref), tx, head, later, f);
  }
}

/** index.touchedAfter(…, afterSeq), asked once per table. */
function touchedAfter(index: RollbackIndex, afterSeq: bigint): (schema: string, table: string) => boolean {
  const known = new Map<string, boolean>();
  return (schema, table) => {
    const key = `${schema}\u0000${table}`;
    let t = known.get(key);
    if (t === undefined) {
      t = index.touchedAfter(schema, table, afterSeq);
      known.set(key, t);
    }
    return t;
  };
}

/**
 * The rows of one entry of `tx` (matching the filter) with their later changes: one bulk index lookup, none when
 * `touched` (the caller's touchedAfter answer for the entry's table) says no later transaction changed the table.
 */
function entryVisits(
  index: RollbackIndex,
  e: RowsEntry,
  tx: TxInfo,
  head: bigint,
  touched: boolean,
  f?: RowFilter,
): RowVisit[] {
  if (!touched) {
    const out: RowVisit[] = [];
    for (let i = 0; i < e.rows.length; i++)
      if (matches(e, i, f)) out.push({ e, i, seq: e.seq + BigInt(i), later: NONE });
    return out;
  }
  const rows: { i: number; keys: string[] }[] = [];
  for (let i = 0; i < e.rows.length; i++) if (matches(e, i, f)) rows.push({ i, keys: rowKeys(e, i) });
  const later = index.laterCommitsMany(
    e.schema,
    e.table,
    rows.flatMap((r) => r.keys),
    tx.commitSeq,
    head,
  );
  return rows.map((r) => {
    const set = new Set<bigint>();
    for (const k of r.keys) for (const c of later.get(k) ?? []) set.add(c);
    return { e, i: r.i, seq: e.seq + BigInt(r.i), later: set.size ? set : NONE };
  });
}

function tx(index: RollbackIndex, commitSeq: bigint): TxInfo {
  const t = index.txByCommitSeq(commitSeq);
  if (!t)
    throw new TidemarkError(`rollback index: transaction with commit seq ${commitSeq} is missing`, { code: 'INDEX' });
  return t;
}

/**
 * Refuses when a later table DDL statement names a table the transaction changed. User/role/grant and object
 * statements (views, routines, triggers, events) never refuse: the undo writes base-table rows only, each guarded
 * against the journal's image, and none of those objects holds rows or changes what a row write does on a replica
 * (triggers are guarded and the undo session sets @tidemark_apply; events are DISABLE ON SLAVE). A later trigger on
 * a changed table is no different from an earlier one (see README.md, "Objects").
 */
function checkDdl(index: RollbackIndex, root: TxInfo, head: bigint): void {
  for (const d of index.ddlBetween(root.firstSeq - 1n, head)) {
    if (crossable(d)) continue;
    const sql = d.sql.toLowerCase();
    const hit = root.tables.find((t) => sql.includes(t.slice(t.indexOf('.') + 1).toLowerCase()));
    if (hit) {
      throw new TidemarkError(
        `cannot undo ${describeTx(root)}: a later DDL statement changed ${hit}: "${redactSecrets(d.sql).slice(0, 200)}" ` +
          `(transaction ${d.txId}, committed ${formatTimeUs(d.commitTimeUs)}, seq ${d.seq}, journal LSN ${d.lsn})`,
        { code: 'REWIND_DDL', context: { seq: d.seq } },
      );
    }
  }
}

/** Refuses a transaction that is not applied on the server, part of the baseline, or changed by later DDL. */
function checkUndoable(index: RollbackIndex, root: TxInfo, head: bigint): void {
  if (root.commitSeq > head) {
    throw new TidemarkError(`${describeTx(root)} is not applied on this server yet (it holds seq ${head})`, {
      code: 'REWIND_POINT',
    });
  }
  if (root.phase !== 'stream') {
    throw new TidemarkError(`${describeTx(root)} is part of the baseline (initial copy): it cannot be undone`, {
      code: 'REWIND_POINT',
    });
  }
  checkDdl(index, root, head);
}

export async function planUndo(
  ctx: ItemContext,
  root: TxInfo,
  head: bigint,
  mode: UndoMode,
  filter?: RowFilter,
): Promise<UndoPlan> {
  const { index } = ctx;
  checkUndoable(index, root, head);
  const conflicts = new Map<bigint, SkippedRow>();
  let rows = 0;
  const dependents = new Set<bigint>();
  for await (const v of rowsOf(ctx, root, head, filter)) {
    if (typeof v === 'number') {
      rows += v;
      continue;
    }
    rows++;
    noteConflict(index, v, conflicts, dependents);
  }
  if (rows === 0) {
    throw new TidemarkError(`${describeTx(root)} has no rows matching the given --table/--key`, { code: 'USAGE' });
  }
  if (mode === 'nonconflict') {
    return { root, txs: [root], skipped: [...conflicts.values()], rows: rows - conflicts.size };
  }
  if (mode === 'nocascade') {
    if (conflicts.size > 0) throw conflictError(index, root, conflicts, dependents);
    return { root, txs: [root], skipped: [], rows };
  }
  // cascade: the transitive closure of dependents.
  const queue = [...dependents];
  while (queue.length > 0) {
    const d = tx(index, queue.pop()!);
    checkDdl(index, d, head);
    for await (const v of rowsOf(ctx, d, head)) {
      if (typeof v === 'number') continue;
      for (const c of v.later) {
        if (!dependents.has(c)) {
          dependents.add(c);
          queue.push(c);
        }
      }
    }
  }
  const txs = [...dependents].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0)).map((c) => tx(index, c));
  return { root, txs: [...txs, root], skipped: [], rows };
}

function noteConflict(
  index: RollbackIndex,
  v: RowVisit,
  conflicts: Map<bigint, SkippedRow>,
  dependents: Set<bigint>,
): void {
  if (v.later.size === 0) return;
  for (const c of v.later) dependents.add(c);
  conflicts.set(v.seq, {
    table: tableOf(v.e),
    key: rowKeys(v.e, v.i).join(' / '),
    seq: v.seq,
    by: [...v.later].map((c) => tx(index, c).txId),
  });
}

/**
 * Undo of the whole transaction with --mode nocascade in ONE pass over its entries (the command runs it when it
 * executes at once; a dry run or a script plans first with planUndo): each entry is read once, its conflicts
 * looked up, and its statements streamed to the server. A conflict stops the statements and, after every entry
 * is looked at, throws the same REWIND_CONFLICT as planUndo — inside the undo's transaction, which executePlan
 * then rolls back: nothing is changed, as before. What it saves: reading and decoding every entry a second time
 * (a third of the Node time of a 100k-row undo). The plan it returns holds the transaction's row count (index).
 */
export function undoAtOnce(
  ctx: ItemContext,
  root: TxInfo,
  head: bigint,
): { plan: UndoPlan; items: AsyncGenerator<PlanItem> } {
  checkUndoable(ctx.index, root, head);
  const plan: UndoPlan = {
    root,
    txs: [root],
    skipped: [],
    rows: root.rows.insert + root.rows.update + root.rows.delete,
  };
  const conflicts = new Map<bigint, SkippedRow>();
  const dependents = new Set<bigint>();
  // Tables no later transaction changed (most, usually) need no look at their rows: one lookup per table.
  const touched = touchedAfter(ctx.index, root.commitSeq);
  const visit = (e: RowsEntry): boolean => {
    if (touched(e.schema, e.table)) {
      for (const v of entryVisits(ctx.index, e, root, head, true)) noteConflict(ctx.index, v, conflicts, dependents);
    }
    return conflicts.size === 0;
  };
  async function* items(): AsyncGenerator<PlanItem> {
    yield* undoItems(ctx, plan, undefined, visit);
    if (conflicts.size > 0) throw conflictError(ctx.index, root, conflicts, dependents);
  }
  return { plan, items: items() };
}

function conflictError(
  index: RollbackIndex,
  root: TxInfo,
  conflicts: Map<bigint, SkippedRow>,
  dependents: Set<bigint>,
): TidemarkError {
  const list = [...dependents]
    .sort((a, b) => (a < b ? -1 : 1))
    .slice(0, 20)
    .map((c) => {
      const t = tx(index, c);
      return `${t.txId} (committed ${formatTimeUs(t.commitTimeUs)}, ${t.tables.join(', ')})`;
    });
  const more = dependents.size > 20 ? `, and ${dependents.size - 20} more` : '';
  return new TidemarkError(
    `cannot undo ${describeTx(root)} with --mode nocascade: ${conflicts.size} of its rows were changed later by ` +
      `${dependents.size} transaction(s): ${list.join('; ')}${more}. Nothing was changed. Use --mode cascade to ` +
      'undo those too, or --mode nonconflict to undo only the untouched rows',
    { code: 'REWIND_CONFLICT', context: { conflicts: conflicts.size, transactions: dependents.size } },
  );
}

/** Whether row i of entry e of plan transaction t is undone (the root's --table/--key filter, nonconflict skips). */
export function undoesRow(plan: UndoPlan, filter?: RowFilter): (t: TxInfo, e: RowsEntry, i: number) => boolean {
  const skip = new Set(plan.skipped.map((s) => s.seq));
  return (t, e, i) => (t !== plan.root || matches(e, i, filter)) && !skip.has(e.seq + BigInt(i));
}

/**
 * The statements of an undo plan: each transaction newest first, rows in reverse, skipping what the plan skips.
 * `visit` (undoAtOnce) sees every entry of the root first; false: no statements for it. With ctx.batch, runs of
 * rows leave as multi-row statements (batch.ts Batcher), the same ones executePlan or writeScript would merge.
 */
export async function* undoItems(
  ctx: ItemContext,
  plan: UndoPlan,
  filter?: RowFilter,
  visit?: (e: RowsEntry) => boolean,
): AsyncGenerator<PlanItem> {
  const skip = new Set(plan.skipped.map((s) => s.seq));
  const direction: Direction = 'undo';
  const batcher = ctx.batch ? new Batcher(ctx.batch) : null;
  const out: PlanItem[] = [];
  const emit = (item: PlanItem) => (batcher ? batcher.push(item, out) : out.push(item));
  for (const t of plan.txs) {
    const f = t === plan.root ? filter : undefined;
    const refs = ctx.index.entriesOf(t.commitSeq).filter((r) => r.kind === 'rows');
    let headerDone = false;
    for (let r = refs.length - 1; r >= 0; r--) {
      const { e, reload } = await loadRowsReloadable(ctx, refs[r]!);
      if (visit && t === plan.root && !visit(e)) continue;
      const keep: boolean[] = e.rows.map((_, i) => matches(e, i, f) && !skip.has(e.seq + BigInt(i)));
      const skipColumns = await ctx.skipColumns(e.schema, e.table);
      // Contiguous runs of kept rows, last run first (undo goes backwards).
      let end = keep.length;
      while (end > 0) {
        while (end > 0 && !keep[end - 1]) end--;
        let start = end;
        while (start > 0 && keep[start - 1]) start--;
        if (end > start) {
          if (!headerDone) {
            headerDone = true;
            const rows = t === plan.root ? plan.rows : t.rows.insert + t.rows.update + t.rows.delete;
            emit({ kind: 'tx', txId: t.txId, commitSeq: t.commitSeq, commitTimeUs: t.commitTimeUs, direction, rows });
          }
          const opts = { flavor: ctx.flavor, txId: t.txId, skipColumns, fromRow: start, toRow: end, reload };
          for (const stmt of statementsOf(ctx, e, direction, opts)) emit({ kind: 'stmt', stmt });
        }
        end = start;
      }
      if (out.length > 0) {
        yield* out;
        out.length = 0;
      }
    }
  }
  batcher?.end(out);
  yield* out;
}
