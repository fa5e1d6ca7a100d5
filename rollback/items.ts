/**
 * Turns a window of the journal into the stream of guarded statements that undoes it (newest first) or redoes it
 * (oldest first). Row images are read back from the journal one entry at a time through the index's frame
 * locations, so memory stays bounded by the largest entry whatever the window holds.
 */
import type { Entry, RowsEntry } from '../record/record.ts';
import { decodeEntry } from '../record/codec.ts';
import { readEntryAt, readEntryBytesAt, type SegmentFiles } from '../journal/index.ts';
import { type Direction, type GuardedStatement, type GuardOptions, guardedStatements, type PlanItem } from './guard.ts';
import type { RollbackDialect } from './dialect.ts';
import { type BatchOptions, batchItems } from './batch.ts';
import type { EntryRef, RollbackIndex, TxInfo } from './index/index.ts';
import type { Flavor } from '../mysql/sql.ts';
import { CorruptionError } from '../core/errors.ts';

export interface ItemContext {
  readonly index: RollbackIndex;
  readonly journalDir: string;
  readonly flavor: Flavor;
  /** Generated columns of a table on the server the statements run on (never written or compared). */
  readonly skipColumns: (schema: string, table: string) => Promise<ReadonlySet<string>>;
  /** Segment files kept open across reads (the command closes them at the end). */
  readonly files?: SegmentFiles;
  /** The server's statements (dialect.ts); absent: MySQL's (guard.ts with `flavor`). */
  readonly dialect?: RollbackDialect;
  /**
   * Merge runs of rows into multi-row statements while producing them (batch.ts Batcher), so that whole
   * statements, not rows, travel the async stream; executePlan and writeScript would merge them the same way.
   */
  readonly batch?: BatchOptions;
}

/** The guarded statements of rows [opts.fromRow, opts.toRow) of `e` in the server's dialect. */
export function statementsOf(
  ctx: Pick<ItemContext, 'dialect'>,
  e: RowsEntry,
  direction: Direction,
  opts: GuardOptions,
): Iterable<GuardedStatement> {
  return ctx.dialect ? ctx.dialect.guarded(e, direction, opts) : guardedStatements(e, direction, opts);
}

/** Reads the rows entry at a place the index gives (an EntryRef, or a RowVersionRef of one of its rows). */
export async function loadRows(
  ctx: Pick<ItemContext, 'journalDir' | 'files'>,
  ref: Pick<EntryRef, 'segment' | 'offset' | 'lsn'>,
): Promise<RowsEntry> {
  return rowsOnly(await readEntryAt(ctx.journalDir, ref.segment, ref.offset, ref.lsn, ctx.files), ref);
}

/**
 * loadRows, with `reload`: the same entry decoded again from its bytes (GuardOptions.reload), so that statements
 * in flight need not keep it.
 */
export async function loadRowsReloadable(
  ctx: Pick<ItemContext, 'journalDir' | 'files'>,
  ref: Pick<EntryRef, 'segment' | 'offset' | 'lsn'>,
): Promise<{ e: RowsEntry; reload: () => RowsEntry }> {
  const { entry, payload } = await readEntryBytesAt(ctx.journalDir, ref.segment, ref.offset, ref.lsn, ctx.files);
  return { e: rowsOnly(entry, ref), reload: () => decodeEntry(payload) as RowsEntry };
}

function rowsOnly(e: Entry, ref: Pick<EntryRef, 'lsn'>): RowsEntry {
  if (e.kind !== 'rows') {
    throw new CorruptionError(`journal LSN ${ref.lsn}: the rollback index says rows, the journal holds ${e.kind}`, {
      lsn: ref.lsn,
    });
  }
  return e;
}

/** Rows [from, to) of entry `ref` whose seq lies in (lo, hi]. */
function rowRange(ref: EntryRef, lo: bigint, hi: bigint): [number, number] {
  const from = lo + 1n - ref.seq;
  const to = hi - ref.seq + 1n;
  const f = from < 0n ? 0 : Number(from);
  const t = to > BigInt(ref.rows) ? ref.rows : Number(to);
  return [f, t];
}

function rowsIn(refs: readonly EntryRef[], lo: bigint, hi: bigint): number {
  let n = 0;
  for (const r of refs) {
    if (r.kind !== 'rows') continue;
    const [f, t] = rowRange(r, lo, hi);
    if (t > f) n += t - f;
  }
  return n;
}

/** The statements of one transaction's records in (lo, hi], in the direction's order. */
export async function* txItems(
  ctx: ItemContext,
  tx: TxInfo,
  direction: Direction,
  lo: bigint,
  hi: bigint,
): AsyncGenerator<PlanItem> {
  const refs = ctx.index.entriesOf(tx.commitSeq);
  const rows = rowsIn(refs, lo, hi);
  if (rows === 0) return;
  yield { kind: 'tx', txId: tx.txId, commitSeq: tx.commitSeq, commitTimeUs: tx.commitTimeUs, direction, rows };
  const ordered = direction === 'undo' ? [...refs].reverse() : refs;
  for (const ref of ordered) {
    if (ref.kind !== 'rows') continue;
    const [fromRow, toRow] = rowRange(ref, lo, hi);
    if (toRow <= fromRow) continue;
    const { e, reload } = await loadRowsReloadable(ctx, ref);
    const skipColumns = await ctx.skipColumns(e.schema, e.table);
    for (const stmt of statementsOf(ctx, e, direction, {
      flavor: ctx.flavor,
      txId: tx.txId,
      skipColumns,
      fromRow,
      toRow,
      reload,
    })) {
      yield { kind: 'stmt', stmt };
    }
  }
}

/** The items of `txs` (each transaction's items in turn), merged as ctx.batch says (see ItemContext.batch). */
function windowItems(ctx: ItemContext, txs: AsyncGenerator<PlanItem>): AsyncGenerator<PlanItem> {
  return ctx.batch ? batchItems(txs, ctx.batch) : txs;
}

/** Undo of every record in (lo, hi], newest transaction first. */
export function rewindItems(ctx: ItemContext, lo: bigint, hi: bigint): AsyncGenerator<PlanItem> {
  return windowItems(ctx, windowTxs(ctx, lo, hi, 'undo'));
}

/** Redo of every record in (lo, hi], oldest transaction first. */
export function forwardItems(ctx: ItemContext, lo: bigint, hi: bigint): AsyncGenerator<PlanItem> {
  return windowItems(ctx, windowTxs(ctx, lo, hi, 'redo'));
}

async function* windowTxs(ctx: ItemContext, lo: bigint, hi: bigint, direction: Direction): AsyncGenerator<PlanItem> {
  const top = ctx.index.txContaining(hi);
  if (!top || hi <= lo) return;
  const order = direction === 'undo' ? 'desc' : 'asc';
  for (const tx of ctx.index.iterateTxs({ afterSeq: lo, uptoSeq: top.commitSeq, order })) {
    yield* txItems(ctx, tx, direction, lo, hi);
  }
}
