import { describe, expect, it } from 'vitest';
import { decodeEntry, encodeEntry } from './codec.ts';
import { scanRows } from './codec-keys.ts';
import { CorruptionError } from '../core/errors.ts';
import type { RowsEntry } from './record.ts';

const entry: RowsEntry = {
  kind: 'rows',
  source: 's',
  seq: 7n,
  txId: '0-1-2',
  schema: 'fk',
  table: 'parent',
  op: 'delete',
  columns: [{ name: 'id', type: 'int' }],
  pk: ['id'],
  rows: [{ before: [5n], after: null }],
};

describe('rows entry fkChecksOff (the source ran the statement with foreign_key_checks = 0)', () => {
  it('round-trips, and an entry without it encodes exactly as before', () => {
    const plain = encodeEntry(entry);
    const flagged = encodeEntry({ ...entry, fkChecksOff: true });
    expect(flagged.length).toBe(plain.length + 1);
    // The same bytes after the version, which says 2: a version-1 reader refuses the entry by its version.
    expect([plain[0], flagged[0]]).toEqual([1, 2]);
    expect(Buffer.from(flagged.subarray(1, plain.length)).equals(Buffer.from(plain.subarray(1)))).toBe(true);
    expect(decodeEntry(flagged)).toEqual({ ...entry, fkChecksOff: true });
    expect(decodeEntry(plain)).toEqual(entry);
    expect('fkChecksOff' in decodeEntry(plain)).toBe(false);
  });

  it('the key scanner reads both; an unknown flags byte is corruption', () => {
    for (const e of [entry, { ...entry, fkChecksOff: true }]) {
      const keys: unknown[] = [];
      scanRows(
        encodeEntry(e),
        () => [0],
        (_i, before) => keys.push(before?.[0]),
      );
      expect(keys).toEqual([5n]);
    }
    const bad = encodeEntry({ ...entry, fkChecksOff: true });
    bad[bad.length - 1] = 2;
    expect(() => decodeEntry(bad)).toThrow(CorruptionError);
    expect(() =>
      scanRows(
        bad,
        () => null,
        () => {},
      ),
    ).toThrow(CorruptionError);
  });
});
