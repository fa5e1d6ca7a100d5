import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  BINLOG_MAGIC,
  checksumAlgOf,
  clearInUse,
  crcMatches,
  EV,
  formatGtidPos,
  parseGtidEvent,
  parseGtidList,
  parseGtidPos,
  parseHeader,
  parseRotate,
  queryText,
} from './events.ts';
import { FIXTURE, fixtureEvents } from './fixtures/fixture.ts';

describe('binlog events (MariaDB 10.11 fixture)', () => {
  const events = fixtureEvents();

  it('the file starts with the magic and its events chain by next position', () => {
    expect(FIXTURE.subarray(0, 4)).toEqual(BINLOG_MAGIC);
    let pos = 4;
    for (const ev of events) {
      const h = parseHeader(ev);
      expect(h.nextPos - h.length).toBe(pos);
      pos = h.nextPos;
      expect(crcMatches(ev)).toBe(true);
    }
    expect(pos).toBe(FIXTURE.length);
  });

  it('reads the format description, GTID list, GTIDs, queries and the final rotate', () => {
    const fde = events[0] as Buffer;
    const h = parseHeader(fde);
    expect(h.type).toBe(EV.FORMAT_DESCRIPTION);
    expect(h.serverId).toBe(3810);
    expect(checksumAlgOf(fde, h)).toBe(1);
    const list = events[1] as Buffer;
    expect(parseGtidList(list, parseHeader(list))).toEqual([]);
    const gtids = events.filter((e) => parseHeader(e).type === EV.GTID).map((e) => parseGtidEvent(e, parseHeader(e)));
    expect(gtids.map((g) => g.gtid.seq)).toEqual(Array.from({ length: gtids.length }, (_, i) => BigInt(i + 1)));
    expect(gtids.every((g) => g.gtid.domain === 0 && g.gtid.server === 3810)).toBe(true);
    const queries = events
      .filter((e) => parseHeader(e).type === EV.QUERY)
      .map((e) => queryText(e, parseHeader(e), true));
    expect(queries).toContain('COMMIT');
    expect(queries.some((q) => q.startsWith('XA COMMIT'))).toBe(true);
    const last = events.at(-1) as Buffer;
    expect(parseRotate(last, parseHeader(last), true)).toEqual({ file: 'mysql-bin.000002', position: 4n });
  });

  it('refuses an event whose length field disagrees with its bytes', () => {
    const ev = Buffer.from(events[2] as Buffer);
    expect(() => parseHeader(ev.subarray(0, ev.length - 1))).toThrow(/says it is/);
    expect(() => parseHeader(ev.subarray(0, 10))).toThrow(/shorter than its 19-byte header/);
  });

  it('clears the in-use flag without touching the CRC (the server checksums the FDE without it)', () => {
    const fde = Buffer.from(events[0] as Buffer);
    fde.writeUInt16LE(fde.readUInt16LE(17) | 1, 17);
    const cleared = clearInUse(fde);
    expect(cleared).toEqual(events[0]);
    expect(fde.readUInt16LE(17) & 1).toBe(1);
    const flipped = Buffer.from(events[0] as Buffer);
    flipped[30] = (flipped[30] as number) ^ 1;
    expect(crcMatches(flipped)).toBe(false);
    expect(crc32(Buffer.alloc(0))).toBe(0);
  });

  it('parses and prints GTID positions', () => {
    const pos = parseGtidPos('1-7-20,0-3810-5');
    expect(formatGtidPos(pos)).toBe('0-3810-5,1-7-20');
    expect(parseGtidPos(null).size).toBe(0);
    expect(() => parseGtidPos('0-1')).toThrow(/not a GTID/);
  });
});
