/**
 * MariaDB SEQUENCE state in the journal. A sequence is a one-row table; every change of its state (NEXTVAL
 * running past the cached values, SETVAL, the baseline's copy) is logged as an insert of the whole new row, and
 * an INSERT of that row into the sequence is how a replica takes the state over (MariaDB allows a single-table
 * INSERT into a sequence: it replaces the state, also backwards, without DDL). A sequence has no primary key and
 * cannot be UPDATEd or DELETEd; rewind and undo leave it at its newest state (a sequence that went back would
 * hand out its values a second time). Recognised by its fixed columns. Pure.
 */
import type { RowsEntry } from './record.ts';

/** The columns of every MariaDB sequence, in order, with their base types. */
export const SEQUENCE_COLUMNS: readonly (readonly [string, string])[] = [
  ['next_not_cached_value', 'bigint'],
  ['minimum_value', 'bigint'],
  ['maximum_value', 'bigint'],
  ['start_value', 'bigint'],
  ['increment', 'bigint'],
  ['cache_size', 'bigint'],
  ['cycle_option', 'tinyint'],
  ['cycle_count', 'bigint'],
];

/** Are these columns a sequence's (names and base types, in order)? */
export function isSequenceShape(columns: RowsEntry['columns']): boolean {
  return (
    columns.length === SEQUENCE_COLUMNS.length &&
    columns.every((c, i) => c.name === SEQUENCE_COLUMNS[i]![0] && c.type === SEQUENCE_COLUMNS[i]![1])
  );
}

/** A rows entry that sets a sequence's state: inserts without a key into a table shaped like a sequence. */
export function isSequenceState(e: Pick<RowsEntry, 'op' | 'pk' | 'columns'>): boolean {
  return e.op === 'insert' && e.pk.length === 0 && isSequenceShape(e.columns);
}
