import type mysql from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { Deadline } from './fence.ts';
import { formatPromotionPosition, readPosition, toSourcePosition } from './promote.ts';

/** A connection whose binlog end advances by `moves[i]` bytes during the i-th position read. */
function fakeConn(moves: number[]): mysql.Connection {
  let offset = 1000n;
  let gtidSeq = 10;
  let read = 0;
  let inRead = false;
  return {
    query: async (sql: string) => {
      if (sql === 'SHOW MASTER STATUS') {
        const row = { File: 'mysql-bin.000003', Position: String(offset) };
        if (!inRead) {
          inRead = true;
        } else {
          inRead = false;
          read++;
        }
        return [[row]];
      }
      // Between the two ends: a concurrent commit moves both the GTID and the end.
      const m = moves[read] ?? 0;
      if (m > 0) {
        offset += BigInt(m);
        gtidSeq++;
      }
      return [[{ g: `0-1-${gtidSeq}` }]];
    },
  } as unknown as mysql.Connection;
}

describe('readPosition', () => {
  it('reads file, offset and GTID at one point when nothing moves', async () => {
    const d = new Deadline(5000, 'x');
    expect(await readPosition(fakeConn([]), d)).toEqual({ gtid: '0-1-10', file: 'mysql-bin.000003', offset: 1000n });
    d.clear();
  });

  it('retries while the binlog moves between the two ends', async () => {
    const d = new Deadline(5000, 'x');
    expect(await readPosition(fakeConn([50, 70]), d)).toEqual({
      gtid: '0-1-12',
      file: 'mysql-bin.000003',
      offset: 1120n,
    });
    d.clear();
  });

  it('gives up when something keeps writing', async () => {
    const d = new Deadline(5000, 'x');
    await expect(readPosition(fakeConn([1, 1, 1, 1, 1, 1]), d)).rejects.toThrow(/the binlog kept moving/);
    d.clear();
  });
});

describe('promotion position', () => {
  it('converts to a source position and formats', () => {
    const p = { gtid: '0-3626-9', file: 'mysql-bin.000002', offset: 2n ** 40n };
    expect(toSourcePosition(p)).toEqual({
      kind: 'mysql',
      binlog: { file: 'mysql-bin.000002', offset: 1099511627776n },
      gtid: '0-3626-9',
    });
    expect(toSourcePosition({ ...p, gtid: '' })).toEqual({ kind: 'mysql', binlog: { file: p.file, offset: p.offset } });
    expect(formatPromotionPosition(p)).toBe('mysql-bin.000002:1099511627776 (gtid 0-3626-9)');
  });
});
