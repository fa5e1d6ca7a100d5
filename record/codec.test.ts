import { describe, expect, it } from 'vitest';
import { CODEC_VERSION, decodeEntry, encodeEntry, peekEntryKind } from './codec.ts';
import { CorruptionError } from '../core/errors.ts';
import type { Column, CommitEntry, DdlEntry, Entry, RowsEntry, Value } from './record.ts';
import { prng } from '../test/fixtures/prng.ts';

const columns: Column[] = [
  { name: 'id', type: 'bigint', unsigned: true, columnType: 'bigint(20) unsigned' },
  { name: 'n', type: 'bigint' },
  { name: 'f', type: 'double', unsigned: false },
  { name: 's', type: 'varchar' },
  { name: 'b', type: 'blob' },
];

const rowsEntry: RowsEntry = {
  kind: 'rows',
  source: 'src1',
  seq: 42n,
  txId: '0-1-77',
  schema: 'shop',
  table: 'orders',
  op: 'update',
  columns,
  pk: ['id'],
  rows: [
    {
      before: [18446744073709551615n, -9223372036854775808n, Number.NaN, 'grüße 🎉', new Uint8Array(0)],
      after: [0n, 9223372036854775807n, -0, '', new Uint8Array([0, 0, 255, 0])],
    },
    { before: [1n, -1n, Number.POSITIVE_INFINITY, 'x'.repeat(1000), null], after: null },
    { before: null, after: [2n ** 70n, -(2n ** 90n), Number.NEGATIVE_INFINITY, '日本語'.repeat(50), null] },
  ],
};

const ddlEntry: DdlEntry = {
  kind: 'ddl',
  source: 'src1',
  seq: 45n,
  txId: 'mysql-bin.000003:1234',
  schema: '',
  tables: [
    { schema: 'shop', table: 'orders' },
    { schema: 'a', table: 'b' },
  ],
  sql: 'ALTER TABLE shop.orders ADD COLUMN note TEXT /* ✓ */',
};

const commitEntry: CommitEntry = {
  kind: 'commit',
  source: 'src1',
  seq: 46n,
  txId: '0-1-77',
  position: { kind: 'mysql', binlog: { file: 'mysql-bin.000003', offset: 18446744073709551615n }, gtid: '0-1-77' },
  commitTimeUs: 1_700_000_000_000_000n,
  captureTimeUs: 1_700_000_000_000_123n,
  rowCount: 3n,
  phase: 'baseline-end',
};

function roundTrip(e: Entry): Entry {
  return decodeEntry(encodeEntry(e));
}

