import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../core/errors.ts';
import { BINLOG_MAGIC, lastGroupAtOrBefore, scanGroups } from './binlog-groups.ts';

/** A binlog v4 event: 19-byte header (timestamp, type, server_id, size, log_pos, flags) + body + a fake CRC. */
function event(type: number, time: number, body: Buffer, serverId = 7): Buffer {
  const size = 19 + body.length + 4;
  const h = Buffer.alloc(19);
  h.writeUInt32LE(time, 0);
  h.writeUInt8(type, 4);
  h.writeUInt32LE(serverId, 5);
  h.writeUInt32LE(size, 9);
  return Buffer.concat([h, body, Buffer.from([1, 2, 3, 4])]);
}
function gtid(seq: bigint, domain: number, time: number, serverId = 7): Buffer {
  const b = Buffer.alloc(13);
  b.writeBigUInt64LE(seq, 0);
  b.writeUInt32LE(domain, 8);
  return event(0xa2, time, b, serverId);
}
const XID = 16;
const WRITE_ROWS = 30;
const ROTATE = 4;
const FDE = 15;
const GTID_LIST = 163;

describe('scanGroups on hand-built events', () => {
  const fde = event(FDE, 100, Buffer.alloc(80));
  const list = event(GTID_LIST, 100, Buffer.alloc(4));
  const g1 = Buffer.concat([
    gtid(5n, 0, 101),
    event(WRITE_ROWS, 101, Buffer.alloc(30)),
    event(XID, 103, Buffer.alloc(8)),
  ]);
  const g2 = Buffer.concat([gtid(6n, 2, 104, 9), event(XID, 104, Buffer.alloc(8), 9)]);
  const rotate = event(ROTATE, 0, Buffer.alloc(20));
  const file = Buffer.concat([BINLOG_MAGIC, fde, list, g1, g2, rotate]);

  it('finds each group with its GTID, byte range and newest event time; skips non-group events', () => {
    const gs = scanGroups(file);
    const s1 = 4 + fde.length + list.length;
    expect(gs.map((g) => [g.gtid, g.start, g.end, g.time])).toEqual([
      ['0-7-5', BigInt(s1), BigInt(s1 + g1.length), 103],
      ['2-9-6', BigInt(s1 + g1.length), BigInt(s1 + g1.length + g2.length), 104],
    ]);
  });

  it('scans bytes from the middle of a file with offsets relative to the file', () => {
    const s1 = 4 + fde.length + list.length;
    const gs = scanGroups(file.subarray(s1 + g1.length), BigInt(s1 + g1.length));
    expect(gs.map((g) => [g.gtid, g.start])).toEqual([['2-9-6', BigInt(s1 + g1.length)]]);
  });

  it('refuses a missing magic and a truncated event, naming the offset', () => {
    const e1 = (() => {
      try {
        scanGroups(file.subarray(4));
      } catch (e) {
        return e;
      }
    })();
    expect(e1).toBeInstanceOf(TidemarkError);
    expect((e1 as TidemarkError).message).toContain('no binlog magic');
    expect(() => scanGroups(file.subarray(0, file.length - 3))).toThrow(/malformed at offset \d+/);
  });

  it('lastGroupAtOrBefore compares whole seconds', () => {
    const gs = scanGroups(file);
    expect(lastGroupAtOrBefore(gs, new Date(102_999))?.gtid).toBeUndefined();
    expect(lastGroupAtOrBefore(gs, new Date(103_000))?.gtid).toBe('0-7-5');
    expect(lastGroupAtOrBefore(gs, new Date(103_999))?.gtid).toBe('0-7-5');
    expect(lastGroupAtOrBefore(gs, new Date(104_000))?.gtid).toBe('2-9-6');
  });
});

describe('scanGroups on a real MariaDB 10.11 binlog (test/fixtures/binlog)', () => {
  // Written by mariadb.sh start (accounts: GTIDs 1-11), then CREATE DATABASE, CREATE TABLE, an INSERT,
  // BEGIN; UPDATE; INSERT; COMMIT (GTID 13) and two INSERTs; CRC32 checksums on.
  const bytes = readFileSync(new URL('../../test/fixtures/binlog/mariadb-10.11.000001', import.meta.url));

  it('finds the 15 groups, contiguous, the last one ending at the end of the file', () => {
    const gs = scanGroups(bytes);
    expect(gs.map((g) => g.gtid)).toEqual(Array.from({ length: 15 }, (_, i) => `0-3817-${i + 1}`));
    for (let i = 1; i < gs.length; i++) expect(gs[i]?.start).toBe(gs[i - 1]?.end);
    expect(gs.at(-1)?.end).toBe(BigInt(bytes.length));
    // The multi-statement transaction: GTID, 2 × (Annotate, Table_map, rows), XID (mariadb-binlog: 2372..2761).
    expect(gs[12]).toMatchObject({ gtid: '0-3817-13', start: 2372n, end: 2761n });
  });

  it('every cut at a group boundary scans to the same groups', () => {
    const all = scanGroups(bytes);
    for (const g of all) {
      const cut = Number(g.start);
      const joined = [...scanGroups(bytes.subarray(0, cut)), ...scanGroups(bytes.subarray(cut), g.start)];
      expect(joined).toEqual(all);
    }
  });
});
