/**
 * Turns rows entries into bounded statements (pure; no I/O). Rows are consumed one at a time and a statement is
 * handed out as soon as it reaches its size or row limit, so memory stays bounded however large a transaction is.
 * Consecutive entries with the same table, operation and column list share one statement. What each entry's rows
 * become (kind, head, each row's part) is batch-shape.ts; the LOAD DATA statement being filled is batch-load.ts.
 *
 *   insert                 one multi-row INSERT … VALUES (…),(…)            affected rows must equal the row count
 *   insert, large (option loadData, MariaDB)
 *                          LOAD DATA LOCAL INFILE of the rows as text (load-data.ts) from loadMinRows rows on;
 *                          the count and the warnings must match, else exec.ts runs the same rows as the INSERT
 *   delete, with a key     DELETE … WHERE key IN (…) (no key twice)          affected rows must equal the key count
 *   update, key unchanged  (MariaDB) one UPDATE joined with a derived table of the new values (join-update.ts),
 *                          no key twice; matched rows must equal the row count
 *   other updates; delete without a key
 *                          one statement per row, sent together as a multi-statement; each must match exactly 1 row
 *
 * Updates are per row (`UPDATE … SET every column WHERE key = before-key`) rather than INSERT … ON DUPLICATE KEY
 * UPDATE: the latter would silently insert a row that is missing on the replica, hiding a divergence, and cannot
 * move a row to a new key.
 * Deletes of a table whose ON DELETE cascades can reach the table itself (self-referencing or cyclic foreign keys,
 * `orderedDeletes`) are per row too, in source order: an IN list runs in key order, and a row it deletes early
 * could cascade away a row the list names later (a false "missing row").
 *
 * System-versioned tables (the applier passes their period): see versioned.ts — inserts write the period columns,
 * updates run at the source's timestamp, history rows the replica writes itself are skipped, deletes of history
 * rows become one DELETE HISTORY whose count is checked ('history' batches).
 * ENUM index 0 (Value 0n, the invalid-value index a non-strict source stored) can only be written without strict
 * mode: a statement writing one runs as SET STATEMENT sql_mode = <session mode without STRICT_ALL_TABLES> FOR ….
 */
import type { RowsEntry, Value } from '../../record/record.ts';
import type { SystemPeriod } from '../../record/versioning.ts';
import { ENUM_ZERO_MODE, setStatement, withEnumZero, writesEnumZero } from './enum-zero.ts';
import { type BatchShape, batchSql } from '../../mysql/batch-sql.ts';
import { PendingLoad } from './batch-load.ts';
import {
  type BatchKind,
  EntryError,
  keyValues,
  type NoPrimaryKey,
  rowImage,
  rowSql,
  type Shape,
  type ShapeOptions,
  ShapeCache,
  type StatementBatch,
} from './batch-shape.ts';
import { sqlBytes } from '../../mysql/sql.ts';
import { deleteHistorySql, ImpliedHistory, INSERT_HISTORY } from './versioned.ts';

export { ENUM_ZERO_MODE, EntryError, setStatement, withEnumZero, writesEnumZero };
export type { BatchKind, NoPrimaryKey, StatementBatch };

/** Default BatcherOptions.joinMinRows. */
export const JOIN_MIN_ROWS = 8;
/** Default BatcherOptions.loadMinRows. */
export const LOAD_MIN_ROWS = 64;
/** Default BatcherOptions.loadMaxBytes. */
export const LOAD_MAX_BYTES = 1 << 20;

/** ShapeOptions (batch-shape.ts: noPrimaryKey, flavor, orderedDeletes, joinUpdates, loadData) and the bounds. */
export interface BatcherOptions extends ShapeOptions {
  /** Upper bound on one statement's size in bytes (a single row larger than this goes alone). Default 4 MiB. */
  maxBytes?: number;
  /** Upper bound on rows per statement (IN lists, multi-statements, VALUES lists). Default 1000. */
  maxRows?: number;
  /**
   * A joined statement only from this many rows on (default JOIN_MIN_ROWS); fewer go per-row, as before. Measured
   * (bench spine, OLTP of 1–5-row transactions): joining 3- and 5-row updates cost ~10% of OLTP throughput.
   */
  joinMinRows?: number;
  /** A LOAD DATA statement only from this many rows on (default LOAD_MIN_ROWS); fewer go as the INSERT. */
  loadMinRows?: number;
  /** Upper bound on one LOAD DATA statement's text (default LOAD_MAX_BYTES, at most maxBytes); no row bound. */
  loadMaxBytes?: number;
}

