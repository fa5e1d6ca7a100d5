/**
 * Turns rows entries into bounded statements (pure; no I/O). Rows are consumed one at a time and a statement is
 * handed out as soon as it reaches its size or row limit, so memory stays bounded however large a transaction is.
 * Consecutive entries with the same table, operation and column list share one statement.
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
import { TidemarkError } from '../../core/errors.ts';
import type { Column, RowsEntry, Value } from '../../record/record.ts';
import { isSequenceState } from '../../record/sequence.ts';
import type { SystemPeriod } from '../../record/versioning.ts';
import { ENUM_ZERO_MODE, setStatement, withEnumZero, writesEnumZero } from './enum-zero.ts';
import { type BatchShape, batchSql } from '../../mysql/batch-sql.ts';
import { type JoinRow, joinRows } from './join-update.ts';
import { LoadFile, type LoadShape, loadShape } from './load-data.ts';
import {
  buildDeleteRow,
  buildUpdateRow,
  deleteInPrefix,
  type Flavor,
  insertPrefix,
  keyItem,
  qualified,
  sqlBytes,
  tuple,
} from '../../mysql/sql.ts';
import {
  deleteHistorySql,
  ImpliedHistory,
  INSERT_HISTORY,
  type PeriodIdx,
  periodIdx,
  versionedUpdate,
} from './versioned.ts';

export { ENUM_ZERO_MODE, setStatement, withEnumZero, writesEnumZero };

export type NoPrimaryKey = 'full-row' | 'refuse';

/** Default BatcherOptions.joinMinRows. */
export const JOIN_MIN_ROWS = 8;
/** Default BatcherOptions.loadMinRows. */
export const LOAD_MIN_ROWS = 64;
/** Default BatcherOptions.loadMaxBytes. */
export const LOAD_MAX_BYTES = 1 << 20;

export interface BatcherOptions {
  /** Upper bound on one statement's size in bytes (a single row larger than this goes alone). Default 4 MiB. */
  maxBytes?: number;
  /** Upper bound on rows per statement (IN lists, multi-statements, VALUES lists). Default 1000. */
  maxRows?: number;
  noPrimaryKey: NoPrimaryKey;
  flavor: Flavor;
  /** Tables whose deletes must run one row at a time in source order (see the file comment). */
  orderedDeletes?: (schema: string, table: string) => boolean;
  /** Key-unchanged updates as joined multi-row statements (join-update.ts; MariaDB only). Default true. */
  joinUpdates?: boolean;
  /**
   * A joined statement only from this many rows on (default JOIN_MIN_ROWS); fewer go per-row, as before. Measured
   * (bench spine, OLTP of 1–5-row transactions): joining 3- and 5-row updates cost ~10% of OLTP throughput.
   */
  joinMinRows?: number;
  /**
   * Inserts of loadMinRows rows or more as LOAD DATA LOCAL INFILE (load-data.ts; MariaDB only; the session must
   * allow local files and the QueryFn serve them: exec.ts). Default false.
   */
  loadData?: boolean;
  /** A LOAD DATA statement only from this many rows on (default LOAD_MIN_ROWS); fewer go as the INSERT. */
  loadMinRows?: number;
  /** Upper bound on one LOAD DATA statement's text (default LOAD_MAX_BYTES, at most maxBytes); no row bound. */
  loadMaxBytes?: number;
}

export type BatchKind = 'insert' | 'load' | 'delete-in' | 'update-join' | 'per-row' | 'history';

/** One round trip's worth of SQL with what is needed to check its outcome and to explain a mismatch. */
export interface StatementBatch {
  readonly kind: BatchKind;
  readonly sql: string;
  readonly schema: string;
  readonly table: string;
  readonly op: RowsEntry['op'];
  /** Number of row changes; for per-row batches also the number of statements in `sql`. */
  readonly rows: number;
  /** seq of each row change, in order. */
  readonly seqs: readonly bigint[];
  /** Identifying values per row (key values, or the whole before image without a key), in `keyCols` order. */
  readonly keys: readonly (readonly Value[])[];
  readonly keyCols: readonly Column[];
  /** true when rows are matched by their whole before image (table without a primary key). */
  readonly fullRow: boolean;
  /** The source ran these rows with foreign_key_checks = 0 (RowsEntry.fkChecksOff): nothing cascaded there. */
  readonly fkChecksOff?: boolean;
  /**
   * Run with foreign_key_checks = 1 (set by the applier for parents of cascading foreign keys on the replica, so
   * the replica cascades as the source did: cascaded changes are not in the binlog).
   */
  readonly fkChecks?: boolean;
  /** 'load' batches: the rows as the LOAD DATA statement's local file (load-data.ts), UTF-8. */
  readonly data?: Uint8Array;
  /** 'load' batches: the same rows as one multi-row INSERT, run instead when the load does not match (exec.ts). */
  readonly insertSql?: () => string;
}

