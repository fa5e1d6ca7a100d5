/**
 * The engine seam inside rollback/: what rewind, forward and undo need of the server they run on, so that the
 * commands (cli/commands/rewind.ts, undo.ts) and the planning (items.ts, undo.ts, points.ts, the index) are the
 * same for every engine. Two implementations: MySQL/MariaDB (mysql-db.ts: guard.ts, execute.ts, script.ts for the
 * `mariadb` client) and PostgreSQL (pg-db.ts: pg-guard.ts, pg-execute.ts, pg-script.ts for `psql`).
 *
 *   guarded statements   RollbackDialect.guarded (pure): the undo/redo SQL of a rows entry, each row guarded
 *   the position row     read it, hold it (apply pauses), the lock-and-check first statement, the point last
 *   running a plan       one transaction, every count checked; or the reviewable script for the engine's client
 *   foreign keys         the cascading constraints that make a change impossible to take back (MySQL only:
 *                        PostgreSQL's logical decoding journals what a cascade changed)
 *   objects              views, routines, triggers, events of the window (MySQL only: a PostgreSQL journal has no
 *                        object DDL)
 */
import type { Logger } from 'pino';
import type { AppliedState, StoredPosition } from '../engine/target.ts';
import type { RowsEntry } from '../record/record.ts';
import type { FkIndex } from './cascade.ts';
import type { Direction, GuardedStatement, GuardOptions, PlanItem } from './guard.ts';
import type { ObjectWork } from './objects-run.ts';
import type { PlanOutput, PlanResult } from './run-plan.ts';

/** The pure half: statements in the engine's SQL. */
export interface RollbackDialect {
  readonly engine: string;
  /** Guarded statements for rows [fromRow, toRow) of `e` (opts.flavor is MySQL's and ignored elsewhere). */
  guarded(e: RowsEntry, dir: Direction, opts: GuardOptions): Iterable<GuardedStatement>;
}

/** A session on the server a rewind, forward or undo runs on (target or source). */
export interface RewindDb {
  readonly dialect: RollbackDialect;
  /** Generated columns of a table on the server (never written nor compared). */
  skipColumns(schema: string, table: string): Promise<ReadonlySet<string>>;
  /** The target's position row (created like the applier would). */
  readPosition(source: string): Promise<StoredPosition>;
  /** Holds the target and returns what it then stores; `restore()` puts the previous hold back. */
  holdTarget(source: string, hold: string): Promise<{ stored: StoredPosition; restore: () => Promise<void> }>;
  /** Sets or clears only the hold. */
  setHold(source: string, hold: string | null): Promise<void>;
  /** First statement of a plan on a target: lock the row while it still stores `seq`, leave `hold` (1 row). */
  lockSql(source: string, seq: bigint | null, hold: string): string;
  /** Last statement of a plan on a target: the point it is left at (1 row). */
  pointSql(source: string, st: AppliedState, hold: string | null): string;
  /** The server's cascading foreign keys (rollback/cascade.ts); none where the journal holds what cascades did. */
  fks(): Promise<FkIndex>;
  /** Runs the plan in one transaction, or writes it as a script for the engine's client (o.sqlFile). */
  runPlan(items: AsyncIterable<PlanItem>, o: PlanOutput): Promise<PlanResult>;
  /** Runs the object statements of `work` around `rows` (objects-run.ts withObjects). */
  withObjects<T>(work: ObjectWork, log: Logger, rows: () => Promise<T>): Promise<T>;
  /** How a DBA runs a script of this engine ("mariadb -h HOST … < FILE"). */
  scriptHint(comments: boolean): string;
  close(): Promise<void>;
}
