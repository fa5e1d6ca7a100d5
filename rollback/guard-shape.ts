/**
 * The shape of a rows entry's guarded statements (guard.ts): which columns are key, written and compared, and the
 * pieces every statement of the entry is built from — its WHERE guard, the text naming a row (`what`). Pure.
 */
import { EntryError } from '../apply/mysql/batcher.ts';
import { describeKey, fullRowWhere, keyWhere, qualified } from '../mysql/sql.ts';
import type { Column, RowImage, RowsEntry, Value } from '../record/record.ts';
import type { Direction, GuardOptions } from './guard.ts';

const MAX_KEY_TEXT = 160;

/** Control characters (newlines in identifiers, say) as \xNN, so text stays on one line. */
export function oneLine(s: string): string {
  return s.replace(/[\x00-\x1f\x7f\u2028\u2029]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export interface Shape {
  readonly e: RowsEntry;
  readonly dir: Direction;
  readonly opts: GuardOptions;
  readonly table: string;
  readonly cols: readonly Column[];
  /** Key column indexes, or null when rows are matched by the whole image. */
  readonly pkIdx: readonly number[] | null;
  /** Written columns: all but skipped ones. */
  readonly writeIdx: readonly number[];
  /** Columns compared with <=> besides the key (all written columns without a key). */
  readonly cmpIdx: readonly number[];
  /** Columns that identify a row in `what`. */
  readonly descIdx: readonly number[];
}

/** Which columns of a rows entry are the key, are written, and are compared besides the key. */
export interface ColumnRoles {
  /** Key column indexes, or null when rows are matched by the whole image. */
  readonly pkIdx: readonly number[] | null;
  /** Written columns: all but skipped ones. */
  readonly writeIdx: readonly number[];
  /** Columns compared besides the key (all written columns without a key). */
  readonly cmpIdx: readonly number[];
}

/** The column roles of `e` (every engine's guards); `fail` makes the error for an entry that cannot be guarded. */
export function columnRoles(e: RowsEntry, skip: ReadonlySet<string>, fail: (problem: string) => Error): ColumnRoles {
  const cols = e.columns;
  const pkIdx =
    e.pk.length === 0
      ? null
      : e.pk.map((name) => {
          const i = cols.findIndex((c) => c.name === name);
          if (i < 0) throw fail(`: key column ${name} is not among its columns`);
          return i;
        });
  const writeIdx: number[] = [];
  for (let i = 0; i < cols.length; i++) if (!skip.has(cols[i]!.name)) writeIdx.push(i);
  if (writeIdx.length === 0) throw fail(' has no writable columns');
  const cmpIdx = pkIdx ? writeIdx.filter((i) => !pkIdx.includes(i)) : writeIdx;
  return { pkIdx, writeIdx, cmpIdx };
}

export function shapeOf(e: RowsEntry, dir: Direction, opts: GuardOptions): Shape {
  const cols = e.columns;
  const where = { schema: e.schema, table: e.table, seq: e.seq };
  const fail = (problem: string) => new EntryError(`rows entry for ${qualified(e.schema, e.table)}${problem}`, where);
  const { pkIdx, writeIdx, cmpIdx } = columnRoles(e, opts.skipColumns ?? new Set<string>(), fail);
  return {
    e,
    dir,
    opts,
    table: qualified(e.schema, e.table),
    cols,
    pkIdx,
    writeIdx,
    cmpIdx,
    descIdx: pkIdx ?? writeIdx,
  };
}

/** Which image a row holds before a statement of direction `dir` (redo: before, undo: after), and which after it. */
export function imageRoles(dir: Direction): { readonly was: 'before' | 'after'; readonly will: 'before' | 'after' } {
  return dir === 'redo' ? { was: 'before', will: 'after' } : { was: 'after', will: 'before' };
}

export function image(s: Shape, r: RowImage, which: 'before' | 'after', seq: bigint): readonly Value[] {
  const img = r[which];
  if (!img || img.length !== s.cols.length) {
    throw new EntryError(
      `${s.e.op} of ${s.table} at seq ${seq}: ${which} image ${img ? `has ${img.length} values for ${s.cols.length} columns` : 'is missing'}`,
      { schema: s.e.schema, table: s.e.table, seq },
    );
  }
  return img;
}

export function keyText(s: Pick<Shape, 'cols' | 'descIdx'>, row: readonly Value[]): string {
  const t = describeKey(row, s.cols, s.descIdx);
  return t.length > MAX_KEY_TEXT ? t.slice(0, MAX_KEY_TEXT - 3) + '...' : t;
}

export function whatOf(s: Shape, detail: string, seqText: string): string {
  return oneLine(`${s.dir} ${s.e.op} of ${s.table} (${detail}) at seq ${seqText} of tx ${s.opts.txId}`);
}

/** `WHERE …` that matches the row only if it holds `img` (key with =, the other columns with <=>). */
export function guardWhere(s: Shape, img: readonly Value[]): string {
  const f = s.opts.flavor;
  const rest = fullRowWhere(
    s.cmpIdx.map((i) => img[i] ?? null),
    s.cmpIdx.map((i) => s.cols[i]!),
    f,
  );
  if (!s.pkIdx) return ` WHERE ${rest} LIMIT 1`;
  const key = keyWhere(img, s.cols, s.pkIdx, f);
  return ` WHERE ${rest === '' ? key : `${key} AND ${rest}`}`;
}

export function rowWhat(s: Shape, cur: readonly Value[], seq: bigint): string {
  return whatOf(s, keyText(s, cur), seq.toString());
}