/** The default `skip` of push(): one object, so that the shape cache recognises it. */
const NO_COLUMNS: ReadonlySet<string> = new Set();

export class StatementBatcher {
  readonly #maxBytes: number;
  readonly #maxRows: number;
  readonly #opts: BatcherOptions;
  readonly #shapes: ShapeCache;
  #shape: Shape | null = null;
  /** Kind of the pending statement (an update shape's rows are 'update-join' or 'per-row'). */
  #kind: BatchKind = 'per-row';
  /** The pending joined update's shape. */
  #join: BatchShape | null = null;
  /** The pending joined update's first rows as per-row UPDATEs (fewer than joinMinRows rows go out as those). */
  #joinSmall: string[] = [];
  readonly #joinMin: number;
  readonly #loadMin: number;
  /** The pending LOAD DATA statement (batch-load.ts). */
  readonly #load: PendingLoad;
  /** The pending INSERT's after images while it may still become a load (null: a row was not loadable). */
  #loadImages: (readonly Value[])[] | null = [];
  #parts: string[] = [];
  #bytes = 0;
  #seqs: bigint[] = [];
  #keys: (readonly Value[])[] = [];
  #seen = new Set<string>();
  /** Some pending insert row writes ENUM index 0: the statement runs without strict mode. */
  #enumZero = false;
  /** Rows of a pending DELETE HISTORY. */
  #history: (readonly Value[])[] = [];
  readonly #implied = new ImpliedHistory();

  constructor(opts: BatcherOptions) {
    this.#opts = opts;
    this.#shapes = new ShapeCache(opts);
    this.#joinMin = Math.max(2, opts.joinMinRows ?? JOIN_MIN_ROWS);
    this.#maxBytes = opts.maxBytes ?? 4 * 1024 * 1024;
    this.#maxRows = opts.maxRows ?? 1000;
    this.#loadMin = Math.max(1, opts.loadMinRows ?? LOAD_MIN_ROWS);
    this.#load = new PendingLoad(Math.min(this.#maxBytes, opts.loadMaxBytes ?? LOAD_MAX_BYTES));
  }

  /** Rows waiting in the unfinished statement. */
  get pendingRows(): number {
    return this.#pending;
  }

