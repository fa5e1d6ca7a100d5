/**
 * Rewind and undo cannot take back what a foreign-key cascade did: InnoDB does not write the child rows an
 * ON DELETE/UPDATE CASCADE or SET NULL removes or changes to the binlog, so the journal never had them. Undoing
 * the parent's change alone would bring the parent back without its children (or leave children pointing at a
 * key that moved back) — silently different from the source. So a plan that would undo such a change is refused
 * before anything runs, naming the constraint, with the way out (restore, or a backup).
 *
 * A change cascades when the server the plan runs on (target or source) has a cascading constraint whose parent is
 * the row's table and: a delete of a row whose referenced columns are all non-NULL (NULL references nothing); an
 * update that changed a referenced column. Whether child rows really existed cannot be known from the journal.
 */
import { describeFk, type FkIndex, loadFkIndex } from '../apply/mysql/fk.ts';
import { describeKey } from '../mysql/sql.ts';
import { type ErrorContext, TidemarkError } from '../core/errors.ts';
import type { RowsEntry, Value } from '../record/record.ts';
import type { TxInfo } from './index/index.ts';
import { type ItemContext, loadRows } from './items.ts';
import { describeTx } from './points.ts';

export type { FkIndex } from '../apply/mysql/fk.ts';

/** The server's cascading foreign keys, read through `query` (e.g. the rewind session's connection). */
export function serverFks(query: (sql: string) => Promise<unknown>): Promise<FkIndex> {
  return loadFkIndex(async (sql) => (await query(sql)) as Record<string, unknown>[]);
}

function same(a: Value | undefined, b: Value | undefined): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(b);
  return a === b || (a == null && b == null);
}

/** Which of rows [from, to) of `e` cascaded, with the constraint it cascaded through (null: none). */
export function cascadingRow(
  fks: FkIndex,
  e: RowsEntry,
  from = 0,
  to = e.rows.length,
): { row: number; fk: ReturnType<FkIndex['cascades']>[number] } | null {
  // The source ran it with foreign key checks off: nothing cascaded.
  if (e.op === 'insert' || e.fkChecksOff) return null;
  const list = fks.cascades(e.schema, e.table, e.op);
  if (list.length === 0) return null;
  const colIdx = (name: string) => e.columns.findIndex((c) => c.name.toLowerCase() === name.toLowerCase());
  for (let i = from; i < to; i++) {
    const r = e.rows[i]!;
    for (const fk of list) {
      const idx = fk.parentColumns.map(colIdx);
      // A column the entry does not carry: assume the worst.
      if (idx.some((j) => j < 0)) return { row: i, fk };
      const hit =
        e.op === 'delete'
          ? idx.every((j) => r.before?.[j] != null)
          : idx.some((j) => !same(r.before?.[j], r.after?.[j]));
      if (hit) return { row: i, fk };
    }
  }
  return null;
}

function keyOf(e: RowsEntry, row: number): string {
  const img = (e.rows[row]?.before ?? e.rows[row]?.after)!;
  const idx = e.pk.length ? e.pk.map((n) => e.columns.findIndex((c) => c.name === n)) : e.columns.map((_, j) => j);
  return describeKey(img, e.columns, idx);
}

type Hit = NonNullable<ReturnType<typeof cascadingRow>>;

/**
 * A change that cascaded, for both refusals: "its delete of s.t (key, seq N) cascades through foreign key … on
 * <server>", and the error context naming the constraint.
 */
function cascaded(tx: TxInfo, e: RowsEntry, hit: Hit, server: string): { text: string; context: ErrorContext } {
  const op = e.op === 'delete' ? 'delete' : 'update';
  const seq = e.seq + BigInt(hit.row);
  return {
    text:
      `its ${op} of ${e.schema}.${e.table} (${keyOf(e, hit.row)}, seq ${seq}) cascades through foreign key ` +
      `${describeFk(hit.fk, op)} on ${server}`,
    context: { constraint: `${hit.fk.schema}.${hit.fk.childTable}.${hit.fk.name}`, seq, txId: tx.txId },
  };
}

/** The refusal: what cascaded, through which constraint, and what the operator can do instead. */
export function cascadeError(
  verb: 'undo' | 'rewind',
  tx: TxInfo,
  e: RowsEntry,
  hit: Hit,
  server: string,
): TidemarkError {
  const c = cascaded(tx, e, hit, server);
  const start = verb === 'undo' ? `cannot undo ${describeTx(tx)}` : `cannot rewind across ${describeTx(tx)}`;
  return new TidemarkError(
    `${start}: ${c.text}. ` +
      'The child rows a cascade deletes or changes are not written to the binlog, so the journal does not have ' +
      'them and the parent cannot be taken back without them. Nothing was changed. To get the rows back, restore ' +
      `the tables as of before the transaction into a fresh server (tidemark restore --to-time <a time before ` +
      `${tx.txId}> --into mysql://…) or from a backup${verb === 'rewind' ? ', or rewind to a point after this transaction' : ''}`,
    { code: 'REWIND_FK_CASCADE', context: c.context },
  );
}

