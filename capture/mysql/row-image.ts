/**
 * Binlog row images decoded once, straight into the journal's Values (issue #15: capture near the raw decoder).
 *
 * zongji turns every cell of a rows event into a JavaScript value of its own (DATETIME text built digit group by
 * digit group with a string-padding helper, DECIMAL text from a copied buffer, integers as numbers or strings)
 * and values.ts then turns that into the Value the journal stores. Profiled on a bulk INSERT + UPDATE, zongji's
 * cell conversion was ~45 % of capture's main-thread CPU and our second pass ~10 %. This module reads the cells
 * of the common column types directly from the row image bytes into the exact Value `normalizeValue` would have
 * made of zongji's output (row-image.test.ts checks the two against each other cell by cell); every other type
 * (TIME, YEAR, BIT, ENUM, SET, JSON binary, spatial, compressed and non-UTF-8 text, the MariaDB 5.3 temporals, …)
 * is read by zongji's own `readMysqlValue` and normalized as before, so nothing changes for them.
 *
 * The byte layouts are MySQL's (sql/log_event.cc log_event_print_value, mysys/my_time.c, strings/decimal.c);
 * the comparisons with zongji pin them. Pure: no I/O.
 */
import type { ColumnInfo, ColumnSchema } from '@vlasky/zongji';
import type { RowImage, Value } from '../../record/record.ts';
import { type ColumnSpec, float32Shortest, normalizeValue, withFsp } from './values.ts';

/** zongji's cursor over a packet: the buffer and the read offset (a getter/setter pair over the packet). */
export interface RowParser {
  _buffer: Buffer;
  _offset: number;
}

/** zongji's own cell reader (lib/common.js), used for the column types decoded here only through it. */
export type ReadMysqlValue = (
  parser: RowParser,
  column: ColumnInfo,
  columnSchema: ColumnSchema,
  tableMap: unknown,
  zongji: unknown,
) => unknown;

/** Binlog column type codes (include/mysql_com.h enum_field_types). */
const T = {
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  TIMESTAMP2: 17,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  VARCHAR: 15,
  DATETIME2: 18,
  NEWDECIMAL: 246,
  TINY_BLOB: 249,
  MEDIUM_BLOB: 250,
  LONG_BLOB: 251,
  BLOB: 252,
  STRING: 254,
} as const;

/** How one column's cells are read: a fast kind, or 'zongji' (its reader, then normalizeValue). */
type Fast =
  | { k: 'int'; size: 1 | 2 | 3 | 4 | 8; unsigned: boolean }
  | { k: 'float' }
  | { k: 'double' }
  | { k: 'decimal'; precision: number; scale: number }
  | { k: 'date' }
  | { k: 'datetime'; dec: number }
  | { k: 'timestamp'; dec: number }
  | { k: 'text'; prefix: number }
  | { k: 'bytes'; prefix: number; pad: number }
  | { k: 'zongji' };

export interface CellReader {
  readonly spec: ColumnSpec;
  readonly column: ColumnInfo;
  readonly schema: ColumnSchema;
  readonly fast: Fast;
}

const UTF8 = new Set(['utf8mb4', 'utf8mb3', 'utf8']);

function num(meta: Record<string, unknown>, key: string): number | null {
  const v = meta[key];
  return typeof v === 'number' && Number.isInteger(v) ? v : null;
}