describe('codec', () => {
  it('round-trips rows, ddl and commit entries exactly', () => {
    expect(roundTrip(rowsEntry)).toEqual(rowsEntry);
    expect(roundTrip(ddlEntry)).toEqual(ddlEntry);
    expect(roundTrip(commitEntry)).toEqual(commitEntry);
    const noGtid: CommitEntry = {
      ...commitEntry,
      position: { kind: 'mysql', binlog: { file: 'b.000001', offset: 4n } },
    };
    const back = roundTrip(noGtid) as CommitEntry;
    expect(back).toEqual(noGtid);
    expect('gtid' in back.position).toBe(false);
  });

  it('keeps NaN, -0 and value types distinct', () => {
    const back = roundTrip(rowsEntry) as RowsEntry;
    const b0 = back.rows[0]?.before as Value[];
    const a0 = back.rows[0]?.after as Value[];
    expect(Number.isNaN(b0[2])).toBe(true);
    expect(Object.is(a0[2], -0)).toBe(true);
    expect(b0[4]).toBeInstanceOf(Uint8Array);
    expect((b0[4] as Uint8Array).length).toBe(0);
    expect(a0[4]).toEqual(new Uint8Array([0, 0, 255, 0]));
    expect(typeof a0[0]).toBe('bigint');
    expect('columnType' in (back.columns[1] as Column)).toBe(false);
    expect('unsigned' in (back.columns[1] as Column)).toBe(false);
    expect(back.columns[2]?.unsigned).toBe(false);
  });

  it('starts with the format version and peeks the kind', () => {
    const bytes = encodeEntry(commitEntry);
    // Version 1 unless the entry carries a field version-1 readers do not know (then 2; a non-MySQL position: 3).
    expect(bytes[0]).toBe(1);
    expect(
      encodeEntry({ ...commitEntry, copied: [{ schema: 'a', table: 'b', at: { file: 'f.1', offset: 4n } }] })[0],
    ).toBe(2);
    expect(encodeEntry({ ...rowsEntry, fkChecksOff: true })[0]).toBe(2);
    expect(peekEntryKind(encodeEntry({ ...rowsEntry, fkChecksOff: true }))).toBe('rows');
    expect(peekEntryKind(bytes)).toBe('commit');
    expect(peekEntryKind(encodeEntry(rowsEntry))).toBe('rows');
    expect(peekEntryKind(encodeEntry(ddlEntry))).toBe('ddl');
  });

  it('round-trips a commit with copy windows; one without keeps the old encoding', () => {
    const copied: CommitEntry = {
      ...commitEntry,
      phase: 'stream',
      copied: [
        { schema: 'zoo', table: 'mv', at: { file: 'mysql-bin.000004', offset: 1234n } },
        { schema: 'z`o', table: 'ü', at: { file: 'mysql-bin.000005', offset: 4n } },
      ],
    };
    const bytes = encodeEntry(copied);
    expect(decodeEntry(bytes)).toEqual(copied);
    for (let n = 0; n < bytes.length; n++) expect(() => decodeEntry(bytes.subarray(0, n))).toThrow(CorruptionError);
    expect(encodeEntry({ ...commitEntry, copied: [] })).toEqual(encodeEntry(commitEntry));
    expect(roundTrip({ ...commitEntry, copied: [] })).toEqual(commitEntry);
  });

  it('refuses an unknown version, unknown kind and trailing bytes', () => {
    const bytes = encodeEntry(ddlEntry);
    const v4 = bytes.slice();
    v4[0] = CODEC_VERSION + 1;
    expect(() => decodeEntry(v4)).toThrow(/unknown format version 4/);
    // The version-2 fields are refused in a version-1 entry: its rows tail is trailing bytes, its phase byte
    // with the copied flag an unknown phase.
    const fk = encodeEntry({ ...rowsEntry, fkChecksOff: true });
    const fk1 = fk.slice();
    fk1[0] = 1;
    expect(() => decodeEntry(fk1)).toThrow(/trailing bytes/);
    const cp = encodeEntry({ ...commitEntry, copied: [{ schema: 'a', table: 'b', at: { file: 'f.1', offset: 4n } }] });
    const cp1 = cp.slice();
    cp1[0] = 1;
    expect(() => decodeEntry(cp1)).toThrow(CorruptionError);
    const k9 = bytes.slice();
    k9[1] = 9;
    expect(() => decodeEntry(k9)).toThrow(CorruptionError);
    const extra = new Uint8Array(bytes.length + 1);
    extra.set(bytes);
    expect(() => decodeEntry(extra)).toThrow(/trailing bytes/);
    expect(() => decodeEntry(new Uint8Array(0))).toThrow(CorruptionError);
  });

  it('throws CorruptionError for every truncation of a valid encoding', () => {
    for (const e of [rowsEntry, ddlEntry, commitEntry]) {
      const bytes = encodeEntry(e);
      for (let n = 0; n < bytes.length; n++) {
        expect(() => decodeEntry(bytes.subarray(0, n)), `${e.kind} cut at ${n}`).toThrow(CorruptionError);
      }
    }
  });

  it('never throws anything but CorruptionError on damaged input', () => {
    const rnd = prng(7);
    const base = encodeEntry(rowsEntry);
    for (let i = 0; i < 3000; i++) {
      const b = base.slice();
      const flips = 1 + Math.floor(rnd() * 4);
      for (let f = 0; f < flips; f++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      try {
        decodeEntry(b);
      } catch (err) {
        expect(err).toBeInstanceOf(CorruptionError);
      }
    }
    for (let i = 0; i < 1000; i++) {
      const b = new Uint8Array(Math.floor(rnd() * 64));
      for (let j = 0; j < b.length; j++) b[j] = Math.floor(rnd() * 256);
      if (b.length > 0) b[0] = 1;
      try {
        decodeEntry(b);
      } catch (err) {
        expect(err).toBeInstanceOf(CorruptionError);
      }
    }
  });

  it('refuses invalid UTF-8 in strings', () => {
    const bytes = encodeEntry({ ...ddlEntry, sql: 'abc' });
    // sql is the last field: the final three bytes are its text.
    bytes[bytes.length - 2] = 0xff;
    expect(() => decodeEntry(bytes)).toThrow(/not valid UTF-8/);
  });

  it('round-trips randomized entries (property style, seeded)', () => {
    const rnd = prng(12345);
    const int = (n: number) => Math.floor(rnd() * n);
    const chars = ['a', 'Z', '0', ' ', 'é', 'ß', '€', '日', '🎉', '😀', '\u0000', '\n', '"'];
    const randStr = (max: number) => {
      let s = '';
      const n = int(max);
      for (let i = 0; i < n; i++) s += chars[int(chars.length)];
      return s;
    };
    const bigs = [
      0n,
      -1n,
      1n,
      2n ** 31n - 1n,
      -(2n ** 31n),
      2n ** 31n,
      -(2n ** 31n) - 1n,
      2n ** 63n - 1n,
      -(2n ** 63n),
      2n ** 63n,
      2n ** 64n - 1n,
      2n ** 64n,
      -(2n ** 64n),
      10n ** 40n,
    ];
    const randBig = (): bigint => {
      const r = int(4);
      if (r === 0) return bigs[int(bigs.length)] as bigint;
      if (r === 1) return BigInt(int(1000)) - 500n;
      const hi = BigInt(int(2 ** 32));
      const lo = BigInt(int(2 ** 32));
      const v = (hi << 32n) | lo;
      return r === 2 ? v : BigInt.asIntN(64, v);
    };
    const floats = [0, -0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.MIN_VALUE, 1e308];
    const randValue = (): Value => {
      switch (int(6)) {
        case 0:
          return null;
        case 1:
          return randBig();
        case 2:
          return int(3) === 0 ? (floats[int(floats.length)] as number) : (rnd() - 0.5) * 10 ** int(30);
        case 3:
          return randStr(int(3) === 0 ? 200 : 10);
        case 4: {
          const b = new Uint8Array(int(40));
          for (let i = 0; i < b.length; i++) b[i] = int(3) === 0 ? 0 : int(256);
          return b;
        }
        default:
          return randBig();
      }
    };
    for (let iter = 0; iter < 300; iter++) {
      let e: Entry;
      const base = { source: randStr(8), seq: randBig(), txId: randStr(20) };
      const k = int(3);
      if (k === 0) {
        const nCols = int(8);
        const cols: Column[] = [];
        for (let c = 0; c < nCols; c++) {
          const col: { name: string; type: string; columnType?: string; unsigned?: boolean } = {
            name: randStr(10),
            type: randStr(6),
          };
          if (int(2)) col.columnType = randStr(20);
          if (int(2)) col.unsigned = int(2) === 1;
          cols.push(col);
        }
        const op = (['insert', 'update', 'delete'] as const)[int(3)] ?? 'insert';
        const rows = [];
        for (let r = int(20); r > 0; r--) {
          const img = () => Array.from({ length: nCols }, randValue);
          rows.push({ before: op === 'insert' ? null : img(), after: op === 'delete' ? null : img() });
        }
        e = { kind: 'rows', ...base, schema: randStr(10), table: randStr(10), op, columns: cols, pk: [], rows };
      } else if (k === 1) {
        const tables = Array.from({ length: int(3) }, () => ({ schema: randStr(5), table: randStr(5) }));
        e = { kind: 'ddl', ...base, schema: randStr(5), tables, sql: randStr(300) };
      } else {
        const gtid = int(2) ? { gtid: randStr(30) } : {};
        e = {
          kind: 'commit',
          ...base,
          position: { kind: 'mysql', binlog: { file: randStr(12), offset: randBig() }, ...gtid },
          commitTimeUs: randBig(),
          captureTimeUs: randBig(),
          rowCount: randBig(),
          phase: (['baseline', 'baseline-end', 'stream'] as const)[int(3)] ?? 'stream',
        };
      }
      const bytes = encodeEntry(e);
      expect(decodeEntry(bytes)).toEqual(e);
      // A cut anywhere must be refused.
      const cut = int(bytes.length);
      expect(() => decodeEntry(bytes.subarray(0, cut))).toThrow(CorruptionError);
    }
  });

  it('encodes a large transaction quickly and compactly', () => {
    const cols: Column[] = [
      { name: 'id', type: 'int' },
      { name: 'a', type: 'varchar' },
      { name: 'b', type: 'decimal' },
      { name: 'c', type: 'datetime' },
      { name: 'd', type: 'bigint' },
    ];
    const rows = Array.from({ length: 100_000 }, (_, i) => ({
      before: null,
      after: [BigInt(i), `name-${i}`, '12345.67', '2024-01-02 03:04:05.000000', BigInt(i) * 1_000_000_007n] as Value[],
    }));
    const e: RowsEntry = {
      kind: 'rows',
      source: 's',
      seq: 1n,
      txId: 't',
      schema: 'bench',
      table: 'bulk',
      op: 'insert',
      columns: cols,
      pk: ['id'],
      rows,
    };
    const t0 = performance.now();
    const bytes = encodeEntry(e);
    const t1 = performance.now();
    const back = decodeEntry(bytes) as RowsEntry;
    const t2 = performance.now();
    expect(back.rows.length).toBe(100_000);
    expect(back.rows[99_999]).toEqual(rows[99_999]);
    expect(bytes.length).toBeLessThan(100_000 * 70);
    // Generous bounds: this guards against accidental quadratic behaviour, not a benchmark.
    expect(t1 - t0).toBeLessThan(2000);
    expect(t2 - t1).toBeLessThan(2000);
  });
});

describe('decoding a table’s column list again', () => {
  const decodeRows = (e: RowsEntry) => decodeEntry(encodeEntry(e)) as RowsEntry;

  it('hands out the same list for entries of a table with the same columns', () => {
    const a = decodeRows({ ...rowsEntry, table: 'cols_same' });
    const b = decodeRows({ ...rowsEntry, table: 'cols_same', seq: 43n });
    expect(b.columns).toBe(a.columns);
    expect(b.columns).toEqual(columns);
  });

  it('decodes a changed list (an ALTER) and the list of another table anew', () => {
    const a = decodeRows({ ...rowsEntry, table: 'cols_alter' });
    const altered: Column[] = [...columns.slice(0, 4), { name: 'renamed', type: 'blob' }];
    const b = decodeRows({ ...rowsEntry, table: 'cols_alter', columns: altered, seq: 43n });
    expect(b.columns).not.toBe(a.columns);
    expect(b.columns).toEqual(altered);
    expect(b.rows).toEqual(rowsEntry.rows);
    const other = decodeRows({ ...rowsEntry, table: 'cols_other' });
    expect(other.columns).not.toBe(a.columns);
    expect(other.columns).toEqual(columns);
  });

  it('still refuses an entry cut inside a list it has seen', () => {
    const bytes = encodeEntry({ ...rowsEntry, table: 'cols_cut' });
    decodeEntry(bytes);
    // A few bytes past the table name: inside the column list.
    const at = Buffer.from(bytes).indexOf('cols_cut') + 'cols_cut'.length + 6;
    const cut = bytes.subarray(0, at);
    expect(() => decodeEntry(cut)).toThrow(CorruptionError);
  });
});
