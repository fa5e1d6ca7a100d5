/**
 * Reading only some columns of a rows entry (codec.ts layout), for indexes that need row keys but not row
 * images: the other values are skipped without being decoded, so no strings or bigints are made for them. Pure:
 * no I/O. Checks as decodeEntry does (bounds, tags, counts, trailing bytes), except that skipped text is not
 * checked for UTF-8.
 */
import { ByteReader } from './codec-bytes.ts';
import { CODEC_VERSIONS, readRowsHead } from './codec.ts';
import { CorruptionError } from '../core/errors.ts';
import type { Column, RowOp, Value } from './record.ts';

const KIND_ROWS = 1;

export interface RowsHeader {
  readonly source: string;
  readonly seq: bigint;
  readonly txId: string;
  readonly schema: string;
  readonly table: string;
  readonly op: RowOp;
  readonly columns: readonly Column[];
  readonly pk: readonly string[];
  /** Number of rows. */
  readonly rows: number;
}

/** Whether an encoding is a rows entry (version and kind bytes only). */
export function isRowsEncoding(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && CODEC_VERSIONS.includes(bytes[0] as number) && bytes[1] === KIND_ROWS;
}

/**
 * Scans a rows entry. `pick` sees the header and returns the indexes of the columns to decode (or null for none);
 * `onRow(i, before, after)` then gets, for each row, the picked values of each present image in pick order, or
 * null for an absent image. The arrays are reused between rows: copy what must outlive the call. Errors the
 * callbacks throw pass through unchanged.
 */
export function scanRows(
  bytes: Uint8Array,
  pick: (h: RowsHeader) => readonly number[] | null,
  onRow: (i: number, before: readonly Value[] | null, after: readonly Value[] | null) => void,
): RowsHeader {
  const r = new ByteReader(bytes);
  // Set while a callback runs: what it throws passes through as it is.
  let inCallback = false;
  try {
    if (!isRowsEncoding(bytes)) r.fail('not a rows entry');
    r.pos = 2;
    const source = r.str('source');
    const seq = r.int('seq');
    const txId = r.str('txId');
    const { schema, table, op, columns, pk, rowCount: rows } = readRowsHead(r);
    const h: RowsHeader = { source, seq, txId, schema, table, op, columns, pk, rows };
    inCallback = true;
    const want = pick(h) ?? [];
    inCallback = false;
    // slot[c] = position of column c in the picked values, or -1.
    const slot = new Int32Array(columns.length + 1).fill(-1);
    want.forEach((c, k) => {
      if (c >= 0 && c < columns.length) slot[c] = k;
    });
    const before = new Array<Value>(want.length).fill(null);
    const after = new Array<Value>(want.length).fill(null);
    const image = (out: Value[]) => {
      out.fill(null);
      const n = r.count('value count', 1);
      for (let c = 0; c < n; c++) {
        const k = c < columns.length ? (slot[c] as number) : -1;
        if (k >= 0) out[k] = r.value();
        else r.skipValue();
      }
    };
    for (let i = 0; i < rows; i++) {
      const flags = r.u8('row flags');
      if (flags > 3) r.fail(`bad row flags ${flags}`);
      if (flags & 1) image(before);
      if (flags & 2) image(after);
      inCallback = true;
      onRow(i, flags & 1 ? before : null, flags & 2 ? after : null);
      inCallback = false;
    }
    // The optional rows flags byte of a version-2 entry (codec.ts: 1 = fkChecksOff).
    if ((bytes[0] as number) >= 2 && r.pos === bytes.length - 1 && bytes[r.pos] === 1) r.pos++;
    if (r.pos !== bytes.length) r.fail(`${bytes.length - r.pos} trailing bytes after the entry`);
    return h;
  } catch (err) {
    if (inCallback || err instanceof CorruptionError) throw err;
    throw new CorruptionError(`entry encoding: cannot decode (${(err as Error).message})`, { offset: r.pos }, err);
  }
}