/** Chooses how the cells of one column are read; anything not matched exactly is left to zongji. */
function fastOf(spec: ColumnSpec, column: ColumnInfo, schema: ColumnSchema): Fast {
  const meta = column.metadata ?? {};
  const def = schema.COLUMN_TYPE;
  switch (column.type) {
    case T.TINY:
    case T.SHORT:
    case T.INT24:
    case T.LONG:
    case T.LONGLONG: {
      if (spec.kind !== 'int') break;
      const size = ({ 1: 1, 2: 2, 9: 3, 3: 4, 8: 8 } as const)[column.type];
      // Signedness exactly as zongji decides it (binlog metadata first, else the type text).
      const unsigned = schema.UNSIGNED !== undefined ? schema.UNSIGNED : def.includes('unsigned');
      return { k: 'int', size, unsigned };
    }
    case T.FLOAT:
      if (spec.kind === 'float') return { k: 'float' };
      break;
    case T.DOUBLE:
      if (spec.kind === 'double') return { k: 'double' };
      break;
    case T.NEWDECIMAL: {
      const precision = num(meta, 'precision');
      const scale = num(meta, 'decimals');
      if (spec.kind === 'decimal' && precision !== null && scale !== null && precision <= 65 && scale <= precision) {
        return { k: 'decimal', precision, scale };
      }
      break;
    }
    case T.DATE:
      if (spec.kind === 'date') return { k: 'date' };
      break;
    case T.DATETIME2:
    case T.TIMESTAMP2: {
      const dec = num(meta, 'decimals') ?? -1;
      if (spec.kind === 'datetime' && dec >= 0 && dec <= 6) {
        return { k: column.type === T.DATETIME2 ? 'datetime' : 'timestamp', dec };
      }
      break;
    }
    case T.VARCHAR:
    case T.STRING: {
      const max = num(meta, 'max_length');
      if (max === null) break;
      const prefix = max > 255 ? 2 : 1;
      const head = def.slice(0, 6);
      if (
        spec.kind === 'text' &&
        column.charset &&
        UTF8.has(column.charset) &&
        !/^(binary|varbin|uuid|inet|vector)/.test(def)
      ) {
        return { k: 'text', prefix };
      }
      if (spec.kind === 'binary' && head === 'varbin') return { k: 'bytes', prefix, pad: 0 };
      const m = /^binary\((\d+)\)$/.exec(def);
      if (spec.kind === 'binary' && m) return { k: 'bytes', prefix, pad: Number(m[1]) };
      break;
    }
    case T.TINY_BLOB:
    case T.MEDIUM_BLOB:
    case T.LONG_BLOB:
    case T.BLOB: {
      const prefix = num(meta, 'length_size');
      if (prefix === null || prefix < 1 || prefix > 4) break;
      if (column.charset === null && spec.kind === 'binary') return { k: 'bytes', prefix, pad: 0 };
      if (column.charset && UTF8.has(column.charset) && spec.kind === 'text') return { k: 'text', prefix };
      break;
    }
  }
  return { k: 'zongji' };
}

/** The cell readers of one table map, in column order. */
export function cellReaders(
  specs: readonly ColumnSpec[],
  columns: readonly ColumnInfo[],
  schemas: readonly ColumnSchema[],
): CellReader[] {
  return specs.map((spec, i) => {
    const column = columns[i]!;
    const schema = schemas[i]!;
    return { spec, column, schema, fast: fastOf(spec, column, schema) };
  });
}

/**
 * Text is built as ASCII bytes in one scratch buffer and read out as one flat string (Node's latin1Slice):
 * measured ~2x faster than a template of padded pieces (each piece a string, each join another) on DATETIME(6).
 */
const TEXT = new Uint8Array(128);
const latin1Slice = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string;
const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/** Writes `v` (an integer in [0, 10^width)) as exactly `width` digits ending before `end`. */
function digitsAt(end: number, v: number, width: number): void {
  for (let k = 0; k < width; k++) {
    const q = (v / 10) | 0;
    TEXT[end - 1 - k] = 48 + v - q * 10;
    v = q;
  }
}

/** Whether `v` fits `width` decimal digits (else the cell is not what the type says: left to the slow path). */
function fits(v: number, width: number): boolean {
  return Number.isInteger(v) && v >= 0 && v < POW10[width]!;
}

function pad(n: number, width: number): string {
  const s = String(n);
  return s.length >= width ? s : '0'.repeat(width - s.length) + s;
}

