import type ZongJi from '@vlasky/zongji';
import type { ColumnInfo, ColumnSchema } from '@vlasky/zongji';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Value } from '../../record/record.ts';
import { cellReaders, type RowParser, readRowValues } from './row-image.ts';
import { columnSpec, normalizeValue } from './values.ts';
import { rowImagesAvailable, useRowImages, zongjiReadValue } from './zongji-rows.ts';

// zongji's own byte cursor, to run its reader on the same bytes.
const { Parser } = (await import(new URL('./lib/reader.js', import.meta.resolve('@vlasky/zongji')).href)) as {
  Parser: new () => RowParser & { append(b: Buffer): void };
};
const ZONGJI = { connection: { config: { dateStrings: true, timezone: 'Z' } }, emit: () => {} };

interface Col {
  readonly type: string; // COLUMN_TYPE text
  readonly code: number; // binlog type code
  readonly meta: Record<string, number>;
  readonly charset?: string | null;
  readonly encode: (v: never) => Buffer;
  readonly gen: fc.Arbitrary<unknown>;
}

const le = (n: number, size: number) => {
  const b = Buffer.alloc(size);
  b.writeUIntLE(n, 0, size);
  return b;
};
const be = (n: number, size: number) => {
  const b = Buffer.alloc(size);
  if (size > 0) b.writeUIntBE(n, 0, size);
  return b;
};
const frac = (f: number, dec: number) => be(dec % 2 ? f * 10 : f, (dec + 1) >> 1);

/** DECIMAL binary form (strings/decimal.c decimal2bin) of a sign and digit strings. */
function decimalBin(neg: boolean, int: string, fr: string, p: number, s: number): Buffer {
  const D = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
  const ip = p - s;
  const intDigits = int.padStart(ip, '0');
  const parts: Buffer[] = [];
  const lead = ip % 9;
  if (lead) parts.push(be(Number(intDigits.slice(0, lead)), D[lead]!));
  for (let i = lead; i < ip; i += 9) parts.push(be(Number(intDigits.slice(i, i + 9)), 4));
  const fd = fr.padEnd(s, '0');
  for (let i = 0; i + 9 <= s; i += 9) parts.push(be(Number(fd.slice(i, i + 9)), 4));
  const tail = s % 9;
  if (tail) parts.push(be(Number(fd.slice(s - tail)), D[tail]!));
  const b = Buffer.concat(parts);
  if (neg) for (let i = 0; i < b.length; i++) b[i] = b[i]! ^ 0xff;
  b[0] = b[0]! ^ 0x80;
  return b;
}

const digits = (max: number) => fc.stringMatching(new RegExp(`^[0-9]{0,${max}}$`));
const dt = fc.record({
  y: fc.integer({ min: 0, max: 9999 }),
  mo: fc.integer({ min: 0, max: 12 }),
  d: fc.integer({ min: 0, max: 31 }),
  h: fc.integer({ min: 0, max: 23 }),
  mi: fc.integer({ min: 0, max: 59 }),
  s: fc.integer({ min: 0, max: 59 }),
  f: fc.integer({ min: 0, max: 999999 }),
});
type Dt = { y: number; mo: number; d: number; h: number; mi: number; s: number; f: number };

function datetimeCol(dec: number): Col {
  return {
    type: dec ? `datetime(${dec})` : 'datetime',
    code: 18,
    meta: { decimals: dec },
    encode: (v: Dt) => {
      const packed = (((v.y * 13 + v.mo) * 32 + v.d) * 32 + v.h) * 4096 + v.mi * 64 + v.s + 0x8000000000;
      return Buffer.concat([be(packed, 5), frac(v.f % 10 ** dec, dec)]);
    },
    gen: dt,
  };
}

function timestampCol(dec: number): Col {
  return {
    type: dec ? `timestamp(${dec})` : 'timestamp',
    code: 17,
    meta: { decimals: dec },
    encode: (v: { secs: number; f: number }) => Buffer.concat([be(v.secs, 4), frac(v.f % 10 ** dec, dec)]),
    gen: fc.record({
      secs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 ** 31 - 1 })),
      f: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 999999 })),
    }),
  };
}

function decimalCol(p: number, s: number): Col {
  return {
    type: `decimal(${p},${s})`,
    code: 246,
    meta: { precision: p, decimals: s },
    encode: (v: { neg: boolean; i: string; f: string }) => decimalBin(v.neg, v.i, v.f, p, s),
    gen: fc.record({ neg: fc.boolean(), i: digits(p - s), f: digits(s) }),
  };
}

function intCol(type: string, code: number, size: number, unsigned: boolean): Col {
  const bits = BigInt(size * 8);
  return {
    type: unsigned ? `${type} unsigned` : type,
    code,
    meta: {},
    encode: (v: bigint) => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(BigInt.asUintN(64, v));
      return b.subarray(0, size);
    },
    gen: unsigned
      ? fc.bigInt({ min: 0n, max: 2n ** bits - 1n })
      : fc.bigInt({ min: -(2n ** (bits - 1n)), max: 2n ** (bits - 1n) - 1n }),
  };
}

