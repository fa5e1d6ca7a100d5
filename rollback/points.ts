/**
 * Where a rewind or forward goes: turns what the DBA asked for (a time, N transactions, N rows, "before this
 * transaction", the head) into a record seq, using only the rollback index. No I/O beyond index queries.
 *
 * A point is "keep every record with seq <= keep". Rewinding from `head` to `keep` undoes the records in
 * (keep, head], newest first; forwarding from `at` to `end` redoes (at, end], oldest first. Seqs are contiguous
 * across a source's entries (record/record.ts), so a transaction's firstSeq - 1 is the previous one's commit.
 */
import type { AppliedState } from '../apply/mysql/position-table.ts';
import { type ErrorContext, TidemarkError } from '../core/errors.ts';
import { formatPosition } from '../record/position.ts';
import type { RollbackIndex, TxInfo } from './index/index.ts';
import { formatTimeUs } from './time.ts';
import { redactSecrets } from '../mysql/accounts.ts';
import { crossable } from './objects.ts';

export type RewindSpec =
  | { readonly kind: 'time'; readonly timeUs: bigint }
  | { readonly kind: 'steps'; readonly steps: number; readonly unit: 'tx' | 'row' }
  | { readonly kind: 'before-tx'; readonly txId: string }
  /** Keep every record with seq <= keep (failback: what the new primary holds). */
  | { readonly kind: 'seq'; readonly keep: bigint };

export type ForwardSpec =
  | { readonly kind: 'time'; readonly timeUs: bigint }
  | { readonly kind: 'steps'; readonly steps: number }
  | { readonly kind: 'head' };

function usage(message: string, context: ErrorContext = {}): TidemarkError {
  return new TidemarkError(message, { code: 'REWIND_POINT', context });
}

const isEmpty = (t: TxInfo) => t.rows.insert + t.rows.update + t.rows.delete === 0 && t.ddl.length === 0;

export function describeTx(t: TxInfo): string {
  return `transaction ${t.txId} (seq ${t.firstSeq}..${t.commitSeq}, committed ${formatTimeUs(t.commitTimeUs)})`;
}

function containing(index: RollbackIndex, seq: bigint, what: string): TxInfo {
  const t = index.txContaining(seq);
  if (!t) {
    throw usage(
      `${what}: the rollback index holds no transaction with seq ${seq} (journal retention may have removed it)`,
      { seq },
    );
  }
  return t;
}

/** The seq to keep when rewinding from `head` as `spec` asks (>= head means there is nothing to undo). */
export function resolveRewind(index: RollbackIndex, head: bigint, spec: RewindSpec): bigint {
  if (spec.kind === 'time') {
    const t = index.lastTxAtOrBefore(spec.timeUs);
    if (!t) {
      const oldest = index.listTxs({ order: 'asc', limit: 1 })[0];
      throw usage(
        `no transaction in the journal committed at or before ${formatTimeUs(spec.timeUs)}` +
          (oldest ? `: the oldest it holds committed ${formatTimeUs(oldest.commitTimeUs)}` : ': it is empty'),
      );
    }
    return t.commitSeq < head ? t.commitSeq : head;
  }
  if (spec.kind === 'seq') {
    if (spec.keep >= head) return head;
    const t = containing(index, spec.keep, `seq ${spec.keep}`);
    if (t.commitSeq !== spec.keep) throw usage(`seq ${spec.keep} is inside ${describeTx(t)}, not at a commit`);
    return spec.keep;
  }
  if (spec.kind === 'before-tx') {
    const t = index.txById(spec.txId);
    if (!t) throw usage(`transaction ${spec.txId} is not in the rollback index (see tidemark log)`);
    if (t.firstSeq > head) {
      throw usage(`${describeTx(t)} is not applied on this target yet (it holds seq ${head})`);
    }
    return t.firstSeq - 1n;
  }
  if (spec.unit === 'tx') {
    let cur = head;
    for (let i = 0; i < spec.steps; i++) {
      let t = containing(index, cur, `--steps ${spec.steps}`);
      while (isEmpty(t)) t = containing(index, t.firstSeq - 1n, `--steps ${spec.steps}`);
      cur = t.firstSeq - 1n;
    }
    return cur;
  }
  let cur = head;
  let remaining = BigInt(spec.steps);
  while (remaining > 0n) {
    const t = containing(index, cur, `--steps ${spec.steps} --unit row`);
    const entries = index.entriesOf(t.commitSeq).filter((e) => e.kind === 'rows' && e.seq <= cur);
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i]!;
      const last = e.seq + BigInt(e.rows) - 1n;
      const available = (last < cur ? last : cur) - e.seq + 1n;
      if (remaining <= available) return e.seq + available - remaining - 1n;
      remaining -= available;
    }
    cur = t.firstSeq - 1n;
  }
  return cur;
}