/** Fractional seconds of DATETIME2/TIMESTAMP2: ceil(dec/2) big-endian bytes (odd dec: tenfold), as a number. */
function fractionValue(buf: Buffer, at: number, dec: number): number {
  let v = buf.readIntBE(at, (dec + 1) >> 1);
  if (dec % 2 !== 0) v /= 10;
  return v < 0 ? -v : v;
}

/**
 * "YYYY-MM-DD hh:mm:ss[.f]" as zongji prints it (a year above 9999 cut to its last four digits), f with exactly
 * `dec` digits; a fraction that does not fit them gets zongji's padding (the value is broken anyway).
 */
function dateTimeText(y: number, mo: number, d: number, h: number, mi: number, s: number, f: number, dec: number) {
  digitsAt(4, y % 10000, 4);
  TEXT[4] = 45;
  digitsAt(7, mo, 2);
  TEXT[7] = 45;
  digitsAt(10, d, 2);
  TEXT[10] = 32;
  digitsAt(13, h, 2);
  TEXT[13] = 58;
  digitsAt(16, mi, 2);
  TEXT[16] = 58;
  digitsAt(19, s, 2);
  if (dec === 0) return latin1Slice.call(TEXT, 0, 19);
  if (!fits(f, dec)) return `${latin1Slice.call(TEXT, 0, 19)}.${pad(f, dec)}`;
  TEXT[19] = 46;
  digitsAt(20 + dec, f, dec);
  return latin1Slice.call(TEXT, 0, 20 + dec);
}