export class EntryError extends TidemarkError {
  constructor(message: string, context: Record<string, string | number | bigint>) {
    super(message, { code: 'APPLY_BAD_ENTRY', retriable: false, context });
    this.name = 'EntryError';
  }
}

interface Shape {
  readonly sig: string;
  readonly kind: BatchKind;
  readonly schema: string;
  readonly table: string;
  readonly op: RowsEntry['op'];
  readonly cols: readonly Column[];
  /** Columns written (insert values, update SET): all but generated ones. */
  readonly writeIdx: readonly number[];
  /** The ENUM columns among them (only these can write index 0: writesEnumZero). */
  readonly enumIdx: readonly number[];
  /** Key column indexes, or null when matching by the whole row. */
  readonly pkIdx: readonly number[] | null;
  readonly keyCols: readonly Column[];
  readonly head: string;
  readonly fkChecksOff: boolean;
  /** Period columns of a system-versioned table. */
  readonly period: PeriodIdx | null;
  /** Update rows: their joined form (null: every row per-row). */
  readonly join: JoinRow | null;
  /** Insert rows: their LOAD DATA form (null: INSERT only). */
  readonly load: LoadShape | null;
}

export class StatementBatcher {
  readonly #maxBytes: number;
  readonly #maxRows: number;
  readonly #opts: BatcherOptions;
  #shape: Shape | null = null;
  /** Kind of the pending statement (an update shape's rows are 'update-join' or 'per-row'). */
  #kind: BatchKind = 'per-row';
  /** The pending joined update's shape. */
  #join: BatchShape | null = null;
  /** The pending joined update's first rows as per-row UPDATEs (fewer than joinMinRows rows go out as those). */
  #joinSmall: string[] = [];
  readonly #joinMin: number;
  readonly #loadMin: number;
  /** The pending LOAD DATA statement's file. */
  readonly #file: LoadFile;
  /** The pending load's rows and their seqs as runs [first, count] (no per-row objects kept: see flush). */
  #loadRows = 0;
  #loadRuns: [bigint, number][] = [];
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
    this.#joinMin = Math.max(2, opts.joinMinRows ?? JOIN_MIN_ROWS);
    this.#maxBytes = opts.maxBytes ?? 4 * 1024 * 1024;
    this.#maxRows = opts.maxRows ?? 1000;
    this.#loadMin = Math.max(1, opts.loadMinRows ?? LOAD_MIN_ROWS);
    this.#file = new LoadFile(Math.min(this.#maxBytes, opts.loadMaxBytes ?? LOAD_MAX_BYTES));
  }

  /** Rows waiting in the unfinished statement. */
  get pendingRows(): number {
    return this.#pending;
  }

  get #pending(): number {
    return this.#seqs.length + this.#loadRows;
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
    skip: ReadonlySet<string> = new Set(),
    period: SystemPeriod | null = null,
  ): Generator<StatementBatch> {
    if (entry.rows.length === 0) return;
    const shape = this.#shapeOf(entry, skip, period);
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
        ? shape.join(this.#image(shape, r.before, 'before', seq), this.#image(shape, r.after, 'after', seq))
        : null;
      if (shape.load && this.#kind === 'load') {
        // A load is open: a loadable row goes straight into its file, any other ends it.
        const line = shape.load.line(this.#image(shape, r.after, 'after', seq));
        if (line !== null) {
          if (!this.#file.fits(line)) {
            const b = this.flush();
            if (b) yield b;
            this.#shape = shape;
            this.#kind = 'load';
          }
          this.#addLine(line, seq);
          seq++;
          continue;
        }
        const b = this.flush();
        if (b) yield b;
        this.#shape = shape;
      }
      const kind = joined ? 'update-join' : shape.kind;
      const part = joined ? joined.tuple : this.#rowSql(shape, r, seq);
      const key = this.#keyOf(shape, r, seq);
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
      if (joined && this.#seqs.length < this.#joinMin - 1) this.#joinSmall.push(this.#rowSql(shape, r, seq));
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
    for (let i = 0; i < lines.length; i++) this.#addLine(lines[i]!, seqs[i]!);
  }

  #addLine(line: string, seq: bigint): void {
    this.#file.add(line);
    const run = this.#loadRuns.at(-1);
    if (run && run[0] + BigInt(run[1]) === seq) run[1]++;
    else this.#loadRuns.push([seq, 1]);
    this.#loadRows++;
  }

  /** The pending statement, if any. */
  flush(): StatementBatch | null {
    const s = this.#shape;
    if (!s || this.#pending === 0) return null;
    if (this.#kind === 'load') return this.#flushLoad(s);
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

  /**
   * The pending load (loadMinRows rows or more) as a LOAD DATA batch. Its rows are only in its file: its INSERT (a
   * mismatch) and its keys are read back from the file when asked for, its seqs are kept as runs (keeping
   * thousands of row objects alive until the statement is checked cost more garbage collection than building
   * the file).
   */
  #flushLoad(s: Shape): StatementBatch {
    const runs = this.#loadRuns;
    const seqs = (): bigint[] => runs.flatMap(([first, n]) => Array.from({ length: n }, (_, i) => first + BigInt(i)));
    const common = {
      schema: s.schema,
      table: s.table,
      op: s.op,
      rows: this.#loadRows,
      keyCols: s.keyCols,
      fullRow: !s.pkIdx,
      ...(s.fkChecksOff ? { fkChecksOff: true } : {}),
    };
    const data = this.#file.take();
    this.#clear();
    let images: Value[][] | undefined;
    const rows = () => (images ??= s.load!.parse(data));
    let keys: (readonly Value[])[] | undefined;
    let seqList: bigint[] | undefined;
    return {
      ...common,
      kind: 'load',
      sql: s.load!.sql,
      data,
      insertSql: () =>
        s.head +
        rows()
          .map((r) => tuple(r, s.cols, s.writeIdx))
          .join(','),
      get seqs() {
        seqList ??= seqs();
        return seqList;
      },
      get keys() {
        keys ??= rows().map((r) => (s.pkIdx ? s.pkIdx.map((i) => r[i] ?? null) : r));
        return keys;
      },
    };
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
    this.#loadRows = 0;
    this.#loadRuns = [];
    this.#loadImages = [];
    this.#file.reset();
  }

  /** An insert of a history row the replica already wrote (consumed if so). */
  #impliedRow(s: Shape, after: readonly Value[] | null): boolean {
    return after !== null && this.#implied.take(s.schema, s.table, after, s.cols);
  }

  #shapeOf(e: RowsEntry, skip: ReadonlySet<string>, period: SystemPeriod | null): Shape {
    const cols = e.columns;
    const where = { schema: e.schema, table: e.table, seq: e.seq };
    let pkIdx: number[] | null = null;
    if (e.pk.length > 0) {
      pkIdx = e.pk.map((name) => {
        const i = cols.findIndex((c) => c.name === name);
        if (i < 0)
          throw new EntryError(
            `rows entry for ${qualified(e.schema, e.table)}: key column ${name} is not among its columns`,
            where,
          );
        return i;
      });
    } else if (this.#opts.noPrimaryKey === 'refuse' && !isSequenceState(e)) {
      // A sequence has no key by nature; its state rows are plain inserts (record/sequence.ts).
      throw new TidemarkError(
        `table ${qualified(e.schema, e.table)} has no primary key and targets.no_primary_key is "refuse"`,
        { code: 'APPLY_NO_PK', retriable: false, context: where },
      );
    }
    const pIdx = period ? periodIdx(e.schema, e.table, cols, period, e.seq) : null;
    const writeIdx: number[] = [];
    for (let i = 0; i < cols.length; i++) {
      const isPeriod = pIdx !== null && (i === pIdx.start || i === pIdx.end);
      // Period columns are written by inserts only (system_versioning_insert_history), never SET by an update.
      if (isPeriod ? e.op === 'insert' : !skip.has(cols[i]!.name)) writeIdx.push(i);
    }
    if (writeIdx.length === 0 && e.op !== 'delete') {
      throw new EntryError(`rows entry for ${qualified(e.schema, e.table)} has no writable columns`, where);
    }
    const ordered = e.op === 'delete' && this.#opts.orderedDeletes?.(e.schema, e.table) === true;
    const kind: BatchKind =
      e.op === 'insert'
        ? 'insert'
        : e.op === 'delete' && pIdx
          ? 'history'
          : e.op === 'delete' && pkIdx && !ordered
            ? 'delete-in'
            : 'per-row';
    let head = '';
    if (kind === 'insert') head = insertPrefix(e.schema, e.table, cols, writeIdx);
    else if (kind === 'delete-in') head = deleteInPrefix(e.schema, e.table, cols, pkIdx!);
    const keyCols = pkIdx ? pkIdx.map((i) => cols[i]!) : cols;
    const sig = JSON.stringify([
      kind,
      e.op,
      e.schema,
      e.table,
      cols.map((c) => [c.name, c.type, c.columnType ?? '']),
      e.pk,
      writeIdx,
      e.fkChecksOff === true,
      pIdx,
    ]);
    return {
      sig,
      kind,
      schema: e.schema,
      table: e.table,
      op: e.op,
      cols,
      writeIdx,
      enumIdx: writeIdx.filter((i) => cols[i]!.type === 'enum'),
      pkIdx,
      keyCols,
      head,
      fkChecksOff: e.fkChecksOff === true,
      period: pIdx,
      join:
        kind === 'per-row' && e.op === 'update' && !pIdx && this.#opts.joinUpdates !== false
          ? joinRows({ schema: e.schema, table: e.table, cols, pkIdx, writeIdx, flavor: this.#opts.flavor })
          : null,
      load:
        kind === 'insert' &&
        !pIdx &&
        this.#opts.loadData === true &&
        this.#opts.flavor === 'mariadb' &&
        (pkIdx ?? cols.map((_, i) => i)).every((i) => writeIdx.includes(i))
          ? loadShape(e.schema, e.table, cols, writeIdx)
          : null,
    };
  }

  #image(s: Shape, img: readonly Value[] | null, which: 'before' | 'after', seq: bigint): readonly Value[] {
    if (!img || img.length !== s.cols.length) {
      throw new EntryError(
        `${s.op} of ${qualified(s.schema, s.table)} at seq ${seq}: ${which} image ${img ? `has ${img.length} values for ${s.cols.length} columns` : 'is missing'}`,
        { schema: s.schema, table: s.table, seq },
      );
    }
    return img;
  }

  #rowSql(s: Shape, r: RowsEntry['rows'][number], seq: bigint): string {
    const flavor = this.#opts.flavor;
    switch (s.op) {
      case 'insert':
        return tuple(this.#image(s, r.after, 'after', seq), s.cols, s.writeIdx);
      case 'delete': {
        const before = this.#image(s, r.before, 'before', seq);
        if (s.kind === 'delete-in' || s.kind === 'history') return keyItem(before, s.cols, s.pkIdx ?? []);
        return buildDeleteRow(s.schema, s.table, s.cols, s.pkIdx, before, flavor);
      }
      case 'update': {
        const before = this.#image(s, r.before, 'before', seq);
        const after = this.#image(s, r.after, 'after', seq);
        const zero = writesEnumZero(after, s.cols, s.enumIdx);
        if (s.period) {
          const vars = zero ? [ENUM_ZERO_MODE] : [];
          const v = versionedUpdate(s.schema, s.table, s.period, before, after, seq);
          const at = setStatement([v.timestamp, ...vars]);
          if (v.kind === 'delete') return at + buildDeleteRow(s.schema, s.table, s.cols, s.pkIdx, before, flavor);
          if (v.history) this.#implied.add(s.schema, s.table, v.history, s.cols);
          return at + buildUpdateRow(s.schema, s.table, s.cols, s.writeIdx, s.pkIdx, before, after, flavor);
        }
        const sql = buildUpdateRow(s.schema, s.table, s.cols, s.writeIdx, s.pkIdx, before, after, flavor);
        return zero ? withEnumZero(sql, flavor) : sql;
      }
    }
  }

  #keyOf(s: Shape, r: RowsEntry['rows'][number], _seq: bigint): readonly Value[] {
    const img = (s.op === 'insert' ? r.after : r.before)!;
    return s.pkIdx ? s.pkIdx.map((i) => img[i] ?? null) : img;
  }
}
