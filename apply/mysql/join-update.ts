/**
 * Key-unchanged UPDATEs of one table as ONE multi-row statement (MariaDB; pure, no I/O): the rows' new values go
 * into a derived table that drives a join on the primary key (mysql/batch-sql.ts, the form rewind's guarded
 * batches use, here with no held columns: apply matches a row by its key alone, as its per-row UPDATE does).
 *
 *   UPDATE (WITH tidemark_v(k0,n0,n1) AS (VALUES (NULL,NULL,NULL),(5,'x',2.50),(6,'y',3.00)) SELECT * FROM tidemark_v)
 *     tidemark_v STRAIGHT_JOIN `s`.`t` ON `s`.`t`.`id` = tidemark_v.k0 SET `s`.`t`.`a` = tidemark_v.n0, …
 *
 * Why: a 100k-row UPDATE transaction as 100k single-row statements costs the server one parse and one plan per
 * row; as ~100 joined statements it costs ~100 (apply/mysql/README.md, "Speed", has the figures).
 *
 * Exactly once is unchanged: a statement's keys are distinct (the batcher flushes before a repeated key), a joined
 * UPDATE changes a table row at most once, and with FOUND_ROWS it reports the rows it *matched* — so a count equal
 * to the statement's rows means every key was found, and a short count is a divergence (exec.ts then rolls the
 * statement back to its savepoint and names a missing key).
 *
 * A statement that would hold one row goes out as that row's per-row UPDATE (the batcher keeps it), so the small
 * transactions of an OLTP load apply exactly as before. A row stays a per-row UPDATE when it cannot join: MySQL (no such derived-table
 * form there), no primary key, a key that is not integer/binary or that the update moves, a no-op update (its
 * per-row form SETs every column), a value whose kind does not fit its column's class (ENUM index 0 among them,
 * written without strict mode), a table with a column the batch form does not know (spatial), and
 * system-versioned tables (the batcher never asks: versioned.ts).
 */
import { type BatchRow, type BatchShape, batchRow, batchShape } from '../../mysql/batch-sql.ts';
import { type Flavor, describeKey, qualified, sameValues, updateColumns } from '../../mysql/sql.ts';
import type { Column, Value } from '../../record/record.ts';

/** The joined form of one update row, or null when it must stay per-row. */
export type JoinRow = (before: readonly Value[], after: readonly Value[]) => BatchRow | null;

export interface JoinSpec {
  readonly schema: string;
  readonly table: string;
  readonly cols: readonly Column[];
  /** Key column indexes (null: no primary key). */
  readonly pkIdx: readonly number[] | null;
  /** Columns an update may write (all but generated ones). */
  readonly writeIdx: readonly number[];
  readonly flavor: Flavor;
}

/** For the update rows of one rows entry: their joined form, or null when no row of it can join. */
export function joinRows(spec: JoinSpec): JoinRow | null {
  const { cols, pkIdx, writeIdx } = spec;
  if (spec.flavor !== 'mariadb' || !pkIdx || pkIdx.length === 0) return null;
  const schemaTable = qualified(spec.schema, spec.table);
  const head = `update of ${schemaTable}`;
  const describe = (row: readonly Value[]): string => describeKey(row, cols, pkIdx);
  // One shape per set of written columns (the columns that differ, plus temporal ones: updateColumns).
  const shapes = new Map<string, BatchShape | null>();
  return (before, after) => {
    if (sameValues(writeIdx, before, after)) return null;
    const setIdx = updateColumns(cols, writeIdx, before, after);
    const id = setIdx.join(',');
    let shape = shapes.get(id);
    if (shape === undefined) {
      shape = batchShape({
        kind: 'update',
        schemaTable,
        tableName: spec.table,
        head,
        describe,
        cols,
        keyIdx: pkIdx,
        cmpIdx: [],
        setIdx,
      });
      shapes.set(id, shape);
    }
    return shape && batchRow(shape, before, after, '');
  };
}
