/**
 * One apply session of parallel apply (PARALLEL.md): runs the units the coordinator (parallel-applier.ts) hands it,
 * one at a time — START TRANSACTION, the rows through the same StatementBatcher + Pipeline + row-count checks as
 * the serial applier, then, when the coordinator says it is the unit's turn, the ordered position update and
 * COMMIT in one query. No claim at transaction start: the hold and the predecessor are checked by the commit
 * statement itself (position-table.ts orderedPositionSql), so workers never serialize on the position row
 * before they commit.
 */
import type mysql from 'mysql2/promise';
import { TidemarkError } from '../../core/errors.ts';
import type { AppliedState } from '../../engine/target.ts';
import type { RowsEntry } from '../../record/record.ts';
import { openSession } from '../../mysql/session.ts';
import type { Flavor } from '../../mysql/sql.ts';
import type { ApplierTarget, JournalItem } from './applier.ts';
import type { ApplierFaults } from './exec.ts';
import { type StatementBatch, StatementBatcher } from './batcher.ts';
import { type QueryFn, type QueryKind, sendQuery } from './exec.ts';
import { type FkIndex, withFkChecks } from './fk.ts';
import { Pipeline } from './pipeline.ts';
import { orderedPositionSql, upsertPositionSql } from './position-table.ts';
import type { TableMeta } from './table-meta.ts';

/** One or more consecutive whole source transactions, applied and committed together. */
export interface Unit {
  /** Position in source order within the run, from 0. */
  readonly index: number;
  /** Rows and commit entries (no DDL: DDL runs through the serial applier). */
  readonly items: readonly JournalItem[];
  /** What the position row holds once the unit committed (its last commit entry). */
  readonly target: AppliedState;
  readonly firstSeq: bigint;
  readonly txs: number;
  readonly rows: number;
}

/** What all workers share, read through the coordinator's metadata session. */
export interface SharedMeta {
  tableMeta(schema: string, table: string): Promise<TableMeta>;
  /** The replica's cascading foreign keys (loaded once per schema version). */
  fks(): Promise<FkIndex>;
  /** Loaded already (synchronous, for the batcher's delete ordering); null before the first fks(). */
  loadedFks(): FkIndex | null;
}

export interface UnitWorkerOptions {
  readonly target: ApplierTarget;
  readonly source: string;
  readonly flavor: Flavor;
  readonly shared: SharedMeta;
  readonly faults?: ApplierFaults | undefined;
  readonly maxStatementBytes?: number | undefined;
  readonly maxStatementRows?: number | undefined;
}

/** innodb_lock_wait_timeout of worker sessions: the backstop of a lock the writesets did not foresee. */
export const WORKER_LOCK_WAIT_S = 5;

export class UnitWorker {
  readonly #o: UnitWorkerOptions;
  #conn: mysql.Connection | null = null;
  readonly #batcher: StatementBatcher;
  readonly #pipe: Pipeline;
  #queries = 0;
  #open = false;
  #busySince: number | null = null;