/** Days since 1970-01-01 → [year, month, day] (proleptic Gregorian; H. Hinnant's civil_from_days). */
function civil(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

const DIG2BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
/** Scratch copy of a DECIMAL cell (its sign bit is flipped; the packet must not be changed). At most 30 bytes. */
const SCRATCH = Buffer.alloc(64);

let decimalEnd = 0;

/** End of the text written to TEXT so far (decimalText's integral groups). */
let textEnd = 0;

/**
 * Appends one integral digit group of a DECIMAL at `textEnd`: groups before the first non-zero one print nothing
 * (leading zeros), that one prints without padding, later ones with. False if `v` does not fit `width` digits.
 */
function integralGroup(v: number, width: number, signEnd: number): boolean {
  if (!fits(v, width)) return false;
  let w = width;
  if (textEnd === signEnd) {
    if (v === 0) return true;
    w = 1;
    while (w < width && v >= POW10[w]!) w++;
  }
  digitsAt(textEnd + w, v, w);
  textEnd += w;
  return true;
}

/**
 * DECIMAL(p,s) binary form (strings/decimal.c decimal2bin) → the exact text zongji gives (leading zeros of the
 * integral part dropped, at least one digit; exactly s fractional digits); sets `decimalEnd`. A digit group out of
 * its range (a broken cell) gives null.
 */
function decimalText(buf: Buffer, at: number, precision: number, scale: number): string | null {
  const integral = precision - scale;
  const uInt = Math.floor(integral / 9);
  const uFrac = Math.floor(scale / 9);
  const cInt = integral - uInt * 9;
  const cFrac = scale - uFrac * 9;
  const size = uInt * 4 + DIG2BYTES[cInt]! + uFrac * 4 + DIG2BYTES[cFrac]!;
  decimalEnd = size;
  buf.copy(SCRATCH, 0, at, at + size);
  const positive = (SCRATCH[0]! & 0x80) !== 0;
  SCRATCH[0] = SCRATCH[0]! ^ 0x80;
  const mask = positive ? 0 : -1;
  let p = 0;
  let n = 0;
  if (!positive) TEXT[n++] = 45;
  const signEnd = n;
  const cIntSize = DIG2BYTES[cInt]!;
  let ok = true;
  textEnd = n;
  if (cIntSize > 0) {
    ok = integralGroup(SCRATCH.readIntBE(0, cIntSize) ^ mask, cInt, signEnd);
    p += cIntSize;
  }
  for (let i = 0; i < uInt; i++) {
    ok = integralGroup(SCRATCH.readInt32BE(p) ^ mask, 9, signEnd) && ok;
    p += 4;
  }
  n = textEnd;
  if (n === signEnd) TEXT[n++] = 48;
  if (scale > 0) {
    TEXT[n++] = 46;
    for (let i = 0; i < uFrac; i++) {
      const v = SCRATCH.readInt32BE(p) ^ mask;
      ok = fits(v, 9) && ok;
      if (ok) digitsAt(n + 9, v, 9);
      n += 9;
      p += 4;
    }
    const cFracSize = DIG2BYTES[cFrac]!;
    if (cFracSize > 0) {
      const v = SCRATCH.readIntBE(p, cFracSize) ^ mask;
      ok = fits(v, cFrac) && ok;
      if (ok) digitsAt(n + cFrac, v, cFrac);
      n += cFrac;
    }
  }
  return ok ? latin1Slice.call(TEXT, 0, n) : null;
}

/** A plain copy (never a Buffer view); BINARY(n) padded with zero bytes to n (or cut to n, as zongji does). */
function copyBytes(buf: Buffer, at: number, len: number, padTo: number): Uint8Array {
  const size = padTo > 0 ? padTo : len;
  const out = new Uint8Array(size);
  out.set(new Uint8Array(buf.buffer, buf.byteOffset + at, Math.min(len, size)));
  return out;
}

function lengthPrefix(buf: Buffer, at: number, size: number): number {
  return size === 1 ? buf[at]! : size === 2 ? buf.readUInt16LE(at) : buf.readUIntLE(at, size);
}

/** End of the cell `readFast` just read (one module variable: no result object per cell). */
let cellEnd = 0;

/** Reads one non-null cell at `at` with its fast reader; sets `cellEnd`. */
function readFast(r: CellReader, buf: Buffer, at: number): Value {
  const f = r.fast;
  switch (f.k) {
    case 'int': {
      cellEnd = at + f.size;
      if (f.size === 8) return f.unsigned ? buf.readBigUInt64LE(at) : buf.readBigInt64LE(at);
      return BigInt(f.unsigned ? buf.readUIntLE(at, f.size) : buf.readIntLE(at, f.size));
    }
    case 'float': {
      cellEnd = at + 4;
      const n = buf.readFloatLE(at);
      return Number.isNaN(n) ? normalizeValue(r.spec, n) : float32Shortest(n);
    }
    case 'double': {
      cellEnd = at + 8;
      const n = buf.readDoubleLE(at);
      return Number.isNaN(n) ? normalizeValue(r.spec, n) : Object.is(n, -0) ? 0 : n;
    }
    case 'decimal': {
      const text = decimalText(buf, at, f.precision, f.scale);
      cellEnd = at + decimalEnd;
      return text ?? normalizeValue(r.spec, 'broken'); // a broken cell: the VALUE error normalizeValue throws
    }
    case 'date': {
      const raw = buf.readUIntLE(at, 3);
      cellEnd = at + 3;
      digitsAt(4, ((raw >> 9) & 0x7fff) % 10000, 4);
      TEXT[4] = 45;
      digitsAt(7, (raw >> 5) & 0xf, 2);
      TEXT[7] = 45;
      digitsAt(10, raw & 0x1f, 2);
      return latin1Slice.call(TEXT, 0, 10);
    }
    case 'datetime': {
      const high = buf.readInt32BE(at);
      const low = buf.readInt32BE(at + 1);
      const ym = (high & 0x7fffc000) >> 14;
      const frac = f.dec > 0 ? fractionValue(buf, at + 5, f.dec) : 0;
      cellEnd = at + 5 + ((f.dec + 1) >> 1);
      const text = dateTimeText(
        Math.floor(ym / 13),
        ym % 13,
        (low >> 17) & 0x1f,
        (low >> 12) & 0x1f,
        (low >> 6) & 0x3f,
        low & 0x3f,
        frac,
        f.dec,
      );
      return withFsp(text, r.spec.fsp);
    }
    case 'timestamp': {
      const secs = buf.readInt32BE(at);
      const frac = f.dec > 0 ? fractionValue(buf, at + 4, f.dec) : 0;
      cellEnd = at + 4 + ((f.dec + 1) >> 1);
      let text: string;
      if (secs === 0 && frac === 0) {
        text = dateTimeText(0, 0, 0, 0, 0, 0, 0, f.dec);
      } else {
        const days = Math.floor(secs / 86400);
        const s = secs - days * 86400;
        const [y, mo, d] = civil(days);
        text = dateTimeText(y, mo, d, Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60, frac, f.dec);
      }
      return withFsp(text, r.spec.fsp);
    }
    case 'text': {
      const len = lengthPrefix(buf, at, f.prefix);
      const start = at + f.prefix;
      cellEnd = start + len;
      return buf.toString('utf8', start, start + len);
    }
    case 'bytes': {
      const len = lengthPrefix(buf, at, f.prefix);
      cellEnd = at + f.prefix + len;
      return copyBytes(buf, at + f.prefix, len, f.pad);
    }
    case 'zongji':
      throw new Error('readFast: not a fast column');
  }
}

/** Everything a table's rows are read with. */
export interface RowReader {
  readonly cells: readonly CellReader[];
  readonly readValue: ReadMysqlValue;
  /** zongji's table-map entry and instance, for its reader's fallbacks and error messages. */
  readonly tableMap: unknown;
  readonly zongji: unknown;
}

function bitSet(bits: Uint8Array, i: number): boolean {
  return (bits[i >> 3]! & (1 << (i & 7))) !== 0;
}

function countBits(bits: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < bits.length; i++) {
    let b = bits[i]!;
    while (b) {
      n += b & 1;
      b >>= 1;
    }
  }
  return n;
}

