import { describe, expect, it } from 'vitest';
import { decodeEntry, encodeEntry } from './codec.ts';
import { isRowsEncoding, type RowsHeader, scanRows } from './codec-keys.ts';
import { CorruptionError } from '../core/errors.ts';
import type { Column, RowsEntry, Value } from './record.ts';

const columns: Column[] = [
  { name: 'id', type: 'bigint', unsigned: true, columnType: 'bigint(20) unsigned' },
  { name: 'n', type: 'bigint' },
  { name: 'f', type: 'double' },
  { name: 's', type: 'varchar' },
  { name: 'b', type: 'blob' },
];

const entry: RowsEntry = {
  kind: 'rows',
  source: 'src1',
  seq: 42n,
  txId: '0-1-77',
  schema: 'shop',
  table: 'orders',
  op: 'update',
  columns,
  pk: ['s', 'id'],
  rows: [
    {
      before: [18446744073709551615n, -9223372036854775808n, Number.NaN, 'grüße 🎉', new Uint8Array(0)],
      after: [0n, 9223372036854775807n, -0, '', new Uint8Array([0, 0, 255, 0])],
    },
    { before: [1n, -1n, Number.POSITIVE_INFINITY, 'x'.repeat(1000), null], after: null },
    { before: null, after: [2n ** 70n, -(2n ** 90n), Number.NEGATIVE_INFINITY, '日本語'.repeat(50), null] },
    { before: [5n, 5n, 1.5, null, new Uint8Array(300)], after: [5n, 6n, 2.5, 'k', null] },
  ],
};

function scanAll(bytes: Uint8Array, pick: number[]) {
  const rows: [Value[] | null, Value[] | null][] = [];
  let header: RowsHeader | undefined;
  const h = scanRows(
    bytes,
    (hh) => {
      header = hh;
      return pick;
    },
    (_i, b, a) => rows.push([b ? [...b] : null, a ? [...a] : null]),
  );
  expect(h).toBe(header);
  return { h, rows };
}

describe('scanRows', () => {
  it('gives the header and the picked values of each image, in pick order', () => {
    const bytes = encodeEntry(entry);
    expect(isRowsEncoding(bytes)).toBe(true);
    const { h, rows } = scanAll(bytes, [3, 0]);
    const { rows: _r, kind: _k, ...rest } = entry;
    expect(h).toEqual({ ...rest, rows: entry.rows.length });
    const pickOf = (img: readonly Value[] | null) => (img ? [img[3], img[0]] : null);
    expect(rows).toEqual(entry.rows.map((r) => [pickOf(r.before), pickOf(r.after)]));
    expect(scanAll(bytes, []).rows).toEqual(entry.rows.map((r) => [r.before ? [] : null, r.after ? [] : null]));
  });

  it('refuses what decodeEntry refuses: every truncation, a trailing byte, another kind', () => {
    const bytes = encodeEntry(entry);
    for (let n = 0; n < bytes.length; n++) {
      const cut = bytes.subarray(0, n);
      expect(() => decodeEntry(cut)).toThrow(CorruptionError);
      expect(() =>
        scanRows(
          cut,
          () => [0],
          () => undefined,
        ),
      ).toThrow(CorruptionError);
    }
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expect(() =>
      scanRows(
        longer,
        () => [0],
        () => undefined,
      ),
    ).toThrow(/trailing bytes/);
    const commit = encodeEntry({
      kind: 'commit',
      source: 's',
      seq: 1n,
      txId: 't',
      position: { kind: 'mysql', binlog: { file: 'b.000001', offset: 4n } },
      commitTimeUs: 1n,
      captureTimeUs: 1n,
      rowCount: 0n,
      phase: 'stream',
    });
    expect(isRowsEncoding(commit)).toBe(false);
    expect(() =>
      scanRows(
        commit,
        () => null,
        () => undefined,
      ),
    ).toThrow(/not a rows entry/);
  });

  it('lets errors of the callbacks through unchanged', () => {
    const bytes = encodeEntry(entry);
    const boom = new Error('boom');
    expect(() =>
      scanRows(
        bytes,
        () => [0],
        () => {
          throw boom;
        },
      ),
    ).toThrow(boom);
    expect(() =>
      scanRows(
        bytes,
        () => {
          throw boom;
        },
        () => undefined,
      ),
    ).toThrow(boom);
  });

  it('refuses an unknown value tag in a skipped column', () => {
    const bytes = encodeEntry({ ...entry, rows: [{ before: null, after: [1n, 2n, 1.5, 'x', null] }] });
    // The last value (null, tag 0) is the last byte: make it an unknown tag.
    const bad = bytes.slice();
    bad[bad.length - 1] = 9;
    expect(() =>
      scanRows(
        bad,
        () => [0],
        () => undefined,
      ),
    ).toThrow(/unknown value tag 9/);
  });
});