/** FLOAT (code 4, 4 bytes) or DOUBLE (code 5, 8 bytes), little-endian IEEE 754. */
function ieeeCol(type: string, code: 4 | 5, gen: fc.Arbitrary<number>): Col {
  return {
    type,
    code,
    meta: {},
    encode: (v: number) => {
      const b = Buffer.alloc(code === 4 ? 4 : 8);
      if (code === 4) b.writeFloatLE(v);
      else b.writeDoubleLE(v);
      return b;
    },
    gen,
  };
}

function textCol(type: string, code: number, meta: Record<string, number>, prefix: number, charset: string | null) {
  const bytes = charset === null;
  return {
    type,
    code,
    meta,
    charset,
    encode: (v: string | Uint8Array) => {
      const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v);
      return Buffer.concat([le(b.length, prefix), b]);
    },
    gen: bytes ? fc.uint8Array({ maxLength: 20 }) : fc.string({ unit: 'binary', maxLength: 20 }),
  };
}

const COLUMNS: Col[] = [
  intCol('tinyint', 1, 1, false),
  intCol('tinyint', 1, 1, true),
  intCol('smallint', 2, 2, false),
  intCol('mediumint', 9, 3, false),
  intCol('mediumint', 9, 3, true),
  intCol('int', 3, 4, false),
  intCol('int', 3, 4, true),
  intCol('bigint', 8, 8, false),
  intCol('bigint', 8, 8, true),
  ieeeCol('float', 4, fc.float({ noNaN: true, noDefaultInfinity: true })),
  ieeeCol('double', 5, fc.double({ noNaN: true })),
  decimalCol(12, 2),
  decimalCol(65, 30),
  decimalCol(10, 0),
  decimalCol(5, 5),
  decimalCol(19, 10),
  {
    type: 'date',
    code: 10,
    meta: {},
    encode: (v: Dt) => le((v.y << 9) | (v.mo << 5) | v.d, 3),
    gen: dt,
  },
  datetimeCol(0),
  datetimeCol(3),
  datetimeCol(6),
  datetimeCol(1),
  timestampCol(0),
  timestampCol(6),
  timestampCol(5),
  textCol('varchar(64)', 15, { max_length: 256 }, 2, 'utf8mb4'),
  textCol('char(10)', 254, { max_length: 40 }, 1, 'utf8mb4'),
  textCol('varbinary(20)', 15, { max_length: 20 }, 1, null),
  textCol('binary(20)', 254, { max_length: 20 }, 1, null),
  textCol('text', 252, { length_size: 2 }, 2, 'utf8mb4'),
  textCol('longtext', 252, { length_size: 4 }, 4, 'utf8mb4'),
  textCol('blob', 252, { length_size: 2 }, 2, null),
  textCol('mediumblob', 252, { length_size: 3 }, 3, null),
  // Left to zongji's reader (checked through the same comparison): latin1 text, YEAR.
  textCol('varchar(10)', 15, { max_length: 10 }, 1, 'latin1'),
  { type: 'year', code: 13, meta: {}, encode: (v: number) => le(v, 1), gen: fc.integer({ min: 0, max: 255 }) },
];

function table(cols: readonly Col[]) {
  const specs = cols.map((c, i) => columnSpec(`c${i}`, c.type));
  const columns: ColumnInfo[] = cols.map((c, i) => ({
    name: `c${i}`,
    charset: c.charset ?? null,
    type: c.code,
    metadata: { ...c.meta },
  }));
  const schemas: ColumnSchema[] = cols.map((c, i) => ({
    COLUMN_NAME: `c${i}`,
    COLUMN_TYPE: c.type,
    COLLATION_NAME: null,
    CHARACTER_SET_NAME: c.charset ?? null,
    COLUMN_COMMENT: '',
  }));
  return { specs, columns, schemas, cells: cellReaders(specs, columns, schemas) };
}

/** The row image bytes: null bitmap, then the non-null cells. */
function image(cols: readonly Col[], values: readonly (unknown | null)[]): Buffer {
  const nulls = Buffer.alloc((cols.length + 7) >> 3);
  const cells: Buffer[] = [];
  values.forEach((v, i) => {
    if (v === null) nulls[i >> 3] = nulls[i >> 3]! | (1 << (i & 7));
    else cells.push(cols[i]!.encode(v as never));
  });
  return Buffer.concat([nulls, ...cells]);
}

/** What capture made of these bytes before: zongji's reader, then normalizeValue. */
function viaZongji(t: ReturnType<typeof table>, bytes: Buffer, cols: readonly Col[]): unknown[] {
  const p = new Parser();
  p.append(bytes);
  p._offset = (cols.length + 7) >> 3;
  const nullsAt = 0;
  return cols.map((_, i) => {
    if (bytes[nullsAt + (i >> 3)]! & (1 << (i & 7))) return null;
    try {
      return normalizeValue(t.specs[i]!, zongjiReadValue!(p, t.columns[i]!, t.schemas[i]!, {}, ZONGJI));
    } catch (err) {
      return { error: String(err) };
    }
  });
}

