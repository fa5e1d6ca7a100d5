/**
 * Copy windows: tables capture copied while streaming (moved into the include set, or created LIKE a table
 * outside it), each read from a consistent snapshot at binlog position `at`. The copy already holds what the
 * table's binlog events before `at` did, so until the stream passes `at` those events are not captured again: the
 * table counts as outside the include set for every event group that starts before `at`. Every commit entry
 * carries the open windows (CommitEntry.copied), so a restart from any commit continues them. Pure.
 */
import { type BinlogPosition, compareBinlog } from '../../record/position.ts';
import type { CopiedTable } from '../../record/record.ts';

export class CopyWindows {
  #open: CopiedTable[];

  constructor(initial: readonly CopiedTable[] = []) {
    this.#open = [...initial];
  }

  /** Is this table inside an open window at `here` (a position inside, or at the end of, the current group)? */
  covers(schema: string, table: string, here: BinlogPosition): boolean {
    return this.#open.some((c) => c.schema === schema && c.table === table && compareBinlog(here, c.at) <= 0);
  }

  /** A new copy; an older window of the same table is replaced (the newer copy is at or after it). */
  add(c: CopiedTable): void {
    this.#open = [...this.#open.filter((o) => o.schema !== c.schema || o.table !== c.table), c];
  }

  /** Closes the windows a group ending at `end` has passed; returns what stays open (for the commit entry). */
  after(end: BinlogPosition): readonly CopiedTable[] {
    this.#open = this.#open.filter((c) => compareBinlog(end, c.at) < 0);
    return this.#open;
  }

  list(): readonly CopiedTable[] {
    return this.#open;
  }
}
