/**
 * The shape of a rows entry's statements (pure; no I/O), for the statement batcher (batcher.ts): from an entry's
 * columns, key, operation and the replica's options, which kind of batch its rows go into (see batcher.ts), which
 * columns are written, the statement head they share, and each row's own part of the SQL (a VALUES tuple, a key
 * item, a per-row UPDATE/DELETE) and identifying key. Consecutive entries with the same shape signature share one
 * statement. Also the StatementBatch the batcher hands out, and EntryError for an entry it cannot use.
 */
import { TidemarkError } from '../../core/errors.ts';
import { sameItems } from '../../core/collections.ts';
import type { Column, RowsEntry, Value } from '../../record/record.ts';
import { isSequenceState } from '../../record/sequence.ts';
import type { SystemPeriod } from '../../record/versioning.ts';
import { ENUM_ZERO_MODE, setStatement, withEnumZero, writesEnumZero } from './enum-zero.ts';
import { type JoinRow, joinRows } from './join-update.ts';
import { type LoadShape, loadShape } from './load-data.ts';
import {
  buildDeleteRow,
  buildUpdateRow,
  deleteInPrefix,
  type Flavor,
  insertPrefix,
  keyItem,
  qualified,
  tuple,
} from '../../mysql/sql.ts';
import { type ImpliedHistory, type PeriodIdx, periodIdx, versionedUpdate } from './versioned.ts';

export type NoPrimaryKey = 'full-row' | 'refuse';

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

/** The options a shape depends on (the batcher's, BatcherOptions). */
export interface ShapeOptions {
  noPrimaryKey: NoPrimaryKey;
  flavor: Flavor;
  /** Tables whose deletes must run one row at a time in source order (see batcher.ts). */
  orderedDeletes?: (schema: string, table: string) => boolean;
  /** Key-unchanged updates as joined multi-row statements (join-update.ts; MariaDB only). Default true. */
  joinUpdates?: boolean;
  /**
   * Inserts of loadMinRows rows or more as LOAD DATA LOCAL INFILE (load-data.ts; MariaDB only; the session must
   * allow local files and the QueryFn serve them: exec.ts). Default false.
   */
  loadData?: boolean;
}

export interface Shape {
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
  /** The replica's (ShapeOptions.flavor), for the per-row statements. */
  readonly flavor: Flavor;
}

type Row = RowsEntry['rows'][number];

/**
 * The shape of `e`'s statements. `skip` names columns never written (generated columns on the replica); `period`
 * is the system period of a versioned replica table (versioned.ts).
 */
export function shapeOf(e: RowsEntry, skip: ReadonlySet<string>, period: SystemPeriod | null, o: ShapeOptions): Shape {
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
  } else if (o.noPrimaryKey === 'refuse' && !isSequenceState(e)) {
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
  const ordered = e.op === 'delete' && o.orderedDeletes?.(e.schema, e.table) === true;
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
    flavor: o.flavor,
    cols,
    writeIdx,
    enumIdx: writeIdx.filter((i) => cols[i]!.type === 'enum'),
    pkIdx,
    keyCols,
    head,
    fkChecksOff: e.fkChecksOff === true,
    period: pIdx,
    join:
      kind === 'per-row' && e.op === 'update' && !pIdx && o.joinUpdates !== false
        ? joinRows({ schema: e.schema, table: e.table, cols, pkIdx, writeIdx, flavor: o.flavor })
        : null,
    load:
      kind === 'insert' &&
      !pIdx &&
      o.loadData === true &&
      o.flavor === 'mariadb' &&
      (pkIdx ?? cols.map((_, i) => i)).every((i) => writeIdx.includes(i))
        ? loadShape(e.schema, e.table, cols, writeIdx)
        : null,
  };
}

/** Same column list: names, types, full types and signedness (what a shape's SQL is built from). */
function sameColumns(a: readonly Column[], b: readonly Column[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.name !== y.name || x.type !== y.type || x.columnType !== y.columnType || x.unsigned !== y.unsigned) {
      return false;
    }
  }
  return true;
}

/** A table's cached shape and what it was built from besides its own fields (cols, fkChecksOff). */
interface CachedShape {
  readonly pk: readonly string[];
  readonly skip: ReadonlySet<string>;
  readonly period: SystemPeriod | null;
  readonly shape: Shape;
}

