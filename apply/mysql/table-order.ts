/**
 * Holds the rows entries of one replica group per table, so that each table's rows reach the batcher together
 * (pure; no I/O). An OLTP group of a few hundred source transactions, each writing a few rows into several
 * tables, otherwise becomes thousands of small statements, because only consecutive entries of one table and
 * operation share a statement.
 *
 * Why this order is safe inside one replica transaction (the group commits as a whole, or not at all):
 *   - each table's entries keep their source order (unique keys, keys moved by updates, rows written twice);
 *   - apply runs with foreign_key_checks = 0 and replica triggers inert (README.md), so one table's statements
 *     cannot see another's — except through cascading foreign keys, whose tables the applier never holds: it
 *     releases everything held before such an entry and applies it in place (a barrier), and so for system-
 *     versioned tables (the replica writes their history at the statement's time).
 * Bounded: `hold` says when the held entries reach maxRows rows or maxBytes of journal payload.
 */
import type { RowsEntry } from '../../record/record.ts';
import type { SystemPeriod } from '../../record/versioning.ts';
import { ByTable } from '../../core/collections.ts';
import type { FkIndex } from './fk.ts';

/** Default bounds of one holder: rows, and bytes of journal payload. */
export const HOLD_ROWS = 2_000;
export const HOLD_BYTES = 1 << 20;
/** Entries of this many rows or more are not held: a bulk statement's rows gain nothing from waiting. */
export const HOLD_ENTRY_ROWS = 32;

export interface HeldEntry {
  readonly entry: RowsEntry;
  readonly skip: ReadonlySet<string>;
  readonly period: SystemPeriod | null;
}

/**
 * Whether `h` may be held, or must go out in journal order after everything held before it (a barrier): a table
 * of a cascading foreign key, a system-versioned table, or an entry that makes a statement by itself.
 */
export function mayHold(h: HeldEntry, fks: FkIndex): boolean {
  const e = h.entry;
  return e.rows.length < HOLD_ENTRY_ROWS && h.period === null && !fks.involves(e.schema, e.table);
}

export class TableOrder {
  /** Per table (schema, then table), in the order tables were first held. */
  readonly #lists: HeldEntry[][] = [];
  /** Each table's list (bounded: past a bound a table starts a new list, after its old one: its order stands). */
  readonly #index = new ByTable<HeldEntry[]>(1_000, 10_000);
  #rows = 0;
  #bytes = 0;
  readonly #maxRows: number;
  readonly #maxBytes: number;

  constructor(maxRows = HOLD_ROWS, maxBytes = HOLD_BYTES) {
    this.#maxRows = maxRows;
    this.#maxBytes = maxBytes;
  }

  get empty(): boolean {
    return this.#lists.length === 0;
  }

  /** Holds `h` (`bytes`: its journal payload size, a measure of its memory); true when the holder is full. */
  hold(h: HeldEntry, bytes: number): boolean {
    const { schema, table } = h.entry;
    let list = this.#index.get(schema, table);
    if (list === undefined) {
      list = [];
      this.#index.set(schema, table, list);
      this.#lists.push(list);
    }
    list.push(h);
    this.#rows += h.entry.rows.length;
    this.#bytes += bytes;
    return this.#rows >= this.#maxRows || this.#bytes >= this.#maxBytes;
  }

  /** Every held entry, table after table (each table's in source order); the holder is empty afterwards. */
  *release(): Generator<HeldEntry> {
    const lists = this.#lists.splice(0);
    this.clear();
    for (const list of lists) yield* list;
  }

  clear(): void {
    this.#lists.length = 0;
    this.#index.clear();
    this.#rows = 0;
    this.#bytes = 0;
  }
}
