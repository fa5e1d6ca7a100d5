import { describe, expect, it } from 'vitest';
import { CorruptionError } from '../core/errors.ts';
import { CODEC_VERSION, CODEC_VERSIONS, decodeEntry, encodeEntry } from './codec.ts';
import {
  binlogOf,
  comparePositions,
  formatPosition,
  type MysqlPosition,
  positionFromJson,
  positionToJson,
  samePosition,
  sequencePosition,
} from './position.ts';
import type { CommitEntry } from './record.ts';

const mysqlAt: MysqlPosition = { kind: 'mysql', binlog: { file: 'mysql-bin.000003', offset: 4242n }, gtid: '0-1-7' };
const commit: CommitEntry = {
  kind: 'commit',
  source: 'orders-db',
  seq: 7n,
  txId: '0-1-7',
  position: mysqlAt,
  commitTimeUs: 1700000000000000n,
  captureTimeUs: 1700000000000123n,
  rowCount: 3n,
  phase: 'stream',
};
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('engine-tagged positions', () => {
  it('encodes a MySQL commit byte for byte as before the engine tag existed (journals stay readable)', () => {
    // Golden bytes written by the build before sequence positions (commit 81eb3a8).
    expect(hex(encodeEntry(commit))).toBe(
      '0103096f72646572732d6462010e05302d312d3701106d7973716c2d62696e2e30303030303301a4420105302d312d370200401e1824' +
        '0a0600027b401e18240a0600010603',
    );
    const copied = {
      ...commit,
      copied: [{ schema: 'shop', table: 'orders', at: { file: 'mysql-bin.000003', offset: 100n } }],
    };
    expect(hex(encodeEntry(copied))).toBe(
      '0203096f72646572732d6462010e05302d312d3701106d7973716c2d62696e2e30303030303301a4420105302d312d370200401e1824' +
        '0a0600027b401e18240a0600010683010473686f70066f7264657273106d7973716c2d62696e2e30303030303301c801',
    );
  });

  it('round-trips a sequence position in a version-3 commit, copy windows included', () => {
    expect(CODEC_VERSION).toBe(3);
    expect(CODEC_VERSIONS).toEqual([1, 2, 3]);
    for (const value of [0n, 42n, 2n ** 64n - 1n, 2n ** 80n - 1n]) {
      const e: CommitEntry = { ...commit, position: sequencePosition('postgres', value) };
      const bytes = encodeEntry(e);
      expect(bytes[0]).toBe(3);
      expect(decodeEntry(bytes)).toEqual(e);
    }
    const withCopy: CommitEntry = {
      ...commit,
      position: sequencePosition('toy', 9n),
      copied: [{ schema: 's', table: 't', at: { file: 'x.1', offset: 1n } }],
    };
    expect(decodeEntry(encodeEntry(withCopy))).toEqual(withCopy);
  });

  it('refuses a truncated or damaged sequence commit, and a sequence position in an older version', () => {
    const bytes = encodeEntry({ ...commit, position: sequencePosition('oracle', 123456789n) });
    for (let n = 0; n < bytes.length; n++) expect(() => decodeEntry(bytes.subarray(0, n))).toThrow(CorruptionError);
    // The position kind byte follows version, kind, source (1 + 9), seq (2: tagged small int) and txId (1 + 5).
    const kindAt = 2 + 10 + 2 + 6;
    expect(bytes[kindAt]).toBe(2);
    const asV2 = bytes.slice();
    asV2[0] = 2;
    expect(() => decodeEntry(asV2)).toThrow(/unknown position kind 2 in a version 2 entry/);
    const unknownKind = bytes.slice();
    unknownKind[kindAt] = 9;
    expect(() => decodeEntry(unknownKind)).toThrow(/unknown position kind 9/);
    // A MySQL position in a version-3 entry is refused too: version 3 exists only for other engines.
    const mysqlV3 = encodeEntry(commit).slice();
    mysqlV3[0] = 3;
    expect(() => decodeEntry(mysqlV3)).toThrow(/unknown position kind 1 in a version 3 entry/);
    // An engine name that is not one.
    const bad = encodeEntry({ ...commit, position: { kind: 'sequence', engine: 'Bad Name', value: 1n } });
    expect(() => decodeEntry(bad)).toThrow(/bad position engine name/);
  });

  it('orders positions of one engine and refuses to compare two engines', () => {
    const a = sequencePosition('postgres', 10n);
    const b = sequencePosition('postgres', 11n);
    expect(comparePositions(a, b)).toBe(-1);
    expect(comparePositions(b, a)).toBe(1);
    expect(comparePositions(a, sequencePosition('postgres', 10n))).toBe(0);
    const later: MysqlPosition = { kind: 'mysql', binlog: { file: 'mysql-bin.000004', offset: 4n } };
    expect(comparePositions(mysqlAt, later)).toBe(-1);
    expect(() => comparePositions(a, sequencePosition('oracle', 10n))).toThrow(CorruptionError);
    expect(() => comparePositions(a, mysqlAt)).toThrow(/different engines .*"postgres" and "mysql"/);
    expect(samePosition(a, sequencePosition('postgres', 10n))).toBe(true);
    expect(samePosition(a, sequencePosition('mssql', 10n))).toBe(false);
    expect(samePosition(mysqlAt, { kind: 'mysql', binlog: { file: 'mysql-bin.000003', offset: 4242n } })).toBe(true);
    expect(binlogOf(a)).toBeNull();
    expect(binlogOf(mysqlAt)).toEqual(mysqlAt.binlog);
  });

  it('formats and JSON round-trips both shapes; refuses a malformed JSON position', () => {
    const s = sequencePosition('mssql', 2n ** 79n);
    expect(formatPosition(s)).toBe(`mssql:${2n ** 79n}`);
    expect(formatPosition(mysqlAt)).toBe('mysql-bin.000003:4242 (gtid 0-1-7)');
    expect(positionToJson(s)).toEqual({ kind: 'sequence', engine: 'mssql', value: `${2n ** 79n}` });
    expect(positionFromJson(JSON.parse(JSON.stringify(positionToJson(s))), 'x')).toEqual(s);
    expect(positionFromJson(positionToJson(mysqlAt), 'x')).toEqual(mysqlAt);
    expect(positionToJson(mysqlAt)).toEqual({ kind: 'mysql', file: 'mysql-bin.000003', offset: '4242', gtid: '0-1-7' });
    expect(() => positionFromJson({ kind: 'sequence', engine: 'pg', value: '-1' }, 'f')).toThrow(/decimal string/);
    expect(() => positionFromJson({ kind: 'sequence', value: '1' }, 'f')).toThrow(/no engine name/);
    expect(() => positionFromJson({ kind: 'oracle', value: '1' }, 'f')).toThrow(/kind must be/);
    expect(() => sequencePosition('pg', -1n)).toThrow(/negative/);
  });
});