/** The seq a forward from `at` ends at (> at), as `spec` asks. */
export function resolveForward(index: RollbackIndex, at: bigint, spec: ForwardSpec): bigint {
  const last = index.listTxs({ order: 'desc', limit: 1 })[0];
  if (!last) throw usage('the rollback index is empty: nothing to forward to');
  if (spec.kind === 'head') return last.commitSeq > at ? last.commitSeq : at;
  if (spec.kind === 'time') {
    const t = index.lastTxAtOrBefore(spec.timeUs);
    if (!t || t.commitSeq <= at) {
      throw usage(
        `the target already holds everything committed up to ${formatTimeUs(spec.timeUs)} (it is at seq ${at}); ` +
          'use tidemark rewind to go back',
      );
    }
    return t.commitSeq;
  }
  let cur = at;
  for (let i = 0; i < spec.steps; i++) {
    if (cur >= last.commitSeq) break;
    let t = containing(index, cur + 1n, `--steps ${spec.steps}`);
    while (isEmpty(t) && t.commitSeq < last.commitSeq) t = containing(index, t.commitSeq + 1n, `--steps ${spec.steps}`);
    cur = t.commitSeq;
  }
  return cur;
}

export interface WindowSummary {
  readonly txs: number;
  readonly rows: { insert: number; update: number; delete: number };
  readonly tables: readonly string[];
  readonly first: TxInfo | null;
  readonly last: TxInfo | null;
}

/**
 * Checks the window (lo, hi] can be undone/redone and summarises it: it must not contain table DDL (the row
 * images before and after it do not fit the same table; account and object statements do not count: objects.ts)
 * nor reach into a baseline (the initial copy has no undo).
 * Partial transactions at either end count whole in the summary's rows.
 */
export function checkWindow(index: RollbackIndex, lo: bigint, hi: bigint): WindowSummary {
  // User/role/grant statements (source.accounts) and object statements (views, routines, triggers, events:
  // objects.ts puts them back) change no rows: rows before and after them fit the same tables.
  const ddl = index.ddlBetween(lo, hi).find((d) => !crossable(d));
  if (ddl) {
    const t = index.txContaining(ddl.seq);
    const at = t ? `, source position ${formatPosition(t.position)}` : '';
    throw usage(
      `the window crosses a DDL statement: "${redactSecrets(ddl.sql).slice(0, 200)}" (transaction ${ddl.txId}, committed ` +
        `${formatTimeUs(ddl.commitTimeUs)}, seq ${ddl.seq}, journal LSN ${ddl.lsn}${at}); rewind and forward ` +
        'cannot cross table DDL: choose a point after it',
      { seq: ddl.seq },
    );
  }
  const rows = { insert: 0, update: 0, delete: 0 };
  const tables = new Set<string>();
  let txs = 0;
  let first: TxInfo | null = null;
  let last: TxInfo | null = null;
  const top = hi > lo ? index.txContaining(hi) : null;
  if (hi > lo && top) {
    for (const t of index.iterateTxs({ afterSeq: lo, uptoSeq: top.commitSeq, order: 'asc' })) {
      if (t.phase !== 'stream') {
        throw usage(
          `the window reaches into the baseline (initial copy) at ${describeTx(t)}: the journal holds no undo for ` +
            'it; rebuild from scratch with tidemark restore instead',
          { seq: t.commitSeq },
        );
      }
      if (isEmpty(t)) continue;
      txs++;
      first ??= t;
      last = t;
      rows.insert += t.rows.insert;
      rows.update += t.rows.update;
      rows.delete += t.rows.delete;
      for (const n of t.tables) tables.add(n);
    }
  }
  return { txs, rows, tables: [...tables].sort(), first, last };
}

/** What the position table must say after a rewind/forward leaves the target holding records <= keep. */
export function pointState(index: RollbackIndex, keep: bigint): { state: AppliedState; partial: TxInfo | null } {
  const t = containing(index, keep, 'the point');
  if (t.commitSeq === keep) {
    return {
      state: { seq: keep, lsn: t.commitLsn, position: t.position, commitTimeUs: t.commitTimeUs, phase: t.phase },
      partial: null,
    };
  }
  // Inside a transaction: the position is the last complete one's; journal_lsn re-reads the cut transaction.
  const prev = containing(index, t.firstSeq - 1n, 'the point');
  return {
    state: {
      seq: keep,
      lsn: prev.commitLsn,
      position: prev.position,
      commitTimeUs: prev.commitTimeUs,
      phase: prev.phase,
    },
    partial: t,
  };
}