/**
 * shapeOf with a memory per table and operation: an OLTP stream brings the same few layouts again and again, and
 * each shapeOf builds a signature, SQL heads and the join/LOAD DATA forms (~5 % of what the applier allocated per
 * transaction, issue #15). A cached shape is reused only for an entry of the same columns, key and foreign-key
 * mode, with the same `skip` and `period` objects (the applier's table metadata; new objects after a DDL).
 */
export class ShapeCache {
  readonly #o: ShapeOptions;
  readonly #byTable = new Map<string, CachedShape>();

  constructor(o: ShapeOptions) {
    this.#o = o;
  }

  shapeOf(e: RowsEntry, skip: ReadonlySet<string>, period: SystemPeriod | null): Shape {
    const key = `${e.op}\u0000${e.schema}\u0000${e.table}`;
    const c = this.#byTable.get(key);
    if (
      c &&
      c.skip === skip &&
      c.period === period &&
      c.shape.fkChecksOff === (e.fkChecksOff === true) &&
      sameItems(c.pk, e.pk) &&
      sameColumns(c.shape.cols, e.columns)
    ) {
      return c.shape;
    }
    const shape = shapeOf(e, skip, period, this.#o);
    if (this.#byTable.size >= 1000) this.#byTable.clear();
    this.#byTable.set(key, { pk: e.pk, skip, period, shape });
    return shape;
  }
}

/** A row's before or after image, checked against the shape's columns (EntryError when missing or short). */
export function rowImage(
  s: Shape,
  img: readonly Value[] | null,
  which: 'before' | 'after',
  seq: bigint,
): readonly Value[] {
  if (!img || img.length !== s.cols.length) {
    throw new EntryError(
      `${s.op} of ${qualified(s.schema, s.table)} at seq ${seq}: ${which} image ${img ? `has ${img.length} values for ${s.cols.length} columns` : 'is missing'}`,
      { schema: s.schema, table: s.table, seq },
    );
  }
  return img;
}

/**
 * A row's part of the statement: its VALUES tuple, its key item (an IN list, DELETE HISTORY) or its own UPDATE /
 * DELETE statement. A versioned update records in `implied` the history row the replica will write itself.
 */
export function rowSql(s: Shape, r: Row, seq: bigint, implied: ImpliedHistory): string {
  const flavor = s.flavor;
  switch (s.op) {
    case 'insert':
      return tuple(rowImage(s, r.after, 'after', seq), s.cols, s.writeIdx);
    case 'delete': {
      const before = rowImage(s, r.before, 'before', seq);
      if (s.kind === 'delete-in' || s.kind === 'history') return keyItem(before, s.cols, s.pkIdx ?? []);
      return buildDeleteRow(s.schema, s.table, s.cols, s.pkIdx, before, flavor);
    }
    case 'update': {
      const before = rowImage(s, r.before, 'before', seq);
      const after = rowImage(s, r.after, 'after', seq);
      const zero = writesEnumZero(after, s.cols, s.enumIdx);
      if (s.period) {
        const vars = zero ? [ENUM_ZERO_MODE] : [];
        const v = versionedUpdate(s.schema, s.table, s.period, before, after, seq);
        const at = setStatement([v.timestamp, ...vars]);
        if (v.kind === 'delete') return at + buildDeleteRow(s.schema, s.table, s.cols, s.pkIdx, before, flavor);
        if (v.history) implied.add(s.schema, s.table, v.history, s.cols);
        return at + buildUpdateRow(s.schema, s.table, s.cols, s.writeIdx, s.pkIdx, before, after, flavor);
      }
      const sql = buildUpdateRow(s.schema, s.table, s.cols, s.writeIdx, s.pkIdx, before, after, flavor);
      return zero ? withEnumZero(sql, flavor) : sql;
    }
  }
}

/** The values that identify a row: its key, or its whole image without a key. */
export function keyValues(s: Shape, r: Row): readonly Value[] {
  const img = (s.op === 'insert' ? r.after : r.before)!;
  return s.pkIdx ? s.pkIdx.map((i) => img[i] ?? null) : img;
}