function viaRowImage(t: ReturnType<typeof table>, bytes: Buffer): { values: Value[] | { error: string }; end: number } {
  const p = new Parser();
  p.append(bytes);
  const present = Buffer.alloc((t.cells.length + 7) >> 3, 0xff);
  try {
    const values = readRowValues(
      { cells: t.cells, readValue: zongjiReadValue!, tableMap: {}, zongji: ZONGJI },
      p,
      present,
    );
    return { values, end: p._offset };
  } catch (err) {
    return { values: { error: String(err) }, end: p._offset };
  }
}

describe('row-image: row images read once into journal values', () => {
  it('finds zongji internals it wraps (a zongji upgrade that moves them must be noticed)', () => {
    expect(rowImagesAvailable).toBe(true);
    expect(typeof zongjiReadValue).toBe('function');
  });

  it('reads the common types itself, the rest through zongji', () => {
    const kinds = table(COLUMNS).cells.map((c) => c.fast.k);
    expect(kinds.filter((k) => k === 'zongji')).toHaveLength(2);
    expect(new Set(kinds)).toEqual(
      new Set(['int', 'float', 'double', 'decimal', 'date', 'datetime', 'timestamp', 'text', 'bytes', 'zongji']),
    );
  });

  it('gives exactly the values zongji + normalizeValue gave, for every column type, nulls included', () => {
    const t = table(COLUMNS);
    fc.assert(
      fc.property(fc.tuple(...COLUMNS.map((c) => fc.option(c.gen, { freq: 5 }))), (values) => {
        const bytes = image(COLUMNS, values);
        const want = viaZongji(t, bytes, COLUMNS);
        const got = viaRowImage(t, bytes);
        expect(got.values).toEqual(want);
        expect(got.end).toBe(bytes.length);
      }),
      { numRuns: 400 },
    );
  });

  it('edge values: zero timestamp and dates, extreme integers and decimals', () => {
    const cols = [COLUMNS[7]!, COLUMNS[8]!, COLUMNS[12]!, COLUMNS[16]!, COLUMNS[19]!, COLUMNS[22]!, COLUMNS[27]!];
    const t = table(cols);
    const rows: unknown[][] = [
      [-(2n ** 63n), 2n ** 64n - 1n, { neg: true, i: '9'.repeat(35), f: '9'.repeat(30) }, { y: 0, mo: 0, d: 0 }],
      [0n, 0n, { neg: false, i: '', f: '' }, { y: 9999, mo: 12, d: 31 }],
    ].map((r) => [...r, { y: 0, mo: 0, d: 0, h: 0, mi: 0, s: 0, f: 0 }, { secs: 0, f: 0 }, Buffer.from([1, 2])]);
    for (const r of rows) {
      const bytes = image(cols, r);
      const got = viaRowImage(t, bytes);
      expect(got.values).toEqual(viaZongji(t, bytes, cols));
      expect(got.end).toBe(bytes.length);
    }
    const first = viaRowImage(t, image(cols, rows[0]!)).values as Value[];
    expect(first.slice(0, 3)).toEqual([-(2n ** 63n), 2n ** 64n - 1n, `-${'9'.repeat(35)}.${'9'.repeat(30)}`]);
    expect(first.slice(4, 6)).toEqual(['0000-00-00 00:00:00.000000', '0000-00-00 00:00:00.000000']);
    expect(first[6]).toEqual(new Uint8Array([1, 2, ...new Array(18).fill(0)]));
  });

  it('a broken DECIMAL cell is the VALUE error it was, not a made-up number', () => {
    const t = table([COLUMNS[13]!]); // decimal(10,0): a 1-digit byte, then one 9-digit group of 4 bytes
    const bytes = Buffer.from([0, 0x80, 0xff, 0xff, 0xff, 0xff]);
    const got = viaRowImage(t, bytes).values;
    expect(got).toEqual({ error: expect.stringContaining('not an exact decimal string') });
    expect(viaZongji(t, bytes, [COLUMNS[13]!])).toEqual([got]);
  });

  it('is used only on a connection with dateStrings and timezone Z (the text row-image.ts writes)', () => {
    const z = (config: object | undefined) => ({ connection: config && { config } }) as unknown as ZongJi;
    expect(useRowImages(z({ dateStrings: true, timezone: 'Z' }), () => null)).toBe(true);
    expect(useRowImages(z({ dateStrings: true, timezone: 'local' }), () => null)).toBe(false);
    expect(useRowImages(z({ dateStrings: false, timezone: 'Z' }), () => null)).toBe(false);
    expect(useRowImages(z(undefined), () => null)).toBe(false); // before start(): no connection yet
  });
});
