/**
 * The serial applier's DDL protocol (applier.ts; README.md, "DDL"). DDL is not transactional, so it runs between
 * two recorded states: the DDL is recorded as pending (committed, in the position row), then run (ddl.ts), then
 * recorded as applied together with the state after it. After a crash in between, open() finds the same DDL
 * pending and it is re-run with `rerun`, where "already there" errors mean it had run. A DDL the server refused
 * did not run: its pending mark is cleared, so it never counts as "maybe ran" after a restart.
 */
import type { Logger } from 'pino';
import type { DdlEntry } from '../../record/record.ts';
import { isOutcomeUnknown } from '../../mysql/errors.ts';
import { executeDdl } from './ddl.ts';
import { heldError, wrapDbError } from './errors.ts';
import type { QueryFn } from './exec.ts';
import { type AppliedState, clearDdlPendingSql, setDdlPendingSql, upsertPositionSql } from './position-table.ts';

export class DdlProtocol {
  readonly #source: string;
  readonly #target: string;
  readonly #q: QueryFn;
  readonly #log: Logger;
  /** Seq of the DDL recorded as pending that may have run (read by open(); null once a state is stored). */
  pending: bigint | null = null;

  constructor(source: string, target: string, q: QueryFn, log: Logger) {
    this.#source = source;
    this.#target = target;
    this.#q = q;
    this.#log = log;
  }

  /**
   * Runs `e` once, outside any replica transaction: marks it pending over the stored state `storedSeq` (a target
   * held or moved since open() is refused: TARGET_HELD), runs it, and records `done`. Errors come wrapped
   * (errors.ts wrapDbError, naming the DDL's seq).
   */
  async run(e: DdlEntry, storedSeq: bigint | null, done: AppliedState): Promise<void> {
    const rerun = this.pending === e.seq;
    try {
      if (!rerun) {
        const res = await this.#q('ddl-pending', setDdlPendingSql(this.#source, e.seq, storedSeq));
        if ((res as { affectedRows?: number }).affectedRows !== 1) throw heldError(this.#target, null);
        this.pending = e.seq;
      }
      try {
        await executeDdl(this.#q, e, rerun, this.#log);
      } catch (err) {
        // The server refused the DDL: it did not run, so it must not count as "maybe ran" after a restart.
        if (!isOutcomeUnknown(err)) {
          await this.#q('ddl-pending', clearDdlPendingSql(this.#source, e.seq));
          this.pending = null;
        }
        throw err;
      }
      await this.#q('ddl-done', upsertPositionSql(this.#source, done));
    } catch (err) {
      throw wrapDbError(err, `DDL at seq ${e.seq}`, { seq: e.seq, schema: e.schema });
    }
  }
}
