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
 * This module walks a row image (null bitmap, then the cells) and reads each cell; which columns take the fast path
 * is cell-readers.ts, the text of DATE/DATETIME/TIMESTAMP/DECIMAL cells cell-text.ts. The byte layouts are MySQL's
 * (sql/log_event.cc log_event_print_value, mysys/my_time.c, strings/decimal.c); the comparisons with zongji pin
 * them. Pure: no I/O.
 */
import type { ColumnInfo, ColumnSchema } from '@vlasky/zongji';
import type { RowImage, Value } from '../../record/record.ts';
import type { CellReader } from './cell-readers.ts';
import { dateText, datetime2Text, decimalText, fractionValue, timestampText } from './cell-text.ts';
import { float32Shortest, normalizeValue, withFsp } from './values.ts';

export { type CellReader, cellReaders } from './cell-readers.ts';

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
      cellEnd = at + f.size;
      return text ?? normalizeValue(r.spec, 'broken'); // a broken cell: the VALUE error normalizeValue throws
    }
    case 'date': {
      const raw = buf.readUIntLE(at, 3);
      cellEnd = at + 3;
      return dateText(raw);
    }
    case 'datetime': {
      const high = buf.readInt32BE(at);
      const low = buf.readInt32BE(at + 1);
      const frac = f.dec > 0 ? fractionValue(buf, at + 5, f.dec) : 0;
      cellEnd = at + 5 + ((f.dec + 1) >> 1);
      return withFsp(datetime2Text(high, low, frac, f.dec), r.spec.fsp);
    }
    case 'timestamp': {
      const secs = buf.readInt32BE(at);
      const frac = f.dec > 0 ? fractionValue(buf, at + 4, f.dec) : 0;
      cellEnd = at + 4 + ((f.dec + 1) >> 1);
      return withFsp(timestampText(secs, frac, f.dec), r.spec.fsp);
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