  constructor(o: UnitWorkerOptions) {
    this.#o = o;
    this.#batcher = new StatementBatcher({
      noPrimaryKey: o.target.no_primary_key,
      flavor: o.flavor,
      orderedDeletes: (schema, table) => o.shared.loadedFks()?.deleteReachesItself(schema, table) ?? false,
      ...(o.maxStatementBytes !== undefined ? { maxBytes: o.maxStatementBytes } : {}),
      ...(o.maxStatementRows !== undefined ? { maxRows: o.maxStatementRows } : {}),
    });
    this.#pipe = new Pipeline(this.#qf, () => o.flavor);
  }

  /** Server connection id (diagnostics and tests). */
  get threadId(): number | null {
    return this.#conn?.threadId ?? null;
  }

  /**
   * Opens the session: READ COMMITTED where the replica's binlog allows it (it drops most gap locks between
   * independent transactions; with binlog_format STATEMENT InnoDB refuses writes under it) and a short lock wait.
   */
  async open(): Promise<void> {
    const conn = await openSession(this.#o.target, { apply: true, multipleStatements: true });
    this.#conn = conn;
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@log_bin AS log_bin, @@binlog_format AS fmt');
    const rc = Number(rows[0]?.['log_bin']) === 0 || String(rows[0]?.['fmt']).toUpperCase() === 'ROW';
    await conn.query(
      (rc ? 'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED;\n' : '') +
        `SET SESSION innodb_lock_wait_timeout = ${WORKER_LOCK_WAIT_S}`,
    );
  }

  /** Starts the unit's transaction and sends its rows; every row count is checked when this returns. */
  async execute(u: Unit): Promise<void> {
    this.#reset();
    this.#open = true;
    this.#pipe.prepend('START TRANSACTION'); // sent with the first rows
    for (const it of u.items) {
      const e = it.entry;
      if (e.kind === 'rows') await this.#rows(e);
    }
    const rest = this.#batcher.flush();
    if (rest) await this.#pipe.queue(this.#tag(rest));
    await this.#pipe.flush();
  }

  /**
   * Records the unit's position (orderedPositionSql: only right after `prevSeq`, what the unit before it stored).
   * The row lock it takes is what orders the commits: the next unit's update, sent once this returned, waits for
   * this unit's COMMIT inside InnoDB. `commit`: COMMIT in the same query (when no later unit is waiting to record
   * its position, one round trip less). The row exists from open() on (ensureRowSql); should someone delete it
   * meanwhile, that COMMIT has already run when the 0-row match is seen: the re-open then finds no position and
   * the replica's rows make the re-apply stop as diverged — loud, never silent.
   */
  async recordPosition(u: Unit, prevSeq: bigint | null, commit = false): Promise<void> {
    const sql = orderedPositionSql(this.#o.source, prevSeq, u.target);
    const res = await this.#q('commit', commit ? `${sql};\nCOMMIT` : sql);
    const n = ((Array.isArray(res) ? res[0] : res) as { affectedRows?: number } | undefined)?.affectedRows;
    if (commit) this.#open = false;
    if (n !== 1) {
      throw new TidemarkError(
        `the position row of source ${this.#o.source} is missing on target ${this.#o.target.name}`,
        {
          code: 'TARGET_HELD',
          retriable: true,
        },
      );
    }
  }

  async commit(): Promise<void> {
    await this.#q('commit', 'COMMIT');
    this.#open = false;
  }

  /** TEST ONLY (the reader-order test's broken mode): records the position unchecked and commits at once. */
  async commitUnordered(u: Unit): Promise<void> {
    await this.#q('commit', `${upsertPositionSql(this.#o.source, u.target)};\nCOMMIT`);
    this.#open = false;
  }

  /** Rolls the open transaction back; a session that cannot is closed (the server rolls back on disconnect). */
  async rollback(): Promise<void> {
    this.#reset();
    if (!this.#open || !this.#conn) return;
    this.#open = false;
    try {
      await this.#q('rollback', 'ROLLBACK;\nSET SESSION foreign_key_checks = 0');
    } catch {
      this.drop();
    }
  }

  /** How long the query in progress has been running (0: none). */
  busyMs(now = Date.now()): number {
    return this.#busySince === null ? 0 : now - this.#busySince;
  }

  get connected(): boolean {
    return this.#conn !== null;
  }

  drop(): void {
    this.#conn?.destroy();
    this.#conn = null;
    this.#open = false;
  }

  async close(): Promise<void> {
    const c = this.#conn;
    this.#conn = null;
    if (!c) return;
    await c.end().catch(() => c.destroy());
  }

  #reset(): void {
    this.#pipe.clear();
    this.#batcher.reset();
  }

  async #rows(e: RowsEntry): Promise<void> {
    const { skip, period } = await this.#o.shared.tableMeta(e.schema, e.table);
    if (e.op !== 'insert') await this.#o.shared.fks();
    for (const b of this.#batcher.push(e, skip, period)) await this.#pipe.queue(this.#tag(b));
  }

  #tag(b: StatementBatch): StatementBatch {
    return withFkChecks(b, this.#o.shared.loadedFks());
  }

  readonly #qf: QueryFn = (kind, sql) => this.#q(kind, sql);

  async #q(kind: QueryKind, sql: string): Promise<unknown> {
    const conn = this.#conn;
    if (!conn) throw new TidemarkError('apply connection is closed', { code: 'APPLY_RETRY', retriable: true });
    this.#busySince = Date.now();
    try {
      return await sendQuery(conn, kind, ++this.#queries, sql, this.#o.faults);
    } finally {
      this.#busySince = null;
    }
  }
}