/**
 * Reads one row image at the parser's offset (its null bitmap, then the present non-null cells), as zongji's
 * readRow does; a column absent from `present` is null (never the case with binlog_row_image=FULL).
 */
export function readRowValues(r: RowReader, p: RowParser, present: Uint8Array): Value[] {
  const cells = r.cells;
  const buf = p._buffer;
  const nullBytes = (countBits(present) + 7) >> 3;
  const nullsAt = p._offset;
  const out = new Array<Value>(cells.length);
  let off = nullsAt + nullBytes;
  for (let i = 0, n = 0; i < cells.length; i++) {
    if (!bitSet(present, i)) {
      out[i] = null;
      continue;
    }
    const c = cells[i]!;
    const isNull = (buf[nullsAt + (n >> 3)]! & (1 << (n & 7))) !== 0;
    n++;
    if (isNull) {
      out[i] = null;
    } else if (c.fast.k !== 'zongji') {
      out[i] = readFast(c, buf, off);
      off = cellEnd;
    } else {
      p._offset = off;
      out[i] = normalizeValue(c.spec, r.readValue(p, c.column, c.schema, r.tableMap, r.zongji));
      off = p._offset;
    }
  }
  p._offset = off;
  return out;
}

/** One row image of an insert/delete, or the before/after pair of an update. */
export function readRowImage(
  r: RowReader,
  p: RowParser,
  op: 'insert' | 'delete' | 'update',
  present: Uint8Array,
  present2: Uint8Array | undefined,
): RowImage {
  if (op === 'insert') return { before: null, after: readRowValues(r, p, present) };
  if (op === 'delete') return { before: readRowValues(r, p, present), after: null };
  const before = readRowValues(r, p, present);
  return { before, after: readRowValues(r, p, present2 ?? present) };
}
