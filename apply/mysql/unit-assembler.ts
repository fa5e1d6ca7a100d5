/**
 * Parallel apply's units (parallel-run.ts), formed from the journal in order: whole source transactions collected
 * until the caller closes the unit. Pure: no I/O, no clock (the caller passes `now`). A DDL entry, or a transaction
 * that grows past `bigTxRows`, is not collected: push() says so and the caller runs the open transaction (with that
 * entry) through the serial applier.
 */
import type { AppliedState, JournalItem } from '../../engine/target.ts';
import type { CommitEntry } from '../../record/record.ts';

export interface UnitDraft {
  readonly items: JournalItem[];
  readonly target: AppliedState;
  readonly txs: number;
  readonly rows: number;
}

export class UnitAssembler {
  readonly #bigTxRows: number;
  #items: JournalItem[] = [];
  #txs = 0;
  #rows = 0;
  #started = 0;
  #target: AppliedState | null = null;
  #tx: JournalItem[] = [];
  #txRows = 0;

  constructor(bigTxRows: number) {
    this.#bigTxRows = bigTxRows;
  }

  /** Whole transactions collected (the unit can be closed). */
  get txs(): number {
    return this.#txs;
  }

  get rows(): number {
    return this.#rows;
  }

  /** When the first transaction of the unit was collected (the `now` of that push). */
  get started(): number {
    return this.#started;
  }

  /** A source transaction is open (its commit not seen yet): the unit cannot close now. */
  get inTransaction(): boolean {
    return this.#tx.length > 0;
  }

  /** 'serial': `item` is DDL or makes its transaction too big; take the open transaction with takeOpen(). */
  push(item: JournalItem, now: number): 'collected' | 'serial' {
    const e = item.entry;
    if (e.kind === 'ddl' || (e.kind === 'rows' && this.#txRows + e.rows.length > this.#bigTxRows)) return 'serial';
    this.#tx.push(item);
    if (e.kind === 'rows') {
      this.#txRows += e.rows.length;
      return 'collected';
    }
    if (this.#txs === 0) this.#started = now;
    for (const it of this.#tx) this.#items.push(it);
    this.#txs++;
    this.#rows += this.#txRows;
    const c = e as CommitEntry;
    this.#target = { seq: c.seq, lsn: item.lsn, position: c.position, commitTimeUs: c.commitTimeUs, phase: c.phase };
    this.#tx = [];
    this.#txRows = 0;
    return 'collected';
  }

  /** The whole transactions collected so far as a unit (null: none); starts a new one. */
  takeUnit(): UnitDraft | null {
    const target = this.#target;
    const out = this.#txs > 0 && target ? { items: this.#items, target, txs: this.#txs, rows: this.#rows } : null;
    this.#items = [];
    this.#txs = 0;
    this.#rows = 0;
    this.#target = null;
    return out;
  }

  /** The entries of the open transaction (for the serial applier); forgets them. */
  takeOpen(): JournalItem[] {
    const tx = this.#tx;
    this.#tx = [];
    this.#txRows = 0;
    return tx;
  }
}