  get #pending(): number {
    return this.#seqs.length + this.#load.rows;
  }

  /** Drops whatever is pending (after a rollback). */
  reset(): void {
    this.#shape = null;
    this.#clear();
    this.#implied.clear();
  }

  /**
   * Adds every row of `entry`; yields each statement that became full along the way (the caller executes it
   * before pulling the next one). `skip` names columns never written (generated columns on the replica);
   * `period` is the system period of a versioned replica table (versioned.ts).
   */
  *push(
    entry: RowsEntry,
    skip: ReadonlySet<string> = NO_COLUMNS,
    period: SystemPeriod | null = null,
  ): Generator<StatementBatch> {
    if (entry.rows.length === 0) return;
    const shape = this.#shapes.shapeOf(entry, skip, period);
    if (this.#shape && this.#shape.sig !== shape.sig) {
      const b = this.flush();
      if (b) yield b;
    }
    this.#shape = shape;
    let seq = entry.seq;
    for (const r of entry.rows) {
      if (shape.period && shape.op === 'insert' && this.#impliedRow(shape, r.after)) {
        seq++; // the replica wrote this history row itself when it applied the update
        continue;
      }
      const joined = shape.join
        ? shape.join(rowImage(shape, r.before, 'before', seq), rowImage(shape, r.after, 'after', seq))
        : null;
      if (shape.load && this.#kind === 'load') {
        // A load is open: a loadable row goes straight into its file, any other ends it.
        const line = shape.load.line(rowImage(shape, r.after, 'after', seq));
        if (line !== null) {
          if (!this.#load.fits(line)) {
            const b = this.flush();
            if (b) yield b;
            this.#shape = shape;
            this.#kind = 'load';
          }
          this.#load.add(line, seq);
          seq++;
          continue;
        }
        const b = this.flush();
        if (b) yield b;
        this.#shape = shape;
      }
      const kind = joined ? 'update-join' : shape.kind;
      const part = joined ? joined.tuple : rowSql(shape, r, seq, this.#implied);
      const key = keyValues(shape, r);
      const dupKey = joined ? joined.key : shape.kind === 'delete-in' ? part : null;
      const extra = sqlBytes(part) + 1;
      const full =
        this.#pending > 0 &&
        (kind !== this.#kind ||
          (joined !== null && joined.shape.group !== this.#join?.group) ||
          (this.#seqs.length >= this.#maxRows && !(this.#mayLoad(shape) && this.#seqs.length < this.#loadMin)) ||
          this.#bytes + extra > this.#maxBytes ||
          (dupKey !== null && this.#seen.has(dupKey)));
      if (full) {
        const b = this.flush();
        if (b) yield b;
        this.#shape = shape;
      }
      if (joined && this.#seqs.length < this.#joinMin - 1) this.#joinSmall.push(rowSql(shape, r, seq, this.#implied));
      this.#kind = kind;
      this.#join = joined?.shape ?? null;
      this.#parts.push(part);
      if (shape.kind === 'insert' && writesEnumZero(r.after!, shape.cols, shape.enumIdx)) this.#enumZero = true;
      if (shape.kind === 'history') this.#history.push(r.before!);
      this.#bytes += extra;
      this.#seqs.push(seq);
      this.#keys.push(key);
      if (dupKey !== null) this.#seen.add(dupKey);
      seq++;
      if (this.#mayLoad(shape)) {
        this.#loadImages?.push(r.after!);
        if (this.#seqs.length >= this.#loadMin) this.#toLoad(shape);
      }
    }
  }

  /** Could the pending INSERT still become a load (a loadable shape, no row of it refused so far)? */
  #mayLoad(s: Shape): boolean {
    return s.load !== null && this.#kind === 'insert' && !this.#enumZero && this.#loadImages !== null;
  }

  /**
   * The pending INSERT reached loadMinRows rows: it becomes a load when every row of it is loadable (else it stays
   * an INSERT to its end). Short inserts — an OLTP load's — thus never pay for a file.
   */
  #toLoad(s: Shape): void {
    const lines = this.#loadImages!.map((r) => s.load!.line(r));
    if (lines.some((l) => l === null)) {
      this.#loadImages = null;
      return;
    }
    const seqs = this.#seqs;
    this.#clear();
    this.#kind = 'load';
    for (let i = 0; i < lines.length; i++) this.#load.add(lines[i]!, seqs[i]!);
  }

  /** The pending statement, if any. */
  flush(): StatementBatch | null {
    const s = this.#shape;
    if (!s || this.#pending === 0) return null;
    if (this.#kind === 'load') {
      const load = this.#load.take(s);
      this.#clear();
      return load;
    }
    // A joined update of fewer than joinMinRows rows is the plain per-row UPDATEs (small transactions stay as they were).
    const kind = this.#kind === 'update-join' && this.#seqs.length < this.#joinMin ? 'per-row' : this.#kind;
    let sql: string;
    if (kind === 'update-join') sql = batchSql(this.#join!, this.#parts);
    else if (this.#kind === 'update-join') sql = this.#joinSmall.join(';\n');
    else if (s.kind === 'insert') {
      sql = s.head + this.#parts.join(',');
      // Versioned tables are MariaDB's: the two settings share one SET STATEMENT there.
      if (s.period) sql = setStatement([INSERT_HISTORY, ...(this.#enumZero ? [ENUM_ZERO_MODE] : [])]) + sql;
      else if (this.#enumZero) sql = withEnumZero(sql, this.#opts.flavor);
    } else if (s.kind === 'delete-in') sql = s.head + this.#parts.join(',') + ')';
    else if (s.kind === 'history') sql = deleteHistorySql(s.schema, s.table, s.period!, this.#history, this.#seqs[0]!);
    else sql = this.#parts.join(';\n');
    const batch: StatementBatch = {
      kind,
      sql,
      schema: s.schema,
      table: s.table,
      op: s.op,
      rows: this.#seqs.length,
      seqs: this.#seqs,
      keys: this.#keys,
      keyCols: s.keyCols,
      fullRow: s.pkIdx === null,
      ...(s.fkChecksOff ? { fkChecksOff: true } : {}),
    };
    this.#clear();
    return batch;
  }

  #clear(): void {
    this.#kind = this.#shape?.kind ?? 'per-row';
    this.#join = null;
    this.#joinSmall = [];
    this.#parts = [];
    this.#bytes = 0;
    this.#seqs = [];
    this.#keys = [];
    this.#seen = new Set();
    this.#enumZero = false;
    this.#history = [];
    this.#loadImages = [];
    this.#load.reset();
  }

  /** An insert of a history row the replica already wrote (consumed if so). */
  #impliedRow(s: Shape, after: readonly Value[] | null): boolean {
    return after !== null && this.#implied.take(s.schema, s.table, after, s.cols);
  }
}