interface WindowHit {
  readonly tx: TxInfo;
  readonly e: RowsEntry;
  readonly hit: Hit;
}

/** The first record in (lo, hi] (newest or oldest first) that cascaded on the server, or null. */
async function firstInWindow(
  ctx: ItemContext,
  fks: FkIndex,
  lo: bigint,
  hi: bigint,
  order: 'asc' | 'desc',
): Promise<WindowHit | null> {
  const top = ctx.index.txContaining(hi);
  if (fks.empty || !top || hi <= lo) return null;
  for (const tx of ctx.index.iterateTxs({ afterSeq: lo, uptoSeq: top.commitSeq, order })) {
    for (const ref of ctx.index.entriesOf(tx.commitSeq)) {
      if (ref.kind !== 'rows' || ref.op === 'insert' || ref.op === 'ddl') continue;
      if (fks.cascades(ref.schema, ref.table, ref.op).length === 0) continue;
      const from = lo + 1n - ref.seq;
      const to = hi - ref.seq + 1n;
      const f = from < 0n ? 0 : Number(from);
      const t = to > BigInt(ref.rows) ? ref.rows : Number(to);
      if (t <= f) continue;
      const e = await loadRows(ctx, ref);
      const hit = cascadingRow(fks, e, f, t);
      if (hit) return { tx, e, hit };
    }
  }
  return null;
}

/** Refuses a rewind whose window (lo, hi] holds a change that cascaded on the server. */
export async function checkWindowCascades(
  ctx: ItemContext,
  fks: FkIndex,
  lo: bigint,
  hi: bigint,
  server: string,
): Promise<void> {
  const w = await firstInWindow(ctx, fks, lo, hi, 'desc');
  if (w) throw cascadeError('rewind', w.tx, w.e, w.hit, server);
}

/**
 * forward redoes with foreign_key_checks = 0 (guarded statements, like undo), so a change that cascaded on the
 * source would not cascade on the target. A window (lo, hi] without one is redone whole (`end` = hi). With one:
 * `forward --to-head` stops at the end of the transaction before it (`end`), releases the hold, and apply, resuming
 * there, replays it with its cascade (`note` says so); any other forward is refused, naming the constraint.
 */
export async function forwardLimit(
  ctx: ItemContext,
  fks: FkIndex,
  lo: bigint,
  hi: bigint,
  toHead: boolean,
  server: string,
): Promise<{ end: bigint; note: string | null }> {
  const w = await firstInWindow(ctx, fks, lo, hi, 'asc');
  if (!w) return { end: hi, note: null };
  const end = w.tx.firstSeq - 1n;
  const c = cascaded(w.tx, w.e, w.hit, server);
  const what = `${c.text}, and forward (like undo, with foreign_key_checks = 0) does not replay cascades`;
  if (toHead && end >= lo) {
    return {
      end,
      note: `forward stops before ${describeTx(w.tx)}: ${what}. apply resumes from there and replays it and the rest with their cascades`,
    };
  }
  throw new TidemarkError(
    `cannot forward across ${describeTx(w.tx)}: ${what}. Nothing was changed. Use tidemark forward --to-head (it ` +
      'stops before that transaction and lets apply replay it with its cascade), or forward to a point before it',
    { code: 'REWIND_FK_CASCADE', context: c.context },
  );
}

/**
 * Refuses an undo plan that would take back a change that cascaded on the server. `keep(tx, e, i)` says whether
 * row i of entry e is undone (the plan's table/key filter and nonconflict skips).
 */
export async function checkTxCascades(
  ctx: ItemContext,
  fks: FkIndex,
  txs: readonly TxInfo[],
  keep: (tx: TxInfo, e: RowsEntry, row: number) => boolean,
  server: string,
): Promise<void> {
  if (fks.empty) return;
  for (const tx of txs) {
    for (const ref of ctx.index.entriesOf(tx.commitSeq)) {
      if (ref.kind !== 'rows' || ref.op === 'insert' || ref.op === 'ddl') continue;
      if (fks.cascades(ref.schema, ref.table, ref.op).length === 0) continue;
      const e = await loadRows(ctx, ref);
      for (let i = 0; i < e.rows.length; i++) {
        if (!keep(tx, e, i)) continue;
        const hit = cascadingRow(fks, e, i, i + 1);
        if (hit) throw cascadeError('undo', tx, e, hit, server);
      }
    }
  }
}
